"""The seed's AVCA ablations (Tables 3 and 4), built from AVCA's own layers and losses.

- avca-no-xatt ("W/o x-att"): AVCA without the cross-modal attention; each
  branch (encoder -> projection) is optimised in isolation with AVCA's loss,
  and the two branches' predictions are averaged (mean of their distances).
- avca-xatt-lc ("W x-att with l_c loss"): the full AVCA architecture trained
  with AVGZSLNet's loss l_c = cross-modal decoder loss (l_rec + l_ct) +
  composite triplets (l_w), i.e. AVCA's loss without the additional
  triplets l_t and the regression l_r; scored like AVCA.
- avca-visual / avca-audio ("Visual/Audio branch"): AVCA trained with one
  modality only: that modality's encoder, projection and reconstruction
  head, the text projection W_proj and the decoder D, with every AVCA loss
  term that involves the modality. There is no second token to attend to,
  so no cross-attention.
"""
from __future__ import annotations

import dataclasses

from keras import ops

from avca_tf.config import LossConfig, ModelConfig
from avca_tf.errors import ConfigError
from avca_tf.models.layers import EmbeddingMLP
from avca_tf.models.losses import MODALITY_KEYS as _SHORT, avca_loss_terms
from avca_tf.models import avca
from avca_tf.models.avca import AVCA
from avca_tf.models.registry import register_model, register_preset
from avca_tf.models.base import ConfiguredModel, serializable
from avca_tf.models.distances import pairwise_l2

MODALITIES = ("audio", "video")


@serializable
class BranchAVCA(ConfiguredModel):
    """AVCA's branches without cross-attention, for one or both modalities."""

    def __init__(self, model_config: ModelConfig, loss_config: LossConfig | None = None,
                 modalities=MODALITIES, **kwargs):
        modalities = tuple(modalities)
        if not modalities or any(m not in MODALITIES for m in modalities):
            raise ConfigError(f"modalities must be a non-empty subset of {MODALITIES}, "
                              f"got {modalities!r}")
        super().__init__(model_config, loss_config, **kwargs)
        c = model_config
        self.modalities = modalities
        mlp = lambda units, hidden, dropout, name: EmbeddingMLP(  # noqa: E731
            units, hidden=hidden, dropout=dropout, momentum=c.bn_momentum,
            default_momentum=c.bn_default_momentum, epsilon=c.bn_epsilon, name=name)
        self.encoders, self.projections, self.reconstructions = {}, {}, {}
        for m in modalities:
            up = _SHORT[m].upper()
            self.encoders[m] = mlp(c.embed_dim, c.encoder_hidden, c.dropout_encoder, f"{up}_enc")
            self.projections[m] = mlp(c.output_dim, c.decoder_hidden, c.dropout_decoder,
                                      f"{up}_proj")
            if self.loss_config.regression:  # only the regression term uses A_rec/V_rec
                self.reconstructions[m] = mlp(c.embed_dim, None, c.dropout_additional,
                                              f"{up}_rec")
        self.w_proj = mlp(c.output_dim, None, c.dropout_additional, "W_proj")
        self.decoder = mlp(c.text_dim, None, c.dropout_additional, "D")
        self.build()

    def build(self, input_shape=None):
        c = self.model_config
        dims = {"audio": c.audio_dim, "video": c.video_dim}
        for m in self.modalities:
            self.encoders[m].build((None, dims[m]))
            self.projections[m].build((None, c.embed_dim))
            if m in self.reconstructions:
                self.reconstructions[m].build((None, c.output_dim))
        self.w_proj.build((None, c.text_dim))
        self.decoder.build((None, c.output_dim))
        self.built = True

    def branch_embeddings(self, audio, video, training=False):
        """theta per modality, in self.modalities order."""
        inputs = {"audio": audio, "video": video}
        return [ops.cast(self.projections[m](self.encoders[m](inputs[m], training=training),
                                             training=training), "float32")
                for m in self.modalities]

    def compute_losses(self, batch, training=True):
        lc = self.loss_config
        t = {"w": batch["text"],
             "theta_w": self.w_proj(batch["text"], training=training),
             "theta_w_neg": self.w_proj(batch["neg_text"], training=training)}
        for m in self.modalities:
            k = _SHORT[m]
            t[f"phi_{k}"] = self.encoders[m](batch[m], training=training)
            t[f"theta_{k}"] = self.projections[m](t[f"phi_{k}"], training=training)
            t[f"theta_{k}_neg"] = self.projections[m](
                self.encoders[m](batch[f"neg_{m}"], training=training), training=training)
            if lc.regression:
                t[f"phi_{k}_rec"] = self.reconstructions[m](t[f"theta_{k}"], training=training)
            if lc.reconstruction or lc.reconstruction_triplets:
                t[f"rho_{k}"] = self.decoder(t[f"theta_{k}"], training=training)
            if lc.reconstruction_triplets:
                t[f"rho_{k}_neg"] = self.decoder(t[f"theta_{k}_neg"], training=training)
        if lc.reconstruction or lc.reconstruction_triplets:
            t["rho_w"] = self.decoder(t["theta_w"], training=training)
        t = {k: ops.cast(v, "float32") for k, v in t.items()}
        return avca_loss_terms(t, lc, self.modalities)

    def embed(self, audio, video, training=False):
        """The branches' projections, concatenated in self.modalities order."""
        return ops.concatenate(self.branch_embeddings(audio, video, training), axis=-1)

    def embed_classes(self, class_embeddings, training=False):
        theta_w = ops.cast(self.w_proj(class_embeddings, training=training), "float32")
        return ops.concatenate([theta_w] * len(self.modalities), axis=-1)

    def class_distances(self, audio, video, class_embeddings, training=False):
        """Mean over the branches of their L2 distances to theta_w."""
        theta_w = ops.cast(self.w_proj(class_embeddings, training=training), "float32")
        dists = [pairwise_l2(theta, theta_w)
                 for theta in self.branch_embeddings(audio, video, training)]
        return sum(dists[1:], dists[0]) / float(len(dists))

    def get_config(self):
        return {**super().get_config(), "modalities": list(self.modalities)}


def lc_loss(loss_config: LossConfig) -> LossConfig:
    """AVGZSLNet's l_c within AVCA's loss: no additional triplets, no regression."""
    return dataclasses.replace(loss_config, additional_triplets=False, regression=False)


@register_model("avca-no-xatt", BranchAVCA)
def build_no_xatt(model_config, loss_config=None):
    return BranchAVCA(model_config, loss_config, MODALITIES, name="avca_no_xatt")


@serializable
class AVCAWithLc(AVCA):
    """The full AVCA architecture trained with l_c (`lc_loss` of the given loss)."""

    default_name = "avca_xatt_lc"

    def __init__(self, model_config: ModelConfig, loss_config: LossConfig | None = None,
                 **kwargs):
        super().__init__(model_config, lc_loss(loss_config or LossConfig()), **kwargs)
        # l_c has no regression term, so A_rec/V_rec get no gradient: freeze them
        # (they are not trained parameters of this model).
        self.a_rec.trainable = False
        self.v_rec.trainable = False


register_model("avca-xatt-lc", AVCAWithLc)


@register_model("avca-visual", BranchAVCA)
def build_visual(model_config, loss_config=None):
    return BranchAVCA(model_config, loss_config, ("video",), name="avca_visual")


@register_model("avca-audio", BranchAVCA)
def build_audio(model_config, loss_config=None):
    return BranchAVCA(model_config, loss_config, ("audio",), name="avca_audio")


ABLATIONS = ("avca-no-xatt", "avca-xatt-lc", "avca-visual", "avca-audio")


def preset(model: str, base):
    """The run configuration of ablation `model` from AVCA's preset `base` (a RunConfig):
    same data, architecture and training; avca-xatt-lc switches the loss to l_c."""
    if model not in ABLATIONS:
        raise ConfigError(f"unknown ablation '{model}'; expected one of {sorted(ABLATIONS)}")
    cfg = base.replace(model=dataclasses.replace(base.model, name=model))
    return cfg.replace(loss=lc_loss(cfg.loss)) if model == "avca-xatt-lc" else cfg


# Every ablation runs with AVCA's script settings of the dataset and feature set.
for _model in ABLATIONS:
    for _dataset, _feature_set in avca.SCRIPTS:
        register_preset(_model, _dataset, _feature_set)(
            lambda root, m=_model, d=_dataset, f=_feature_set:
            preset(m, avca.script_preset(d, f, root, measured=False)))
