"""The generative model of synthetic features: per class, audio and video centres are a
random non-linear function of the class's text vector, with per-class noise levels and a
shared low-rank noise subspace (used by the averaged and the per-step writers)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from avca_tf.data.formats.benchmark import EMBED_DIM, MODALITIES


@dataclass(frozen=True)
class FeatureModel:
    """Generative model of the features (all sizes relative to a unit-variance signal)."""
    hidden: int = 256          # width of the random tanh layer
    gain: float = 2.0          # pre-activation scale: how non-linear the map is
    nuisance: float = 1.0      # std of the per-class offset the text cannot predict
    noise: float = 5.0         # median per-sample noise std
    reliability: float = 1.2   # log-spread of the per-class audio/video noise ratio
    noise_rank: int = 32       # part of the noise lives in a shared low-rank subspace
    low_rank_share: float = 0.5  # fraction of noise variance in that subspace


def class_features(rng, model: FeatureModel, emb_matrix: np.ndarray, dims: dict[str, int],
                    modality_text: dict[str, np.ndarray] | None = None):
    """Per modality: class centres [C, d], per-class noise std [C], noise basis [r, d].

    `modality_text` (optional): per modality the unit-norm class text vectors
    its centres are a function of (default: `emb_matrix` for both).
    """
    c = emb_matrix.shape[0]
    log_ratio = model.reliability * rng.uniform(-1.0, 1.0, size=c)
    out = {}
    for m, sign in zip(MODALITIES, (1.0, -1.0)):
        text = emb_matrix if modality_text is None else modality_text[m]
        w1 = rng.standard_normal((text.shape[1], model.hidden))
        if text.shape[1] != EMBED_DIM:  # same pre-activation scale for unit vectors of any width
            w1 *= np.sqrt(EMBED_DIM / text.shape[1])
        b1 = rng.uniform(-1.0, 1.0, size=model.hidden)
        w2 = rng.standard_normal((model.hidden, dims[m])) / np.sqrt(model.hidden)
        mu = np.tanh(model.gain * text @ w1 + b1) @ w2
        mu = (mu - mu.mean(axis=0)) / (mu.std(axis=0) + 1e-8)
        centres = mu + model.nuisance * rng.standard_normal((c, dims[m]))
        basis = rng.standard_normal((model.noise_rank, dims[m])) / np.sqrt(model.noise_rank)
        out[m] = (centres, model.noise * np.exp(sign * log_ratio), basis)
    return out


def clip_clap_text(rng, emb_matrix: np.ndarray, shared: int = 24,
                    own: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """[CLIP C x 512], [CLAP C x 1024] unit class vectors, partly redundant.

    Each half is a random linear image of [s; z]: s (`shared` dims) is a
    random non-linear function of the word2vec vector, common to both halves;
    z (`own` dims) is drawn per class and per half, so each half also carries
    information the other lacks.
    """
    c = emb_matrix.shape[0]
    w = rng.standard_normal((emb_matrix.shape[1], shared)) * np.sqrt(EMBED_DIM / emb_matrix.shape[1])
    s = np.tanh(emb_matrix @ w)
    s = (s - s.mean(axis=0)) / (s.std(axis=0) + 1e-8)
    halves = []
    for dim in (512, 1024):
        z = rng.standard_normal((c, own))
        a = rng.standard_normal((shared + own, dim))
        x = np.concatenate([s, z], axis=1) @ a + 0.1 * rng.standard_normal((c, dim))
        halves.append((x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32))
    return halves[0], halves[1]
