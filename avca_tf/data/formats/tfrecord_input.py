"""tf.data input from the TFRecords of `avca ingest` and `avca embed-classes`.

`load_benchmark_from_tfrecords` rebuilds exactly the arrays `load_benchmark`
reads from the h5 files (same order: class id, then row of the class file),
so training from TFRecords feeds the same `ClassAwareSampler` and gives the
same results.json as training from h5 for the same seed. Outputs of
`avca ingest --temporal` (metadata `temporal`) give the TemporalBenchmark
`load_temporal_benchmark` reads from the pickles, bit for bit (flat sequences
in class-id, then pickle order). Both are loaded into memory whole, except with
`stream=True`: temporal splits are then indexes of the records
(`avca_tf.data.formats.record_index`), what `avca train --tfrecords` uses for sequences.
"""
from __future__ import annotations

import os

import numpy as np
import tensorflow as tf

from avca_tf.config import check_choice
from avca_tf.data.formats.benchmark import TEXT_PAIRINGS, Benchmark, BenchmarkError, Split
from avca_tf.data.formats.record_index import index_temporal_split
from avca_tf.data.formats.records import (METADATA, READ_BATCH, check_counts, check_shard,
                                          feature_spec, read_metadata, stage_files, tf_reason)
from avca_tf.data.formats.temporal import TemporalBenchmark, TemporalSplit

def stage_dataset(tfrec_dir: str, stage: str, metadata: dict | None = None,
                  batch_size: int = READ_BATCH, cache: bool = True) -> tf.data.Dataset:
    """Parsed batches (dicts of tensors) of one stage: read, batch, parse, cache, prefetch."""
    meta = metadata or read_metadata(tfrec_dir)
    if stage not in meta["stages"]:
        raise BenchmarkError(f"unknown stage {stage!r}; expected one of {list(meta['stages'])}")
    files = stage_files(tfrec_dir, stage)
    spec = feature_spec(meta["widths"], bool(meta.get("temporal")))
    ds = (tf.data.TFRecordDataset(files, num_parallel_reads=tf.data.AUTOTUNE if files else None)
          .batch(batch_size)
          .map(lambda s: tf.io.parse_example(s, spec), num_parallel_calls=tf.data.AUTOTUNE))
    if cache:
        ds = ds.cache()
    return ds.prefetch(tf.data.AUTOTUNE)


def _culprit(files: list, spec: dict, error: tf.errors.OpError) -> BenchmarkError:
    """The shard a multi-file read failed on, found by reading them one by one."""
    for path in files:
        try:
            check_shard(path, spec)
        except BenchmarkError as e:
            return e
    return BenchmarkError(f"{os.path.dirname(files[0]) if files else '?'}: unreadable "
                          f"TFRecords: {tf_reason(error)}")


def verify_tfrecords(tfrec_dir: str) -> None:
    """Every shard of an ingestion output reads back intact with the counts metadata.json
    records; BenchmarkError naming the first bad file otherwise."""
    meta = read_metadata(tfrec_dir)
    spec = feature_spec(meta["widths"], bool(meta.get("temporal")))
    for stage in meta["stages"]:
        n = sum(check_shard(f, spec) for f in stage_files(tfrec_dir, stage))
        if n != meta["stages"][stage]["count"]:
            raise BenchmarkError(f"{tfrec_dir}/{stage}: {n} records, {METADATA} says "
                                 f"{meta['stages'][stage]['count']}")
    for rel in meta["label_embeddings"].values():
        for f in sorted(tf.io.gfile.glob(os.path.join(tfrec_dir, rel, "*.tfrecord"))):
            check_shard(f)


def _read_columns(tfrec_dir: str, stage: str, metadata: dict, keys) -> dict:
    """{key: [numpy batch, ...]} of a stage's records (RaggedTensors as (values, lengths))."""
    cols = {k: [] for k in keys}
    try:
        for batch in stage_dataset(tfrec_dir, stage, metadata, cache=False):
            for k in cols:
                x = batch[k]
                cols[k].append((x.flat_values.numpy(), x.row_lengths().numpy())
                               if isinstance(x, tf.RaggedTensor) else x.numpy())
    except tf.errors.OpError as e:
        raise _culprit(stage_files(tfrec_dir, stage),
                       feature_spec(metadata["widths"], bool(metadata.get("temporal"))),
                       e) from None
    return cols


def read_split(tfrec_dir: str, stage: str, metadata: dict, stream: bool = False) -> Split:
    """One stage as the Split (or, for `avca ingest --temporal` outputs, the TemporalSplit)
    its reader builds, in the reader's order: class id, then row of the class's file;
    checks the record count. `stream` (temporal outputs only): a
    `record_index.StreamedSplit`, an index of the records."""
    temporal = bool(metadata.get("temporal"))
    if temporal and stream:
        return index_temporal_split(tfrec_dir, stage, metadata)
    widths = metadata["widths"]
    steps = ("audio_steps", "video_steps") if temporal else ()
    cols = _read_columns(tfrec_dir, stage, metadata,
                         ("audio", "video", "label", "video_id", "row") + steps)
    n = sum(len(x) for x in cols["label"])
    check_counts(tfrec_dir, stage, metadata, n)
    cat = lambda k, dtype: (np.concatenate(cols[k]) if n else np.zeros(0, dtype))  # noqa: E731
    labels, rows, vids = cat("label", np.int64), cat("row", np.int64), cat("video_id", object)
    order = np.lexsort((rows, labels))
    common = dict(name=stage, labels=labels[order],
                  video_ids=np.array([v.decode("utf-8") for v in vids[order]], dtype=object),
                  class_ids=np.asarray(metadata["stages"][stage]["class_ids"], dtype=np.int64))
    if temporal:
        lengths = {m: cat(f"{m}_steps", np.int64) for m in ("audio", "video")}
        where = f"{tfrec_dir}/{stage}"
        return TemporalSplit(
            **{m: _ragged_rows(cols[m], lengths[m], widths[m], order, where)
               for m in ("audio", "video")},
            audio_lengths=lengths["audio"][order], video_lengths=lengths["video"][order],
            **common)
    features = {m: (np.concatenate(cols[m]) if n else np.zeros((0, widths[m]), np.float32))
                for m in ("audio", "video")}
    return Split(audio=features["audio"][order], video=features["video"][order], **common)


def _ragged_rows(parts: list, steps: np.ndarray, width: int, order: np.ndarray, where: str):
    """Flat [sum T, width] of the records in `order` from (values, value counts) batches."""
    values = np.concatenate([v for v, _ in parts]) if parts else np.zeros(0, np.float32)
    counts = np.concatenate([c for _, c in parts]) if parts else np.zeros(0, np.int64)
    if not np.array_equal(counts, steps * width):
        k = int(np.flatnonzero(counts != steps * width)[0])
        raise BenchmarkError(f"{where}: record {k} has {counts[k]} values, expected its steps "
                             f"{steps[k]} x width {width}; ingest again")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    if order.size == 0:
        return np.zeros((0, width), np.float32)
    idx = np.concatenate([np.arange(starts[i], starts[i] + counts[i]) for i in order])
    return values[idx].reshape(-1, width)


def read_class_embeddings(path: str) -> tuple[tuple[str, ...], np.ndarray]:
    """(class names, float32 [C, D]) in label order, from a TFRecord file of
    {class_name, label, embedding} (embed-classes output or ingest's label_embeddings/)."""
    if tf.io.gfile.isdir(path):
        files = sorted(tf.io.gfile.glob(os.path.join(path, "*.tfrecord")))
    else:
        files = [path] if tf.io.gfile.exists(path) else []
    if not files:
        raise BenchmarkError(f"no class-embedding TFRecords at {path}")
    spec = {"class_name": tf.io.FixedLenFeature([], tf.string),
            "label": tf.io.FixedLenFeature([], tf.int64),
            "embedding": tf.io.RaggedFeature(tf.float32)}
    names, labels, vectors = [], [], []
    try:
        for rec in tf.data.TFRecordDataset(files).map(
                lambda s: tf.io.parse_single_example(s, spec)):
            names.append(rec["class_name"].numpy().decode("utf-8"))
            labels.append(int(rec["label"]))
            vectors.append(rec["embedding"].numpy())
    except tf.errors.OpError as e:
        raise _culprit(files, spec, e) from None
    if sorted(labels) != list(range(len(labels))):
        raise BenchmarkError(f"{path}: labels {sorted(labels)[:5]}... are not 0..{len(labels) - 1}")
    if len({v.shape for v in vectors}) != 1:
        raise BenchmarkError(f"{path}: embeddings of different lengths "
                             f"{sorted({v.shape[0] for v in vectors})}")
    order = np.argsort(labels)
    return tuple(names[i] for i in order), np.stack([vectors[i] for i in order]).astype(np.float32)


def pairing_permutation(tfrec_dir: str, text_pairing: str, meta: dict | None = None) -> np.ndarray:
    """Row order of the ingested own label embeddings for `text_pairing` (identity for own)."""
    check_choice("text pairing", text_pairing, TEXT_PAIRINGS, BenchmarkError)
    meta = meta or read_metadata(tfrec_dir)
    if text_pairing == "own":
        return np.arange(len(meta["class_names"]))
    perm = meta.get("reference_permutation")
    if perm is None:
        raise BenchmarkError(f"{tfrec_dir}: the authors' pairing is unknown for this dataset "
                             f"(see the notes in {METADATA})")
    return np.asarray(perm, np.int64)


def load_benchmark_from_tfrecords(tfrec_dir: str, text_pairing: str = "own",
                                  stream: bool = False) -> Benchmark:
    """The Benchmark `load_benchmark` returns for the ingested root, from TFRecords (the
    TemporalBenchmark of `load_temporal_benchmark` for `avca ingest --temporal` outputs).

    `stream` (temporal outputs): splits are `record_index.StreamedSplit`s, indexes of the
    records, read batch by batch in training and evaluation (same batches, same results)."""
    meta = read_metadata(tfrec_dir)
    emb_file = meta["label_embeddings"]["own"]
    names, embeddings = read_class_embeddings(os.path.join(tfrec_dir, emb_file))
    if list(names) != meta["class_names"]:
        raise BenchmarkError(f"{tfrec_dir}/{emb_file}: class names differ from {METADATA}")
    embeddings = embeddings[pairing_permutation(tfrec_dir, text_pairing, meta)]
    splits = {stage: read_split(tfrec_dir, stage, meta, stream) for stage in meta["stages"]}
    if "stage_2_train" not in splits and not meta.get("temporal"):
        # a benchmark without stage_2_train folders: as load_benchmark, the stage-1 folders
        from avca_tf.data.formats.benchmark import STAGE1_FOLDERS, STAGES, concat_splits
        splits["stage_2_train"] = concat_splits("stage_2_train",
                                                [splits[s] for s in STAGE1_FOLDERS])
        splits = {s: splits[s] for s in STAGES if s in splits}
    fields = dict(dataset=meta["dataset"], feature_set=meta["feature_set"],
                  class_names=tuple(meta["class_names"]), label_embeddings=embeddings,
                  splits=splits, text_pairing=text_pairing, notes=tuple(meta["notes"]))
    if meta.get("temporal"):
        return TemporalBenchmark(**fields, audio_step=meta["temporal"]["audio_step"],
                                 video_step=meta["temporal"]["video_step"])
    return Benchmark(**fields)
