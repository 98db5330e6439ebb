"""Beam job: class names -> label embeddings (TFRecords) + out-of-vocabulary report.

Two lookups, chosen by the vector file (`lookup="auto"`) or explicitly:
* word (word2vec/GloVe text files): each name is normalised and tokenised
  with avca_tf.data.text.normalize (tensorflow-text), the case-folded tokens are looked up,
  averaged and L2-normalised. Unknown tokens are reported; a class with no
  known token is an error.
* class (the benchmark's npy dict, keyed by whole class names): the vector of
  the class's key is used verbatim, so the published vectors come out
  bit-exact. The key is, in order: the `manual` name from a
  `*_w2v_class_names.csv` mapping next to the classes file; the class name
  itself; the one key whose normalised form equals the class's (also with
  spaces removed). A class with no key is an error.

Output directory: `embeddings.tfrecord` ({class_name, label, embedding},
label = index in the sorted class list) and `report.json`.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterator, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystems import FileSystems

from avca_tf.data.formats import benchmark as bm
from avca_tf.data.text.word_vectors import is_npy, read_word_vectors
from avca_tf.beam import beam_io
from avca_tf.beam.beam_io import PipelineError
from avca_tf.locking import check_dir_target, output_lock

LOOKUPS = ("auto", "class", "word")


class Tokenize(beam.DoFn):
    """Adds the tensorflow-text tokens of the class name."""

    def process(self, element: dict) -> Iterator[dict]:
        from avca_tf.data.text.normalize import class_name_tokens  # imports TF in the worker only
        yield {**element, "tokens": class_name_tokens([element["class_name"]])[0]}


class Embed(beam.DoFn):
    """Looks up one class's vector; loads the vector file once per worker."""

    def __init__(self, vectors_path: str, lookup: str):
        self.vectors_path, self.lookup = vectors_path, lookup
        self._table = None  # numpy lookup tables, built on the first element

    def _load(self, vocabulary):
        if self.lookup == "word":
            table = read_word_vectors(self.vectors_path, vocabulary=vocabulary)
            return {"index": {w: i for i, w in enumerate(table.words)}, "vectors": table.vectors,
                    "duplicates": [list(d) for d in table.duplicates]}
        from avca_tf.data.text.normalize import normalized_strings
        table = read_word_vectors(self.vectors_path)
        words, vectors = table.words, table.vectors
        norm, spaceless = {}, {}
        for key, n in zip(words, normalized_strings(words)):
            norm.setdefault(n, []).append(key)
            spaceless.setdefault(n.replace(" ", ""), []).append(key)
        return {"index": {w: i for i, w in enumerate(words)}, "vectors": vectors,
                "norm": norm, "spaceless": spaceless,
                "duplicates": [list(d) for d in table.duplicates]}

    def process(self, element: dict, vocabulary) -> Iterator[dict]:
        from avca_tf.data.text.word_vectors import WordVectorError
        if self._table is None:
            try:
                self._table = self._load(set(vocabulary))
            except WordVectorError as e:  # reported by the driver, without a worker traceback
                self._table = {"file_error": str(e)}
        if "file_error" in self._table:
            yield {**element, "oov": [], "source": None, "vector": None,
                   "error": self._table["file_error"], "file_error": True}
        else:
            row = self._by_tokens(element) if self.lookup == "word" else \
                self._by_class_key(element)
            yield {**row, "duplicates": self._table["duplicates"]}

    def _by_tokens(self, e: dict) -> dict:
        index, vectors = self._table["index"], self._table["vectors"]
        known = [t for t in e["tokens"] if t in index]
        oov = [t for t in e["tokens"] if t not in index]
        if not known:
            return {**e, "oov": oov, "source": None, "vector": None,
                    "error": f"no known token in {e['tokens']}"}
        mean = np.mean(vectors[[index[t] for t in known]], axis=0)
        norm = np.linalg.norm(mean)
        if not norm > 0:
            return {**e, "oov": oov, "source": None, "vector": None,
                    "error": "the mean of its token vectors is zero"}
        return {**e, "oov": oov, "source": "tokens", "vector": mean / norm, "error": None}

    def _by_class_key(self, e: dict) -> dict:
        t = self._table
        norm = " ".join(e["tokens"])
        candidates = [[e["manual"]] if e["manual"] else [], [e["class_name"]],
                      t["norm"].get(norm, []), t["spaceless"].get(norm.replace(" ", ""), [])]
        for keys in candidates:
            keys = [k for k in keys if k in t["index"]]
            if len(keys) == 1:
                return {**e, "oov": [], "source": keys[0],
                        "vector": t["vectors"][t["index"][keys[0]]], "error": None}
            if len(keys) > 1:
                return {**e, "oov": [], "source": None, "vector": None,
                        "error": f"ambiguous: keys {keys} all match"}
        tried = ([repr(e["manual"])] if e["manual"] else []) + [repr(e["class_name"]), repr(norm)]
        return {**e, "oov": [], "source": None, "vector": None,
                "error": f"no key matches (tried {', '.join(tried)})"}


def _mapping(classes_file: Path) -> tuple[dict, str | None]:
    """original.lower() -> manual from the one *_w2v_class_names.csv beside the list, if any."""
    found = sorted(classes_file.parent.glob("*_w2v_class_names.csv"))
    if len(found) > 1:
        raise PipelineError(f"{classes_file.parent}: several name mappings {[p.name for p in found]}; "
                            "expected at most one *_w2v_class_names.csv")
    if not found:
        return {}, None
    return bm.read_name_mapping(found[0]), str(found[0])


def run_embed_classes(classes_file: str, vectors_path: str, out_dir: str,
                      beam_args: Sequence[str] = (), lookup: str = "auto") -> dict:
    """Runs the job under the one-writer lock of `out_dir`; returns the report written to
    out_dir/report.json."""
    check_dir_target(out_dir, "--out")
    with output_lock(out_dir, "embed-classes output"):
        return _run_embed_classes(classes_file, vectors_path, out_dir, beam_args, lookup)


def _run_embed_classes(classes_file: str, vectors_path: str, out_dir: str,
                       beam_args: Sequence[str] = (), lookup: str = "auto") -> dict:
    if lookup not in LOOKUPS:
        raise PipelineError(f"lookup must be one of {LOOKUPS}, got {lookup!r}")
    if not FileSystems.exists(vectors_path):
        raise PipelineError(f"{vectors_path}: word-vector file not found")
    if lookup == "auto":
        lookup = "class" if is_npy(vectors_path) else "word"
    classes_file = Path(classes_file)
    names = sorted(bm.read_name_list(classes_file))
    mapping, mapping_file = _mapping(classes_file) if lookup == "class" else ({}, None)
    elements = [{"class_name": n, "label": i, "manual": mapping.get(n.lower())}
                for i, n in enumerate(names)]
    print(f"embed-classes: {len(names)} classes from {classes_file}, {lookup} lookup in "
          f"{vectors_path}", flush=True)
    with beam_io.staged_output(out_dir) as out:
        with beam.Pipeline(options=beam_io.pipeline_options(beam_args)) as p:
            tokens = (p | "Classes" >> beam.Create(elements, reshuffle=False)
                      | "Tokenize" >> beam.ParDo(Tokenize()))
            vocab = tokens | "Tokens" >> beam.FlatMap(lambda e: e["tokens"]) | beam.Distinct()
            rows = tokens | "Embed" >> beam.ParDo(Embed(vectors_path, lookup),
                                                  vocabulary=beam.pvalue.AsList(vocab))
            (rows
             | "Valid" >> beam.Filter(lambda r: r["error"] is None)
             | "Encode" >> beam.Map(lambda r: beam_io.encode_example({
                 "class_name": r["class_name"].encode("utf-8"), "label": r["label"],
                 "embedding": np.asarray(r["vector"], np.float32)}))
             | "Write" >> beam.io.WriteToTFRecord(beam_io.join(out, "embeddings"),
                                                  file_name_suffix=".tfrecord",
                                                  shard_name_template=""))
            (rows
             | "ReportRow" >> beam.Map(lambda r: json.dumps(
                 {**{k: v for k, v in r.items() if k != "vector"},
                  "dim": None if r["vector"] is None else int(np.shape(r["vector"])[0])}))
             | "WriteRows" >> beam.io.WriteToText(beam_io.join(out, "_report", "part")))
        rows = sorted(beam_io.read_json_lines(beam_io.join(out, "_report", "part*")),
                      key=lambda r: r["label"])
        beam_io.delete_tree(beam_io.join(out, "_report"))
        failed = [r for r in rows if r["error"]]
        file_errors = sorted({r["error"] for r in failed if r.get("file_error")})
        if file_errors:
            raise PipelineError(f"{file_errors[0]}; nothing was written")
        if failed:
            listing = "\n".join(f"  {r['class_name']}: {r['error']}" for r in failed)
            raise PipelineError(f"{len(failed)} of {len(rows)} classes of {classes_file} have no "
                                f"vector in {vectors_path} ({lookup} lookup); nothing was written:\n"
                                f"{listing}")
        dims = sorted({r["dim"] for r in rows})
        if len(dims) != 1:
            raise PipelineError(f"{vectors_path}: vectors of different lengths {dims}")
        report = {
            "classes_file": str(classes_file), "vectors": vectors_path, "lookup": lookup,
            "name_mapping": mapping_file, "n_classes": len(rows), "dim": dims[0],
            "normalised": lookup == "word",
            "oov": {r["class_name"]: r["oov"] for r in rows if r["oov"]},
            "oov_tokens": sorted({t for r in rows for t in r["oov"]}),
            # words of the vector file that occur again later: the first vector is used
            "duplicate_words": sorted({tuple(d) for r in rows for d in r.get("duplicates", [])}),
            "classes": [{k: r[k] for k in ("class_name", "label", "tokens", "source", "oov")}
                        for r in rows],
        }
        beam_io.write_json(beam_io.join(out, "report.json"), report)
    print(f"embed-classes: {report['n_classes']} embeddings of dimension {report['dim']} written "
          f"to {out_dir}; {len(report['oov_tokens'])} out-of-vocabulary tokens in "
          f"{len(report['oov'])} classes", flush=True)
    return report


def benchmark_inputs(root: str, dataset: str, feature_set: str, vectors: str | None = None,
                     temporal: bool = False):
    """(class list, word vectors) of a benchmark for the class-embedding job: all_class.txt
    and `vectors` or, by default, the toy vocabulary / the benchmark's npy dict (of the
    non-averaged layout if `temporal`). String joins keep remote roots (gs://...) intact."""
    from avca_tf.data.formats.benchmark import Layout
    from avca_tf.data.synthesis.synth import TOY, toy_word_vectors_path
    from avca_tf.data.formats.temporal import TemporalLayout
    rel = (TemporalLayout if temporal else Layout)("", dataset, feature_set)
    vectors = vectors or os.path.join(root, str(toy_word_vectors_path("") if dataset == TOY
                                                else rel.embeddings_file))
    return os.path.join(root, str(rel.all_class_file)), vectors


# ------------------------------------------------ text-encoder class embeddings
class EncodeWithTextModels(beam.DoFn):
    """Class names -> [CLIP; CLAP] prompt-ensemble vectors; encoders load once per worker."""

    def __init__(self, clip_preset: str, clap_savedmodel: str, clip_prompts, clap_prompts):
        self.args = (clip_preset, clap_savedmodel, tuple(clip_prompts), tuple(clap_prompts))
        self._encoder = None

    def setup(self):
        from avca_tf.data.text.encoders import clip_clap_encoder
        clip, clap, clip_prompts, clap_prompts = self.args
        self._encoder = clip_clap_encoder(clip, clap, clip_prompts=clip_prompts,
                                          clap_prompts=clap_prompts)

    def process(self, batch: list) -> Iterator[dict]:
        vectors = self._encoder.encode([e["text"] for e in batch])
        for e, v in zip(batch, vectors):
            yield {**e, "vector": v}


def _text_names(classes_file: Path, dataset: str) -> tuple[dict, str | None]:
    """original.lower() -> the name the prompts use: the dataset's CLIP name csv
    (UCF: ucf_clip_class_names.csv, column clip_class_name) or the *_w2v_class_names.csv
    `manual` names beside the classes file; without either, the class names themselves."""
    files = bm.DATASETS.get(dataset)
    if files is not None and files.clip_names:
        path = classes_file.parent / files.clip_names[0]
        if path.is_file():
            return bm.read_name_mapping(path, files.clip_names[1]), str(path)
    mapping, path = _mapping(classes_file)
    return mapping, path


def run_embed_classes_encoders(classes_file: str, out_dir: str, dataset: str,
                               clip_preset: str, clap_savedmodel: str,
                               beam_args: Sequence[str] = (), clip_prompts=None,
                               clap_prompts=None) -> dict:
    """Beam job writing the clip_clap text files into out_dir (the layout's `text/` folder).

    out_dir/word_embeddings_<key>_normed.npy          {name: CLIP prompt-ensemble vector}
    out_dir/wavcaps_word_embeddings_<key>_normed.npy  {name: CLAP prompt-ensemble vector}
    out_dir/report.json                                encoders, prompts, names
    Names (the dict keys and what fills the prompts) come from the dataset's name csv.
    """
    from avca_tf.data.text.encoders import CLAP_PROMPTS, CLIP_PROMPTS, DATASET_CLIP_PROMPTS, \
        check_prompts
    if dataset not in bm.DATASETS:
        raise PipelineError(f"unknown dataset {dataset!r}; expected one of {sorted(bm.DATASETS)}")
    clip_prompts = tuple(clip_prompts or DATASET_CLIP_PROMPTS.get(dataset, CLIP_PROMPTS))
    clap_prompts = tuple(clap_prompts or CLAP_PROMPTS)
    check_prompts(clip_prompts, "CLIP prompts")
    check_prompts(clap_prompts, "CLAP prompts")
    classes_file = Path(classes_file)
    names = sorted(bm.read_name_list(classes_file))
    mapping, mapping_file = _text_names(classes_file, dataset)
    missing = [n for n in names if mapping and n.lower() not in mapping]
    if missing:
        raise PipelineError(f"{mapping_file}: no row for classes {missing[:5]} of {classes_file}")
    elements = [{"class_name": n, "label": i, "text": mapping.get(n.lower(), n)}
                for i, n in enumerate(names)]
    texts = [e["text"] for e in elements]
    if len(set(texts)) != len(texts):
        raise PipelineError(f"{mapping_file or classes_file}: two classes share a name; the "
                            "embedding dicts need one key per class")
    key = bm.DATASETS[dataset].text_key
    fs = bm.FEATURE_SETS["clip_clap"]
    files = [t.format(key=key) for t, _ in fs.text_files]
    print(f"embed-classes: {len(names)} classes from {classes_file}, CLIP {clip_preset} "
          f"({len(clip_prompts)} prompts) + CLAP {clap_savedmodel} ({len(clap_prompts)} prompts)",
          flush=True)
    with beam_io.staged_output(out_dir) as out:
        with beam.Pipeline(options=beam_io.pipeline_options(beam_args)) as p:
            (p | "Classes" >> beam.Create(elements, reshuffle=False)
             | "Batch" >> beam.BatchElements(min_batch_size=1, max_batch_size=64)
             | "Encode" >> beam.ParDo(EncodeWithTextModels(clip_preset, clap_savedmodel,
                                                           clip_prompts, clap_prompts))
             | "Json" >> beam.Map(lambda r: json.dumps(
                 {"label": r["label"], "text": r["text"],
                  "vector": np.asarray(r["vector"], np.float32).tolist()}))
             | "Write" >> beam.io.WriteToText(beam_io.join(out, "_vectors", "part")))
        rows = sorted(beam_io.read_json_lines(beam_io.join(out, "_vectors", "part*")),
                      key=lambda r: r["label"])
        beam_io.delete_tree(beam_io.join(out, "_vectors"))
        vectors = np.asarray([r["vector"] for r in rows], np.float32)
        if vectors.shape != (len(names), fs.text_dim) or not np.isfinite(vectors).all():
            raise PipelineError(f"the encoders produced vectors of shape {vectors.shape} (finite: "
                                f"{bool(np.isfinite(vectors).all())}); expected "
                                f"[{len(names)}, {fs.text_dim}] = [CLIP 512; CLAP 1024]")
        start = 0
        for name, (_, dim) in zip(files, fs.text_files):
            part = {r["text"]: vectors[i, start:start + dim] for i, r in enumerate(rows)}
            start += dim
            with FileSystems.create(beam_io.join(out, name)) as f:
                np.save(f, part, allow_pickle=True)
        report = {"classes_file": str(classes_file), "dataset": dataset,
                  "name_mapping": mapping_file, "n_classes": len(rows), "dim": fs.text_dim,
                  "files": files, "clip": {"preset": clip_preset, "prompts": list(clip_prompts)},
                  "clap": {"savedmodel": clap_savedmodel, "prompts": list(clap_prompts)},
                  "classes": [{"class_name": e["class_name"], "label": e["label"],
                               "text": e["text"]} for e in elements]}
        beam_io.write_json(beam_io.join(out, "report.json"), report)
    print(f"embed-classes: {len(rows)} [CLIP; CLAP] embeddings written to {out_dir}", flush=True)
    return report
