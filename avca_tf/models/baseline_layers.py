"""Pieces shared by the baselines (ALE/SJE/DeViSE, APN, CJME, AVGZSLNet).

They follow the reference's PyTorch modules: Linear layers with PyTorch's
default initialisation (avca_tf.models.layers.TorchDense) and BatchNorm1d with
PyTorch defaults (momentum 0.1 = Keras 0.9, epsilon 1e-5).
"""
import tensorflow as tf
from keras import ops

from avca_tf.models.layers import EmbeddingMLP


def baseline_mlp(hidden, units, dropout=0.0, use_bn=True, output_relu=False, momentum=0.9,
                epsilon=1e-5, name=None):
    """Linear -> [BN] -> ReLU -> Dropout -> Linear [-> ReLU], with Keras' stock BatchNorm
    and Dropout: the reference's baseline `EmbeddingNet` (AVGZSLNet: linear output) and
    `EmbeddingNetCJME` (ReLU output), as options of the one EmbeddingMLP."""
    return EmbeddingMLP(units, hidden=hidden, dropout=dropout, default_momentum=momentum,
                        epsilon=epsilon, output="relu" if output_relu else "linear",
                        use_bn=use_bn, stock=True, name=name)


def concat_inputs(audio, video, normalize):
    """[video, audio] as the reference's image-ZSL adaptations see it, optionally L2-normalised."""
    x = ops.concatenate([video, audio], axis=-1)
    return tf.math.l2_normalize(x, axis=-1, epsilon=1e-12) if normalize else x


def batch_classes(batch):
    """The classes present in a batch (positives and negatives).

    Returns (class_text [K, 300], target [B]): one label embedding per distinct
    class and, for each positive, the row of its class. The image-ZSL losses
    score a sample against these candidate classes; the reference scores
    against all training classes, which class-aware batches of 256 (positives
    plus negatives) almost always cover.
    """
    labels = tf.concat([batch["label"], batch["neg_label"]], axis=0)
    texts = tf.concat([batch["text"], batch["neg_text"]], axis=0)
    uniq, index = tf.unique(tf.reshape(labels, [-1]))
    first = tf.math.unsorted_segment_min(tf.range(tf.shape(index)[0]), index, tf.shape(uniq)[0])
    n_pos = tf.shape(batch["label"])[0]
    return tf.gather(texts, first), index[:n_pos]
