"""Beam job: a benchmark's h5 feature files -> TFRecords of tf.train.Example.

With `temporal=True` (`avca ingest --temporal`) the non-averaged pickle
layout of sequence models is ingested instead: one Example per video with the
sequences flattened row-major (`SEQUENCE_FEATURES`), the five temporal stage
folders, and each class pair checked by the temporal reader's own checks
(`avca_tf.data.formats.temporal.check_class`); a class failing them is one rejected
"row" (file, reason).

The driver plans the job from the class lists (the reader's own helpers in
avca_tf.data.formats.benchmark); the pipeline reads every (stage, class) pair of audio and
video h5 files in parallel, validates each row, and writes sharded TFRecords
per stage. Only small per-class counts and the rejected rows come back to
the driver, so the features never need to fit in one machine's memory.

Output directory:
  metadata.json                  widths, class lists, counts, sources, schema
  <stage>/part-SSSSS-of-NNNNN.tfrecord   one Example per valid h5 row
  label_embeddings/<pairing>/part-*.tfrecord  {class_name, label, embedding}
  rejects.jsonl                  with skip_invalid only: file, row, reason
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator, Sequence

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystems import FileSystems

from avca_tf.config import check_choice
from avca_tf.data.formats import benchmark as bm
from avca_tf.beam import beam_io
from avca_tf.beam.beam_io import PipelineError
from avca_tf.data.formats.records import FORMAT
from avca_tf.locking import check_dir_target, output_lock

JOB = "job"  # side output: per-class counts and rejected rows
SUMMARY_ROWS = 10
CHUNK_ROWS = 256  # records per Beam element
# Example features: name -> (dtype, "fixed" width key in metadata or scalar)
FEATURES = {
    "audio": "float32 [widths.audio]",
    "video": "float32 [widths.video]",
    "label": "int64 scalar: index in sorted all_class.txt",
    "class_name": "bytes scalar: all_class.txt name",
    "video_id": "bytes scalar",
    "stage": "bytes scalar",
    "row": "int64 scalar: row in the source h5 files",
}


SEQUENCE_FEATURES = {
    "audio": "float32 [audio_steps * widths.audio]: the [T_a, D_a] sequence, row-major",
    "audio_steps": "int64 scalar: T_a",
    "video": "float32 [video_steps * widths.video]: the [T_v, D_v] sequence, row-major",
    "video_steps": "int64 scalar: T_v",
    "label": "int64 scalar: index in sorted all_class.txt",
    "class_name": "bytes scalar: all_class.txt name",
    "video_id": "bytes scalar",
    "stage": "bytes scalar",
    "row": "int64 scalar: index of the video in the class's pickles",
}
SEQUENCE_CHUNK = 32  # videos per Beam element (a cls video is ~250 KB)


def plan(root, dataset: str, feature_set: str, temporal: bool = False) -> dict:
    """File pairs to read and what metadata.json needs besides counts; `temporal`: the
    non-averaged layout (one task per listed class, files found as the temporal reader
    finds them).

    Structural problems (missing lists, folders, or the file of a listed
    class) raise BenchmarkError before the job starts; row problems are the
    job's to find.
    """
    check_choice("dataset", dataset, bm.DATASETS, bm.BenchmarkError)
    check_choice("feature set", feature_set, bm.FEATURE_SETS, bm.BenchmarkError)
    if temporal:
        from avca_tf.data.formats.temporal import TEMPORAL_STAGES, TemporalLayout, step_seconds
        layout, stage_names, find = (TemporalLayout(Path(root), dataset, feature_set),
                                     TEMPORAL_STAGES, _sequence_tasks)
    else:
        layout, stage_names, find = bm.Layout(Path(root), dataset, feature_set), bm.STAGES, \
            _averaged_tasks
    if not layout.dataset_dir.is_dir():
        raise bm.BenchmarkError(f"missing folder {layout.dataset_dir} (dataset {dataset!r} "
                                f"under benchmark root {root})")
    if temporal and not layout.features_dir.is_dir():
        raise bm.BenchmarkError(f"missing folder {layout.features_dir} (temporal features of "
                                f"{feature_set!r}; write them with `avca synth --temporal`)")
    fs = bm.FEATURE_SETS[feature_set]
    class_names = tuple(sorted(bm.read_name_list(layout.all_class_file)))
    index = bm.class_index(class_names)
    tasks, stages, notes = [], {}, []
    for stage in stage_names:
        if stage == "stage_2_train" and not bm.stage2_train_present(layout):
            notes.append(f"{layout.features_dir}: no stage_2_train folders, not ingested (stage 2 "
                         "trains on the three stage-1 folders)")
            continue
        listed = sorted(set(bm.stage_class_ids(layout, stage, index)))
        tasks += find(layout, stage, listed, class_names, index, notes)
        stages[stage] = {"class_ids": listed, "class_names": [class_names[c] for c in listed]}
    own, emb_notes = bm.label_embeddings(layout, class_names, "own")
    notes.extend(emb_notes)
    try:
        perm = [int(i) for i in bm.reference_pairing(layout, class_names)]
    except bm.BenchmarkError as e:
        perm = None
        notes.append(f"label embeddings: reference pairing unavailable ({e})")
    job = {"layout": layout, "class_names": class_names, "tasks": tasks, "stages": stages,
           "notes": notes, "embeddings": {"own": own}, "reference_permutation": perm,
           "widths": {"audio": fs.audio_dim, "video": fs.video_dim}}
    if temporal:
        steps = step_seconds(feature_set)
        for task in tasks:
            task["steps"] = list(steps)
        job["temporal"] = {"audio_step": steps[0], "video_step": steps[1]}
    return job


def _averaged_tasks(layout, stage, listed, class_names, index, notes) -> list:
    """One task per class file pair of a stage folder (h5 or pickle per feature set)."""
    fs = bm.FEATURE_SETS[layout.feature_set]
    txt = layout.stage_txt(stage)
    files = {m: _feature_files(layout.stage_dir(m, stage), fs.suffix) for m in bm.MODALITIES}
    tasks = []
    for stem in sorted(set(files["audio"]) | set(files["video"])):
        cid = index.get(stem)
        if cid is not None and cid not in listed:
            notes.append(f"{stage}: not ingested, class {class_names[cid]!r} has feature files "
                         f"but is not listed in {txt.name}")
            continue
        if cid is None:  # rows of an unknown class are rejected by the job
            name = (files["audio"].get(stem) or files["video"].get(stem)).stem
        else:
            name = class_names[cid]
        tasks.append({"stage": stage, "class_name": name, "label": -1 if cid is None else cid,
                      "audio": str(files["audio"].get(stem, "")),
                      "video": str(files["video"].get(stem, "")),
                      "audio_dim": fs.audio_dim, "video_dim": fs.video_dim,
                      "format": fs.file_format})
    for cid in listed:
        for m in bm.MODALITIES:
            if class_names[cid].lower() not in files[m]:
                raise bm.BenchmarkError(
                    f"missing file {layout.stage_dir(m, stage)}/{class_names[cid]}{fs.suffix} for "
                    f"class {class_names[cid]!r} listed in {txt}")
    return tasks


def _sequence_tasks(layout, stage, listed, class_names, index, notes) -> list:
    """One task per listed class of a temporal stage folder (its two pickles)."""
    fs = bm.FEATURE_SETS[layout.feature_set]
    txt = layout.stage_txt(stage)
    files = {}
    for m in bm.MODALITIES:
        files[m], _ = bm._stage_files(layout.stage_dir(m, stage), index, class_names,
                                      layout, suffix=".pkl")
        for cid in sorted(set(files[m]) - set(listed)):
            notes.append(f"{stage}: not ingested, class {class_names[cid]!r} has a {m} "
                         f"pickle but is not listed in {txt.name}")
    tasks = []
    for cid in listed:
        for m in bm.MODALITIES:
            if cid not in files[m]:
                raise bm.BenchmarkError(
                    f"missing file {layout.class_file(m, stage, class_names[cid])} for "
                    f"class {class_names[cid]!r} listed in {txt}")
        tasks.append({"stage": stage, "class_name": class_names[cid], "label": cid,
                      "audio": str(files["audio"][cid]), "video": str(files["video"][cid]),
                      "audio_dim": fs.audio_dim, "video_dim": fs.video_dim})
    return tasks


def _feature_files(folder: Path, suffix: str = ".h5") -> dict:
    """{lower-case class stem: path} of a stage folder; two files of one class (names that
    differ only by case) are refused, as `avca inspect` does."""
    if not folder.is_dir():
        raise bm.BenchmarkError(f"missing folder {folder}")
    files = {}
    for e in sorted(os.scandir(folder), key=lambda e: e.name):
        if not e.name.endswith(suffix):
            continue
        stem = Path(e.name).stem.lower()
        if stem in files:
            raise bm.BenchmarkError(f"{folder}: two files for class {stem!r}: "
                                    f"{files[stem].name} and {e.name} (class names are "
                                    "case-insensitive); keep one")
        files[stem] = Path(e.path)
    return files


def _read_local(path: str, reader):
    """reader(local path); remote paths are copied to a local temp file first."""
    if beam_io.is_local(path):
        return reader(path)
    with tempfile.NamedTemporaryFile(suffix=os.path.splitext(path)[1]) as tmp:
        with FileSystems.open(path) as src:
            shutil.copyfileobj(src, tmp)
        tmp.flush()
        return reader(tmp.name)


def _read_features(path: str, file_format: str = "h5"):
    """(data, video ids) of one averaged feature file (h5, or a clip_clap class pickle)."""
    return _read_local(path, _read_local_pkl if file_format == "pkl" else bm.read_h5)


def _read_local_pkl(path: str):
    """A class pickle of one vector per video (clip_clap) as (data [n, d], ids); rows with
    NaN/Inf are left for the job to reject."""
    from avca_tf.data.formats.pickle_features import read_class_pickle
    ids, features = read_class_pickle(path, "features", check_finite=False)
    if features and features[0].ndim != 1:
        raise bm.BenchmarkError(f"{path}: entries have shape {features[0].shape}, expected one "
                                "vector per video")
    width = features[0].shape[0] if features else 0
    return np.stack(features) if features else np.zeros((0, width), np.float32), \
        np.asarray(ids, dtype=object)


class ReadAndValidate(beam.DoFn):
    """One (stage, class) file pair -> (stage, [serialized Example, ...]) chunks of valid rows.

    Rejected rows (file, row, reason) and the count of valid rows go to the
    `job` output as dicts with "kind" "reject" or "count".
    """

    def process(self, task: dict) -> Iterator:
        stage, name, label = task["stage"], task["class_name"], task["label"]
        where = {"stage": stage, "class_name": name}

        def reject(path, row, reason, video_id=None):
            return beam.pvalue.TaggedOutput(JOB, {**where, "kind": "reject", "file": path,
                                                  "row": row, "video_id": video_id,
                                                  "reason": reason})

        loaded = {}
        for m in bm.MODALITIES:
            path = task[m]
            if not path:
                other = task["video" if m == "audio" else "audio"]
                yield reject(other, None, f"no {m} file for class {name!r} in {stage}")
                continue
            try:
                loaded[m] = _read_features(path, task.get("format", "h5"))
            except bm.BenchmarkError as e:   # names the file and what was expected
                yield reject(path, None, str(e))
            except OSError as e:
                yield reject(path, None, f"unreadable: {e}")
        if len(loaded) < 2:
            return
        (a, ida), (v, idv) = loaded["audio"], loaded["video"]
        # whole-file problems, each reported against the file it is in
        file_reasons = {m: [] for m in bm.MODALITIES}
        if label < 0:
            file_reasons["audio"].append(f"class {name!r} (from the file name) is not in "
                                         "all_class.txt")
        for m, data in (("audio", a), ("video", v)):
            if data.shape[1] != task[f"{m}_dim"]:
                file_reasons[m].append(f"{m} width {data.shape[1]}, expected {task[f'{m}_dim']}")
        if any(file_reasons.values()):
            for m, data in (("audio", a), ("video", v)):
                for i in range(data.shape[0] if file_reasons[m] else 0):
                    yield reject(task[m], i, "; ".join(file_reasons[m]))
            return
        if a.shape[0] == 0 and v.shape[0] == 0:
            yield reject(task["audio"], None, f"class {name!r} has no samples (empty files)")
            return
        a_ok, v_ok = np.ones(a.shape[0], bool), np.ones(v.shape[0], bool)
        a_ok[bm.nonfinite_rows(a)] = False
        v_ok[bm.nonfinite_rows(v)] = False
        # constant pieces of every record of this file, encoded once
        shared = beam_io.encode_entries({"label": label, "class_name": name.encode(),
                                         "stage": stage.encode()})
        head_a = beam_io.float_entry_header("audio", a.shape[1])
        head_v = beam_io.float_entry_header("video", v.shape[1])
        fixed = len(shared) + len(head_a) + len(head_v) + 4 * (a.shape[1] + v.shape[1])
        a_le, v_le = np.ascontiguousarray(a, "<f4"), np.ascontiguousarray(v, "<f4")
        chunk, valid = [], 0
        for i in range(max(a.shape[0], v.shape[0])):
            if i >= a.shape[0]:
                yield reject(task["video"], i, "no audio row for this video row "
                             f"(audio has {a.shape[0]} rows, video {v.shape[0]})", idv[i])
            elif i >= v.shape[0]:
                yield reject(task["audio"], i, "no video row for this audio row "
                             f"(audio has {a.shape[0]} rows, video {v.shape[0]})", ida[i])
            elif ida[i] != idv[i]:
                yield reject(task["audio"], i, f"video id {ida[i]!r} in audio file but "
                             f"{idv[i]!r} in video file {task['video']}", ida[i])
            elif not a_ok[i]:
                yield reject(task["audio"], i, "audio row contains NaN or Inf", ida[i])
            elif not v_ok[i]:
                yield reject(task["video"], i, "video row contains NaN or Inf", idv[i])
            else:
                valid += 1
                tail = beam_io.encode_entries({"video_id": ida[i].encode(), "row": i})
                chunk.append(beam_io.example_from_pieces(
                    [shared, head_a, memoryview(a_le[i]).cast("B"), head_v,
                     memoryview(v_le[i]).cast("B"), tail], fixed + len(tail)))
                if len(chunk) == CHUNK_ROWS:
                    yield stage, chunk
                    chunk = []
        if chunk:
            yield stage, chunk
        yield beam.pvalue.TaggedOutput(JOB, {**where, "kind": "count", "count": valid})


class ReadAndValidateSequences(beam.DoFn):
    """One (stage, class) pair of pickles -> (stage, [serialized Example, ...]) chunks, one
    Example per video (SEQUENCE_FEATURES). The pair is checked as the temporal reader
    checks it; a failing pair is one reject (file, reason) and writes nothing."""

    def process(self, task: dict) -> Iterator:
        from avca_tf.data.formats.pickle_features import read_class_pickle_with_fps
        from avca_tf.data.formats.temporal import check_class
        stage, name, label = task["stage"], task["class_name"], task["label"]
        where = {"stage": stage, "class_name": name}
        paths = {m: Path(task[m]) for m in bm.MODALITIES}
        try:
            per = {m: _read_local(task[m], lambda p, m=m: read_class_pickle_with_fps(p, m))
                   for m in bm.MODALITIES}
            check_class(name, paths, per, {m: task[f"{m}_dim"] for m in bm.MODALITIES},
                        tuple(task["steps"]))
        except (bm.BenchmarkError, OSError) as e:
            path = next((task[m] for m in bm.MODALITIES if task[m] in str(e)), task["audio"])
            yield beam.pvalue.TaggedOutput(JOB, {**where, "kind": "reject", "file": path,
                                                 "row": None, "video_id": None,
                                                 "reason": str(e)})
            return
        ids, audio, video = per["audio"][0], per["audio"][1], per["video"][1]
        chunk = []
        for i, (vid, a, v) in enumerate(zip(ids, audio, video)):
            chunk.append(beam_io.encode_example({
                "audio": a.reshape(-1), "audio_steps": a.shape[0],
                "video": v.reshape(-1), "video_steps": v.shape[0], "label": label,
                "class_name": name.encode(), "video_id": vid.encode(),
                "stage": stage.encode(), "row": i}))
            if len(chunk) == SEQUENCE_CHUNK:
                yield stage, chunk
                chunk = []
        if chunk:
            yield stage, chunk
        yield beam.pvalue.TaggedOutput(JOB, {**where, "kind": "count", "count": len(ids)})


def _stage_file_naming(window, pane, shard_index, total_shards, compression, destination):
    return f"{destination}/part-{shard_index:05d}-of-{total_shards:05d}.tfrecord"


def build_pipeline(p: beam.Pipeline, job: dict, out: str) -> None:
    """Adds the transforms that read/validate the job's tasks and write everything under `out`.

    One WriteToFiles, fused with the reading, routes each chunk of records to
    its stage folder; counts and rejected rows go to one small JSON-lines
    output the driver reads back.
    """
    results = (p
               | "Tasks" >> beam.Create(job["tasks"], reshuffle=False)
               | "Spread" >> beam.Reshuffle()
               | "ReadValidate" >> beam.ParDo(
                   ReadAndValidateSequences() if job.get("temporal") else ReadAndValidate()
               ).with_outputs(JOB, main="rows"))
    (results.rows
     | "Write" >> fileio.WriteToFiles(out, destination=lambda kv: kv[0],
                                      sink=lambda dest: beam_io.TFRecordSink(),
                                      file_naming=_stage_file_naming))
    (results[JOB]
     | "JobJson" >> beam.Map(lambda r: json.dumps(r, sort_keys=True))
     | "WriteJob" >> beam.io.WriteToText(beam_io.join(out, "_job", "part")))


def write_label_embeddings(out: str, job: dict) -> None:
    """label_embeddings/<pairing>/part-00000-of-00001.tfrecord: a few hundred
    small records, written by the driver."""
    for pairing, vectors in job["embeddings"].items():
        records = [beam_io.encode_example({"class_name": n.encode(), "label": i, "embedding": vec})
                   for i, (n, vec) in enumerate(zip(job["class_names"], vectors))]
        sink = beam_io.TFRecordSink()
        path = beam_io.join(out, "label_embeddings", pairing, "part-00000-of-00001.tfrecord")
        with FileSystems.create(path) as fh:
            sink.open(fh)
            sink.write((pairing, records))


def _reject_key(r: dict):
    return (r["file"], -1 if r["row"] is None else r["row"], r["reason"])


def run_ingest(root, dataset: str, feature_set: str, out_dir: str,
               beam_args: Sequence[str] = (), skip_invalid: bool = False,
               temporal: bool = False) -> dict:
    """Runs the ingestion job under the one-writer lock of `out_dir` (see _run_ingest);
    `temporal`: the non-averaged pickle layout of sequence models."""
    check_dir_target(out_dir, "--out")
    with output_lock(out_dir, "ingest output"):
        return _run_ingest(root, dataset, feature_set, out_dir, beam_args, skip_invalid,
                           temporal)


def _run_ingest(root, dataset: str, feature_set: str, out_dir: str,
                beam_args: Sequence[str] = (), skip_invalid: bool = False,
                temporal: bool = False) -> dict:
    """Runs the ingestion job; returns the metadata written to out_dir/metadata.json.

    Invalid rows fail the job (PipelineError listing file, row and reason;
    nothing is left at out_dir) unless `skip_invalid`, which writes them to
    out_dir/rejects.jsonl and counts them in the metadata.
    """
    job = plan(root, dataset, feature_set, temporal)
    print(f"ingest: {len(job['tasks'])} (stage, class) file pairs of {dataset}/{feature_set}"
          f"{' (temporal)' if temporal else ''}", flush=True)
    folders = list(job["stages"]) + [f"label_embeddings/{p}" for p in job["embeddings"]]
    with beam_io.staged_output(out_dir) as out:
        if beam_io.is_local(out):  # WriteToFiles moves files into existing folders only
            for folder in folders:
                os.makedirs(os.path.join(out, folder))
        with beam.Pipeline(options=beam_io.pipeline_options(beam_args)) as p:
            build_pipeline(p, job, out)
        lines = beam_io.read_json_lines(beam_io.join(out, "_job", "part*"))
        for tmp in ("_job", ".temp*"):
            beam_io.delete_tree(beam_io.join(out, tmp))
        rejects = sorted((r for r in lines if r["kind"] == "reject"), key=_reject_key)
        counts = [r for r in lines if r["kind"] == "count"]
        if rejects and not skip_invalid:
            raise PipelineError(_reject_summary(rejects))
        metadata = _metadata(job, counts, rejects, root)
        for folder in job["stages"]:
            expected = metadata["stages"][folder]["count"]
            if expected and not FileSystems.match([beam_io.join(out, folder, "part-*")])[0].metadata_list:
                raise PipelineError(f"the job wrote no files to {folder} ({expected} records "
                                    "expected); see the runner's log")
        if rejects:
            with FileSystems.create(beam_io.join(out, "rejects.jsonl")) as f:
                for r in rejects:
                    f.write((json.dumps({k: v for k, v in r.items() if k != "kind"},
                                        sort_keys=True) + "\n").encode())
        write_label_embeddings(out, job)
        beam_io.write_json(beam_io.join(out, "metadata.json"), metadata)
    for stage in job["stages"]:
        print(f"  {stage}: {metadata['stages'][stage]['count']} records", flush=True)
    if rejects:
        print(f"ingest: {len(rejects)} invalid rows skipped, see "
              f"{beam_io.join(out_dir, 'rejects.jsonl')}", flush=True)
    for note in job["notes"]:
        print(f"note: {note}", flush=True)
    print(f"ingest: {metadata['total']} records written to {out_dir}", flush=True)
    return metadata


def _reject_summary(rejects: list) -> str:
    """Rejected rows grouped into runs (same file and reason, consecutive rows)."""
    groups = []
    for r in rejects:
        g = groups[-1] if groups else None
        if (g and g["file"] == r["file"] and g["reason"] == r["reason"] and r["row"] is not None
                and g["last"] is not None and r["row"] == g["last"] + 1):
            g["last"] = r["row"]
        else:
            groups.append({"file": r["file"], "reason": r["reason"], "first": r["row"],
                           "last": r["row"]})
    files = {r["file"] for r in rejects}
    lines = [f"{len(rejects)} invalid row(s) in {len(files)} file(s); nothing was written:"]
    for g in groups[:SUMMARY_ROWS]:
        if g["first"] is None:
            rows = "(whole file)"
        elif g["first"] == g["last"]:
            rows = f"row {g['first']}"
        else:
            rows = f"rows {g['first']}-{g['last']}"
        lines.append(f"  {g['file']} {rows}: {g['reason']}")
    if len(groups) > SUMMARY_ROWS:
        lines.append(f"  ... and {len(groups) - SUMMARY_ROWS} more")
    lines.append("Fix the files, or rerun with --skip-invalid to write these rows to "
                 "rejects.jsonl and ingest the rest.")
    return "\n".join(lines)


def _metadata(job: dict, counts: list, rejects: list, root) -> dict:
    per = {}
    for c in counts:
        per.setdefault(c["stage"], {})[c["class_name"]] = c["count"]
    stages, sources = {}, {}
    for t in job["tasks"]:
        sources.setdefault(t["stage"], []).extend(
            os.path.relpath(t[m], root) for m in bm.MODALITIES if t[m])
    for stage in job["stages"]:
        class_counts = {n: per.get(stage, {}).get(n, 0) for n in job["stages"][stage]["class_names"]}
        stages[stage] = {**job["stages"][stage], "class_counts": class_counts,
                         "count": int(sum(per.get(stage, {}).values())),
                         "files": f"{stage}/part-*.tfrecord", "sources": sorted(sources.get(stage, []))}
    return {
        "format": FORMAT, "dataset": job["layout"].dataset, "feature_set": job["layout"].feature_set,
        "root": str(root), "widths": job["widths"], "class_names": list(job["class_names"]),
        "features": SEQUENCE_FEATURES if job.get("temporal") else FEATURES, "stages": stages,
        **({"temporal": job["temporal"]} if job.get("temporal") else {}),
        "total": int(sum(s["count"] for s in stages.values())),
        "label_embeddings": {p: f"label_embeddings/{p}" for p in job["embeddings"]},
        # the authors' pairing: class i gets the vector of class reference_permutation[i]
        "reference_permutation": job["reference_permutation"],
        "rejected": len(rejects), "rejects_file": "rejects.jsonl" if rejects else None,
        "notes": job["notes"],
    }
