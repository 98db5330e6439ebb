"""Pluggable media encoders: images through a keras-hub image tower, audio through
keras-hub's Whisper encoder or a SavedModel taking a waveform.

`ImageTower.from_preset(preset)`: a keras-hub preset name or a local preset
directory. A CLIP preset (the default, `clip_vit_base_patch32`, 512-d) gives its
projected image embedding (`CLIPBackbone.get_vision_embeddings`); any other
image backbone gives its output feature map averaged over positions. Resize
and normalisation come from the preset's image converter (`FrameTransform`).

`AudioTower.from_preset(preset)`: a keras-hub Whisper preset (e.g.
`whisper_base_en`, 512-d): its audio converter (log-mel) and encoder; the
encoder output is averaged over the positions the window covers.
`AudioTower.from_savedmodel(path, sample_rate)`: any SavedModel whose signature
maps float32 waveforms [N, T] at `sample_rate` to [N, D] (the route for CLAP,
VGGish or YAMNet exported from their own frameworks, docs/media.md).

`MediaEncoder(image, audio, spec)` runs the shared preprocessing
(avca_tf.media.preprocess) and both towers: one clip -> per-window video and
audio embeddings. Its `identity()` (presets, a digest of local preset files,
dims, rates, windowing) goes into extraction metadata and cache keys.
"""
from __future__ import annotations

import hashlib
import json
import os
from typing import Optional

import tensorflow as tf

from avca_tf.errors import AvcaError
from avca_tf.media.preprocess import (FrameTransform, MediaSpec, pool_frames, preprocess_clip)

DEFAULT_IMAGE_PRESET = "clip_vit_base_patch32"
DEFAULT_AUDIO_PRESET = "whisper_base_en"
FRAME_BATCH = 64  # images per image-tower call
EXTRACT_FORMAT = "avca-extract/1"


class EncoderError(AvcaError, ValueError):
    """An encoder preset or SavedModel cannot be loaded or does not fit."""


def preset_digest(preset: str) -> str:
    """sha256 of a local preset directory's files (names and bytes); '' for a hub name."""
    if not os.path.isdir(preset):
        return ""
    h = hashlib.sha256()
    for root, dirs, files in os.walk(preset):
        dirs.sort()
        for name in sorted(files):
            path = os.path.join(root, name)
            h.update(os.path.relpath(path, preset).encode() + b"\0")
            with open(path, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    h.update(block)
    return h.hexdigest()


def _where(preset: str) -> str:
    """A local directory as an absolute path (it is recorded and loaded again); names as given."""
    return os.path.abspath(preset) if os.path.isdir(preset) else str(preset)


def _keras_hub():
    try:
        import keras_hub
    except ImportError as e:
        raise EncoderError("media encoders need keras-hub (pip install keras-hub; see "
                           "requirements/extra.txt)") from e
    return keras_hub


def _transform_from_converter(converter, fallback_size) -> FrameTransform:
    cfg = converter.get_config() if converter is not None else {}
    size = cfg.get("image_size") or fallback_size
    scale = cfg.get("scale")
    offset = cfg.get("offset")

    def three(v, default):
        if v is None:
            return (default,) * 3
        v = list(v) if isinstance(v, (list, tuple)) else [v]
        return tuple(float(x) for x in (v * 3 if len(v) == 1 else v))

    return FrameTransform(image_size=(int(size[0]), int(size[1])),
                          scale=three(scale, 1 / 255.0), offset=three(offset, 0.0),
                          interpolation=cfg.get("interpolation", "bilinear"),
                          antialias=bool(cfg.get("antialias", False)),
                          crop_to_aspect_ratio=bool(cfg.get("crop_to_aspect_ratio", True)))


class ImageTower(tf.Module):
    """Images float32 [N, h, w, 3] (after `transform`) -> embeddings [N, D]."""

    def __init__(self, backbone, transform: FrameTransform, identity: dict,
                 name: str = "image_tower"):
        super().__init__(name=name)
        self.backbone = backbone
        self.transform = transform
        self.is_clip = hasattr(backbone, "get_vision_embeddings")
        self.dim = int(identity["dim"])
        self._identity = json.dumps(identity, sort_keys=True)  # a string: not tracked

    @classmethod
    def from_preset(cls, preset: str = DEFAULT_IMAGE_PRESET) -> "ImageTower":
        keras_hub = _keras_hub()
        try:
            backbone = keras_hub.models.Backbone.from_preset(preset)
        except Exception as e:  # network, missing files, not a backbone preset
            raise EncoderError(f"cannot load the image encoder preset {preset!r}: {e}") from e
        try:
            converter = keras_hub.layers.ImageConverter.from_preset(preset)
        except Exception:
            converter = None
        if hasattr(backbone, "get_vision_embeddings"):  # CLIP-like: vision tower + projection
            shape = backbone.vision_encoder.image_shape
            dim = int(backbone.projection_dim)
        else:
            shape = getattr(backbone, "image_shape", None)
            if not shape or shape[0] is None:
                raise EncoderError(f"{preset!r}: not an image backbone with a fixed image size "
                                   f"(type {type(backbone).__name__})")
            dim = int(backbone.output.shape[-1])
        if converter is None and not hasattr(backbone, "get_vision_embeddings"):
            raise EncoderError(f"{preset!r}: the preset has no image converter (resize and "
                               f"normalisation)")
        if converter is None:  # CLIP's own normalisation
            mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
            transform = FrameTransform((int(shape[0]), int(shape[1])),
                                       tuple(1 / (255.0 * s) for s in std),
                                       tuple(-m / s for m, s in zip(mean, std)))
        else:
            transform = _transform_from_converter(converter, shape[:2])
        identity = {"kind": "keras-hub", "preset": _where(preset),
                    "class": type(backbone).__name__, "digest": preset_digest(str(preset)),
                    "dim": dim, "transform": transform.to_dict()}
        return cls(backbone, transform, identity)

    def identity(self) -> dict:
        return json.loads(self._identity)

    def __call__(self, images):
        if self.is_clip:
            return self.backbone.get_vision_embeddings(images)
        x = self.backbone(images)
        if isinstance(x, dict):
            x = next(iter(x.values()))
        return tf.reduce_mean(x, axis=list(range(1, len(x.shape) - 1)))


class AudioTower(tf.Module):
    """Waveforms float32 [W, L] at `sample_rate` -> embeddings [W, D]."""

    def __init__(self, fn, sample_rate: int, dim: int, identity: dict, name: str = "audio_tower"):
        super().__init__(name=name)
        self.fn = fn
        self.sample_rate = int(sample_rate)
        self.dim = int(dim)
        self._identity = json.dumps(identity, sort_keys=True)  # a string: not tracked

    def identity(self) -> dict:
        return json.loads(self._identity)

    def __call__(self, waveforms):
        return self.fn(waveforms)

    @classmethod
    def from_preset(cls, preset: str = DEFAULT_AUDIO_PRESET) -> "AudioTower":
        """A keras-hub Whisper preset: log-mel converter + encoder, averaged over the window."""
        keras_hub = _keras_hub()
        import keras
        try:
            backbone = keras_hub.models.Backbone.from_preset(preset)
            converter = keras_hub.layers.AudioConverter.from_preset(preset)
        except Exception as e:
            raise EncoderError(f"cannot load the audio encoder preset {preset!r}: {e}") from e
        if "encoder_features" not in getattr(backbone, "input", {}):
            raise EncoderError(f"{preset!r}: not a Whisper-like backbone (no encoder_features "
                               f"input; type {type(backbone).__name__})")
        encoder = keras.Model(backbone.input["encoder_features"],
                              backbone.output["encoder_sequence_output"])
        cfg = converter.get_config()
        rate = int(cfg.get("sampling_rate", 16000))
        stride = int(cfg.get("stride", 160))
        module = tf.Module()
        module.encoder, module.converter = encoder, converter

        def fn(waveforms):
            mel = converter(waveforms)
            seq = encoder(mel)
            # the encoder halves the frames (stride-2 conv): keep the positions with audio
            used = (tf.shape(waveforms)[1] + 2 * stride - 1) // (2 * stride)
            return tf.reduce_mean(seq[:, :tf.minimum(used, tf.shape(seq)[1])], axis=1)

        module.fn = fn
        dim = int(backbone.hidden_dim)
        identity = {"kind": "keras-hub", "preset": _where(preset),
                    "class": type(backbone).__name__, "digest": preset_digest(str(preset)),
                    "dim": dim, "sample_rate": rate}
        tower = cls(fn, rate, dim, identity)
        tower.module = module
        return tower

    @classmethod
    def from_savedmodel(cls, path: str, sample_rate: int = 16000,
                        signature: str = "serving_default",
                        output: Optional[str] = None) -> "AudioTower":
        """A SavedModel signature taking one float32 waveform tensor [N, T] -> [N, D]."""
        try:
            loaded = tf.saved_model.load(path)
        except Exception as e:
            raise EncoderError(f"{path}: not a loadable SavedModel ({e})") from e
        if signature not in loaded.signatures:
            raise EncoderError(f"{path}: no signature {signature!r}; it has "
                               f"{sorted(loaded.signatures)}")
        sig = loaded.signatures[signature]
        inputs = sig.structured_input_signature[1]
        if len(inputs) != 1 or next(iter(inputs.values())).dtype != tf.float32:
            raise EncoderError(f"{path}: signature {signature!r} must take one float32 waveform "
                               f"tensor [N, T], got {inputs}")
        name = next(iter(inputs))
        outputs = sig.structured_outputs
        if output is None:
            if len(outputs) != 1:
                raise EncoderError(f"{path}: signature {signature!r} has outputs "
                                   f"{sorted(outputs)}; name the embedding output")
            output = next(iter(outputs))
        if output not in outputs:
            raise EncoderError(f"{path}: signature {signature!r} has no output {output!r}")
        dim = int(outputs[output].shape[-1])
        identity = {"kind": "savedmodel", "path": _where(path), "signature": signature,
                    "output": output, "digest": preset_digest(str(path)), "dim": dim,
                    "sample_rate": int(sample_rate)}
        tower = cls(lambda w: sig(**{name: w})[output], sample_rate, dim, identity)
        tower.loaded = loaded
        return tower


class MediaEncoder(tf.Module):
    """One clip's frames and samples -> per-window (video [W, Dv], audio [W, Da])."""

    def __init__(self, image: ImageTower, audio: AudioTower, spec: MediaSpec = MediaSpec(),
                 name: str = "media_encoder"):
        super().__init__(name=name)
        self.image, self.audio, self.spec = image, audio, spec

    def identity(self) -> dict:
        return {"image": self.image.identity(), "audio": self.audio.identity(),
                "spec": self.spec.to_dict()}

    @property
    def dims(self) -> dict:
        return {"audio": self.audio.dim, "video": self.image.dim}

    def encode_clip(self, frames, samples, sample_rate):
        """uint8 [N, H, W, 3], float [T], rate -> (video [W, Dv], audio [W, Da])."""
        images, windows, _ = preprocess_clip(frames, samples, sample_rate, self.spec,
                                             self.image.transform, self.audio.sample_rate)
        n = tf.shape(images)[0]
        chunks = tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False)

        def body(k, chunks):  # the image tower on at most FRAME_BATCH frames at a time
            batch = images[k * FRAME_BATCH:(k + 1) * FRAME_BATCH]
            return k + 1, chunks.write(k, tf.cast(self.image(batch), tf.float32))

        _, chunks = tf.while_loop(lambda k, _: k * FRAME_BATCH < n, body, [0, chunks])
        per_frame = tf.reshape(chunks.concat(), [-1, self.image.dim])
        video = pool_frames(per_frame, self.spec.frames_per_window)
        audio = tf.reshape(tf.cast(self.audio(windows), tf.float32), [-1, self.audio.dim])
        return video, audio


def load_media_encoder(image_preset: str = DEFAULT_IMAGE_PRESET,
                       audio_preset: Optional[str] = DEFAULT_AUDIO_PRESET,
                       audio_savedmodel: Optional[str] = None, audio_rate: int = 16000,
                       spec: MediaSpec = MediaSpec()) -> MediaEncoder:
    """The encoders `avca extract` and `avca export --media` use (one of audio_preset or
    audio_savedmodel)."""
    image = ImageTower.from_preset(image_preset)
    if audio_savedmodel:
        audio = AudioTower.from_savedmodel(audio_savedmodel, audio_rate)
    else:
        audio = AudioTower.from_preset(audio_preset)
    return MediaEncoder(image, audio, spec)


def extract_meta_name(feature_set: str) -> str:
    """<root>/<dataset>/extract_<feature set>.json: the encoders of an extracted benchmark."""
    return f"extract_{feature_set}.json"


def read_extract_meta(root, dataset: str, feature_set: str) -> dict:
    """The encoders and windowing `avca extract` recorded for a benchmark root."""
    path = os.path.join(str(root), dataset, extract_meta_name(feature_set))
    if not os.path.isfile(path):
        raise EncoderError(f"{path}: missing; media inputs need features made by "
                           f"`avca extract` (it records the encoders there)")
    with open(path) as f:
        meta = json.load(f)
    if meta.get("format") != EXTRACT_FORMAT:
        raise EncoderError(f"{path}: format {meta.get('format')!r}, expected {EXTRACT_FORMAT!r}")
    return meta


def encoder_from_identity(identity: dict) -> MediaEncoder:
    """Rebuilds the MediaEncoder an extraction recorded (its metadata's `encoders`); a
    local preset or SavedModel whose files changed since is refused."""
    audio = identity["audio"]
    spec = MediaSpec(**identity["spec"])
    if audio["kind"] == "savedmodel":
        encoder = load_media_encoder(identity["image"]["preset"], None, audio["path"],
                                     audio["sample_rate"], spec)
    else:
        encoder = load_media_encoder(identity["image"]["preset"], audio["preset"], spec=spec)
    now = encoder.identity()
    for part in ("image", "audio"):
        if now[part]["digest"] != identity[part]["digest"]:
            where = identity[part].get("preset") or identity[part].get("path")
            raise EncoderError(f"{where}: the {part} encoder's files changed since the "
                               f"features were extracted (digest {identity[part]['digest'][:12]}"
                               f" then, {now[part]['digest'][:12]} now)")
    return encoder
