"""The media toy: small video files whose content is a function of each class's words.

`synthesize_media(out)` writes dataset `Toy` under `out` like `avca synth`
does (class-split lists and csvs, the toy vocabulary, label embeddings) but
instead of feature files a folder tree of clips, `Toy/videos/<Class>/<id>.mp4`
(UCF101's layout: class folders, the file stem is the video id of the stage
csvs). Each class's label embedding e gives its clip parameters through one
fixed map (`class_parameters`): background and shape colours, shape
size, direction and speed of motion, tone pitch, tremolo rate and timbre. Each
clip adds its own start position, phase, jitter and noise. A model trained on
the seen classes' extracted features can so recognise unseen classes from
their names. Same arguments, same bytes.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from avca_tf.data.formats.benchmark import Layout
from avca_tf.data.synthesis.synth import TOY, TOY_WORD_VECTORS, ToyLayout, toy_plan, write_lists
from avca_tf.errors import BenchmarkError
from avca_tf.io_utils import atomic_path, json_text
from avca_tf.media.write import write_clip

VIDEOS = "videos"
ENCODERS = "encoders"
MEDIA_TOY_FEATURES = "main_features"  # the class-split folder the lists are written for

# Few classes and clips: extraction and training of the whole toy take seconds.
MEDIA_TOY = ToyLayout(n_classes=20, n_words=40, n_heads=6, latent_dim=4, n_train=12,
                      n_val_unseen=3, n_test_unseen=3, train=(4, 5), val_seen=(1, 2),
                      val_unseen=(3, 3), test_seen=(2, 2), test_unseen=(3, 4))


@dataclass(frozen=True)
class ClipModel:
    """Sizes of the generated clips."""
    size: int = 64              # frame width and height (pixels)
    fps: int = 8
    sample_rate: int = 16000
    seconds: tuple[float, float] = (2.0, 2.5)   # clip length range
    gain: float = 0.7           # pre-activation scale of the parameter map
    noise: float = 0.02         # audio noise std and pixel jitter (fraction of full scale)


def class_parameters(embeddings: np.ndarray, seed: int, gain: float,
                     components: int = 6) -> np.ndarray:
    """Label embeddings [C, 300] -> clip parameters in (-1, 1) [C, 12].

    The parameters are a fixed random mix of the embeddings' first `components`
    principal coordinates (over all classes, standardised), squashed by tanh:
    what varies most between the classes' word vectors drives the clips.
    """
    x = embeddings - embeddings.mean(axis=0)
    _, _, vt = np.linalg.svd(x, full_matrices=False)
    z = x @ vt[:components].T
    z /= z.std(axis=0) + 1e-9
    mix = np.random.default_rng(np.random.SeedSequence([seed, 7])).standard_normal(
        (12, components)) / np.sqrt(components)
    return np.tanh(gain * z @ mix.T)


def render_clip(p: np.ndarray, rng: np.random.Generator, model: ClipModel):
    """One clip of a class with parameters `p` [12]: (uint8 frames [N, S, S, 3], audio [T])."""
    s = model.size
    seconds = rng.uniform(*model.seconds)
    n = int(seconds * model.fps)
    bg = 0.5 + 0.35 * p[0:3]
    fg = 0.5 - 0.45 * p[3:6]
    half = (0.18 + 0.08 * p[6]) * s
    angle = np.pi * p[7]
    speed = (0.35 + 0.2 * p[8]) * s  # pixels per second
    pos = rng.uniform(half, s - half, size=2)
    vel = speed * np.array([np.cos(angle), np.sin(angle)])
    yy, xx = np.mgrid[0:s, 0:s] + 0.5
    frames = np.empty((n, s, s, 3), np.uint8)
    for k in range(n):
        c = pos + vel * k / model.fps
        c = np.abs(np.mod(c - half, 2 * (s - 2 * half)) - (s - 2 * half)) + half  # bounce
        inside = (np.abs(xx - c[0]) < half) & (np.abs(yy - c[1]) < half)
        img = np.where(inside[..., None], fg, bg)
        img = img + model.noise * rng.standard_normal(img.shape)
        frames[k] = np.clip(np.round(img * 255), 0, 255).astype(np.uint8)
    t = np.arange(int(seconds * model.sample_rate)) / model.sample_rate
    f0 = 440.0 * 2.0 ** p[9]
    trem = 3.0 + 2.0 * p[10]
    mix = 0.5 + 0.4 * p[11]
    phase = rng.uniform(0, 2 * np.pi)
    tone = mix * np.sin(2 * np.pi * f0 * t + phase) + (1 - mix) * np.sin(4 * np.pi * f0 * t)
    env = 0.6 + 0.4 * np.sin(2 * np.pi * trem * t + rng.uniform(0, 2 * np.pi))
    audio = 0.3 * tone * env + model.noise * rng.standard_normal(t.shape)
    return frames, audio.astype(np.float32)


def synthesize_media(out, seed: int = 0, scale: float = 1.0, toy: ToyLayout = MEDIA_TOY,
                     model: ClipModel = ClipModel(), suffix: str = ".mp4",
                     with_encoders: bool = True) -> Path:
    """Writes `<out>/Toy` (class lists, vocabulary, label embeddings, clips and, with
    `with_encoders`, the toy encoder presets in `Toy/encoders/`); returns it."""
    if not scale > 0:
        raise BenchmarkError(f"--scale must be > 0, got {scale}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dest = out / TOY
    tmp_root = Path(tempfile.mkdtemp(prefix=f".{TOY}.media-", dir=out))
    try:
        tmp_ds = tmp_root / TOY
        tmp_ds.mkdir()
        plan, words_text = toy_plan(np.random.default_rng(np.random.SeedSequence([seed, 0])),
                                    toy, scale)
        (tmp_ds / TOY_WORD_VECTORS).write_text(words_text, encoding="utf-8")
        write_lists(tmp_ds, plan, TOY, MEDIA_TOY_FEATURES, class_files=True)
        layout = Layout(tmp_root, TOY, MEDIA_TOY_FEATURES)
        layout.embeddings_file.parent.mkdir(parents=True, exist_ok=True)
        np.save(layout.embeddings_file, plan.embeddings, allow_pickle=True)
        manual = dict(plan.names_rows)
        emb = np.stack([plan.embeddings[manual[n]] for n in plan.class_names]).astype(np.float64)
        params = class_parameters(emb, seed, model.gain)
        index = {n: i for i, n in enumerate(plan.class_names)}
        n_clips = 0
        for stage, per in plan.stages.items():
            if stage == "stage_2_train":  # the same videos as the three stage-1 folders
                continue
            for name, ids in per.items():
                folder = tmp_ds / VIDEOS / name
                folder.mkdir(parents=True, exist_ok=True)
                for vid in ids:
                    rng = np.random.default_rng(np.random.SeedSequence(
                        [seed, 8, index[name], int(vid.rsplit("_c", 1)[1])]))
                    frames, audio = render_clip(params[index[name]], rng, model)
                    write_clip(folder / f"{vid}{suffix}", frames, audio, fps=model.fps,
                               sample_rate=model.sample_rate)
                    n_clips += 1
        encoders = write_toy_encoders(tmp_ds / ENCODERS, seed) if with_encoders else {}
        meta = {"dataset": TOY, "media": True, "seed": seed, "scale": scale, "clips": n_clips,
                "toy": asdict(toy), "clip_model": asdict(model), "suffix": suffix,
                "encoders": {k: str(Path(v).relative_to(tmp_ds)) for k, v in encoders.items()}}
        (tmp_ds / "synth_media.json").write_text(json_text(meta))
        with atomic_path(str(dest)) as tmp:
            tmp_ds.rename(tmp)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return dest


def write_toy_encoders(out, seed: int = 0, dim: int = 512) -> dict:
    """Small randomly initialised encoders of the real architectures as local keras-hub
    presets (weights of real ones cannot be downloaded everywhere): `out/clip` (a
    CLIPBackbone with a 32x32 vision tower, projection `dim`, and its image
    converter) and `out/whisper` (a one-layer WhisperBackbone of width `dim` with a
    1-second audio converter). Returns {"image": path, "audio": path}."""
    import keras
    import keras_hub
    out = Path(out)
    keras.utils.set_random_seed(seed)
    clip_dir, whisper_dir = out / "clip", out / "whisper"
    vision = keras_hub.models.CLIPVisionEncoder(
        patch_size=8, hidden_dim=32, num_layers=1, num_heads=2, intermediate_dim=64,
        image_shape=(32, 32, 3))
    text = keras_hub.models.CLIPTextEncoder(
        vocabulary_size=8, embedding_dim=8, hidden_dim=8, num_layers=1, num_heads=1,
        intermediate_dim=8, max_sequence_length=4)
    clip = keras_hub.models.CLIPBackbone(vision, text, projection_dim=dim)
    mean, std = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
    converter = keras_hub.layers.CLIPImageConverter(
        image_size=(32, 32), scale=[1 / (255.0 * s) for s in std],
        offset=[-m / s for m, s in zip(mean, std)], interpolation="bilinear", antialias=True)
    whisper = keras_hub.models.WhisperBackbone(
        vocabulary_size=8, num_layers=1, num_heads=2, hidden_dim=dim, intermediate_dim=64,
        num_mels=80, max_encoder_sequence_length=100, max_decoder_sequence_length=4)
    audio_converter = keras_hub.layers.WhisperAudioConverter(max_audio_length=1)
    for model, extra, folder in ((clip, converter, clip_dir),
                                 (whisper, audio_converter, whisper_dir)):
        with atomic_path(str(folder)) as tmp:
            model.save_to_preset(tmp)
            extra.save_to_preset(tmp)
    return {"image": str(clip_dir), "audio": str(whisper_dir)}


def media_toy(root, log=None) -> Path:
    """`root` holding the media toy (seed 0), written on first use only."""
    root = Path(root)
    if not (root / TOY / "synth_media.json").is_file():
        if log is not None:
            log(f"writing the media toy into {root}")
        synthesize_media(root)
    return root
