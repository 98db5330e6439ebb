"""Typed settings of the TFX pipeline, one dataclass per concern.

Every field ends up either in the pipeline's structure (paths, names) or as a
component parameter, so it is visible in MLMD and in the compiled Kubeflow spec.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from avca_tf.config import (DATASETS, FEATURE_SETS, Dataset, FeatureSetName, RunConfig, check_choice,
                            check_serving_name, short_feature_set)
from avca_tf.errors import ConfigError
from avca_tf.io_utils import absolute, is_remote  # noqa: F401  (the runners' path helpers)

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")


@dataclass(frozen=True)
class DataSource:
    """The benchmark the ingestion component reads (published on-disk layout)."""
    root: str
    dataset: Dataset = "UCF"
    feature_set: FeatureSetName = "main_features"
    vectors_path: str = ""      # word vectors for the class-embedding job; "" = the benchmark's npy
    skip_invalid: bool = False  # ingestion: skip unreadable feature files instead of failing
    # Media input (`avca pipeline run --media DIR`): class folders of video files, extracted
    # by the FeatureExtraction component with these encoders; `root` then holds the class
    # lists and label embeddings (docs/media.md).
    media: str = ""
    image_encoder: str = ""     # keras-hub image preset or local preset directory
    audio_encoder: str = ""     # keras-hub Whisper preset or local preset directory

    def __post_init__(self):
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("feature set", self.feature_set, FEATURE_SETS)


@dataclass(frozen=True)
class PipelineConfig:
    """Where the pipeline reads, writes and pushes, and its blessing threshold."""
    data: DataSource
    pipeline_root: str
    serving_dir: str
    metadata_path: str = ""          # sqlite MLMD file (local runs); "" on Kubeflow
    pipeline_name: str = ""          # "" = <model>-<dataset>-<feature set>
    serving_name: str = ""           # serving_dir/<serving_name>/<version>/; "" = <model>[-<fs>]
    hm_threshold: float = 0.0        # test HM (percent) needed for a blessing
    run_config: RunConfig = field(default_factory=RunConfig)  # the trainer's, whole
    beam_pipeline_args: tuple[str, ...] = ()
    enable_cache: bool = True

    def __post_init__(self):
        # The names carry the model and the feature set: two models never share a
        # pipeline (MLMD context, blessing baseline) nor a serving model name.
        model = self.run_config.model.name
        if not self.serving_name:
            object.__setattr__(self, "serving_name",
                               default_serving_name(model, self.data.feature_set))
        check_serving_name(self.serving_name)
        check_pipeline_name(self.name)

    @property
    def name(self) -> str:
        return self.pipeline_name or default_pipeline_name(
            self.run_config.model.name, self.data.dataset, self.data.feature_set)

    @property
    def temporal(self) -> bool:
        """Whether the trained model reads per-step features (its input kind): what the
        ingestion component reads and writes."""
        from avca_tf.inputs import kind_of
        return kind_of(self.run_config.model.name).temporal

    def replace(self, **changes) -> "PipelineConfig":
        return dataclasses.replace(self, **changes)


def check_pipeline_name(name: str) -> str:
    if not _NAME.match(name) or len(name) > 200:
        raise ConfigError(f"--pipeline-name {name!r}: expected lower-case letters, digits "
                          "and '-', starting with a letter or digit")
    return name


def default_pipeline_name(model: str, dataset: str, feature_set: str) -> str:
    """One pipeline (MLMD context, blessing history) per model, dataset and feature set:
    `<model>-<dataset>-<features>`, e.g. avca-toy-main, tcaf-ucf-main."""
    return re.sub(r"[^a-z0-9-]+", "-",
                  f"{model}-{dataset}-{short_feature_set(feature_set)}".lower()).strip("-")


def default_serving_name(model: str, feature_set: str) -> str:
    """`<model>` on main_features, `<model>-<features>` otherwise (avca, tcaf, avca-cls,
    clipclap-clip-clap): one serving name per input signature."""
    return model if feature_set == "main_features" else f"{model}-{short_feature_set(feature_set)}"

