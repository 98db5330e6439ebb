"""Media signatures of an exported model: frames and sound in, classes out.

`MediaSignatures(graph, encoder)` adds to an export archive:
- `serving_media`: `frames` [B, F] string (JPEG or PNG per frame, "" past
  `frame_count`), `frame_count` [B] int64, `audio` [B, T] float32 mono samples
  (zero-padded past `audio_length`), `audio_length` [B] int64, `sample_rate`
  [B] int64 (one of preprocess.SUPPORTED_RATES) -> the outputs of
  `serving_default` (`classes`, `scores`, `embedding`).
- `serving_media_wav`: `frames`, `frame_count`, `wav` [B] string (mono or
  multi-channel 16-bit PCM WAV bytes, channels averaged) -> the same outputs.
- `classify_open_media` (open-vocabulary exports): the `serving_media` inputs
  plus `class_names` [C] -> the outputs of `classify_open`.
Frames are decoded with tf.io.decode_image (core TF ops), then each clip goes
through the same `MediaEncoder.encode_clip` as `avca extract`: the shared
preprocessing (avca_tf.media.preprocess), the encoders, window pooling. The
per-window embeddings become the model's feature inputs: their mean over
windows (averaged models) or the padded sequences (sequence models): the export's input
kind's `from_windows` (avca_tf/inputs/signature.py), fed to
the feature signatures' own functions (checks, model, class names).

Frames must be the clip's sampled frames (`frames_per_window` per window at
the fixed times of avca_tf.media.decode); `media_request(path)` cuts a local
file into exactly these inputs (deploy/avca_request.py --video).
"""
from __future__ import annotations

import base64
from typing import Optional

import numpy as np
import tensorflow as tf

from avca_tf.media.decode import decode_clip
from avca_tf.media.encoders import MediaEncoder
from avca_tf.media.write import wav_bytes

MEDIA_SIGNATURES = ("serving_media", "serving_media_wav", "classify_open_media")


class MediaSignatures(tf.Module):
    """The media endpoints around an export's feature signatures (see the module doc)."""

    def __init__(self, graph, encoder: MediaEncoder):
        super().__init__(name="media_signatures")
        self.graph, self.encoder = graph, encoder
        self.spec = encoder.spec

    def _decode_frames(self, frames, count):
        strings = frames[:count]
        return tf.map_fn(lambda s: tf.io.decode_image(s, channels=3, expand_animations=False),
                         strings, fn_output_signature=tf.TensorSpec([None, None, 3], tf.uint8))

    def _clip(self, frames, count, samples, rate):
        """One clip -> (audio [W_max, Da], video [W_max, Dv] zero-padded, W)."""
        decoded = self._decode_frames(frames, count)
        video, audio = self.encoder.encode_clip(decoded, samples, rate)
        n = tf.shape(video)[0]
        pad = self.spec.max_windows - n
        return (tf.pad(audio, [[0, pad], [0, 0]]), tf.pad(video, [[0, pad], [0, 0]]),
                tf.cast(n, tf.int64))

    def _checks(self, frames, frame_count):
        f = self.spec.frames_per_window
        return [
            tf.debugging.assert_equal(tf.shape(frame_count)[0], tf.shape(frames)[0], message=(
                "frame_count: expected one count per clip (the batch size of frames)")),
            tf.debugging.assert_equal(tf.reduce_all(
                (frame_count >= f) & (frame_count <= tf.cast(tf.shape(frames)[1], tf.int64))),
                True, message=(f"frame_count: expected values in [{f}, frames per row] (at "
                               f"least one window of {f} frames)"))]

    def _features(self, frames, frame_count, per_clip_audio):
        """Feature inputs of the model for the batch: per_clip_audio(i) -> (samples, rate)."""
        with tf.control_dependencies(self._checks(frames, frame_count)):
            frames = tf.identity(frames)

        def one(i):
            i = tf.cast(i, tf.int64)
            samples, rate = per_clip_audio(i)
            return self._clip(frames[i], frame_count[i], samples, rate)

        d_a, d_v = self.encoder.dims["audio"], self.encoder.dims["video"]
        w = self.spec.max_windows
        audio, video, n = tf.map_fn(
            one, tf.range(tf.shape(frames, out_type=tf.int64)[0]),
            fn_output_signature=(tf.TensorSpec([w, d_a], tf.float32),
                                 tf.TensorSpec([w, d_v], tf.float32),
                                 tf.TensorSpec([], tf.int64)))
        tf.debugging.assert_greater(tf.reduce_min(n), tf.constant(0, tf.int64), message=(
            "a clip is shorter than one window (frames and audio)"))
        return self.graph.inputs.from_windows(audio, video, n)  # the export's input kind

    def _float_features(self, frames, frame_count, audio, audio_length, sample_rate):
        checks = [tf.debugging.assert_equal(tf.reduce_all(
            (audio_length >= 1) & (audio_length <= tf.cast(tf.shape(audio)[1], tf.int64))),
            True, message="audio_length: expected values in [1, samples per row]")]
        with tf.control_dependencies(checks):
            audio = tf.identity(audio)
        return self._features(frames, frame_count,
                              lambda i: (audio[i, :audio_length[i]], sample_rate[i]))

    def _wav_features(self, frames, frame_count, wav):
        def clip_audio(i):
            decoded = tf.audio.decode_wav(wav[i])
            return tf.reduce_mean(decoded.audio, axis=1), decoded.sample_rate
        return self._features(frames, frame_count, clip_audio)

    def _serve(self, features):
        return self.graph.serve(features)

    def serving_media(self, frames, frame_count, audio, audio_length, sample_rate):
        return self._serve(self._float_features(frames, frame_count, audio, audio_length,
                                                sample_rate))

    def serving_media_wav(self, frames, frame_count, wav):
        return self._serve(self._wav_features(frames, frame_count, wav))

    def classify_open_media(self, frames, frame_count, audio, audio_length, sample_rate,
                            class_names):
        features = self._float_features(frames, frame_count, audio, audio_length, sample_rate)
        return self.graph.classify_open(features, class_names)

    def add_endpoints(self, archive, open_vocab: bool) -> list[str]:
        """Tracks the encoders and adds the media signatures; returns their names."""
        archive.track(self.encoder.image.backbone)
        module = getattr(self.encoder.audio, "module", None) or getattr(
            self.encoder.audio, "loaded", None)
        if module is not None:
            archive.track(module)
        frames = [tf.TensorSpec([None, None], tf.string, name="frames"),
                  tf.TensorSpec([None], tf.int64, name="frame_count")]
        floats = [tf.TensorSpec([None, None], tf.float32, name="audio"),
                  tf.TensorSpec([None], tf.int64, name="audio_length"),
                  tf.TensorSpec([None], tf.int64, name="sample_rate")]
        archive.add_endpoint("serving_media", self.serving_media, frames + floats)
        archive.add_endpoint("serving_media_wav", self.serving_media_wav,
                             frames + [tf.TensorSpec([None], tf.string, name="wav")])
        names = ["serving_media", "serving_media_wav"]
        if open_vocab:
            archive.add_endpoint("classify_open_media", self.classify_open_media, frames + floats
                                 + [tf.TensorSpec([None], tf.string, name="class_names")])
            names.append("classify_open_media")
        return names


def media_request(path: str, spec, image_format: str = "png", audio: str = "float",
                  jpeg_quality: int = 95) -> dict:
    """A local file -> the inputs of `serving_media` (audio="float") or
    `serving_media_wav` (audio="wav") for a batch of one, as numpy arrays / bytes.

    The file is decoded as `avca extract` decodes it (avca_tf.media.decode); the
    sampled frames are encoded as PNG (lossless: the served features equal the
    extracted ones) or JPEG (`jpeg_quality`; lossy)."""
    clip = decode_clip(path, spec)
    if image_format == "png":
        frames = [tf.io.encode_png(f).numpy() for f in clip.frames]
    elif image_format in ("jpeg", "jpg"):
        frames = [tf.io.encode_jpeg(f, quality=jpeg_quality).numpy() for f in clip.frames]
    else:
        raise ValueError(f"image_format {image_format!r}: expected png or jpeg")
    out = {"frames": np.array([frames], dtype=object),
           "frame_count": np.array([len(frames)], np.int64)}
    if audio == "wav":
        out["wav"] = np.array([wav_bytes(clip.audio, clip.sample_rate)], dtype=object)
    elif audio == "float":
        out.update(audio=clip.audio[None, :].astype(np.float32),
                   audio_length=np.array([len(clip.audio)], np.int64),
                   sample_rate=np.array([clip.sample_rate], np.int64))
    else:
        raise ValueError(f"audio {audio!r}: expected float or wav")
    return out


def rest_inputs(request: dict, class_names: Optional[list] = None) -> dict:
    """The columnar JSON `inputs` of a media request (bytes as {"b64": ...})."""
    def value(x):
        if isinstance(x, (bytes, bytearray)):
            return {"b64": base64.b64encode(x).decode("ascii")}
        if isinstance(x, np.ndarray):
            return [value(v) for v in x] if x.dtype == object else x.tolist()
        if isinstance(x, (list, tuple)):
            return [value(v) for v in x]
        return x
    out = {k: value(v) for k, v in request.items()}
    if class_names is not None:
        out["class_names"] = list(class_names)
    return out
