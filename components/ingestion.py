"""Feature ingestion: the benchmark's h5 features (or, `temporal`, the per-step pickles of
sequence models) -> TFRecords (an Examples artifact).

A class-based Beam component rather than ImportExampleGen over a pre-made
output: the ingestion itself (validation, the stage/class structure, the
Beam job) then runs inside the pipeline with the pipeline's
`beam_pipeline_args` (DirectRunner locally, Dataflow/Flink when configured),
its inputs are recorded in MLMD and a changed benchmark re-runs it.
ImportExampleGen would only copy and re-split finished TFRecords, losing the
stage split the GZSL protocol depends on.
"""
import os

from tfx.dsl.components.base import base_beam_component, base_beam_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.channel import Channel
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from avca_tf.data.formats.benchmark import STAGES
from components.artifacts import MediaFeatures


class FeatureIngestionSpec(ComponentSpec):
    PARAMETERS = {
        "root": ExecutionParameter(type=str),
        "dataset": ExecutionParameter(type=str),
        "feature_set": ExecutionParameter(type=str),
        "skip_invalid": ExecutionParameter(type=int),
        # 1: the non-averaged per-step pickles of sequence models (`avca ingest --temporal`)
        "temporal": ExecutionParameter(type=int, optional=True),
        # Changes when a file under the benchmark changes, so the cache does
        # not serve TFRecords of older features ("" for remote roots).
        "input_fingerprint": ExecutionParameter(type=str),
    }
    # With media input: the extraction's benchmark root, read instead of `root`.
    INPUTS = {"features": ChannelParameter(type=MediaFeatures, optional=True)}
    OUTPUTS = {"examples": ChannelParameter(type=standard_artifacts.Examples)}


class FeatureIngestionExecutor(base_beam_executor.BaseBeamExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        from avca_tf.beam.ingest import run_ingest
        examples = artifact_utils.get_single_instance(output_dict["examples"])
        root = (artifact_utils.get_single_uri(input_dict["features"])
                if input_dict.get("features") else exec_properties["root"])
        meta = run_ingest(root, exec_properties["dataset"],
                          exec_properties["feature_set"], examples.uri,
                          beam_args=tuple(self._beam_pipeline_args),
                          skip_invalid=bool(exec_properties["skip_invalid"]),
                          temporal=bool(exec_properties.get("temporal") or 0))
        splits = [s for s in STAGES if os.path.isdir(os.path.join(examples.uri, s))]
        examples.split_names = artifact_utils.encode_split_names(splits)
        examples.set_string_custom_property("dataset", exec_properties["dataset"])
        examples.set_string_custom_property("feature_set", exec_properties["feature_set"])
        examples.set_int_custom_property("num_examples", int(meta["total"]))
        examples.set_int_custom_property("num_classes", len(meta["class_names"]))
        examples.set_int_custom_property("num_rejected", int(meta["rejected"]))
        examples.set_int_custom_property("temporal", int(bool(meta.get("temporal"))))


class FeatureIngestion(base_beam_component.BaseBeamComponent):
    """Runs avca_tf.beam.ingest.run_ingest; output `examples` (TFRecords per stage)."""
    SPEC_CLASS = FeatureIngestionSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(FeatureIngestionExecutor)

    def __init__(self, root: str, dataset: str, feature_set: str, skip_invalid: bool = False,
                 input_fingerprint: str = "", temporal: bool = False, features=None):
        # `temporal` only enters the spec when set, so averaged pipelines keep their cache keys
        super().__init__(spec=FeatureIngestionSpec(
            root=root, dataset=dataset, feature_set=feature_set, skip_invalid=int(skip_invalid),
            input_fingerprint=input_fingerprint, **({"temporal": 1} if temporal else {}),
            examples=Channel(type=standard_artifacts.Examples),
            **({"features": features} if features is not None else {})))
