"""Model registry: `build_model(name, model_config, loss_config)` -> GZSLModel.

Add a model by adding one module to this package that registers its build
function and presets with `avca_tf.models.registry` (every module here is
imported below), or by one line in MODELS: name -> factory(model_config,
loss_config) returning a built `avca_tf.models.base.GZSLModel` (its weights
must exist on return so the optimizer and checkpoints can be set up).
"""
from __future__ import annotations

import importlib
import pkgutil

from avca_tf.config import LossConfig, ModelConfig
from avca_tf.models import avca
from avca_tf.models.ablations import ABLATIONS
from avca_tf.models.baselines import BASELINES

MODELS = {
    "avca": avca.build,
    **BASELINES,
    **ABLATIONS,
}


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")


def build_model(name: str, model_config: ModelConfig, loss_config: LossConfig | None = None):
    """Builds the registered model `name` from its configuration."""
    from avca_tf.models import registry
    return registry.build_model(name, model_config, loss_config)
