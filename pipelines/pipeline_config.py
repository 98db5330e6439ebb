"""Typed settings of the TFX pipeline, one dataclass per concern.

Every field ends up either in the pipeline's structure (paths, names) or as a
component parameter, so it is visible in MLMD and in the compiled Kubeflow spec.
"""
from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field

from avca_tf.errors import ConfigError

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class DataSource:
    """The benchmark the ingestion component reads (published on-disk layout)."""
    root: str
    dataset: str = "UCF"
    feature_set: str = "main_features"
    vectors_path: str = ""      # word vectors for the class-embedding job; "" = the benchmark's npy
    skip_invalid: bool = False  # ingestion: skip unreadable feature files instead of failing


@dataclass(frozen=True)
class TrainerParams:
    """Hyperparameters of the AVCA trainer component (all concrete, no "default" markers)."""
    preset: str = "UCF-main"        # avca_tf.training.presets name: architecture, dropouts, BN momentum
    model: str = "avca"
    epochs: int = 50
    n_batches: int = 500
    batch_size: int = 256
    learning_rate: float = 1e-3
    seed: int = 42
    text_pairing: str = "own"       # "own" | "reference"
    strategy: str = "default"       # TrainConfig.strategy: "default" | "mirrored" | "multi-worker"

    def validate(self) -> "TrainerParams":
        for name in ("epochs", "n_batches", "batch_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"trainer {name} must be >= 1, got {getattr(self, name)}")
        if not self.learning_rate > 0:
            raise ConfigError(f"trainer learning_rate must be > 0, got {self.learning_rate}")
        if self.text_pairing not in ("own", "reference"):
            raise ConfigError(f"text_pairing must be 'own' or 'reference', "
                              f"got {self.text_pairing!r}")
        if self.strategy not in ("default", "mirrored", "multi-worker"):
            raise ConfigError(f"trainer strategy must be 'default', 'mirrored' or 'multi-worker', "
                              f"got {self.strategy!r}")
        return self


@dataclass(frozen=True)
class PipelineConfig:
    """Where the pipeline reads, writes and pushes, and its blessing threshold."""
    data: DataSource
    pipeline_root: str
    serving_dir: str
    metadata_path: str = ""          # sqlite MLMD file (local runs); "" on Kubeflow
    pipeline_name: str = ""          # "" = avca-<dataset>-<feature set>
    model_name: str = "avca"         # serving_dir/<model_name>/<version>/
    hm_threshold: float = 0.0        # test HM (percent) needed for a blessing
    trainer: TrainerParams = field(default_factory=TrainerParams)
    beam_pipeline_args: tuple[str, ...] = ()
    enable_cache: bool = True

    @property
    def name(self) -> str:
        name = self.pipeline_name or default_pipeline_name(self.data.dataset, self.data.feature_set)
        if not _NAME.match(name):
            raise ConfigError(f"pipeline name {name!r}: expected lower-case letters, digits "
                              "and '-'")
        return name

    def replace(self, **changes) -> "PipelineConfig":
        return dataclasses.replace(self, **changes)


def default_pipeline_name(dataset: str, feature_set: str) -> str:
    """One pipeline (MLMD context, blessing history) per dataset and feature set."""
    short = feature_set.replace("_features", "")
    return re.sub(r"[^a-z0-9-]+", "-", f"avca-{dataset}-{short}".lower()).strip("-")


def is_remote(path: str) -> bool:
    return "://" in path


def absolute(path: str) -> str:
    """Local paths become absolute (TFX stores URIs); remote URIs stay as they are."""
    return path if is_remote(path) else os.path.abspath(path)
