"""Feature extraction: video files -> a benchmark root of features (a MediaFeatures artifact).

A class-based Beam component (like ingestion) running avca_tf.beam.extract.run_extract
with the pipeline's `beam_pipeline_args`; ingestion then reads its output instead of a
benchmark root. Cached like the others: its parameters hold the code version (a hash of
the avca_tf and components sources), the encoders' identity (presets and the digests of
local preset files) and a fingerprint of the video files, so new code, other encoders
or changed videos extract again.
"""
import json

from tfx.dsl.components.base import base_beam_component, base_beam_executor, executor_spec
from tfx.types import artifact_utils
from tfx.types.channel import Channel
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.artifacts import MediaFeatures


class FeatureExtractionSpec(ComponentSpec):
    PARAMETERS = {
        "videos": ExecutionParameter(type=str),       # class folders of video files
        "splits": ExecutionParameter(type=str),       # benchmark root with the class lists
        "dataset": ExecutionParameter(type=str),
        "feature_set": ExecutionParameter(type=str),
        "skip_invalid": ExecutionParameter(type=int),
        "encoders": ExecutionParameter(type=str),     # JSON: run_extract's encoder_args
        "encoder_identity": ExecutionParameter(type=str),  # JSON: presets + file digests
        "code_version": ExecutionParameter(type=str),
        "input_fingerprint": ExecutionParameter(type=str),  # of the video files
    }
    INPUTS = {}
    OUTPUTS = {"features": ChannelParameter(type=MediaFeatures)}


class FeatureExtractionExecutor(base_beam_executor.BaseBeamExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        from avca_tf.beam.extract import run_extract
        out = artifact_utils.get_single_instance(output_dict["features"])
        report = run_extract(exec_properties["dataset"], out.uri,
                             videos=exec_properties["videos"],
                             splits=exec_properties["splits"],
                             feature_set=exec_properties["feature_set"],
                             encoder_args=json.loads(exec_properties["encoders"]),
                             beam_args=tuple(self._beam_pipeline_args),
                             skip_invalid=bool(exec_properties["skip_invalid"]))
        out.set_int_custom_property("videos", int(report["videos"]))
        out.set_int_custom_property("windows", int(report["windows"]))
        out.set_int_custom_property("skipped", len(report["skipped"]))


class FeatureExtraction(base_beam_component.BaseBeamComponent):
    """Runs avca_tf.beam.extract.run_extract; output `features` (a benchmark root)."""
    SPEC_CLASS = FeatureExtractionSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(FeatureExtractionExecutor)

    def __init__(self, videos: str, splits: str, dataset: str, feature_set: str,
                 encoders: dict, encoder_identity: dict, code_version: str,
                 skip_invalid: bool = False, input_fingerprint: str = ""):
        super().__init__(spec=FeatureExtractionSpec(
            videos=videos, splits=splits, dataset=dataset, feature_set=feature_set,
            skip_invalid=int(skip_invalid), encoders=json.dumps(encoders, sort_keys=True),
            encoder_identity=json.dumps(encoder_identity, sort_keys=True),
            code_version=code_version, input_fingerprint=input_fingerprint,
            features=Channel(type=MediaFeatures)))
