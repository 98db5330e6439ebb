"""GZSL metrics, vectorised NumPy on a distance matrix over ALL classes.

Conventions (the authors' evaluation, with its undefined corners made explicit):
* `distances` is [n, C] over every class of the dataset, smaller is better.
  Only seen + unseen classes are candidates; the other columns are ignored.
* Prediction = argmin over the candidates of `distance + beta * is_seen`
  (calibrated stacking). Ties go to the lowest class id (as torch/NumPy
  argmin return the first minimum).
* Per-class recall = correct / samples of that class. S and U are the means
  of the recalls of the seen and unseen classes (mean class accuracy), both
  predicted among ALL candidates; HM = 2SU / (S + U), 0 when S + U = 0.
  ZSL = mean class accuracy of unseen samples predicted among unseen classes.
* A candidate class without evaluation samples has no recall: it is left out
  of the mean it belongs to and listed in `GZSLResult.classes_without_samples`
  (the authors' code divides 0/0 and reports NaN). If a whole group has no
  samples the metrics are undefined and a ValueError says so.
* `search_beta` tries `BETAS` (16 evenly spaced values in [0, 3]) and keeps
  the highest HM, the smallest beta on ties.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BETAS = np.linspace(0.0, 3.0, 16)


@dataclass(frozen=True)
class GZSLResult:
    S: float
    U: float
    HM: float
    ZSL: float
    beta: float
    per_class_recall: np.ndarray            # float64 [C]; NaN = not a candidate or no samples
    classes_without_samples: tuple[int, ...] = ()

    def to_dict(self) -> dict:
        """Plain JSON-able summary (recalls of evaluated classes only)."""
        recall = {int(i): float(r) for i, r in enumerate(self.per_class_recall) if np.isfinite(r)}
        return {"S": self.S, "U": self.U, "HM": self.HM, "ZSL": self.ZSL, "beta": self.beta,
                "per_class_recall": recall,
                "classes_without_samples": list(self.classes_without_samples)}


def harmonic_mean(s: float, u: float) -> float:
    return 0.0 if s + u == 0 else 2.0 * s * u / (s + u)


def _ids(x, name: str, num_classes: int) -> np.ndarray:
    ids = np.unique(np.asarray(x, dtype=np.int64))
    if ids.size == 0:
        raise ValueError(f"{name} is empty")
    if ids[0] < 0 or ids[-1] >= num_classes:
        raise ValueError(f"{name} must index the {num_classes} distance columns, got {ids}")
    return ids


def _group_argmin(distances: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row: (smallest distance among `ids`, its class id; lowest id on ties)."""
    sub = distances[:, ids]
    k = np.argmin(sub, axis=1)
    return sub[np.arange(sub.shape[0]), k], ids[k]


def per_class_recall(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """[num_classes] correct/total per class, NaN for classes without samples."""
    total = np.bincount(labels, minlength=num_classes).astype(np.float64)
    correct = np.bincount(labels[predictions == labels], minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, correct / total, np.nan)


def _mean_over(recall: np.ndarray, ids: np.ndarray, group: str) -> float:
    r = recall[ids]
    r = r[np.isfinite(r)]
    if r.size == 0:
        raise ValueError(f"no evaluation samples of any {group} class: metric undefined")
    return float(r.mean())


class _Prepared:
    """Validated inputs and the per-group nearest classes, shared by all betas."""

    def __init__(self, distances, labels, seen_ids, unseen_ids):
        d = np.asarray(distances, dtype=np.float64)
        if d.ndim != 2:
            raise ValueError(f"distances must be [n, C], got shape {d.shape}")
        self.num_classes = d.shape[1]
        self.labels = np.asarray(labels, dtype=np.int64).reshape(-1)
        if self.labels.shape[0] != d.shape[0]:
            raise ValueError(f"{self.labels.shape[0]} labels for {d.shape[0]} distance rows")
        if not np.all(np.isfinite(d)):
            raise ValueError("distances contain NaN or Inf")
        self.seen = _ids(seen_ids, "seen_ids", self.num_classes)
        self.unseen = _ids(unseen_ids, "unseen_ids", self.num_classes)
        both = np.intersect1d(self.seen, self.unseen)
        if both.size:
            raise ValueError(f"classes {both.tolist()} are both seen and unseen")
        candidates = np.union1d(self.seen, self.unseen)
        stray = np.setdiff1d(np.unique(self.labels), candidates)
        if stray.size:
            raise ValueError(f"labels {stray.tolist()} are neither seen nor unseen classes")
        self.d_seen, self.p_seen = _group_argmin(d, self.seen)
        self.d_unseen, self.p_unseen = _group_argmin(d, self.unseen)
        self.is_unseen_sample = np.isin(self.labels, self.unseen)
        present = np.bincount(self.labels, minlength=self.num_classes) > 0
        self.without = tuple(int(c) for c in candidates if not present[c])

    def predictions(self, betas: np.ndarray) -> np.ndarray:
        """[len(betas), n] GZSL predictions with beta added to seen distances."""
        ds = self.d_seen[None, :] + betas[:, None]
        du = self.d_unseen[None, :]
        pick_seen = (ds < du) | ((ds == du) & (self.p_seen < self.p_unseen)[None, :])
        return np.where(pick_seen, self.p_seen[None, :], self.p_unseen[None, :])

    def zsl(self) -> float:
        mask = self.is_unseen_sample
        recall = per_class_recall(self.p_unseen[mask], self.labels[mask], self.num_classes)
        return _mean_over(recall, self.unseen, "unseen")

    def result(self, pred: np.ndarray, beta: float, zsl: float) -> GZSLResult:
        recall = per_class_recall(pred, self.labels, self.num_classes)
        s = _mean_over(recall, self.seen, "seen")
        u = _mean_over(recall, self.unseen, "unseen")
        return GZSLResult(S=s, U=u, HM=harmonic_mean(s, u), ZSL=zsl, beta=float(beta),
                          per_class_recall=recall, classes_without_samples=self.without)


def gzsl_metrics(distances, labels, seen_ids, unseen_ids, beta: float = 0.0) -> GZSLResult:
    """S, U, HM, ZSL and per-class recall at a fixed calibration `beta`."""
    prep = _Prepared(distances, labels, seen_ids, unseen_ids)
    pred = prep.predictions(np.array([float(beta)]))[0]
    return prep.result(pred, beta, prep.zsl())


def search_beta(distances, labels, seen_ids, unseen_ids,
                betas=BETAS) -> tuple[float, GZSLResult]:
    """The beta of `betas` with the best HM (smallest on ties) and its result."""
    betas = np.asarray(betas, dtype=np.float64).reshape(-1)
    prep = _Prepared(distances, labels, seen_ids, unseen_ids)
    preds = prep.predictions(betas)
    zsl = prep.zsl()
    results = [prep.result(p, b, zsl) for p, b in zip(preds, betas)]
    best = int(np.argmax([r.HM for r in results]))
    return float(betas[best]), results[best]
