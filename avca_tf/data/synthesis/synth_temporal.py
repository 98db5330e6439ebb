"""Synthetic per-step (temporal) features in the non-averaged layout (`avca synth --temporal`).

Same plans as `avca_tf.data.synthesis.synth` (real splits or toy); per video instead of
one vector, a sequence of steps at the feature set's step rates
(`temporal.STEP_SECONDS`): main 1 s audio and video, cls 0.96 s audio and
0.64 s video. Durations follow the dataset (`DURATIONS`): UCF clips of a few
seconds, ActivityNet minutes, VGGSound 10 s (10 audio, 15-16 video steps).

Each video has one event: a Gaussian bump in time (same centre for audio and
video, width a fraction of the clip) during which the class signal (the
`FeatureModel` class centre, a noisy non-linear function of the label
vector) is strong; outside it only a weak trace of the class is present.
Every step gets per-step noise whose size depends on the class and modality.
Averaging over time dilutes the event, so a model that attends over time
(and across modalities, whose events coincide) can do better than one
that averages. cls audio is quantised to 0..255 like the published VGGish
features. Same arguments, same bytes.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from avca_tf.data.formats.benchmark import FEATURE_SETS, MODALITIES, STAGES
from avca_tf.data.formats.pickle_features import write_class_pickle
from avca_tf.data.synthesis.features import class_features
from avca_tf.data.formats.temporal import TEMPORAL_STAGES, TemporalLayout, step_seconds


@dataclass(frozen=True)
class Durations:
    """Clip durations in seconds: lognormal(median, sigma) clipped to [low, high]."""
    median: float
    sigma: float
    low: float
    high: float


DURATIONS = {
    "UCF": Durations(6.0, 0.5, 1.5, 30.0),
    "Toy": Durations(6.0, 0.5, 1.5, 30.0),
    "ActivityNet": Durations(100.0, 0.6, 10.0, 400.0),
    "VGGSound": Durations(10.0, 0.0, 9.6, 10.3),  # uniform in [low, high] when sigma is 0
}


@dataclass(frozen=True)
class TemporalModel:
    """How the class signal varies over time (relative to a unit-variance signal)."""
    event_width: tuple[float, float] = (0.1, 0.3)   # std of the event bump, fraction of the clip
    baseline: float = 0.15                          # class signal outside the event
    step_noise: float = 0.5                         # per-step noise multiplier of FeatureModel.noise


def _durations(rng, dataset: str, n: int) -> np.ndarray:
    d = DURATIONS[dataset]
    if d.sigma == 0.0:
        return rng.uniform(d.low, d.high, size=n)
    return np.clip(d.median * np.exp(d.sigma * rng.standard_normal(n)), d.low, d.high)


def _steps(duration: float, step: float) -> int:
    return max(1, int(np.floor(duration / step + 1e-9)))


def write_temporal_features(ds_dir: Path, plan, dataset: str, feature_set: str, seed: int,
                            model, progress: bool, temporal: TemporalModel = TemporalModel()):
    """Writes the five stage folders of pickles and the label-embedding dict for `plan`."""
    layout = TemporalLayout(ds_dir.parent, dataset, feature_set)
    fs = FEATURE_SETS[feature_set]
    dims = {"audio": fs.audio_dim, "video": fs.video_dim}
    steps = dict(zip(MODALITIES, step_seconds(feature_set)))
    index = {n.lower(): i for i, n in enumerate(plan.class_names)}
    manual = {o.lower(): m for o, m in plan.names_rows}
    emb_matrix = np.stack([plan.embeddings[manual[n.lower()]] for n in plan.class_names])
    rng = np.random.default_rng(np.random.SeedSequence([seed, 1]))
    classes = class_features(rng, model, emb_matrix.astype(np.float64), dims)
    layout.embeddings_file.parent.mkdir(parents=True, exist_ok=True)
    np.save(layout.embeddings_file, plan.embeddings, allow_pickle=True)
    jobs = [(s, n) for s in TEMPORAL_STAGES for n in plan.stages[s]]
    for stage, name in tqdm(jobs, desc=f"synth --temporal {dataset}/{feature_set}",
                            disable=not progress):
        ids = plan.stages[stage][name]
        cid = index[name.lower()]
        vrng = np.random.default_rng(np.random.SeedSequence([seed, 3, STAGES.index(stage), cid]))
        duration = _durations(vrng, dataset, len(ids))
        centre_t = vrng.uniform(0.0, 1.0, size=len(ids)) * duration
        width = vrng.uniform(*temporal.event_width, size=len(ids)) * duration
        for m in MODALITIES:
            centre, std, basis = classes[m][0][cid], float(classes[m][1][cid]), classes[m][2]
            seqs = []
            for k in range(len(ids)):
                t = np.arange(_steps(duration[k], steps[m])) * steps[m] + steps[m] / 2
                gain = temporal.baseline + (1.0 - temporal.baseline) * np.exp(
                    -0.5 * ((t - centre_t[k]) / width[k]) ** 2)
                shared = vrng.standard_normal((t.size, basis.shape[0])) @ basis
                own = vrng.standard_normal((t.size, dims[m]))
                noise = (np.sqrt(model.low_rank_share) * shared
                         + np.sqrt(1.0 - model.low_rank_share) * own)
                x = gain[:, None] * centre + temporal.step_noise * std * noise
                if m == "audio" and feature_set == "cls_features":
                    x = np.clip(np.round(128.0 + 16.0 * x), 0.0, 255.0)
                seqs.append(x.astype(np.float32))
            write_class_pickle(layout.class_file(m, stage, name), ids, seqs, atomic=False)
