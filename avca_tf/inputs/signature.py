"""The feature inputs of the SavedModel's signatures, one class per input kind: their
tensor specs, the runtime checks a request passes (servers may skip the signature's
shape check) and what the model is called with."""
from __future__ import annotations

import dataclasses

import tensorflow as tf

from avca_tf.config import MAX_FEATURE, REQUEST_LIMITS
from avca_tf.inputs.sequence_batch import padded_eval_batch


def assert_shape(x, dims: tuple, message: str):
    """Runtime check that `x` has rank len(dims) and the given sizes (None: any).

    Servers feed whatever the request holds, and graph optimisation folds rank
    ops to the signature's static rank, so the rank is read from the shape
    vector padded with -1: a tensor of the right rank has -1 right after its
    last dimension, and indexing never goes out of bounds.
    """
    rank = len(dims)
    padded = tf.concat([tf.shape(x), tf.fill([rank + 1], -1)], 0)
    ok = tf.equal(padded[rank], -1)
    for i, size in enumerate(dims):
        ok = tf.logical_and(ok, padded[i] >= 0 if size is None else tf.equal(padded[i], size))
    return tf.debugging.assert_equal(ok, True, message=message)


def _batch_limit(batch):
    n = REQUEST_LIMITS["videos"]
    return tf.debugging.assert_less_equal(tf.cast(batch, tf.int64), tf.constant(n, tf.int64),
                                          message=f"request: more than {n} videos (the limit "
                                                  f"per request); send them in several requests")


def _check_inputs(audio, video, d_a, d_v):
    """Runtime checks, so servers that skip the signature's shape check fail clearly.

    Shapes are checked first (the batch check indexes the shape). Non-finite
    features are refused (InvalidArgument) rather than scored: a NaN feature
    would give NaN scores next to arbitrary classes.
    """
    shapes = [assert_shape(audio, (None, d_a), f"audio: expected shape [batch, {d_a}] float32"),
              assert_shape(video, (None, d_v), f"video: expected shape [batch, {d_v}] float32")]
    with tf.control_dependencies(shapes):
        return shapes + [
            tf.debugging.assert_equal(tf.shape(audio)[0], tf.shape(video)[0], message=(
                "audio and video: expected the same batch size")),
            _batch_limit(tf.shape(audio)[0]),
            *_finite_checks(audio, video)]


def _finite_checks(audio, video):
    """Features must be finite and within +-MAX_FEATURE (1e30 would give -inf/NaN scores)."""
    return [tf.debugging.assert_equal(
                tf.reduce_all(tf.math.is_finite(x) & (tf.abs(x) <= MAX_FEATURE)), True,
                message=f"{name}: expected finite values, got NaN or Inf (or a value beyond "
                        f"+-{MAX_FEATURE:g})")
            for name, x in (("audio", audio), ("video", video))]


class AveragedInputs:
    """One feature vector per video and modality: audio [B, d_a], video [B, d_v]."""

    kind = "averaged"

    def __init__(self, d_a: int, d_v: int):
        self.d_a, self.d_v = d_a, d_v

    def specs(self):
        return [tf.TensorSpec([None, self.d_a], tf.float32, name="audio"),
                tf.TensorSpec([None, self.d_v], tf.float32, name="video")]

    def checks(self, audio, video):
        return _check_inputs(audio, video, self.d_a, self.d_v)

    def model_inputs(self, audio, video):
        """(audio, video, keywords of model.embed)."""
        return audio, video, {}

    def info(self) -> dict:
        return {"inputs": self.kind}

    @staticmethod
    def describe(info: dict):
        """The `inputs:` line `avca export` prints (None: the usual audio, video vectors)."""
        return None

    @staticmethod
    def from_windows(audio, video, n):
        """Window features [B, W, d] of which a clip's first n [B] are valid (media
        requests) -> these inputs: the mean over each clip's windows."""
        mask = tf.sequence_mask(n, audio.shape[1], tf.float32)[:, :, None]
        denom = tf.cast(n, tf.float32)[:, None]
        return (tf.reduce_sum(audio * mask, axis=1) / denom,
                tf.reduce_sum(video * mask, axis=1) / denom)

    @staticmethod
    def endpoint(fn, class_names=False):
        """`fn(inputs, ...)` as a signature function: its parameters are the input names."""
        if class_names:
            return lambda audio, video, class_names: fn((audio, video), class_names)
        return lambda audio, video: fn((audio, video))


class SequenceInputs:
    """Variable-length sequences of a sequence model: audio [B, T_a, d_a] zero-padded (any
    T_a) + audio_lengths [B] int64 valid steps, the same for video. The padding is
    dropped and the evaluation batch of the run's SequenceSpec is built in the graph
    (`avca_tf.inputs.sequence_batch.padded_eval_batch`)."""

    kind = "sequences"

    def __init__(self, d_a: int, d_v: int, spec):
        self.d_a, self.d_v, self.spec = d_a, d_v, spec

    def specs(self):
        return [tf.TensorSpec([None, None, self.d_a], tf.float32, name="audio"),
                tf.TensorSpec([None], tf.int64, name="audio_lengths"),
                tf.TensorSpec([None, None, self.d_v], tf.float32, name="video"),
                tf.TensorSpec([None], tf.int64, name="video_lengths")]

    def checks(self, audio, audio_lengths, video, video_lengths):
        shapes = [
            assert_shape(audio, (None, None, self.d_a),
                          f"audio: expected shape [batch, steps, {self.d_a}] float32"),
            assert_shape(audio_lengths, (None,), "audio_lengths: expected shape [batch] int64"),
            assert_shape(video, (None, None, self.d_v),
                          f"video: expected shape [batch, steps, {self.d_v}] float32"),
            assert_shape(video_lengths, (None,), "video_lengths: expected shape [batch] int64")]
        with tf.control_dependencies(shapes):
            batch = tf.shape(audio, out_type=tf.int64)[0]
            checks = [tf.debugging.assert_equal(
                tf.stack([tf.shape(t, out_type=tf.int64)[0] for t in
                          (audio_lengths, video, video_lengths)]), batch, message=(
                    "audio, audio_lengths, video and video_lengths: expected the same batch "
                    "size")),
                tf.debugging.assert_greater(batch, tf.constant(0, tf.int64), message=(
                    "audio: expected a batch of at least one video")),
                _batch_limit(batch)]
            for name, x, lengths in (("audio", audio, audio_lengths),
                                     ("video", video, video_lengths)):
                steps = tf.shape(x, out_type=tf.int64)[1]
                checks.append(tf.debugging.assert_equal(
                    tf.reduce_all((lengths >= 1) & (lengths <= steps)), True, message=(
                        f"{name}_lengths: expected values in [1, steps of {name}] (every video "
                        f"has at least one {name} step)")))
                limit = REQUEST_LIMITS["steps"]
                checks.append(tf.debugging.assert_less_equal(
                    steps, tf.constant(limit, tf.int64), message=(
                        f"{name}: more than {limit} steps (the limit per video and request); "
                        f"send a shorter window of the video")))
            # inside the block: the finite checks' reductions take the signature's rank, and
            # would fail with an unclear message on a wrong-rank input run before its check
            checks += _finite_checks(audio, video)
        return shapes + checks

    def model_inputs(self, audio, audio_lengths, video, video_lengths):
        b = padded_eval_batch(self.spec, audio, audio_lengths, video, video_lengths)
        return b["audio"], b["video"], {k: b[k] for k in (
            "audio_mask", "audio_time", "video_mask", "video_time")}

    @staticmethod
    def endpoint(fn, class_names=False):
        """`fn(inputs, ...)` as a signature function: its parameters are the input names."""
        if class_names:
            return lambda audio, audio_lengths, video, video_lengths, class_names: fn(
                (audio, audio_lengths, video, video_lengths), class_names)
        return lambda audio, audio_lengths, video, video_lengths: fn(
            (audio, audio_lengths, video, video_lengths))

    @staticmethod
    def describe(info: dict):
        return (f"audio [B, T_a, {info['audio_dim']}], audio_lengths [B], video [B, T_v, "
                f"{info['video_dim']}], video_lengths [B] (padded sequences, any T; "
                f"{info['sequence']['mode']} batching)")

    @staticmethod
    def from_windows(audio, video, n):
        """Window features [B, W, d] of which a clip's first n [B] are valid (media
        requests) -> these inputs: the windows as steps, padded to the longest clip."""
        longest = tf.reduce_max(n)
        return (audio[:, :longest], n, video[:, :longest], n)

    def info(self) -> dict:
        return {"inputs": self.kind, "lengths_dtype": "int64",
                "sequence": dataclasses.asdict(self.spec)}


# an export's info["inputs"] -> the class of its feature inputs
SERVING_INPUTS = {cls.kind: cls for cls in (AveragedInputs, SequenceInputs)}
