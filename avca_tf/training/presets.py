"""From a model, a dataset and the command-line settings to one RunConfig.

The presets themselves are declared next to their models and resolved by
avca_tf.models.registry.get_preset. This module holds the one mapping of
run settings onto RunConfig fields (`run_config`), used by `avca train`,
`avca pipeline run|compile` and `avca reproduce`, plus the short schedules
("quick", "toy") those commands offer on top of a preset.

Flag names (every command that has the setting spells it the same way):
--model, --preset, --epochs, --n-batches, --batch-size, --lr, --seed, --text-pairing.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from avca_tf.config import DATASETS, FEATURE_SETS, RunConfig, check_limit
from avca_tf.errors import ConfigError, did_you_mean

# avca_tf.models (and with it TensorFlow) is imported only where a preset is resolved, so
# the command-line flags of this module are checked before TensorFlow loads.

# Schedules that replace a preset's training length (same architecture and optimiser):
# "quick": the smoke run of `avca train --quick` (2 epochs x 5 batches of at most 64);
# "toy": the default of `avca pipeline run` on the toy benchmark (4 epochs x 40 batches
# of 128, about a minute of CPU training that learns the toy well above chance).
SCHEDULES = ("quick", "toy")


def quick(cfg: RunConfig) -> RunConfig:
    """A tiny run for smoke tests: 2 epochs of 5 batches of at most 64 samples."""
    return cfg.replace(train=dataclasses.replace(
        cfg.train, epochs=2, n_batches=5, batch_size=min(cfg.train.batch_size, 64)))


def toy(cfg: RunConfig) -> RunConfig:
    return cfg.replace(train=dataclasses.replace(cfg.train, epochs=4, n_batches=40,
                                                 batch_size=128))


def preset_name(dataset: str, feature_set: str) -> str:
    """"UCF-main", "VGGSound-cls", ...: the --preset spelling of a dataset and feature set."""
    return f"{dataset}-{FEATURE_SETS[feature_set].short}"


def preset_names(model: str = "avca") -> list[str]:
    """The --preset values of `model`'s registered presets."""
    from avca_tf.models.registry import presets
    return [preset_name(d, f) for m, d, f in presets() if m == model]


def parse_preset_name(name: str) -> tuple[str, str]:
    """"UCF-main" -> ("UCF", "main_features")."""
    by_short = {fs.short: fs.name for fs in FEATURE_SETS.values()}
    dataset, _, short = name.rpartition("-")
    if dataset not in DATASETS or short not in by_short:
        known = [f"{d}-{s}" for d in DATASETS for s in by_short] + list(SCHEDULES)
        raise ConfigError(f"unknown preset '{name}'{did_you_mean(name, known)}; expected "
                          f"<dataset>-<main|cls|clipclap> (e.g. {', '.join(preset_names())}) "
                          f"or one of {list(SCHEDULES)}")
    return dataset, by_short[short]


@dataclass(frozen=True)
class RunOverrides:
    """Settings given on a command line; None keeps the preset's value.

    `preset`: "<dataset>-<main|cls>" runs with the settings registered for
    that dataset and feature set instead of the data's own; `schedule`: one of
    SCHEDULES, applied before the explicit epochs / n_batches / batch_size.
    """
    model: str = "avca"
    preset: str | None = None
    schedule: str | None = None
    epochs: int | None = None
    n_batches: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    seed: int | None = None
    text_pairing: str | None = None
    strategy: str | None = None
    tfrecords: str | None = None
    temporal: bool | None = None          # per-step sequences (sequence models' presets set it)
    freeze_position_embeddings: bool | None = None
    separate_negative_pass: bool | None = None
    bn_double_update: bool | None = None
    stage2_lr: str | None = None
    stage2_length: str | None = None
    jit_compile: bool | None = None
    precision: str | None = None
    intra_op_threads: int | None = None
    inter_op_threads: int | None = None
    pad_multiple: int | None = None       # sequence models: training padding buckets


def run_config(dataset: str, feature_set: str, overrides: RunOverrides = RunOverrides(),
               root: str = "") -> RunConfig:
    """The RunConfig of a run of `overrides.model` on dataset/feature set under `root`."""
    from avca_tf.models.registry import get_preset
    o = overrides
    if o.preset:
        cfg = get_preset(o.model, *parse_preset_name(o.preset), root=root)
    else:
        cfg = get_preset(o.model, dataset, feature_set, root=root)
    if o.schedule is not None:
        if o.schedule not in SCHEDULES:
            raise ConfigError(f"unknown schedule '{o.schedule}'; expected one of {list(SCHEDULES)}")
        cfg = {"quick": quick, "toy": toy}[o.schedule](cfg)
    for key in ("epochs", "n_batches", "batch_size"):
        value = getattr(o, key)
        if value is not None and value < 1:
            raise ConfigError(f"--{key.replace('_', '-')} must be >= 1, got {value}")
    if o.batch_size is not None:
        check_limit("batch size", o.batch_size, "--batch-size")
    if o.pad_multiple is not None and o.pad_multiple < 1:
        raise ConfigError(f"--pad-multiple must be >= 1, got {o.pad_multiple}")
    if o.lr is not None and not o.lr > 0:
        raise ConfigError(f"--lr must be > 0, got {o.lr}")

    def given(section, **fields):
        return dataclasses.replace(section, **{k: v for k, v in fields.items() if v is not None})
    return cfg.replace(
        data=given(cfg.data, root=root, dataset=dataset, feature_set=feature_set,
                   text_pairing=o.text_pairing, tfrecords=o.tfrecords, temporal=o.temporal,
                   pad_multiple=o.pad_multiple),
        model=given(cfg.model, freeze_position_embeddings=o.freeze_position_embeddings,
                    separate_negative_pass=o.separate_negative_pass,
                    bn_double_update=o.bn_double_update),
        train=given(cfg.train, epochs=o.epochs, n_batches=o.n_batches, batch_size=o.batch_size,
                    lr=o.lr, seed=o.seed, jit_compile=o.jit_compile, strategy=o.strategy,
                    precision=o.precision, intra_op_threads=o.intra_op_threads,
                    inter_op_threads=o.inter_op_threads, stage2_lr=o.stage2_lr,
                    stage2_length=o.stage2_length))
