"""The one registry of models and of their run presets.

A model module registers its class (built as `MyModel(model_config, loss_config)`,
or by the build function it decorates) and one preset per (dataset, feature set)
it has settings for:

    register_model("mymodel", MyModel)

    @register_preset("mymodel", "UCF", "main_features")
    def ucf_main(root: str) -> RunConfig: ...

The class declares what the rest of the library needs to know before building it:
`input_kind` (avca_tf.inputs: how its batches and serving inputs look) and
`uses_training_classes` (its batches carry the training classes' vectors).

`get_preset(model, dataset, feature_set, root)` is the one resolver that
`avca train`, `avca pipeline run`, `avca reproduce`, `avca stats` and the TFX
trainer component use. The toy benchmark (dataset "Toy") mirrors UCF's
main-feature split (same class counts per stage), so a model's Toy preset is
its UCF preset with the dataset renamed, unless the model registers a Toy
preset of its own (DATASET_FALLBACK is the only place this rule lives).
avca_tf/models/__init__.py imports every module of the package, so adding a
model is one module and nothing else.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from avca_tf.config import (DATASETS, FEATURE_SETS, LossConfig, ModelConfig,
                            RunConfig, check_choice)
from avca_tf.errors import ConfigError, did_you_mean

# dataset -> the dataset whose presets it uses when a model registers none for it
DATASET_FALLBACK = {"Toy": "UCF"}

_MODELS: dict[str, tuple[type, Callable]] = {}   # name -> (model class, build)
_PRESETS: dict[tuple[str, str, str], Callable[[str], RunConfig]] = {}


def _registrar(table: dict, key, what: str):
    def deco(fn):
        if key in table and table[key] is not fn:
            raise ConfigError(f"{what} {key!r} is registered twice")
        table[key] = fn
        return fn
    return deco


def register_model(name: str, model_class: type):
    """Registers `model_class` under `name`, built as `model_class(model_config,
    loss_config)`; used as a decorator, the decorated `build(model_config, loss_config)`
    builds it instead (a model whose weights exist on return)."""
    if name in _MODELS and _MODELS[name][0] is not model_class:
        raise ConfigError(f"model {name!r} is registered twice")
    _MODELS[name] = (model_class, model_class)

    def with_build(build: Callable) -> Callable:
        _MODELS[name] = (model_class, build)
        return build
    return with_build


def register_preset(model: str, dataset: str, feature_set: str):
    """Decorator: `fn(root) -> RunConfig`, the run settings of `model` on dataset/feature set."""
    check_choice("dataset", dataset, DATASETS)
    check_choice("feature set", feature_set, FEATURE_SETS)
    return _registrar(_PRESETS, (model, dataset, feature_set), "preset")


def model_names() -> list[str]:
    return list(_MODELS)


def presets() -> list[tuple[str, str, str]]:
    """Every registered (model, dataset, feature set)."""
    return list(_PRESETS)


def _unknown_model(name: str) -> ConfigError:
    return ConfigError(f"unknown model '{name}'{did_you_mean(name, _MODELS)}; expected one of "
                       f"{sorted(_MODELS)}")


def get_preset(model: str, dataset: str, feature_set: str, root: str = "") -> RunConfig:
    """The registered run configuration of `model` on dataset/feature set, with
    data.root = `root`, data.dataset = `dataset` and model.name = `model`."""
    if model not in _MODELS:
        raise _unknown_model(model)
    check_choice("feature set", feature_set, FEATURE_SETS)
    key = (model, dataset, feature_set)
    if key not in _PRESETS:
        key = (model, DATASET_FALLBACK.get(dataset, dataset), feature_set)
    if key not in _PRESETS:
        valid = sorted((d, f) for m, d, f in _PRESETS if m == model)
        raise ConfigError(f"model '{model}' has no preset for {dataset}/{feature_set}; "
                          f"valid (dataset, feature set) choices: {valid}")
    cfg = _PRESETS[key](root)
    return cfg.replace(data=dataclasses.replace(cfg.data, root=root, dataset=dataset,
                                                feature_set=feature_set),
                       model=dataclasses.replace(cfg.model, name=model))


def model_class(name: str) -> type:
    """The class of model `name` (its `input_kind`, `uses_training_classes`)."""
    if name not in _MODELS:
        raise _unknown_model(name)
    return _MODELS[name][0]


def build_model(name: str, model_config: ModelConfig, loss_config: LossConfig | None = None):
    """Builds the registered model `name` from its configuration."""
    model_class(name)  # an unknown name raises
    return _MODELS[name][1](model_config, loss_config or LossConfig())
