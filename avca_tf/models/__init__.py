"""Model registry: `build_model(name, model_config, loss_config)` -> GZSLModel.

Add a model by adding one line to MODELS: name -> factory(model_config,
loss_config) returning a built `avca_tf.models.base.GZSLModel` (its weights
must exist on return so the optimizer and checkpoints can be set up).
"""
from __future__ import annotations

from avca_tf.config import LossConfig, ModelConfig
from avca_tf.errors import ConfigError
from avca_tf.models import avca
from avca_tf.models.ablations import ABLATIONS
from avca_tf.models.baselines import BASELINES

MODELS = {
    "avca": avca.build,
    **BASELINES,
    **ABLATIONS,
}


def build_model(name: str, model_config: ModelConfig, loss_config: LossConfig | None = None):
    """Builds the registered model `name` from its configuration."""
    if name not in MODELS:
        raise ConfigError(f"unknown model '{name}'; expected one of {sorted(MODELS)}")
    return MODELS[name](model_config, loss_config or LossConfig())
