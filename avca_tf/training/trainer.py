"""The custom training loop: class-aware batches, one compiled step, Adam with
coupled L2 weight decay, ReduceLROnPlateau on validation HM, batched evaluation.
"""
from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from avca_tf.config import TrainConfig
from avca_tf.training.optimizers import CoupledAdam
from avca_tf.data.sampling import ClassAwareSampler, gather_batch


class PlateauScheduler:
    """torch.optim.lr_scheduler.ReduceLROnPlateau(mode="max", threshold_mode="rel").

    The LR is multiplied by `factor` once the metric has not improved by more
    than `threshold` (relative) for more than `patience` epochs. Its state is a
    plain dict so it can be checkpointed.
    """

    def __init__(self, lr: float, factor: float = 0.1, patience: int = 3, threshold: float = 1e-4,
                 min_lr: float = 0.0, eps: float = 1e-8):
        self.factor, self.patience, self.threshold, self.min_lr, self.eps = (
            factor, patience, threshold, min_lr, eps)
        self.state = {"lr": float(lr), "best": -math.inf, "num_bad_epochs": 0}

    def step(self, value: float) -> float:
        """Records one epoch's metric; returns the LR for the next epoch."""
        s = self.state
        if value > s["best"] * (1.0 + self.threshold):  # -inf stays -inf before the first epoch
            s["best"], s["num_bad_epochs"] = float(value), 0
        else:
            s["num_bad_epochs"] += 1
        if s["num_bad_epochs"] > self.patience:
            new_lr = max(s["lr"] * self.factor, self.min_lr)
            if s["lr"] - new_lr > self.eps:
                s["lr"] = new_lr
            s["num_bad_epochs"] = 0
        return s["lr"]


def make_optimizer(cfg: TrainConfig):
    """Adam with coupled L2 (epsilon as torch); wrapped for dynamic loss scaling under float16."""
    opt = CoupledAdam(learning_rate=cfg.lr, l2=cfg.weight_decay, epsilon=cfg.adam_epsilon)
    if keras.mixed_precision.global_policy().compute_dtype == "float16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


def set_learning_rate(optimizer, lr: float) -> None:
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    inner.learning_rate.assign(lr)


class Trainer:
    """Trains `model` on one Split with class-aware batches.

    The step gathers its batch from the full feature matrices (passed as
    arguments, not captured), runs model.compute_losses under a GradientTape
    and applies CoupledAdam (torch's Adam with weight decay).
    """

    def __init__(self, model, cfg: TrainConfig, split, label_embeddings, seed: int | None = None,
                 optimizer=None):
        self.model, self.cfg = model, cfg
        self.sampler = ClassAwareSampler(split.labels, cfg.batch_size, cfg.n_batches,
                                         cfg.seed if seed is None else seed,
                                         split_name=f"training set {split.name}")
        self._data = (tf.constant(split.audio, tf.float32), tf.constant(split.video, tf.float32),
                      tf.constant(split.labels, tf.int64),
                      tf.constant(label_embeddings, tf.float32))
        # models with `uses_training_classes` (ClipClap's cross-entropy) also get the
        # embeddings of the training classes (sorted ids) and each label's position there
        self._class_set = None
        if getattr(model, "uses_training_classes", False):
            ids = np.unique(np.asarray(split.labels))
            position = np.full(len(label_embeddings), -1, np.int64)
            position[ids] = np.arange(len(ids))
            self._class_set = (tf.constant(ids, tf.int64), tf.constant(position, tf.int64))
        self.optimizer = optimizer or make_optimizer(cfg)
        self.optimizer.build(model.trainable_variables)
        self._step_fn = tf.function(self._step, jit_compile=cfg.jit_compile)

    def _step(self, indices, audio, video, labels, label_embeddings):
        batch = gather_batch(audio, video, labels, label_embeddings, indices)
        if self._class_set is not None:
            ids, position = self._class_set
            batch["class_embeddings"] = tf.gather(label_embeddings, ids)
            batch["class_target"] = tf.gather(position, batch["label"])
        variables = self.model.trainable_variables
        scaled = isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
        with tf.GradientTape() as tape:
            losses = self.model.compute_losses(batch, training=True)
            loss = self.optimizer.scale_loss(losses["total"]) if scaled else losses["total"]
        grads = tape.gradient(loss, variables)
        # variables no active loss term reaches get no gradient and are left
        # alone, as torch leaves parameters whose .grad is None
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        self.optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        return losses

    def train_step(self, indices):
        """One optimisation step on the batch `indices` (dict from the sampler)."""
        return self._step_fn(indices, *self._data)

    def train_epoch(self, epoch: int, verbose: int = 1) -> dict[str, float]:
        """Runs `n_batches` steps; returns the mean of every loss term."""
        bar = keras.utils.Progbar(self.cfg.n_batches, verbose=verbose, unit_name="step")
        sums = None
        for i, indices in enumerate(self.sampler.epoch_dataset(epoch)):
            losses = self.train_step(indices)
            sums = dict(losses) if sums is None else {k: sums[k] + v for k, v in losses.items()}
            if verbose and ((i + 1) % 20 == 0 or i + 1 == self.cfg.n_batches):
                bar.update(i + 1, [("loss", float(losses["total"]))])
        means = {k: float(v) / self.cfg.n_batches for k, v in sums.items()}
        if not np.isfinite(means["total"]):
            raise FloatingPointError(f"training diverged in epoch {epoch + 1}: mean loss {means}")
        return means


class DistanceFn:
    """Distances [n, C] of samples to all class embeddings, one compiled call per chunk."""

    def __init__(self, model, batch_size: int = 8192):
        self.model, self.batch_size = model, batch_size
        self._fn = tf.function(
            lambda a, v, e: model.class_distances(a, v, e, training=False), reduce_retracing=True)

    def __call__(self, audio, video, label_embeddings) -> np.ndarray:
        emb = tf.constant(label_embeddings, tf.float32)
        out = []
        for start in range(0, len(audio), self.batch_size):
            stop = start + self.batch_size
            out.append(self._fn(tf.constant(audio[start:stop], tf.float32),
                                tf.constant(video[start:stop], tf.float32), emb).numpy())
        return np.concatenate(out).astype(np.float32)


def evaluate_gzsl(distance_fn, data, label_embeddings, beta: float | None = None, betas=None):
    """GZSL metrics on data.eval_seen + data.eval_unseen (a ProtocolData).

    beta None: search it over `betas` (default metrics.BETAS) (validation);
    otherwise use it (test). Returns (beta, GZSLResult).
    """
    from avca_tf.evaluation.metrics import BETAS, gzsl_metrics, search_beta
    audio = np.concatenate([data.eval_seen.audio, data.eval_unseen.audio])
    video = np.concatenate([data.eval_seen.video, data.eval_unseen.video])
    labels = np.concatenate([data.eval_seen.labels, data.eval_unseen.labels])
    distances = distance_fn(audio, video, label_embeddings)
    if beta is None:
        return search_beta(distances, labels, data.seen_class_ids, data.unseen_class_ids,
                           BETAS if betas is None else betas)
    return beta, gzsl_metrics(distances, labels, data.seen_class_ids, data.unseen_class_ids, beta)
