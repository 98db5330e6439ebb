"""Padded, masked batches of ragged sequences (TCaF's batching) from flat arrays.

Two modes (`SequenceSpec.mode`), as the authors' collator:
* `max`: each modality zero-padded at the end to the longest video of the
  batch; nothing is cut. `pad_multiple` m > 1 (DataConfig.pad_multiple) pads
  training batches further, to the next multiple of m steps, so that an XLA
  step (`--jit-compile`) sees few shapes; attention masks ignore the extra
  steps, but they enter the encoders' BN batch statistics like any padding
  (as in the authors' code), so training results depend on m.
* `fixed`: a window of `train_video_steps` (training; random start) or
  `test_video_steps` (evaluation; centre start diff // 2) video steps; the
  audio window covers the same time span, round(L_v * video_step / audio_step)
  steps ("matched"; "reference" reproduces the authors' round(L_v * video_step
  * audio_step), 37 / 184 steps for cls); the audio start is
  min(diff_a, round(start_v * video_step / audio_step)) when start_v > 0, else 0.
Masks are 1.0 on valid steps. Step times are arange(L) * step seconds, not
offset by the window start (as the authors).

Everything runs in TensorFlow on index tensors, inside the compiled
training step: the flat feature matrices are arguments, never copied.
The random window starts come from `SequenceSampler`, the class-aware
sampler of `avca_tf.data.batching.sampling` plus one uniform per sample, all
stateless functions of (seed, epoch, step).
"""
from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from avca_tf.data.batching.sampling import ClassAwareSampler
from avca_tf.errors import ConfigError

SEQUENCE_MODES = ("max", "fixed")
AUDIO_WINDOW_RULES = ("matched", "reference")


@dataclass(frozen=True)
class SequenceSpec:
    """How sequences are batched (from DataConfig and the benchmark's step rates)."""
    mode: str = "max"
    train_video_steps: int = 60
    test_video_steps: int = 300
    audio_window: str = "matched"
    audio_step: float = 1.0      # seconds per audio step
    video_step: float = 1.0      # seconds per video step
    pad_multiple: int = 1        # max mode, training batches: pad to a multiple of this

    def __post_init__(self):
        if self.mode not in SEQUENCE_MODES:
            raise ConfigError(f"sequence mode must be one of {SEQUENCE_MODES}, got {self.mode!r}")
        if self.audio_window not in AUDIO_WINDOW_RULES:
            raise ConfigError(f"audio window rule must be one of {AUDIO_WINDOW_RULES}, "
                              f"got {self.audio_window!r}")
        if int(self.pad_multiple) < 1:
            raise ConfigError(f"pad_multiple must be >= 1, got {self.pad_multiple!r}")
        if self.mode == "fixed" and min(self.train_video_steps, self.test_video_steps) < 1:
            raise ConfigError(f"fixed windows need >= 1 video steps, got "
                              f"{self.train_video_steps}/{self.test_video_steps}")

    def window(self, training: bool) -> tuple[int, int]:
        """(audio steps, video steps) of a fixed window."""
        lv = self.train_video_steps if training else self.test_video_steps
        if self.audio_window == "matched":
            la = round(lv * self.video_step / self.audio_step)
        else:
            la = round(lv * self.video_step * self.audio_step)
        return max(1, int(la)), int(lv)


def spec_from_config(data_cfg, audio_step: float, video_step: float) -> SequenceSpec:
    return SequenceSpec(mode=data_cfg.sequence_mode, train_video_steps=data_cfg.train_video_steps,
                        test_video_steps=data_cfg.test_video_steps,
                        audio_window=data_cfg.audio_window, audio_step=audio_step,
                        video_step=video_step,
                        pad_multiple=int(getattr(data_cfg, "pad_multiple", 1)))


def pad_window(flat, starts, lengths, rows, length, offsets):
    """x [B, length, D] (zeros past the end) and mask [B, length] of rows' steps from `offsets`."""
    steps = tf.cast(offsets, tf.int64)[:, None] + tf.range(tf.cast(length, tf.int64))[None, :]
    n = tf.gather(lengths, rows)[:, None]
    valid = steps < n
    idx = tf.gather(starts, rows)[:, None] + tf.minimum(steps, tf.maximum(n - 1, 0))
    mask = tf.cast(valid, flat.dtype)
    return tf.gather(flat, idx) * mask[..., None], mask


def _times(batch: int, length, step: float):
    t = tf.cast(tf.range(length), tf.float32) * step
    return tf.tile(t[None, :], [batch, 1])


def sequence_batch(spec: SequenceSpec, data: tuple, rows, training: bool, u=None) -> dict:
    """Padded audio/video of `rows` with masks and step times.

    `data` = (audio flat, audio starts, audio lengths, video flat, video starts,
    video lengths); `u` [B] uniforms in [0, 1) for random fixed-window starts.
    """
    a_flat, a_starts, a_len, v_flat, v_starts, v_len = data
    b = tf.shape(rows)[0]
    la_n, lv_n = tf.gather(a_len, rows), tf.gather(v_len, rows)
    if spec.mode == "max":
        la, lv = tf.reduce_max(la_n), tf.reduce_max(lv_n)
        if training and spec.pad_multiple > 1:  # length buckets: few shapes for XLA
            m = tf.constant(int(spec.pad_multiple), tf.int64)
            la, lv = (la + m - 1) // m * m, (lv + m - 1) // m * m
        a_off = v_off = tf.zeros([b], tf.int64)
    else:
        la_i, lv_i = spec.window(training)
        la, lv = tf.constant(la_i, tf.int64), tf.constant(lv_i, tf.int64)
        diff_v = tf.maximum(lv_n - lv, 0)
        diff_a = tf.maximum(la_n - la, 0)
        if training:
            v_off = tf.cast(tf.floor(tf.cast(u, tf.float64) * tf.cast(diff_v, tf.float64)),
                            tf.int64)
        else:
            v_off = diff_v // 2
        a_from_v = tf.cast(tf.round(tf.cast(v_off, tf.float64) * spec.video_step
                                    / spec.audio_step), tf.int64)
        a_off = tf.where(v_off > 0, tf.minimum(diff_a, a_from_v), tf.zeros_like(v_off))
    audio, audio_mask = pad_window(a_flat, a_starts, a_len, rows, la, a_off)
    video, video_mask = pad_window(v_flat, v_starts, v_len, rows, lv, v_off)
    return {"audio": audio, "audio_mask": audio_mask, "audio_time": _times(b, la, spec.audio_step),
            "video": video, "video_mask": video_mask, "video_time": _times(b, lv, spec.video_step)}


def flatten_padded(x, lengths):
    """Padded [B, T, D] + lengths [B] -> (flat [sum L, D], starts [B], lengths [B]) int64:
    the flat layout of a TemporalSplit, whatever the padding T."""
    lengths = tf.cast(lengths, tf.int64)
    valid = tf.range(tf.shape(x, out_type=tf.int64)[1])[None, :] < lengths[:, None]
    return tf.boolean_mask(x, valid), tf.cumsum(lengths, exclusive=True), lengths


def padded_eval_batch(spec: SequenceSpec, audio, audio_lengths, video, video_lengths) -> dict:
    """The evaluation batch (`sequence_batch`, training=False) of padded sequences + lengths.

    The padding is dropped first, so the batch is the one the in-process
    evaluation builds for the same videos, whatever padding they arrive with.
    """
    data = (*flatten_padded(audio, audio_lengths), *flatten_padded(video, video_lengths))
    rows = tf.range(tf.shape(audio, out_type=tf.int64)[0])
    return sequence_batch(spec, data, rows, training=False)


class SequenceTable:
    """The tensors of one TemporalSplit for `sequence_batch` (flat arrays + row starts/lengths)."""

    def __init__(self, split):
        self.split = split
        self.data = (tf.constant(split.audio, tf.float32),
                     tf.constant(split.audio_starts, tf.int64),
                     tf.constant(split.audio_lengths, tf.int64),
                     tf.constant(split.video, tf.float32),
                     tf.constant(split.video_starts, tf.int64),
                     tf.constant(split.video_lengths, tf.int64))


class SequenceSampler(ClassAwareSampler):
    """ClassAwareSampler plus `window_u` [B]: uniforms for random fixed-window starts."""

    def batch_indices(self, epoch, step):
        out = super().batch_indices(epoch, step)
        base = tf.stack([tf.constant(self.seed, tf.int64),
                         tf.cast(epoch, tf.int64) * self.n_batches + tf.cast(step, tf.int64)])
        seed = tf.random.experimental.stateless_fold_in(base, 7)
        out["window_u"] = tf.random.stateless_uniform([self.batch_size], seed, dtype=tf.float64)
        return out


class StreamingSequenceSampler(SequenceSampler):
    """SequenceSampler over a `record_index.StreamedSplit`: the same row draws, then each
    batch's records are read (one seek per record) and parsed into a table of that batch
    alone; yields the indices plus `table` (the flat layout of those B videos) and
    `table_labels` [B]. Reading runs in the tf.data pipeline, ahead of the step."""

    def __init__(self, labels, batch_size, n_batches, seed, split_name="training set",
                 split=None):
        super().__init__(labels, batch_size, n_batches, seed, split_name=split_name)
        self.split = split

    def _fetch(self, indices):
        from avca_tf.data.formats.record_index import parse_table
        serialized = tf.py_function(lambda rows: self.split.serialized(rows.numpy()),
                                    [indices["index"]], tf.string)
        serialized.set_shape([self.batch_size])
        *table, labels = parse_table(serialized, self.split.widths)
        return {**indices, "table": tuple(table), "table_labels": labels}

    def epoch_dataset(self, epoch: int) -> tf.data.Dataset:
        return (tf.data.Dataset.range(self.n_batches)
                .map(lambda step: self.batch_indices(epoch, step),
                     num_parallel_calls=1, deterministic=True)
                .map(self._fetch, num_parallel_calls=1, deterministic=True)
                .prefetch(2))


def is_streamed(split) -> bool:
    """Whether `split` is a `record_index.StreamedSplit` (an index of TFRecords)."""
    return hasattr(split, "serialized")
