"""Model registry: `build_model(name, model_config, loss_config)` -> GZSLModel.

Models register through `avca_tf.models.registry` (`register_model`,
`register_preset`); every module of this package is imported here, so a new
model is one module. The older table MODELS (name -> factory(model_config,
loss_config) returning a built `avca_tf.models.base.GZSLModel`) holds AVCA,
the baselines and the ablations and every registered model.
"""
from __future__ import annotations

import importlib
import pkgutil

from avca_tf.config import LossConfig, ModelConfig
from avca_tf.errors import ConfigError
from avca_tf.models import avca, registry
from avca_tf.models.ablations import ABLATIONS
from avca_tf.models.baselines import BASELINES

MODELS = {
    "avca": avca.build,
    **BASELINES,
    **ABLATIONS,
}

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
MODELS.update({name: fn for name, fn in registry._BUILDERS.items() if name not in MODELS})


def build_model(name: str, model_config: ModelConfig, loss_config: LossConfig | None = None):
    """Builds the registered model `name` from its configuration."""
    if name not in MODELS:
        raise ConfigError(f"unknown model '{name}'; expected one of {sorted(MODELS)}")
    return MODELS[name](model_config, loss_config or LossConfig())
