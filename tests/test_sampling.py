"""Class-aware sampling: uniform classes, negatives of another class, stateless per epoch."""
import numpy as np
import pytest
import tensorflow as tf

from avca_tf.errors import ConfigError
from avca_tf.data.batching.sampling import ClassAwareSampler, gather_batch

# imbalanced classes with non-contiguous ids: 3 samples of class 7, 60 of class 2, 20 of class 40
LABELS = np.array([2] * 60 + [7] * 3 + [40] * 20, np.int64)
np.random.default_rng(0).shuffle(LABELS)


def _epoch(sampler, epoch):
    batches = list(sampler.epoch_dataset(epoch))
    return {k: np.concatenate([b[k].numpy() for b in batches]) for k in ("index", "neg_index")}


def test_negatives_are_other_classes_and_classes_are_balanced():
    sampler = ClassAwareSampler(LABELS, batch_size=300, n_batches=20, seed=3)
    ep = _epoch(sampler, 0)
    assert len(ep["index"]) == 6000
    pos, neg = LABELS[ep["index"]], LABELS[ep["neg_index"]]
    assert (pos != neg).all()
    # alpha=1: each class about a third of the anchors despite 3 vs 60 samples
    for cls in (2, 7, 40):
        assert abs((pos == cls).mean() - 1 / 3) < 0.03
        assert abs((neg == cls).mean() - 1 / 3) < 0.03
    # within a class every sample is drawn (uniformly)
    counts = np.bincount(ep["index"][pos == 7], minlength=len(LABELS))[LABELS == 7]
    assert counts.min() > 0.8 * counts.mean()


def test_batches_are_stateless_in_seed_epoch_and_step():
    a = ClassAwareSampler(LABELS, 16, 4, seed=1)
    b = ClassAwareSampler(LABELS, 16, 4, seed=1)
    for key in ("index", "neg_index"):
        np.testing.assert_array_equal(_epoch(a, 2)[key], _epoch(b, 2)[key])
    assert not np.array_equal(_epoch(a, 2)["index"], _epoch(a, 3)["index"])
    assert not np.array_equal(_epoch(a, 2)["index"],
                              _epoch(ClassAwareSampler(LABELS, 16, 4, seed=2), 2)["index"])
    # batch 3 of epoch 2 alone equals the 4th batch of the epoch's dataset
    third = a.batch_indices(2, 3)["index"].numpy()
    np.testing.assert_array_equal(third, _epoch(a, 2)["index"][48:64])


def test_gather_batch_pairs_samples_with_their_class_vectors():
    audio = np.arange(len(LABELS) * 2, dtype=np.float32).reshape(-1, 2)
    video = -audio
    emb = np.random.default_rng(0).normal(size=(41, 3)).astype(np.float32)
    idx = ClassAwareSampler(LABELS, 8, 1, seed=0).batch_indices(0, 0)
    batch = gather_batch(tf.constant(audio), tf.constant(video), tf.constant(LABELS),
                         tf.constant(emb), idx)
    i, j = idx["index"].numpy(), idx["neg_index"].numpy()
    np.testing.assert_array_equal(batch["audio"].numpy(), audio[i])
    np.testing.assert_array_equal(batch["neg_video"].numpy(), video[j])
    np.testing.assert_array_equal(batch["label"].numpy(), LABELS[i])
    np.testing.assert_array_equal(batch["text"].numpy(), emb[LABELS[i]])
    np.testing.assert_array_equal(batch["neg_text"].numpy(), emb[LABELS[j]])


def test_bad_training_sets_are_refused():
    with pytest.raises(ConfigError, match="empty"):
        ClassAwareSampler(np.array([], np.int64), 4, 2, 0, split_name="training set stage_1_train")
    with pytest.raises(ConfigError, match="at least 2 classes"):
        ClassAwareSampler(np.array([5, 5, 5]), 4, 2, 0)
    with pytest.raises(ConfigError, match=">= 1"):
        ClassAwareSampler(LABELS, 0, 2, 0)
