"""The media toy: small video files whose content is a function of each class's words.

`synthesize_media(out)` writes dataset `Toy` under `out` like `avca synth`
does (class-split lists and csvs, the toy vocabulary, label embeddings) but
instead of feature files a folder tree of clips, `Toy/videos/<Class>/<id>.mp4`
(UCF101's layout: class folders, the file stem is the video id of the stage
csvs). Each class's label embedding e gives its clip parameters through one
fixed random map p = tanh(gain * A e): background and shape colours, shape
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

from avca_tf.data.formats.benchmark import EMBED_DIM, Layout
from avca_tf.data.synthesis.synth import TOY, TOY_WORD_VECTORS, ToyLayout, toy_plan, write_lists
from avca_tf.errors import BenchmarkError
from avca_tf.io_utils import atomic_path, json_text
from avca_tf.media.write import write_clip

VIDEOS = "videos"
MEDIA_TOY_FEATURES = "main_features"  # the class-split folder the lists are written for

# Few classes and clips: extraction and training of the whole toy take seconds.
MEDIA_TOY = ToyLayout(n_classes=16, n_words=40, n_heads=6, latent_dim=4, n_train=6,
                      n_val_unseen=3, n_test_unseen=3, train=(6, 8), val_seen=(2, 2),
                      val_unseen=(3, 4), test_seen=(2, 3), test_unseen=(4, 5))


@dataclass(frozen=True)
class ClipModel:
    """Sizes of the generated clips."""
    size: int = 64              # frame width and height (pixels)
    fps: int = 8
    sample_rate: int = 16000
    seconds: tuple[float, float] = (2.0, 2.5)   # clip length range
    gain: float = 1.5           # pre-activation scale of the parameter map
    noise: float = 0.02         # audio noise std and pixel jitter (fraction of full scale)


def class_parameters(embeddings: np.ndarray, seed: int, gain: float) -> np.ndarray:
    """Label embeddings [C, 300] -> clip parameters in (-1, 1) [C, 12]."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 7]))
    a = rng.standard_normal((12, EMBED_DIM))
    e = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    return np.tanh(gain * e @ a.T)


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
                     model: ClipModel = ClipModel(), suffix: str = ".mp4") -> Path:
    """Writes `<out>/Toy` (class lists, vocabulary, label embeddings, clips); returns it."""
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
        meta = {"dataset": TOY, "media": True, "seed": seed, "scale": scale, "clips": n_clips,
                "toy": asdict(toy), "clip_model": asdict(model), "suffix": suffix}
        (tmp_ds / "synth_media.json").write_text(json_text(meta))
        with atomic_path(str(dest)) as tmp:
            tmp_ds.rename(tmp)
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)
    return dest


def media_toy(root, log=None) -> Path:
    """`root` holding the media toy (seed 0), written on first use only."""
    root = Path(root)
    if not (root / TOY / "synth_media.json").is_file():
        if log is not None:
            log(f"writing the media toy into {root}")
        synthesize_media(root)
    return root
