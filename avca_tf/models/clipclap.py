"""ClipClap-GZSL: audio-visual GZSL on CLIP/CLAP features (docs/clipclap.md).

Two branches meet in a 64-d space:
  o       = O_enc([video; audio])            Dense(512) BN ReLU Dropout
  theta_o = O_proj(o)                        512 -> 512 -> 64, BN ReLU Dropout after each
  rho_o   = D_o(theta_o)                     64 -> 512 -> 512
  w       = W_enc(class embedding)           Dense(512) BN ReLU Dropout  ([CLIP; CLAP] 1536-d)
  theta_w = W_proj(w)                        512 -> 64
  rho_w   = D_w(theta_w)                     64 -> 512
Losses, weight 1 each: cross-entropy of theta_o . W_proj(W_enc(E_train))^T
over the training classes; MSE(theta_o, theta_w); MSE(w, rho_o) + MSE(w, rho_w)
(w is not detached). A sample scores a class by the L2 distance between
theta_o and the class's theta_w.

Every block is the reference's EmbeddingNet stage (avca_tf.models.layers):
PyTorch-initialised Dense, torch's BatchNorm1d (default momentum), ReLU,
dropout. In a training step W_enc/W_proj see the batch's class vectors first
and then the training classes' vectors, as in the reference, so their
batch-norm statistics move twice per step.
"""
from __future__ import annotations

from keras import ops

from avca_tf.config import (DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig)
from avca_tf.models.base import ConfiguredModel, serializable
from avca_tf.models.heads import ProjectionHeads
from avca_tf.models.layers import EmbeddingMLP
from avca_tf.models.registry import register_model, register_preset

NAME = "clipclap"
FEATURE_SET = "clip_clap"
# The published grid of the beta search: linspace(0, 5, 76).
BETA_MAX, BETA_STEPS = 5.0, 76


@serializable
class ClipClap(ConfiguredModel):
    """O_enc, O_proj, D_o (audio-visual branch) and W_enc, W_proj, D_w (text branch)."""

    uses_training_classes = True  # cross-entropy over the training classes
    default_name = NAME

    def __init__(self, model_config: ModelConfig, loss_config: LossConfig | None = None,
                 **kwargs):
        super().__init__(model_config, loss_config, **kwargs)
        c = model_config

        self.o_enc = EmbeddingMLP(c.embed_dim, hidden=c.encoder_hidden, dropout=c.dropout_encoder,
                                  momentum=c.bn_momentum, default_momentum=c.bn_default_momentum,
                                  epsilon=c.bn_epsilon, name="O_enc")
        # O_proj, D_o, W_enc, W_proj, D_w and the loss, as TCaF's (w: W_enc's output)
        self.projection = ProjectionHeads(
            c.output_dim, c.decoder_hidden, c.embed_dim, c.dropout_decoder, c.dropout_additional,
            text_encoder=True, text_encoder_hidden=c.encoder_hidden,
            text_encoder_dropout=c.dropout_encoder, momentum=c.bn_momentum,
            default_momentum=c.bn_default_momentum, epsilon=c.bn_epsilon, name="projection")
        self.build()

    def build(self, input_shape=None):
        c = self.model_config
        self.o_enc.build((None, c.video_dim + c.audio_dim))
        self.projection.build(((None, c.embed_dim), (None, c.text_dim)))
        self.built = True

    def call(self, inputs, training=False):
        """(audio, video) -> theta_o [B, output_dim]."""
        audio, video = inputs
        o = self.o_enc(ops.concatenate([video, audio], axis=1), training=training)
        return self.projection.o_proj(o, training=training)

    def compute_losses(self, batch, training=True):
        theta_o = self((batch["audio"], batch["video"]), training=training)
        return self.projection.compute_losses(theta_o, batch["text"], batch["class_text"],
                                              batch["class_index"], self.loss_config, training)

    def embed(self, audio, video, training=False):
        return ops.cast(self((audio, video), training=training), "float32")

    def embed_classes(self, class_embeddings, training=False):
        return self.projection.embed_classes(class_embeddings, training)


register_model(NAME, ClipClap)


def model_config(audio_dim: int = 1024, video_dim: int = 512, text_dim: int = 1536) -> ModelConfig:
    """The authors' architecture (dim_out 64, hidden 512, dropout 0.1 everywhere)."""
    return ModelConfig(name=NAME, audio_dim=audio_dim, video_dim=video_dim, text_dim=text_dim,
                       embed_dim=512, encoder_hidden=None, decoder_hidden=512, output_dim=64,
                       dropout_encoder=0.1, dropout_decoder=0.1, dropout_additional=0.1)


def preset(dataset: str, epochs: int, lr: float, root: str = "") -> RunConfig:
    """Batch 64, 300 batches per epoch, Adam with coupled L2 1e-5, plateau on val HM
    (patience 3, factor 0.1), seed 42, beta searched over linspace(0, 5, 76)."""
    return RunConfig(
        data=DataConfig(root=root, dataset=dataset, feature_set=FEATURE_SET),
        model=model_config(),
        loss=LossConfig(reconstruction=True, regression=True, reconstruction_triplets=False,
                        embedding_triplets=False, additional_triplets=False),
        train=TrainConfig(epochs=epochs, n_batches=300, batch_size=64, lr=lr, weight_decay=1e-5,
                          lr_factor=0.1, lr_patience=3, seed=42, beta_max=BETA_MAX,
                          beta_steps=BETA_STEPS),
        preset=f"{NAME}-{dataset}")


@register_preset(NAME, "UCF", FEATURE_SET)
def ucf_preset(root: str = "") -> RunConfig:
    return preset("UCF", 20, 7e-5, root)


@register_preset(NAME, "ActivityNet", FEATURE_SET)
def activitynet_preset(root: str = "") -> RunConfig:
    return preset("ActivityNet", 15, 1e-4, root)


@register_preset(NAME, "VGGSound", FEATURE_SET)
def vggsound_preset(root: str = "") -> RunConfig:
    return preset("VGGSound", 15, 1e-4, root)
