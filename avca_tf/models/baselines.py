"""The baselines of the seed's Table 1 and their run presets.

Each builder maps the shared ModelConfig onto the baseline's own arguments
(field meanings for baselines are listed in docs/baselines.md); each preset
reproduces the authors' run script run_scripts/<DS>-GZSL/<model>.sh.
"""
from __future__ import annotations

import dataclasses

from avca_tf.config import FEATURE_SETS, DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig
from avca_tf.errors import ConfigError
from avca_tf.models.apn import APN
from avca_tf.models.avgzslnet import AVGZSLNet
from avca_tf.models.cjme import CJME
from avca_tf.models.linear_compat import LinearCompatibility
from avca_tf.models.registry import register_model, register_preset


def _linear(kind):
    def build(c: ModelConfig, loss_config: LossConfig | None = None):
        return LinearCompatibility(c.audio_dim, c.video_dim, loss=kind, dropout=c.dropout_encoder,
                                   norm_inputs=c.normalize_inputs, text_dim=c.text_dim,
                                   name=kind)
    return build


def build_apn(c: ModelConfig, loss_config: LossConfig | None = None):
    return APN(c.audio_dim, c.video_dim, norm_inputs=c.normalize_inputs, text_dim=c.text_dim,
               name="apn")


def build_cjme(c: ModelConfig, loss_config: LossConfig | None = None):
    return CJME(c.audio_dim, c.video_dim, hidden_dim=c.encoder_hidden, embed_dim=c.output_dim,
                dropout=c.dropout_encoder, margin=(loss_config or LossConfig()).margin,
                text_dim=c.text_dim, bn_momentum=c.bn_default_momentum, bn_epsilon=c.bn_epsilon,
                name="cjme")


def build_avgzslnet(c: ModelConfig, loss_config: LossConfig | None = None):
    return AVGZSLNet(c.audio_dim, c.video_dim, hidden_dim=c.encoder_hidden,
                     embed_dim=c.output_dim, decoder_hidden=c.decoder_hidden,
                     embedding_dropout=c.dropout_encoder, decoder_dropout=c.dropout_decoder,
                     margin=(loss_config or LossConfig()).margin, text_dim=c.text_dim,
                     bn_momentum=c.bn_default_momentum, bn_epsilon=c.bn_epsilon,
                     name="avgzslnet")


BASELINES = {
    "ale": (LinearCompatibility, _linear("ale")),
    "sje": (LinearCompatibility, _linear("sje")),
    "devise": (LinearCompatibility, _linear("devise")),
    "apn": (APN, build_apn),
    "cjme": (CJME, build_cjme),
    "avgzslnet": (AVGZSLNet, build_avgzslnet),
}
for _name, (_class, _build) in BASELINES.items():
    register_model(_name, _class)(_build)


def _baseline_dropout(dataset: str) -> float:
    """The scripts' --dropout_baselines (ale/sje/devise/cjme): 0.0 on VGGSound, 0.2 on UCF
    and ActivityNet."""
    return 0.0 if dataset == "VGGSound" else 0.2


def model_config(model: str, dataset: str, feature_set: str) -> ModelConfig:
    """The ModelConfig of baseline `model` in the authors' script for dataset/feature set."""
    if model not in BASELINES:
        raise ConfigError(f"unknown baseline '{model}'; expected one of {sorted(BASELINES)}")
    fs = FEATURE_SETS[feature_set]
    cfg = ModelConfig(name=model, audio_dim=fs.audio_dim, video_dim=fs.video_dim,
                      text_dim=fs.text_dim)
    if model == "avgzslnet":   # reference defaults: hidden 1024/64, dropout 0.8/0.5, 64-d space
        return dataclasses.replace(cfg, encoder_hidden=1024, decoder_hidden=64, output_dim=64,
                                   dropout_encoder=0.8, dropout_decoder=0.5)
    dropout = 0.0 if model == "apn" else _baseline_dropout(dataset)
    cfg = dataclasses.replace(cfg, encoder_hidden=1024, output_dim=64, dropout_encoder=dropout)
    if model != "cjme" and feature_set == "cls_features":
        cfg = dataclasses.replace(cfg, normalize_inputs=True)
    return cfg


def preset(model: str, dataset: str, feature_set: str, root: str = "") -> RunConfig:
    """The authors' run configuration: Adam lr 1e-3 without weight decay, batch 256,
    500 batches x 50 epochs, LR reduced on plateau of validation HM."""
    return RunConfig(data=DataConfig(root=root, dataset=dataset, feature_set=feature_set),
                     model=model_config(model, dataset, feature_set), loss=LossConfig(),
                     train=TrainConfig(batch_size=256, weight_decay=0.0),
                     preset=f"{dataset}-{model}-{feature_set}")


# The authors' scripts exist for every baseline on the three datasets and both feature sets.
for _name in BASELINES:
    for _dataset in ("UCF", "ActivityNet", "VGGSound"):
        for _feature_set in FEATURE_SETS:
            register_preset(_name, _dataset, _feature_set)(
                lambda root, m=_name, d=_dataset, f=_feature_set: preset(m, d, f, root))
