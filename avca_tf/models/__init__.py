"""The models and their registry (avca_tf.models.registry).

Importing this package imports every module in it, so each model module's
`register_model` / `register_preset` declarations take effect: adding a model
is adding one module here (docs/ARCHITECTURE.md, "Adding a model").
"""
from __future__ import annotations

import importlib
import pkgutil

# AVCA first, then the baselines and ablations: the order `avca stats` lists them in.
for _module in ("avca", "baselines", "ablations",
                *sorted(m.name for m in pkgutil.iter_modules(__path__))):
    importlib.import_module(f"{__name__}.{_module}")

from avca_tf.models.registry import (build_model, get_preset, model_names, presets,  # noqa: E402
                                     register_model, register_preset)

__all__ = ["build_model", "get_preset", "model_names", "presets", "register_model",
           "register_preset"]
