"""Registry of models and of their presets (the authors' run configurations).

A model module registers its build function and its presets:

    @register_model("tcaf")
    def build(model_config, loss_config) -> GZSLModel: ...      # built: weights exist

    @register_preset("tcaf", "UCF", "main_features")
    def _ucf_main(root: str) -> RunConfig: ...

`avca_tf.models` imports every module of the package, so adding a model is
adding one module. Models registered in `avca_tf.models.MODELS` (AVCA, the
baselines, the ablations) are looked up there too.
"""
from __future__ import annotations

from typing import Callable

from avca_tf.errors import ConfigError

_MODELS: dict[str, Callable] = {}
_PRESETS: dict[tuple[str, str, str], Callable] = {}


def register_model(name: str):
    """Decorator: `build(model_config, loss_config) -> GZSLModel` under `name`."""
    def deco(fn):
        if name in _MODELS and _MODELS[name] is not fn:
            raise ConfigError(f"model '{name}' is registered twice")
        _MODELS[name] = fn
        return fn
    return deco


def register_preset(model: str, dataset: str, feature_set: str):
    """Decorator: `fn(root: str) -> RunConfig`, the run configuration of model/dataset/features."""
    def deco(fn):
        _PRESETS[(model, dataset, feature_set)] = fn
        return fn
    return deco


def _all_models() -> dict[str, Callable]:
    import avca_tf.models as package  # imports every model module (registers them)
    return {**package.MODELS, **_MODELS}


def model_names() -> list[str]:
    return sorted(_all_models())


def presets() -> list[tuple[str, str, str]]:
    import avca_tf.models  # noqa: F401  (registers)
    return sorted(_PRESETS)


def get_preset(model: str, dataset: str, feature_set: str, root: str = ""):
    """The registered RunConfig of (model, dataset, feature_set)."""
    import avca_tf.models  # noqa: F401
    key = (model, dataset, feature_set)
    if key not in _PRESETS:
        have = sorted(k for k in _PRESETS if k[0] == model)
        raise ConfigError(f"no preset for model '{model}' on {dataset}/{feature_set}; "
                          f"registered: {have or 'none'}")
    return _PRESETS[key](root)


def has_preset(model: str, dataset: str, feature_set: str) -> bool:
    import avca_tf.models  # noqa: F401
    return (model, dataset, feature_set) in _PRESETS


def build_model(name: str, model_config, loss_config=None):
    """Builds the registered model `name` from its configuration."""
    from avca_tf.config import LossConfig
    models = _all_models()
    if name not in models:
        raise ConfigError(f"unknown model '{name}'; expected one of {sorted(models)}")
    return models[name](model_config, loss_config or LossConfig())
