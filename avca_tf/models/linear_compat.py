"""ALE, SJE and DeViSE: linear compatibility between features and label embeddings.

As the reference adapts these image ZSL methods: the input is the
concatenation [video, audio] (optionally L2-normalised), one bias-free linear
map W projects it into the 300-d word-vector space (307,200 parameters on
SeLaVi features), dropout acts on the input and the class embeddings, and the
three methods differ only in the ranking loss over the compatibility scores
s_c = (W x) . t_c (margin 0.1):
  - DeViSE: hinge summed over all wrong classes;
  - SJE: the most violating wrong class only;
  - ALE: hinges weighted by l(r)/r, l(r) = sum_{i<=r} 1/i, r = number of
    violating classes (the WARP-like rank weighting of ALE).
Prediction: the nearest class embedding (L2) to W x, as in the reference.
"""
import keras
import tensorflow as tf
from keras import ops

from avca_tf.models.layers import TorchDense
from avca_tf.models.base import GZSLModel, serializable
from avca_tf.models.baseline_layers import batch_classes, concat_inputs

RANKING_LOSSES = ("devise", "sje", "ale")
_EULER_GAMMA = 0.5772156649015329


def ranking_loss(scores, target, kind, margin=0.1):
    """The reference's ClsContrastiveLoss variants. scores [B, K], target [B]."""
    if kind not in RANKING_LOSSES:
        raise ValueError(f"ranking loss must be one of {RANKING_LOSSES}, got {kind!r}")
    onehot = ops.one_hot(target, ops.shape(scores)[1], dtype=scores.dtype)
    positive = ops.sum(scores * onehot, axis=1, keepdims=True)
    cost = ops.relu(margin + scores - positive) * (1.0 - onehot)
    if kind == "sje":
        cost = ops.max(cost, axis=1)
    elif kind == "ale":
        rank = ops.sum(ops.cast(cost > 0, scores.dtype), axis=1, keepdims=True)
        harmonic = tf.math.digamma(rank + 1.0) + _EULER_GAMMA  # sum_{i=1..rank} 1/i
        cost = cost * ops.stop_gradient(harmonic / (rank + 1e-8))
    return ops.sum(cost) / ops.cast(ops.shape(scores)[0], scores.dtype)


@serializable
class LinearCompatibility(GZSLModel):
    """ALE / SJE / DeViSE, selected by `loss`."""

    def __init__(self, audio_dim, video_dim, loss="devise", dropout=0.2, norm_inputs=False,
                 margin=0.1, text_dim=300, **kwargs):
        super().__init__(**kwargs)
        if loss not in RANKING_LOSSES:
            raise ValueError(f"loss must be one of {RANKING_LOSSES}, got {loss!r}")
        self.audio_dim, self.video_dim, self.text_dim = audio_dim, video_dim, text_dim
        self.loss_kind, self.dropout_rate = loss, dropout
        self.norm_inputs, self.margin = norm_inputs, margin
        self.project = TorchDense(text_dim, use_bias=False, name="W")
        self.drop = keras.layers.Dropout(dropout)
        self.build()

    def build(self, input_shape=None):
        self.project.build((None, self.audio_dim + self.video_dim))
        self.built = True

    def embed(self, audio, video, training=False):
        x = concat_inputs(audio, video, self.norm_inputs)
        return self.project(self.drop(x, training=training))

    def embed_classes(self, class_embeddings, training=False):
        return self.drop(class_embeddings, training=training)

    def compute_losses(self, batch, training=True):
        class_text, target = batch_classes(batch)
        projected = self.embed(batch["audio"], batch["video"], training=training)
        scores = ops.matmul(projected, ops.transpose(self.embed_classes(class_text, training)))
        loss = ranking_loss(scores, target, self.loss_kind, self.margin)
        return {"ranking": loss, "total": loss}

    def get_config(self):
        return {**super().get_config(), "audio_dim": self.audio_dim, "video_dim": self.video_dim,
                "loss": self.loss_kind, "dropout": self.dropout_rate,
                "norm_inputs": self.norm_inputs, "margin": self.margin,
                "text_dim": self.text_dim}
