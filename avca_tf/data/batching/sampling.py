"""Class-aware sampling as a tf.data pipeline (the reference's balanced sampler, alpha=1).

Each anchor: a class drawn uniformly among the training classes, then a
sample of it drawn uniformly (with replacement). Its negative: another class
drawn uniformly among the rest, then one of its samples. The pipeline yields
only indices; `gather_batch` turns them into the batch dict inside the
compiled training step, so feature matrices are never copied into the graph.

Draws are stateless functions of (seed, epoch, batch index): an epoch's
batches are the same whether or not the run was interrupted before it.
"""
from __future__ import annotations

import numpy as np
import tensorflow as tf

from avca_tf.errors import ConfigError


class ClassAwareSampler:
    """Batches of (anchor, negative) sample indices, `n_batches` per epoch."""

    def __init__(self, labels: np.ndarray, batch_size: int, n_batches: int, seed: int,
                 split_name: str = "training set"):
        labels = np.asarray(labels)
        if labels.size == 0:
            raise ConfigError(f"the {split_name} is empty: no samples to train on")
        if batch_size < 1 or n_batches < 1:
            raise ConfigError(f"batch_size and n_batches must be >= 1, got {batch_size}, {n_batches}")
        classes, counts = np.unique(labels, return_counts=True)
        if len(classes) < 2:
            raise ConfigError(f"the {split_name} has samples of {len(classes)} class(es) "
                              f"{classes.tolist()}; negatives need at least 2 classes")
        self.batch_size, self.n_batches, self.seed = int(batch_size), int(n_batches), int(seed)
        self.num_classes = len(classes)
        order = np.argsort(labels, kind="stable")
        self._order = tf.constant(order, tf.int64)
        self._starts = tf.constant(np.concatenate([[0], np.cumsum(counts)[:-1]]), tf.int64)
        self._counts = tf.constant(counts, tf.int64)

    def _pick(self, class_slot, u):
        """Sample index (into the original arrays) of a uniform draw u in [0,1) within a class."""
        count = tf.gather(self._counts, class_slot)
        within = tf.minimum(tf.cast(u * tf.cast(count, tf.float64), tf.int64), count - 1)
        return tf.gather(self._order, tf.gather(self._starts, class_slot) + within)

    def batch_indices(self, epoch, step):
        """Indices of batch `step` of `epoch`: {"index": [B], "neg_index": [B]} int64."""
        base = tf.stack([tf.constant(self.seed, tf.int64),
                         tf.cast(epoch, tf.int64) * self.n_batches + tf.cast(step, tf.int64)])
        seeds = tf.random.experimental.stateless_split(base, 4)
        b, k = self.batch_size, self.num_classes
        cls = tf.random.stateless_uniform([b], seeds[0], 0, k, dtype=tf.int64)
        offset = tf.random.stateless_uniform([b], seeds[1], 0, k - 1, dtype=tf.int64)
        neg_cls = (cls + 1 + offset) % k
        u = tf.random.stateless_uniform([b], seeds[2], dtype=tf.float64)
        u_neg = tf.random.stateless_uniform([b], seeds[3], dtype=tf.float64)
        return {"index": self._pick(cls, u), "neg_index": self._pick(neg_cls, u_neg)}

    def epoch_dataset(self, epoch: int) -> tf.data.Dataset:
        """The `n_batches` index batches of one epoch."""
        return (tf.data.Dataset.range(self.n_batches)
                .map(lambda step: self.batch_indices(epoch, step),
                     num_parallel_calls=1, deterministic=True)
                .prefetch(4))


def gather_batch(audio, video, labels, label_embeddings, indices):
    """The batch dict of the model interface from sample indices (runs inside tf.function)."""
    batch = {}
    for prefix, key in (("", "index"), ("neg_", "neg_index")):
        idx = indices[key]
        label = tf.gather(labels, idx)
        batch[prefix + "audio"] = tf.gather(audio, idx)
        batch[prefix + "video"] = tf.gather(video, idx)
        batch[prefix + "label"] = label
        batch[prefix + "text"] = tf.gather(label_embeddings, label)
    return batch
