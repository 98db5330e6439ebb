"""The on-disk contract of `avca ingest` outputs: metadata.json, the Example spec of a
row (averaged) or of one video's sequences (temporal), shard files, and the checks
every reader of them makes (record counts, intact shards)."""
from __future__ import annotations

import json
import os
import re

import tensorflow as tf

from avca_tf.errors import BenchmarkError

FORMAT = "avca-tfrecords/2"   # /2: the reference pairing is a permutation in the metadata
METADATA = "metadata.json"
READ_BATCH = 1024


def read_metadata(tfrec_dir: str) -> dict:
    path = os.path.join(tfrec_dir, METADATA)
    if not tf.io.gfile.exists(path):
        raise BenchmarkError(f"missing {path}: not an `avca ingest` output directory "
                             f"(or the job did not finish)")
    with tf.io.gfile.GFile(path) as f:
        meta = json.load(f)
    if meta.get("format") != FORMAT:
        raise BenchmarkError(f"{path}: format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


def feature_spec(widths: dict, temporal: bool = False) -> dict:
    """tf.io.parse_example spec of one ingested row (one video's sequences if `temporal`)."""
    if temporal:
        return {"audio": tf.io.RaggedFeature(tf.float32),
                "audio_steps": tf.io.FixedLenFeature([], tf.int64),
                "video": tf.io.RaggedFeature(tf.float32),
                "video_steps": tf.io.FixedLenFeature([], tf.int64),
                **{k: v for k, v in feature_spec(widths).items() if k not in ("audio", "video")}}
    return {
        "audio": tf.io.FixedLenFeature([widths["audio"]], tf.float32),
        "video": tf.io.FixedLenFeature([widths["video"]], tf.float32),
        "label": tf.io.FixedLenFeature([], tf.int64),
        "class_name": tf.io.FixedLenFeature([], tf.string),
        "video_id": tf.io.FixedLenFeature([], tf.string),
        "stage": tf.io.FixedLenFeature([], tf.string),
        "row": tf.io.FixedLenFeature([], tf.int64),
    }


def stage_files(tfrec_dir: str, stage: str) -> list:
    return sorted(tf.io.gfile.glob(os.path.join(tfrec_dir, stage, "part-*.tfrecord")))


def tf_reason(error: tf.errors.OpError) -> str:
    """The TF error message without its node and op decorations."""
    text = re.sub(r"\{\{[^}]*\}\}|\[Op:[^\]]*\]|name: *$", "", error.message.splitlines()[0])
    return " ".join(text.split()) or type(error).__name__


def check_shard(path: str, spec: dict | None = None) -> int:
    """Reads one TFRecord file fully (the reader checks every record's CRC) and parses its
    records with `spec`; returns the record count. BenchmarkError names the file."""
    n = 0
    ds = tf.data.TFRecordDataset([path]).batch(READ_BATCH)
    if spec is not None:
        ds = ds.map(lambda s: tf.io.parse_example(s, spec))
    try:
        for batch in ds:
            n += int(tf.shape(tf.nest.flatten(batch)[0])[0])
    except tf.errors.OpError as e:
        raise BenchmarkError(f"{path}: corrupt or unreadable TFRecord shard (after {n} good "
                             f"records: {tf_reason(e)}); expected intact TFRecords of "
                             "`avca ingest`: ingest again") from None
    return n


def check_counts(tfrec_dir: str, stage: str, metadata: dict, n: int) -> None:
    expected = metadata["stages"][stage]["count"]
    if n != expected:
        raise BenchmarkError(f"{tfrec_dir}/{stage}: {n} records, metadata.json says {expected} "
                             "(files missing or added after ingestion)")
    empty = [name for name, count in metadata["stages"][stage].get("class_counts", {}).items()
             if count == 0]
    if empty:
        rejects = metadata.get("rejects_file")
        raise BenchmarkError(
            f"{tfrec_dir}/{stage}: class(es) {empty[:5]} listed for this stage have no "
            f"samples" + (f" (their rows were rejected at ingestion, see "
                          f"{os.path.join(tfrec_dir, rejects)})" if rejects else "")
            + "; fix the features or remove the classes from the stage list and ingest again")
