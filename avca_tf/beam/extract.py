"""Beam job: video files -> per-window audio and video features in the published layouts.

Input: a folder tree of class folders (`DIR/<Class>/<video id>.<mp4|webm|avi|mkv|mov>`,
as UCF101 and Kinetics ship; each file's stage comes from the dataset's stage
csvs, where the file stem is the video id) or a CSV with columns
`path,class,stage` (relative paths from the CSV's folder). The class lists and
label embeddings come from `splits` (a benchmark root holding
`<dataset>/class-split`, e.g. the output of `avca synth --media`), by default
the packaged avgzsl_benchmark splits for UCF, ActivityNet and VGGSound.

The pipeline decodes one video per element (avca_tf.media.decode), runs the
shared preprocessing and the encoders (loaded once per worker in DoFn.setup),
and writes one record per video; files that cannot be used come back as
(path, reason). The driver then writes, under `out_dir/<dataset>/`:
  features/<fs>/{audio,video}/<stage>/<class>.h5          mean over windows (AVCA, baselines)
  features/<fs>_non_averaged/{audio,video}/<stage>/<class>.pkl   per-window sequences (TCaF;
                    the five stage folders, as published: no stage_2_train)
  class-split/...   the source lists, each stage's .txt/.csv rewritten to what was extracted
  features/<fs>/text/  the source label embeddings;  extract_<fs>.json  encoders and windowing
and `out_dir/report.json` (videos, windows, per stage counts, skipped files and why).
A file that cannot be used fails the job (nothing is left at out_dir) unless
`skip_invalid`. stage_2_train holds the stage-1 videos, as in the published data.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
from pathlib import Path
from typing import Iterator, Optional, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio

from avca_tf.beam import beam_io
from avca_tf.beam.beam_io import PipelineError
from avca_tf.config import check_choice
from avca_tf.data.formats.benchmark import (DATASETS, FEATURE_SETS, STAGES, Layout, read_name_list)
from avca_tf.data.formats.pickle_features import write_class_pickle
from avca_tf.data.synthesis.synth import PACKAGED_SPLITS, TOY, Plan, stage2_train, write_h5, write_lists
from avca_tf.errors import BenchmarkError, ConfigError
from avca_tf.io_utils import json_text
from avca_tf.locking import check_dir_target, output_lock
from avca_tf.media.decode import VIDEO_SUFFIXES, MediaError, decode_clip
from avca_tf.media.encoders import EXTRACT_FORMAT, extract_meta_name
from avca_tf.media.preprocess import SUPPORTED_RATES, MediaSpec

SKIPPED = "skipped"
LISTED_STAGES = tuple(s for s in STAGES if s != "stage_2_train")  # stage_2_train is derived
STAGE1 = STAGES[:3]


def _split_root(dataset: str, splits) -> Path:
    if splits is None:
        if dataset == TOY:
            raise ConfigError("dataset Toy needs --splits: the root `avca synth --media` wrote")
        return PACKAGED_SPLITS
    return Path(splits)


def _stage_ids(layout: Layout) -> dict[str, dict[str, str]]:
    """stage -> {video id: listed class} from the stage csvs."""
    out = {}
    for stage in LISTED_STAGES:
        path = layout.stage_csv(stage)
        if not path.is_file():
            raise BenchmarkError(f"missing file {path} (video ids per stage)")
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"filename", "label"} <= set(reader.fieldnames):
                raise BenchmarkError(f"{path}: expected columns 'filename' and 'label', got "
                                     f"{reader.fieldnames}")
            out[stage] = {r["filename"].strip(): r["label"].strip() for r in reader}
    return out


def plan_extract(dataset: str, feature_set: str, videos=None, csv_path=None,
                 splits=None) -> dict:
    """What to extract: items (path, video_id, class, stages), problems found before the
    job (listed videos without a file, files of unknown classes) and the class lists."""
    check_choice("dataset", dataset, DATASETS, BenchmarkError)
    check_choice("feature set", feature_set, FEATURE_SETS, BenchmarkError)
    if FEATURE_SETS[feature_set].file_format != "h5":
        raise ConfigError(f"--features {feature_set}: extraction writes the h5 layouts "
                          f"(main_features or cls_features)")
    if (videos is None) == (csv_path is None):
        raise ConfigError("give one of --videos DIR (class folders) or --csv FILE")
    src = Layout(_split_root(dataset, splits), dataset, feature_set)
    if not src.all_class_file.is_file():
        raise BenchmarkError(f"missing file {src.all_class_file} (--splits must hold "
                             f"{dataset}/class-split)")
    class_names = read_name_list(src.all_class_file)
    by_lower = {n.lower(): n for n in class_names}
    items: dict[str, dict] = {}
    skipped, unlisted = [], []
    if videos is not None:
        root = Path(videos)
        if not root.is_dir():
            raise ConfigError(f"--videos {root}: not a folder")
        listed = _stage_ids(src)
        where = {}
        for stage, ids in listed.items():
            for vid, cls in ids.items():
                where.setdefault(vid, (cls, []))[1].append(stage)
        found = set()
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            cls = by_lower.get(folder.name.lower())
            for f in sorted(folder.iterdir()):
                if f.suffix.lower() not in VIDEO_SUFFIXES:
                    continue
                if cls is None:
                    unlisted.append({"path": str(f), "reason": f"class folder {folder.name!r} "
                                     f"is not in {src.all_class_file.name}"})
                    continue
                if f.stem not in where:
                    unlisted.append({"path": str(f), "reason": "video id in no stage list"})
                    continue
                listed_cls, stages = where[f.stem]
                if listed_cls.lower() != cls.lower():
                    skipped.append({"path": str(f), "reason": f"in folder {folder.name!r} but "
                                    f"listed as class {listed_cls!r}"})
                    continue
                found.add(f.stem)
                items[str(f)] = {"path": str(f), "video_id": f.stem, "class_name": cls,
                                 "stages": stages}
        for vid, (cls, stages) in sorted(where.items()):
            if vid not in found and not any(s["path"].endswith(vid) for s in skipped):
                skipped.append({"path": str(root / cls / vid),
                                "reason": f"listed in {', '.join(stages)} but no file "
                                          f"{cls}/{vid}.* was found"})
    else:
        path = Path(csv_path)
        if not path.is_file():
            raise ConfigError(f"--csv {path}: no such file")
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or not {"path", "class", "stage"} <= set(reader.fieldnames):
                raise BenchmarkError(f"{path}: expected columns path, class, stage; got "
                                     f"{reader.fieldnames}")
            for k, row in enumerate(reader, start=2):
                p = row["path"].strip()
                full = str(path.parent / p) if not os.path.isabs(p) else p
                cls = by_lower.get(row["class"].strip().lower())
                if cls is None:
                    raise BenchmarkError(f"{path} line {k}: class {row['class']!r} is not in "
                                         f"{src.all_class_file}")
                stage = row["stage"].strip()
                if stage not in LISTED_STAGES:
                    raise BenchmarkError(f"{path} line {k}: stage {stage!r}, expected one of "
                                         f"{list(LISTED_STAGES)}")
                vid = Path(p).stem
                item = items.setdefault(full, {"path": full, "video_id": vid,
                                               "class_name": cls, "stages": []})
                if item["class_name"] != cls:
                    raise BenchmarkError(f"{path} line {k}: {p} is listed with classes "
                                         f"{item['class_name']!r} and {cls!r}")
                item["stages"].append(stage)
    ids = {}
    for it in items.values():
        other = ids.setdefault(it["video_id"], it["path"])
        if other != it["path"]:
            raise BenchmarkError(f"two files with video id {it['video_id']!r}: {other} and "
                                 f"{it['path']}")
    return {"dataset": dataset, "feature_set": feature_set, "split_root": str(src.root),
            "class_names": class_names, "items": sorted(items.values(), key=lambda i: i["path"]),
            "skipped": skipped, "unlisted": unlisted,
            "input": {"videos": str(videos)} if videos is not None else {"csv": str(csv_path)}}


class ExtractClips(beam.DoFn):
    """item -> (video_id, encoded record) or, tagged SKIPPED, {path, reason}."""

    def __init__(self, encoder_args: dict):
        self.encoder_args = encoder_args

    def setup(self):
        import tensorflow as tf

        from avca_tf.media.encoders import load_media_encoder
        args = dict(self.encoder_args)
        self.spec = MediaSpec(**args.pop("spec"))
        self.encoder = load_media_encoder(spec=self.spec, **args)
        self.encode = tf.function(self.encoder.encode_clip, reduce_retracing=True)

    def process(self, item: dict) -> Iterator:
        import tensorflow as tf
        try:
            clip = decode_clip(item["path"], self.spec)
            if clip.sample_rate not in SUPPORTED_RATES:
                raise MediaError(f"{item['path']}: audio sample rate {clip.sample_rate} Hz: "
                                 f"sample rate not supported (expected one of "
                                 f"{list(SUPPORTED_RATES)})")
            video, audio = self.encode(clip.frames, clip.audio, clip.sample_rate)
        except MediaError as e:
            yield beam.pvalue.TaggedOutput(SKIPPED, {"path": item["path"], "reason": str(e)})
            return
        except tf.errors.InvalidArgumentError as e:
            reason = f"{item['path']}: {e.message.splitlines()[0]}"
            yield beam.pvalue.TaggedOutput(SKIPPED, {"path": item["path"], "reason": reason})
            return
        video, audio = video.numpy(), audio.numpy()
        if not (np.isfinite(video).all() and np.isfinite(audio).all()):
            yield beam.pvalue.TaggedOutput(SKIPPED, {"path": item["path"],
                                                     "reason": f"{item['path']}: non-finite "
                                                               f"features"})
            return
        record = beam_io.encode_example({
            "video_id": item["video_id"].encode(), "path": item["path"].encode(),
            "windows": int(video.shape[0]), "duration": np.array([clip.duration], np.float32),
            "video": video.reshape(-1).astype(np.float32),
            "audio": audio.reshape(-1).astype(np.float32)})
        yield ("records", [record])


def _naming(window, pane, shard_index, total_shards, compression, destination):
    return f"{destination}/part-{shard_index:05d}-of-{total_shards:05d}.tfrecord"


def build_pipeline(p: beam.Pipeline, job: dict, encoder_args: dict, work: str) -> None:
    results = (p
               | "Items" >> beam.Create(job["items"], reshuffle=False)
               | "Spread" >> beam.Reshuffle()
               | "Extract" >> beam.ParDo(ExtractClips(encoder_args)).with_outputs(
                   SKIPPED, main="records"))
    (results.records
     | "Write" >> fileio.WriteToFiles(work, destination=lambda kv: kv[0],
                                      sink=lambda dest: beam_io.TFRecordSink(),
                                      file_naming=_naming))
    (results[SKIPPED]
     | "SkippedJson" >> beam.Map(lambda r: json.dumps(r, sort_keys=True))
     | "WriteSkipped" >> beam.io.WriteToText(os.path.join(work, "_skipped", "part")))


def _read_records(folder: str) -> dict[str, dict]:
    import tensorflow as tf
    out = {}
    files = sorted(Path(folder).glob("part-*.tfrecord"))
    for raw in tf.data.TFRecordDataset([str(f) for f in files]).as_numpy_iterator():
        ex = tf.train.Example.FromString(raw).features.feature
        w = int(ex["windows"].int64_list.value[0])
        vid = ex["video_id"].bytes_list.value[0].decode()
        out[vid] = {"windows": w,
                    "video": np.array(ex["video"].float_list.value, np.float32).reshape(w, -1),
                    "audio": np.array(ex["audio"].float_list.value, np.float32).reshape(w, -1)}
    return out


def _write_dataset(ds_dir: Path, job: dict, records: dict, src: Layout) -> dict:
    """Features, lists and label embeddings of what was extracted; per-stage counts."""
    dataset, fs_name = job["dataset"], job["feature_set"]
    fs = FEATURE_SETS[fs_name]
    shutil.copytree(src.class_split_dir, ds_dir / "class-split")
    text_src = src.embeddings_file.parent
    layout = Layout(ds_dir.parent, dataset, fs_name)
    seq_fs = f"{fs.folder}_non_averaged"
    for features_dir in (fs.folder, seq_fs):  # the temporal reader looks beside its features
        shutil.copytree(text_src, ds_dir / "features" / features_dir / text_src.name)
    vectors = src.dataset_dir / "toy_word_vectors.txt"
    if vectors.is_file():
        shutil.copy(vectors, ds_dir / vectors.name)
    stages: dict[str, dict[str, list[str]]] = {s: {} for s in LISTED_STAGES}
    order = _stage_order(job, src)
    for stage in LISTED_STAGES:
        for cls, vid in order[stage]:
            if vid in records:
                stages[stage].setdefault(cls, []).append(vid)
    stage1_classes = [c for c in job["class_names"]
                      if any(c in stages[s] for s in STAGE1)]
    stages["stage_2_train"] = stage2_train(stage1_classes, stages, Path("stage_2_train.txt"))
    stages = {s: stages[s] for s in STAGES}
    write_lists(ds_dir, Plan(job["class_names"], [], {}, stages), dataset, fs_name,
                class_files=False)
    counts = {}
    for stage, per in stages.items():
        for m in ("audio", "video"):
            layout.stage_dir(m, stage).mkdir(parents=True, exist_ok=True)
        for cls, ids in per.items():
            for m in ("audio", "video"):
                seqs = [records[v][m] for v in ids]
                write_h5(layout.stage_dir(m, stage) / f"{cls}{fs.suffix}",
                         np.stack([s.mean(axis=0) for s in seqs]), ids)
                if stage != "stage_2_train":  # the non-averaged layout has five folders
                    write_class_pickle(ds_dir / "features" / seq_fs / m / stage / f"{cls}.pkl",
                                       ids, seqs, atomic=False)
        counts[stage] = {"classes": len(per), "videos": sum(len(v) for v in per.values()),
                         "windows": sum(records[v]["windows"] for ids in per.values()
                                        for v in ids)}
    return counts


def _stage_order(job: dict, src: Layout) -> dict[str, list[tuple[str, str]]]:
    """(class, video id) per stage in the input's order (stage csv rows, or CSV rows)."""
    by_stage = {s: [] for s in LISTED_STAGES}
    if "videos" in job["input"]:
        for stage, ids in _stage_ids(src).items():
            lower = {n.lower(): n for n in job["class_names"]}
            by_stage[stage] = [(lower[c.lower()], v) for v, c in ids.items()
                               if c.lower() in lower]
    else:
        for it in job["items"]:
            for stage in it["stages"]:
                by_stage[stage].append((it["class_name"], it["video_id"]))
        for stage in by_stage:  # csv order within class folders: sort by class, keep rows
            by_stage[stage].sort(key=lambda cv: job["class_names"].index(cv[0]))
    return by_stage


def run_extract(dataset: str, out_dir: str, videos=None, csv_path=None, splits=None,
                feature_set: str = "main_features", encoder_args: Optional[dict] = None,
                beam_args: Sequence[str] = (), skip_invalid: bool = False,
                spec: MediaSpec = MediaSpec()) -> dict:
    """Runs the extraction under the one-writer lock of `out_dir`; returns report.json."""
    if not beam_io.is_local(out_dir):
        raise ConfigError(f"--out {out_dir}: extraction writes a local benchmark root "
                          f"(h5 files); copy it to an object store afterwards")
    check_dir_target(out_dir, "--out")
    with output_lock(out_dir, "extract output"):
        return _run_extract(dataset, out_dir, videos, csv_path, splits, feature_set,
                            encoder_args or {}, beam_args, skip_invalid, spec)


def _run_extract(dataset, out_dir, videos, csv_path, splits, feature_set, encoder_args,
                 beam_args, skip_invalid, spec) -> dict:
    from avca_tf.media.encoders import load_media_encoder
    job = plan_extract(dataset, feature_set, videos, csv_path, splits)
    src = Layout(Path(job["split_root"]), dataset, feature_set)
    encoder_args = {**encoder_args, "spec": spec.to_dict()}
    probe_args = dict(encoder_args)
    probe = load_media_encoder(spec=MediaSpec(**probe_args.pop("spec")), **probe_args)
    fs = FEATURE_SETS[feature_set]
    if probe.dims != {"audio": fs.audio_dim, "video": fs.video_dim}:
        raise ConfigError(f"the encoders give audio {probe.dims['audio']}-d and video "
                          f"{probe.dims['video']}-d features; --features {feature_set} expects "
                          f"{fs.audio_dim} and {fs.video_dim}")
    identity = probe.identity()
    del probe
    print(f"extract: {len(job['items'])} videos of {dataset} -> {out_dir}", flush=True)
    with beam_io.staged_output(out_dir) as out:
        work = os.path.join(out, "_work")
        os.makedirs(os.path.join(work, "records"))
        with beam.Pipeline(options=beam_io.pipeline_options(beam_args)) as p:
            build_pipeline(p, job, encoder_args, work)
        skipped = job["skipped"] + beam_io.read_json_lines(os.path.join(work, "_skipped",
                                                                        "part*"))
        skipped.sort(key=lambda r: (r["path"], r["reason"]))
        if skipped and not skip_invalid:
            lines = "\n".join(f"  {r['reason']}" for r in skipped[:10])
            more = f"\n  ... and {len(skipped) - 10} more" if len(skipped) > 10 else ""
            raise PipelineError(f"{len(skipped)} input file(s) cannot be used (nothing was "
                                f"written; --skip-invalid skips them and lists them in "
                                f"report.json):\n{lines}{more}")
        records = _read_records(os.path.join(work, "records"))
        shutil.rmtree(work)
        if not records:
            raise PipelineError("no video could be extracted")
        ds_dir = Path(out) / dataset
        counts = _write_dataset(ds_dir, job, records, src)
        meta = {"format": EXTRACT_FORMAT, "dataset": dataset, "feature_set": feature_set,
                "encoders": identity, "window_seconds": spec.window_seconds}
        (ds_dir / extract_meta_name(feature_set)).write_text(json_text(meta))
        report = {"format": EXTRACT_FORMAT, "dataset": dataset, "feature_set": feature_set,
                  "input": job["input"], "splits": job["split_root"],
                  "videos": len(records),
                  "windows": int(sum(r["windows"] for r in records.values())),
                  "stages": counts, "skipped": skipped, "unlisted": job["unlisted"],
                  "encoders": identity}
        (Path(out) / "report.json").write_text(json_text(report))
    print(f"extract: {report['videos']} videos, {report['windows']} windows; "
          f"{len(skipped)} skipped, {len(job['unlisted'])} unlisted (see "
          f"{os.path.join(out_dir, 'report.json')})", flush=True)
    return report
