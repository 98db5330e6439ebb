"""AVCA presets reproducing the authors' run scripts (run_scripts/<DS>-GZSL/avca.sh).

All scripts share lr 1e-3, 50 epochs, 500 batches per epoch, hidden sizes
512/512, depth 1, both additional triplets with weight 1 and the regression
loss; they differ in dropouts, batch-norm momentum and batch size.
"""
from __future__ import annotations

import dataclasses

from avca_tf.config import DataConfig, LossConfig, ModelConfig, RunConfig, TrainConfig, keras_momentum
from avca_tf.errors import ConfigError

FEATURE_WIDTHS = {"main_features": (512, 512), "cls_features": (128, 4096),
                  "clip_clap": (1024, 512)}
FEATURE_SHORT = {"main_features": "main", "cls_features": "cls", "clip_clap": "clipclap"}

# name -> (dropout_encoder, dropout_decoder, dropout_additional, torch BN momentum, batch size)
_SCRIPTS = {
    "UCF-main": (0.2, 0.3, 0.5, 0.1, 256),
    "UCF-cls": (0.2, 0.3, 0.5, 0.99, 256),
    "ActivityNet-main": (0.2, 0.2, 0.1, 0.99, 256),
    "ActivityNet-cls": (0.2, 0.2, 0.1, 0.99, 256),
    "VGGSound-main": (0.0, 0.0, 0.1, 0.1, 64),
    "VGGSound-cls": (0.0, 0.0, 0.0, 0.99, 256),
    # AVCA on the CLIP/CLAP features (ClipClap-GZSL's comparison row): the authors
    # publish no script, so these are the cls-feature scripts with the new widths
    # (1024-d audio, 512-d video, 1536-d [CLIP; CLAP] class embeddings).
    "UCF-clipclap": (0.2, 0.3, 0.5, 0.99, 256),
    "ActivityNet-clipclap": (0.2, 0.2, 0.1, 0.99, 256),
    "VGGSound-clipclap": (0.0, 0.0, 0.0, 0.99, 256),
}
PRESETS = tuple(_SCRIPTS)


def preset_name(dataset: str, feature_set: str) -> str:
    if feature_set not in FEATURE_SHORT:
        raise ConfigError(f"unknown feature set '{feature_set}'; expected one of {sorted(FEATURE_SHORT)}")
    return f"{dataset}-{FEATURE_SHORT[feature_set]}"


def get_preset(name: str, root: str = "") -> RunConfig:
    """The run configuration of the authors' script `name` (see PRESETS)."""
    if name not in _SCRIPTS:
        raise ConfigError(f"unknown preset '{name}'; expected one of {list(PRESETS)}")
    dataset, short = name.split("-")
    feature_set = {v: k for k, v in FEATURE_SHORT.items()}[short]
    d_enc, d_dec, d_add, torch_m, bs = _SCRIPTS[name]
    audio_dim, video_dim = FEATURE_WIDTHS[feature_set]
    from avca_tf.data.benchmark import FEATURE_SETS
    return RunConfig(
        data=DataConfig(root=root, dataset=dataset, feature_set=feature_set),
        model=ModelConfig(audio_dim=audio_dim, video_dim=video_dim,
                          text_dim=FEATURE_SETS[feature_set].text_dim, dropout_encoder=d_enc,
                          dropout_decoder=d_dec, dropout_additional=d_add,
                          bn_momentum=keras_momentum(torch_m)),
        loss=LossConfig(),
        train=TrainConfig(batch_size=bs),
        preset=name,
    )


def quick(cfg: RunConfig) -> RunConfig:
    """A tiny run for smoke tests: 2 epochs of 5 batches of at most 64 samples."""
    return cfg.replace(train=dataclasses.replace(
        cfg.train, epochs=2, n_batches=5, batch_size=min(cfg.train.batch_size, 64)))
