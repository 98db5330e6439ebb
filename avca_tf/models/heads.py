"""The projection heads and loss that TCaF and ClipClap-GZSL share.

Both models end in the same two branches meeting in an `output_dim` space:
  theta_o = O_proj(o)            the audio-visual side (o: ClipClap's O_enc output,
  rho_o   = D_o(theta_o)         TCaF's cls token)
  w       = [W_enc](text)        the class side (W_enc: ClipClap only; TCaF's w is the text)
  theta_w = W_proj(w)
  rho_w   = D_w(theta_w)
and the same loss, weight 1 per term: cross-entropy of theta_o . W_proj(W_enc(E_train))^T
over the training classes, MSE(theta_o, theta_w) (regression) and MSE(w, rho_o) +
MSE(w, rho_w) (reconstruction; w is not detached). A sample scores a class by the L2
distance between theta_o and the class's theta_w.
"""
from __future__ import annotations

import keras
from keras import layers, ops

from avca_tf.models.base import serializable
from avca_tf.models.layers import EmbeddingMLP
from avca_tf.models.losses import mse


@serializable
class ProjectionHeads(layers.Layer):
    """O_proj, D_o and [W_enc], W_proj, D_w (each the reference's EmbeddingNet).

    `w_dim`: the width of w (W_enc's output, else the text's), which D_o and D_w
    reconstruct; `text_encoder_hidden`/`text_encoder_dropout` and a `w_dim` give
    the W_enc block when `text_encoder` is true. `momentum` is the output batch
    norm's of the two-layer blocks, `default_momentum` every other one's.
    """

    def __init__(self, output_dim=64, hidden=512, w_dim=300, dropout=0.0, dropout_additional=0.0,
                 text_encoder=False, text_encoder_hidden=None, text_encoder_dropout=0.0,
                 momentum=0.9, default_momentum=0.9, epsilon=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.output_dim, self.hidden, self.w_dim = output_dim, hidden, w_dim
        self.dropout, self.dropout_additional = dropout, dropout_additional
        self.text_encoder = text_encoder
        self.text_encoder_hidden, self.text_encoder_dropout = (text_encoder_hidden,
                                                               text_encoder_dropout)
        self.momentum, self.default_momentum, self.epsilon = momentum, default_momentum, epsilon

        def mlp(units, hidden, dropout, name):
            return EmbeddingMLP(units, hidden=hidden, dropout=dropout, momentum=momentum,
                                default_momentum=default_momentum, epsilon=epsilon, name=name)
        # created (and built) in this order: the random initial weights and dropout seeds
        # of a seed depend on it
        self.o_proj = mlp(output_dim, hidden, dropout, "O_proj")
        self.d_o = mlp(w_dim, hidden, dropout, "D_o")
        self.w_enc = (mlp(w_dim, text_encoder_hidden, text_encoder_dropout, "W_enc")
                      if text_encoder else None)
        self.w_proj = mlp(output_dim, None, dropout_additional, "W_proj")
        self.d_w = mlp(w_dim, None, dropout_additional, "D_w")

    def build(self, input_shape):
        """input_shape: (shape of o, shape of the class text), e.g. ((None, 300), (None, 300))."""
        o_shape, text_shape = input_shape
        self.o_proj.build((None, o_shape[-1]))
        self.d_o.build((None, self.output_dim))
        if self.w_enc is not None:
            self.w_enc.build((None, text_shape[-1]))
        self.w_proj.build((None, self.w_dim if self.w_enc is not None else text_shape[-1]))
        self.d_w.build((None, self.output_dim))

    def class_side(self, text, training=False):
        """(w, theta_w) of class text vectors."""
        w = self.w_enc(text, training=training) if self.w_enc is not None else text
        return w, self.w_proj(w, training=training)

    def embed_classes(self, text, training=False):
        return ops.cast(self.class_side(text, training)[1], "float32")

    def compute_losses(self, theta_o, text, class_text, class_index, loss_config,
                       training=True):
        """The loss terms and "total" of a batch: theta_o = O_proj(o) of its samples, the
        label vectors `text` of their classes, `class_text` [K, text] of the training
        classes and `class_index` [B], each sample's row in it."""
        w, theta_w = self.class_side(text, training)
        terms = {}
        if loss_config.reconstruction:
            rho_o = self.d_o(theta_o, training=training)
            rho_w = self.d_w(theta_w, training=training)
            w32 = ops.cast(w, "float32")
            terms["reconstruction"] = (mse(w32, ops.cast(rho_o, "float32"))
                                       + mse(w32, ops.cast(rho_w, "float32")))
        if loss_config.regression:
            terms["regression"] = mse(ops.cast(theta_o, "float32"), ops.cast(theta_w, "float32"))
        classes = self.class_side(class_text, training)[1]
        logits = ops.matmul(ops.cast(theta_o, "float32"),
                            ops.transpose(ops.cast(classes, "float32")))
        terms["cross_entropy"] = ops.mean(keras.losses.sparse_categorical_crossentropy(
            class_index, logits, from_logits=True))
        total = terms["cross_entropy"]
        for key in ("regression", "reconstruction"):
            if key in terms:
                total = total + terms[key]
        return {"total": total, **terms}

    def get_config(self):
        return {**super().get_config(), "output_dim": self.output_dim, "hidden": self.hidden,
                "w_dim": self.w_dim, "dropout": self.dropout,
                "dropout_additional": self.dropout_additional,
                "text_encoder": self.text_encoder,
                "text_encoder_hidden": self.text_encoder_hidden,
                "text_encoder_dropout": self.text_encoder_dropout, "momentum": self.momentum,
                "default_momentum": self.default_momentum, "epsilon": self.epsilon}
