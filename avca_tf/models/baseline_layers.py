"""Pieces shared by the baselines (ALE/SJE/DeViSE, APN, CJME, AVGZSLNet).

They follow the reference's PyTorch modules: Linear layers with PyTorch's
default initialisation (avca_tf.models.layers.TorchDense) and BatchNorm1d with
PyTorch defaults (momentum 0.1 = Keras 0.9, epsilon 1e-5).
"""
import keras
import tensorflow as tf
from keras import ops

from avca_tf.models.layers import TorchDense
from avca_tf.models.losses import pairwise_distance


@keras.saving.register_keras_serializable(package="avca_tf")
class BaselineMLP(keras.layers.Layer):
    """Linear -> [BN] -> ReLU -> Dropout -> Linear [-> ReLU].

    The reference's baseline `EmbeddingNet` (AVGZSLNet: linear output) and
    `EmbeddingNetCJME` (ReLU output); unlike AVCA's EmbeddingMLP the output
    layer has no batch norm or dropout.
    """

    def __init__(self, hidden, units, dropout=0.0, use_bn=True, output_relu=False,
                 momentum=0.9, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.hidden_units, self.units, self.dropout = hidden, units, dropout
        self.use_bn, self.output_relu = use_bn, output_relu
        self.momentum, self.epsilon = momentum, epsilon
        self.hidden = TorchDense(hidden, name="hidden")
        self.norm = (keras.layers.BatchNormalization(momentum=momentum, epsilon=epsilon, name="bn")
                     if use_bn else None)
        self.drop = keras.layers.Dropout(dropout)
        self.out = TorchDense(units, name="out")

    def build(self, input_shape):
        self.hidden.build(input_shape)
        if self.norm is not None:
            self.norm.build((None, self.hidden_units))
        self.out.build((None, self.hidden_units))

    def call(self, x, training=False):
        h = self.hidden(x)
        if self.norm is not None:
            h = self.norm(h, training=training)
        y = self.out(self.drop(ops.relu(h), training=training))
        return ops.relu(y) if self.output_relu else y

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.units,)

    def get_config(self):
        return {**super().get_config(), "hidden": self.hidden_units, "units": self.units,
                "dropout": self.dropout, "use_bn": self.use_bn, "output_relu": self.output_relu,
                "momentum": self.momentum, "epsilon": self.epsilon}


def triplet_margin(anchor, positive, negative, margin=1.0):
    """Per-sample nn.TripletMarginLoss(reduction="none") [B]."""
    return ops.relu(pairwise_distance(anchor, positive) - pairwise_distance(anchor, negative)
                    + margin)


def l2_distance(x, y):
    """Row-wise Euclidean distance [B] (the reference's L2Loss, no epsilon)."""
    return ops.sqrt(ops.sum(ops.square(x - y), axis=-1))


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
