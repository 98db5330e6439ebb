"""One lookup for the run configuration of any registered model.

AVCA: the AVCA preset of the dataset and feature set (avca_tf.training.presets, UCF's
for datasets without one); ablations: derived from that preset
(ablations.preset); baselines: their own scripts' settings (baselines.preset).
`avca train --model NAME` and `avca reproduce` both start from here.
"""
from __future__ import annotations

import dataclasses

from avca_tf.training import presets
from avca_tf.config import RunConfig
from avca_tf.errors import ConfigError
from avca_tf.models import ablations, baselines


def avca_preset(dataset: str, feature_set: str, root: str = "") -> RunConfig:
    name = presets.preset_name(dataset, feature_set)
    if name not in presets.PRESETS:
        name = presets.preset_name("UCF", feature_set)
    cfg = presets.get_preset(name, root)
    return cfg.replace(data=dataclasses.replace(cfg.data, dataset=dataset))


def preset_for(model: str, dataset: str, feature_set: str, root: str = "") -> RunConfig:
    """The authors' run configuration of `model` on dataset/feature set.

    Models of the registry (avca_tf.models.registry) use their registered
    presets; a dataset without one (Toy) gets the UCF preset of that feature set.
    """
    from avca_tf.models import registry
    if model in registry._BUILDERS:
        if (model, dataset, feature_set) not in registry.presets():
            cfg = registry.get_preset(model, "UCF", feature_set, root)
            return cfg.replace(data=dataclasses.replace(cfg.data, dataset=dataset))
        return registry.get_preset(model, dataset, feature_set, root)
    if model == "avca":
        return avca_preset(dataset, feature_set, root)
    if model in ablations.ABLATIONS:
        return ablations.preset(model, avca_preset(dataset, feature_set, root))
    if model in baselines.BASELINES:
        return baselines.preset(model, dataset, feature_set, root)
    known = ["avca", *sorted(ablations.ABLATIONS), *sorted(baselines.BASELINES),
             *sorted(registry._BUILDERS)]
    raise ConfigError(f"unknown model '{model}'; expected one of {known}")
