"""Model and preset registry.

A model module registers its build function and its presets:

    @register_model("clipclap")
    def build(model_config, loss_config) -> GZSLModel: ...     # built: weights exist

    @register_preset("clipclap", "UCF", "clip_clap")
    def ucf(root: str) -> RunConfig: ...

`avca_tf.models` imports every module of the package, so adding a model is
adding one module. Models of the older tables (avca_tf.models.MODELS) are
reachable through `build_model` too.
"""
from __future__ import annotations

from typing import Callable

from avca_tf.errors import ConfigError

_BUILDERS: dict[str, Callable] = {}
_PRESETS: dict[tuple[str, str, str], Callable] = {}


def register_model(name: str):
    """Decorator: `build(model_config, loss_config) -> GZSLModel` is the model `name`."""
    def deco(fn):
        if name in _BUILDERS and _BUILDERS[name] is not fn:
            raise ConfigError(f"model {name!r} is registered twice")
        _BUILDERS[name] = fn
        return fn
    return deco


def register_preset(model: str, dataset: str, feature_set: str):
    """Decorator: `fn(root) -> RunConfig` is the preset of model on dataset/feature set."""
    def deco(fn):
        _PRESETS[(model, dataset, feature_set)] = fn
        return fn
    return deco


def get_preset(model: str, dataset: str, feature_set: str, root: str = ""):
    """The registered RunConfig of model on dataset/feature set."""
    key = (model, dataset, feature_set)
    if key not in _PRESETS:
        have = sorted(p for p in _PRESETS if p[0] == model)
        raise ConfigError(f"no preset for model {model!r} on {dataset}/{feature_set}; "
                          f"registered: {have or 'none'}")
    return _PRESETS[key](root)


def build_model(name: str, model_config, loss_config=None):
    """Builds the registered model `name` (or one of avca_tf.models.MODELS)."""
    from avca_tf.config import LossConfig
    if name in _BUILDERS:
        return _BUILDERS[name](model_config, loss_config or LossConfig())
    from avca_tf import models
    if name in models.MODELS:
        return models.MODELS[name](model_config, loss_config or LossConfig())
    raise ConfigError(f"unknown model '{name}'; expected one of {model_names()}")


def model_names() -> list[str]:
    from avca_tf import models
    return sorted(set(_BUILDERS) | set(models.MODELS))


def presets() -> list[tuple[str, str, str]]:
    return sorted(_PRESETS)
