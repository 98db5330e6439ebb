"""The interface every GZSL model (AVCA, baselines, ablations) implements, and the
pieces that make models and layers Keras-serialisable.

The training loop, the GZSL evaluation, the SavedModel export and the TFX
components only talk to this interface, so a new model plugs into all of them.
Every registered model and layer is registered with Keras (`serializable`) and
has `get_config`, so `model.save("m.keras")` / `keras.saving.load_model` round-trip
it once `avca_tf.models` is imported.
"""
from __future__ import annotations

import dataclasses
import os
import tempfile

import keras

from avca_tf.config import LossConfig, ModelConfig
from avca_tf.models.distances import pairwise_l2

PACKAGE = "avca_tf"


def serializable(cls):
    """Class decorator: registers `cls` with Keras as "avca_tf>ClassName"."""
    return keras.saving.register_keras_serializable(package=PACKAGE)(cls)


class GZSLModel(keras.Model):
    """A model scoring audio-visual samples against class label embeddings.

    `input_kind` names how it reads a video (avca_tf.inputs): "averaged" (one vector
    per modality; batches from avca_tf.data.batching.sampling: `audio`, `video`,
    `text` (label embedding of the sample's class), `label`, and the same keys
    prefixed with `neg_` for a sample of another class) or "sequences" (padded
    per-step features with masks and step times, no negatives). With
    `uses_training_classes` the batches also carry `class_text` [K, text_dim], the
    training classes' vectors (sorted ids), and `class_index` [B], each label's
    position among them.
    """

    input_kind = "averaged"
    uses_training_classes = False

    def compute_losses(self, batch, training=True):
        """Returns a dict of scalar loss terms, including "total"."""
        raise NotImplementedError

    def embed(self, audio, video, training=False):
        """The audio-visual embedding [B, D] that is compared with classes.

        Sequence models (`input_kind = "sequences"`) take padded [B, T, D] features
        and the keywords audio_mask, audio_time, video_mask, video_time."""
        raise NotImplementedError

    def embed_classes(self, class_embeddings, training=False):
        """Class label embeddings [C, text_dim] projected into the joint space [C, D]."""
        raise NotImplementedError

    def class_distances(self, audio, video, class_embeddings, training=False, **seq):
        """Distances [B, C] (smaller = more likely); prediction is the argmin.

        `seq`: a sequence model's masks and step times, passed on to `embed`."""
        return pairwise_l2(self.embed(audio, video, training=training, **seq),
                           self.embed_classes(class_embeddings, training=training))


class ConfiguredModel(GZSLModel):
    """A GZSLModel built from its configuration: `__init__(model_config, loss_config)`.

    Its Keras config is the two dataclasses as dicts (plus name, dtype,
    trainable), so `from_config` rebuilds the same layers, which the saved
    weights then fill. Subclasses build their layers in `__init__` after
    calling this one and set `default_name`.
    """

    default_name: str | None = None

    def __init__(self, model_config: ModelConfig, loss_config: LossConfig | None = None,
                 **kwargs):
        super().__init__(name=kwargs.pop("name", None) or self.default_name, **kwargs)
        self.model_config = model_config
        self.loss_config = loss_config or LossConfig()

    def get_config(self):
        return {**super().get_config(), "model_config": dataclasses.asdict(self.model_config),
                "loss_config": dataclasses.asdict(self.loss_config)}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        model_config = ModelConfig(**config.pop("model_config"))
        loss_config = LossConfig(**config.pop("loss_config"))
        return cls(model_config, loss_config, **config)


# Layer groups introduced after runs were saved (issue 26: layers.FeedForward in the
# attention blocks, heads.ProjectionHeads in TCaF and ClipClap-GZSL). A weights file written
# before has the same layers, by the same names, one level up.
REGROUPED = ("ff", "projection")


def _own_variables_by_names(h5):
    """{(layer name, its sublayer's name, ...): the group of that layer's own variables} of a
    Keras weights file (each layer's `vars` group carries the layer's name)."""
    out = {}

    def visit(path, obj):
        if not (path == "vars" or path.endswith("/vars")) or "name" not in obj.attrs:
            return
        parts = path.split("/")[:-1]
        names = []
        for i in range(len(parts) + 1):
            prefix = "/".join(parts[:i] + ["vars"])
            if prefix in h5 and "name" in h5[prefix].attrs:
                names.append(str(h5[prefix].attrs["name"]))
        out[tuple(names)] = obj
    h5.visititems(visit)
    return out


def load_weights(model, path: str) -> None:
    """`model.load_weights(path)`, also for a weights file saved before REGROUPED layers
    were grouped: its variables are matched to the model's by layer names."""
    try:
        model.load_weights(path)
        return
    except ValueError as error:
        layout_error = error
    import h5py
    with tempfile.TemporaryDirectory(prefix="avca-weights-") as tmp:
        current = os.path.join(tmp, "current.weights.h5")
        model.save_weights(current)   # the model's own layout, filled from the old file below
        with h5py.File(path, "r") as old_file, h5py.File(current, "r+") as new_file:
            old = _own_variables_by_names(old_file)
            for names, group in _own_variables_by_names(new_file).items():
                if not len(group):
                    continue   # a layer without variables of its own
                source = old.get(tuple(n for n in names if n not in REGROUPED))
                if source is None or sorted(source) != sorted(group):
                    raise layout_error
                for key in group:
                    if source[key].shape != group[key].shape:
                        raise layout_error
                    group[key][...] = source[key][...]
        model.load_weights(current)
