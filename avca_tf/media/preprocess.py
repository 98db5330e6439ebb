"""The one media preprocessing, shared by `avca extract` and the served graph.

`preprocess_clip` takes what a decoder gives (RGB uint8 frames, mono float
samples at any supported rate) and returns what the encoders take: per window
`frames_per_window` resized, normalised images and one waveform at the audio
encoder's rate. The Beam job (`avca_tf.beam.extract`) calls it on the frames
PyAV decodes; the SavedModel of `avca export --media` calls it on the frames
and samples it decodes in the graph from JPEG/PNG and WAV bytes. Both then pool
per-frame image embeddings into windows with `pool_frames`, so training
features and served requests cannot skew.

Audio is quantised to 16-bit PCM first (the resolution a WAV request carries),
so float samples, WAV bytes and decoded files give the same waveform.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import tensorflow as tf

# Sample rates a request or a file may have (resampled in the graph to the encoder's rate).
SUPPORTED_RATES = (8000, 11025, 16000, 22050, 24000, 32000, 44100, 48000)


@dataclass(frozen=True)
class MediaSpec:
    """How a clip is cut into windows (recorded in the extraction's metadata)."""
    window_seconds: float = 1.0    # one video and one audio embedding per window
    frames_per_window: int = 4     # frames sampled at fixed times in each window
    max_windows: int = 64          # longer clips keep their first max_windows windows
    max_pixels: int = 4096 * 2304  # larger frames are rejected (huge resolution)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FrameTransform:
    """Resize and normalise of the image encoder (read from its keras-hub image converter)."""
    image_size: tuple[int, int]
    scale: tuple[float, float, float]
    offset: tuple[float, float, float]
    interpolation: str = "bilinear"
    antialias: bool = False
    crop_to_aspect_ratio: bool = True

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "FrameTransform":
        return cls(**{**d, "image_size": tuple(d["image_size"]), "scale": tuple(d["scale"]),
                      "offset": tuple(d["offset"])})


def quantize_pcm16(samples):
    """float samples -> the float values 16-bit PCM represents (as tf.audio.decode_wav reads)."""
    x = tf.clip_by_value(tf.cast(samples, tf.float32) * 32768.0, -32768.0, 32767.0)
    return tf.round(x) / 32768.0


def _sinc_kernels(orig: int, new: int, zeros: int = 6, rolloff: float = 0.99):
    """Polyphase windowed-sinc (Hann) kernels [K, 1, new] for orig -> new samples."""
    base = min(orig, new) * rolloff
    width = math.ceil(zeros * orig / base)
    idx = np.arange(-width, width + orig, dtype=np.float64) / orig
    t = (-np.arange(new, dtype=np.float64)[:, None] / new + idx[None, :]) * base
    t = np.clip(t, -zeros, zeros)
    window = np.cos(t * math.pi / zeros / 2) ** 2
    t = t * math.pi
    kernels = np.where(t == 0, 1.0, np.sin(t) / np.where(t == 0, 1.0, t)) * window * base / orig
    return kernels.T[:, None, :].astype(np.float32), width


def _resample_static(x, orig: int, new: int):
    """x float [T] at `orig` Hz -> [ceil(T * new / orig)] at `new` Hz."""
    g = math.gcd(orig, new)
    o, n = orig // g, new // g
    if o == n:
        return x
    kernels, width = _sinc_kernels(o, n)
    t = tf.shape(x)[0]
    padded = tf.pad(x, [[width, width + o]])
    y = tf.nn.conv1d(padded[None, :, None], tf.constant(kernels), stride=o, padding="VALID")
    y = tf.reshape(y, [-1])
    out_len = (tf.cast(t, tf.int64) * n + o - 1) // o
    return y[:tf.cast(out_len, tf.int32)]


def resample(samples, sample_rate, target_rate: int):
    """Windowed-sinc resampling from `sample_rate` (a tensor; one of SUPPORTED_RATES) to
    `target_rate`; an unsupported rate fails with InvalidArgumentError naming the rates."""
    x = tf.cast(samples, tf.float32)
    rate = tf.cast(sample_rate, tf.int32)
    matches = tf.equal(tf.constant(SUPPORTED_RATES, tf.int32), rate)
    tf.debugging.assert_equal(tf.reduce_any(matches), True, message=(
        f"sample rate not supported: expected one of {SUPPORTED_RATES}"))
    branch = tf.argmax(tf.cast(matches, tf.int32), output_type=tf.int32)
    return tf.switch_case(branch, [
        (lambda r=r: _resample_static(x, r, target_rate)) for r in SUPPORTED_RATES])


def transform_frames(frames, transform: FrameTransform):
    """uint8 [N, H, W, 3] (one size) -> float32 [N, h, w, 3] as the image encoder takes."""
    x = tf.cast(frames, tf.float32)
    h, w = transform.image_size
    if transform.crop_to_aspect_ratio:  # centre crop to the target aspect ratio first
        fh = tf.cast(tf.shape(x)[1], tf.float32)
        fw = tf.cast(tf.shape(x)[2], tf.float32)
        ch = tf.minimum(fh, fw * h / w)
        cw = tf.minimum(fw, fh * w / h)
        top = tf.cast((fh - ch) / 2, tf.int32)
        left = tf.cast((fw - cw) / 2, tf.int32)
        x = x[:, top:top + tf.cast(ch, tf.int32), left:left + tf.cast(cw, tf.int32), :]
    x = tf.image.resize(x, (h, w), method=transform.interpolation,
                        antialias=transform.antialias)
    return x * tf.constant(transform.scale, tf.float32) + tf.constant(transform.offset,
                                                                        tf.float32)


def preprocess_clip(frames, samples, sample_rate, spec: MediaSpec, transform: FrameTransform,
                    audio_rate: int):
    """One clip -> (images float32 [W * F, h, w, 3], audio windows float32 [W, L], W).

    frames: uint8 [N, H, W, 3], F = spec.frames_per_window per window in order;
    samples: float [T] mono at `sample_rate`. W is the number of whole windows
    both cover (at most spec.max_windows); L = window_seconds * audio_rate.
    """
    f = spec.frames_per_window
    length = int(round(spec.window_seconds * audio_rate))
    audio = resample(quantize_pcm16(samples), sample_rate, audio_rate)
    n = tf.minimum(tf.minimum(tf.shape(frames)[0] // f, tf.shape(audio)[0] // length),
                   spec.max_windows)
    images = transform_frames(frames[:n * f], transform)
    return images, tf.reshape(audio[:n * length], [-1, length]), n


def pool_frames(frame_embeddings, frames_per_window: int):
    """Per-frame embeddings [W * F, D] -> per-window means [W, D]."""
    d = tf.shape(frame_embeddings)[-1]
    return tf.reduce_mean(tf.reshape(frame_embeddings, [-1, frames_per_window, d]), axis=1)
