"""The input-kind interface: everything that differs between the ways a model reads a video.

A model class declares its kind once (`input_kind = "averaged"`, the default of
GZSLModel, or `"sequences"`); the kind owns what follows from it:

  - `temporal`: which feature layout it reads (the per-step `_non_averaged`
    pickles/TFRecords or the averaged h5 files); `check_config` derives and checks
    `DataConfig.temporal` against it and `check_benchmark` a loaded benchmark;
  - `batching(run_config, benchmark)`: a `Batching`, which builds the training
    batches (in memory or streamed from TFRecords) and the evaluation batches;
  - `flops_inputs(run_config, batch_size, num_classes)`: the tensor specs of one
    video and of one training batch, for `avca stats`;
  - `serving_inputs(run_config)`: the feature inputs of the SavedModel's signatures.

Training, evaluation, serving, stats and the TFX components only call these, so a
new kind (raw media, say) is one module that subclasses InputKind and calls
`register_input_kind` (docs/ARCHITECTURE.md, "Adding an input kind").
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import tensorflow as tf

from avca_tf.errors import ConfigError
from avca_tf.models.registry import model_class

_KINDS: dict[str, "InputKind"] = {}


@dataclass
class TrainingInput:
    """What the Trainer needs from a kind for one training split."""
    sampler: Callable       # (labels, batch_size, n_batches, seed, split_name=) -> sampler
    gather: Callable        # (indices, *tensors) -> batch dict, inside the compiled step
    tensors: tuple          # the step's tensor arguments (features, labels, class tables)
    streams: bool = False   # batches are read from storage as they go (TFRecords)


class Batching:
    """A kind's batches for one run (built by `InputKind.batching`)."""

    # gather the batch outside XLA and compile only the update (`--jit-compile`): padded
    # shapes vary per batch
    gather_outside_xla = False

    def training_input(self, split, label_embeddings, training_classes: bool) -> TrainingInput:
        raise NotImplementedError

    def eval_batches(self, split, batch_size: int):
        """(inputs, n) per batch: the step arguments of `model_inputs` and how many of the
        distances' rows are the split's (the rest repeat a row to keep one shape)."""
        raise NotImplementedError

    def model_inputs(self, inputs) -> tuple:
        """(audio, video, keywords of model.embed / class_distances), inside tf.function."""
        raise NotImplementedError


class InputKind:
    name = ""
    temporal = False   # reads the per-step (non-averaged) feature layout

    def check_config(self, cfg) -> None:
        """The run's data settings fit this kind (DataConfig.temporal is derived from it)."""
        if bool(cfg.data.temporal) != self.temporal:
            raise ConfigError(
                f"model '{cfg.model.name}' reads {self.description} but data.temporal is "
                f"{cfg.data.temporal}; {'pass' if self.temporal else 'drop'} --temporal")

    def check_benchmark(self, benchmark, cfg) -> None:
        """A loaded benchmark holds the layout this kind reads, and the run's data settings
        say so (ConfigError otherwise)."""
        if getattr(benchmark, "temporal", False) != self.temporal:
            raise ConfigError(
                f"model '{cfg.model.name}' reads {self.description} but the "
                f"{benchmark.dataset}/{benchmark.feature_set} data read holds "
                f"{'averaged features' if self.temporal else 'per-step sequences'}; " + (
                    "read the non-averaged layout (--temporal; for TFRecords `avca ingest "
                    "--temporal`)" if self.temporal else "use a model that reads sequences "
                    "(--model tcaf) or the averaged features (no --temporal)"))
        self.check_config(cfg)

    description = ""

    def batching(self, cfg, benchmark) -> Batching:
        raise NotImplementedError

    def flops_inputs(self, cfg, batch_size: int, num_classes: int):
        """(specs of model.embed's inputs for one video, spec dict of one training batch,
        the `steps a/v` column or "")."""
        raise NotImplementedError

    def flops_rows(self, datasets: list) -> list:
        """The datasets `avca stats` gives a row each ([None]: one row for all)."""
        return [None]

    def serving_inputs(self, cfg):
        raise NotImplementedError


def register_input_kind(kind: InputKind) -> InputKind:
    if kind.name in _KINDS and type(_KINDS[kind.name]) is not type(kind):
        raise ConfigError(f"input kind {kind.name!r} is registered twice")
    _KINDS[kind.name] = kind
    return kind


def input_kind(name: str) -> InputKind:
    if name not in _KINDS:
        raise ConfigError(f"unknown input kind {name!r}; expected one of {sorted(_KINDS)}")
    return _KINDS[name]


def kind_of(model_name: str) -> InputKind:
    """The input kind of registered model `model_name` (its class's `input_kind`)."""
    return input_kind(model_class(model_name).input_kind)


def training_classes(labels, n_classes: int) -> tuple[tf.Tensor, tf.Tensor]:
    """The training classes' ids (sorted) and each class id's position among them (-1:
    not a training class): the tables behind `class_text` / `class_index`."""
    ids = np.unique(np.asarray(labels)).astype(np.int64)
    position = np.full(n_classes, -1, np.int64)
    position[ids] = np.arange(ids.size)
    return tf.constant(ids, tf.int64), tf.constant(position, tf.int64)


def add_training_classes(batch: dict, label_embeddings, ids, position) -> dict:
    """`class_text` [K, D] and `class_index` [B] of a batch (inside the compiled step)."""
    batch["class_text"] = tf.gather(label_embeddings, ids)
    batch["class_index"] = tf.gather(position, batch["label"])
    return batch


def class_specs(cfg, batch_size: int, num_classes: int) -> dict:
    """Specs of a batch's training-class tables (models with `uses_training_classes`)."""
    if not model_class(cfg.model.name).uses_training_classes:
        return {}
    return {"class_text": tf.TensorSpec([num_classes, cfg.model.text_dim], tf.float32),
            "class_index": tf.TensorSpec([batch_size], tf.int64)}
