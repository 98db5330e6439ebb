"""Streaming sequences from the TFRecords of `avca ingest --temporal`: an index, not arrays.

`index_temporal_split(tfrec_dir, stage, metadata)` reads a stage's shards once
(every record's CRC checked by TensorFlow, every record's value counts checked
against its steps and the widths) and keeps, per video, only where its record
lies: shard, byte offset and size, plus its label, id and step counts. The
videos are ordered as the in-memory reader orders them (class id, then row of
the class pickles), so row i of a `StreamedSplit` is row i of the
`TemporalSplit` that `tfrecord_input.read_split` builds.

Class-aware batches draw row numbers from the per-class lists of that order
(`ClassAwareSampler` over the index's labels) and fetch just those records
(`StreamedSplit.serialized(rows)`: one seek and read per record), which
`parse_table` turns into the flat layout of `sequence_batch` for the batch
alone. `sequence_batch` over that small table with rows 0..B-1 yields the
tensors it yields over the whole split with the drawn rows, bit for bit: only
gathers and multiplications by 0/1 masks touch the values. Peak memory grows
with the batch, not with the dataset (benchmarks/stream_memory.py).
"""
from __future__ import annotations

import os
import struct
import threading
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from avca_tf.data.formats.benchmark import BenchmarkError
from avca_tf.data.formats.records import check_counts, feature_spec, stage_files, tf_reason

HEADER = 12       # uint64 length + uint32 masked CRC of the length
FOOTER = 4        # uint32 masked CRC of the data
INDEX_BATCH = 256


def scan_offsets(path: str) -> tuple[np.ndarray, np.ndarray]:
    """(byte offsets of the records' data, data sizes) of an uncompressed TFRecord file,
    from the record headers alone. BenchmarkError naming the file on a truncated record."""
    offsets, sizes = [], []
    with tf.io.gfile.GFile(path, "rb") as f:
        total = f.size()
        pos = 0
        while pos < total:
            f.seek(pos)
            head = f.read(HEADER)
            if len(head) < HEADER:
                raise BenchmarkError(f"{path}: truncated TFRecord header at byte {pos} (record "
                                     f"{len(offsets)}); expected intact TFRecords of `avca ingest`:"
                                     " ingest again")
            (size,) = struct.unpack("<Q", head[:8])
            end = pos + HEADER + size + FOOTER
            if end > total:
                raise BenchmarkError(f"{path}: record {len(offsets)} at byte {pos} runs past the "
                                     f"end of the file ({size} data bytes, file {total} bytes); "
                                     "expected intact TFRecords of `avca ingest`: ingest again")
            offsets.append(pos + HEADER)
            sizes.append(size)
            pos = end
    return np.asarray(offsets, np.int64), np.asarray(sizes, np.int64)


def sequence_spec(widths: dict) -> dict:
    return feature_spec(widths, temporal=True)


def parse_table(serialized, widths: dict):
    """Serialized records [B] -> the flat layout of `sequence_batch` over those B videos
    (audio [sum T_a, d_a], audio starts, audio lengths, the same for video) and labels [B].
    Graph-compatible (runs inside tf.data)."""
    spec = {k: v for k, v in sequence_spec(widths).items()
            if k in ("audio", "audio_steps", "video", "video_steps", "label")}
    rec = tf.io.parse_example(serialized, spec)
    out = []
    for m in ("audio", "video"):
        lengths = rec[f"{m}_steps"]
        out += [tf.reshape(rec[m].flat_values, [-1, int(widths[m])]),
                tf.cumsum(lengths, exclusive=True), lengths]
    return (*out, rec["label"])


class RecordReader:
    """Random access to records by (file, offset, size); one open handle per file."""

    def __init__(self, files):
        self.files = tuple(files)
        self._handles: dict = {}
        self._lock = threading.Lock()

    def read(self, file_ids, offsets, sizes) -> np.ndarray:
        out = np.empty(len(offsets), dtype=object)
        with self._lock:
            for i, (fid, off, size) in enumerate(zip(file_ids, offsets, sizes)):
                path = self.files[int(fid)]
                f = self._handles.get(path)
                if f is None:
                    f = self._handles[path] = tf.io.gfile.GFile(path, "rb")
                f.seek(int(off))
                data = f.read(int(size))
                if len(data) != size:
                    raise BenchmarkError(f"{path}: record at byte {off} is cut short ({len(data)} "
                                         f"of {size} bytes); the shard changed after it was "
                                         "indexed: ingest again")
                out[i] = data
        return out

    def close(self):
        with self._lock:
            for f in self._handles.values():
                f.close()
            self._handles.clear()


@dataclass(frozen=True, eq=False)
class StreamedSplit:
    """A TemporalSplit's metadata with an index of its records instead of its features."""
    name: str
    audio_lengths: np.ndarray  # int64 [n]
    video_lengths: np.ndarray  # int64 [n]
    labels: np.ndarray         # int64 [n]
    video_ids: np.ndarray      # object (str) [n]
    class_ids: np.ndarray      # int64 [k]
    widths: dict               # {"audio": d_a, "video": d_v}
    reader: RecordReader
    file_ids: np.ndarray       # int32 [n], into reader.files
    offsets: np.ndarray        # int64 [n], byte offset of the record's data
    sizes: np.ndarray          # int64 [n], bytes

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    @property
    def feature_dims(self) -> tuple[int, int]:
        return int(self.widths["audio"]), int(self.widths["video"])

    def serialized(self, rows) -> np.ndarray:
        """The serialized records of `rows` (in that order; repeats allowed)."""
        rows = np.asarray(rows, np.int64)
        return self.reader.read(self.file_ids[rows], self.offsets[rows], self.sizes[rows])

    def table(self, rows):
        """(flat layout of `rows` as tensors (6), labels [B]) for `sequence_batch`."""
        serialized = tf.constant(self.serialized(rows), tf.string)
        *data, labels = parse_table(serialized, self.widths)
        return tuple(data), labels


def concat_streamed(name: str, parts: list) -> StreamedSplit:
    """One StreamedSplit holding the videos of `parts` in order (a joint file table)."""
    files, file_ids = [], []
    for p in parts:
        remap = []
        for path in p.reader.files:
            if path not in files:
                files.append(path)
            remap.append(files.index(path))
        file_ids.append(np.asarray(remap, np.int32)[p.file_ids] if len(p) else
                        np.zeros(0, np.int32))
    cat = lambda f: np.concatenate([getattr(p, f) for p in parts])  # noqa: E731
    widths = parts[0].widths
    if any(p.widths != widths for p in parts):
        raise BenchmarkError(f"{name}: parts with different widths {[p.widths for p in parts]}")
    return StreamedSplit(name=name, audio_lengths=cat("audio_lengths"),
                         video_lengths=cat("video_lengths"), labels=cat("labels"),
                         video_ids=cat("video_ids"),
                         class_ids=np.unique(cat("class_ids")).astype(np.int64), widths=widths,
                         reader=RecordReader(files), file_ids=np.concatenate(file_ids),
                         offsets=cat("offsets"), sizes=cat("sizes"))


def index_temporal_split(tfrec_dir: str, stage: str, metadata: dict) -> StreamedSplit:
    """The StreamedSplit of one stage: reads every shard once in batches (bounded memory),
    checks CRCs, value counts and the record count, keeps only the index."""
    widths = metadata["widths"]
    spec = sequence_spec(widths)
    files = stage_files(tfrec_dir, stage)
    cols = {k: [] for k in ("label", "row", "video_id", "audio_steps", "video_steps", "file",
                            "offset", "size")}
    for fid, path in enumerate(files):
        offsets, sizes = scan_offsets(path)
        n = 0
        ds = (tf.data.TFRecordDataset([path]).batch(INDEX_BATCH)
              .map(lambda s: tf.io.parse_example(s, spec)))
        try:
            for rec in ds:
                b = int(tf.shape(rec["label"])[0])
                for m in ("audio", "video"):
                    counts = rec[m].row_lengths().numpy()
                    steps = rec[f"{m}_steps"].numpy()
                    bad = np.flatnonzero((counts != steps * int(widths[m])) | (steps < 1))
                    if bad.size:
                        k = int(bad[0])
                        raise BenchmarkError(
                            f"{path}: record {n + k} has {counts[k]} {m} values, expected its "
                            f"{m}_steps {steps[k]} (>= 1) x width {widths[m]}; ingest again")
                    cols[f"{m}_steps"].append(steps)
                for k in ("label", "row", "video_id"):
                    cols[k].append(rec[k].numpy())
                n += b
        except tf.errors.OpError as e:
            raise BenchmarkError(f"{path}: corrupt or unreadable TFRecord shard (after {n} good "
                                 f"records: {tf_reason(e)}); expected intact TFRecords of "
                                 "`avca ingest`: ingest again") from None
        if n != len(offsets):
            raise BenchmarkError(f"{path}: {n} records parsed but {len(offsets)} record headers "
                                 "found; expected an uncompressed TFRecord shard of `avca ingest`")
        cols["file"].append(np.full(n, fid, np.int32))
        cols["offset"].append(offsets)
        cols["size"].append(sizes)
    empty = {"file": np.int32, "video_id": object}
    cat = {k: (np.concatenate(v) if v else np.zeros(0, empty.get(k, np.int64)))
           for k, v in cols.items()}
    check_counts(tfrec_dir, stage, metadata, len(cat["label"]))
    order = np.lexsort((cat["row"], cat["label"]))  # class id, then row of the class pickles
    return StreamedSplit(
        name=stage, audio_lengths=cat["audio_steps"][order].astype(np.int64),
        video_lengths=cat["video_steps"][order].astype(np.int64),
        labels=cat["label"][order].astype(np.int64),
        video_ids=np.array([v.decode("utf-8") for v in cat["video_id"][order]], dtype=object),
        class_ids=np.asarray(metadata["stages"][stage]["class_ids"], dtype=np.int64),
        widths={"audio": int(widths["audio"]), "video": int(widths["video"])},
        reader=RecordReader([os.fspath(f) for f in files]), file_ids=cat["file"][order],
        offsets=cat["offset"][order], sizes=cat["size"][order])
