"""Class embeddings: class names + word vectors -> one label vector per class.

A class-based Beam component (like ingestion) running
avca_tf.beam.embed_classes.run_embed_classes with the pipeline's
`beam_pipeline_args`; its output is the ClassEmbeddings artifact the trainer
and evaluator score classes with.
"""
from tfx.dsl.components.base import base_beam_component, base_beam_executor, executor_spec
from tfx.types import artifact_utils
from tfx.types.channel import Channel
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.artifacts import ClassEmbeddings


class ClassEmbeddingGenSpec(ComponentSpec):
    PARAMETERS = {
        "classes_file": ExecutionParameter(type=str),
        "vectors_path": ExecutionParameter(type=str),
        "input_fingerprint": ExecutionParameter(type=str),  # see FeatureIngestionSpec
    }
    INPUTS = {}
    OUTPUTS = {"class_embeddings": ChannelParameter(type=ClassEmbeddings)}


class ClassEmbeddingGenExecutor(base_beam_executor.BaseBeamExecutor):
    def Do(self, input_dict, output_dict, exec_properties):
        from avca_tf.beam.embed_classes import run_embed_classes
        out = artifact_utils.get_single_instance(output_dict["class_embeddings"])
        report = run_embed_classes(exec_properties["classes_file"], exec_properties["vectors_path"],
                                   out.uri, beam_args=tuple(self._beam_pipeline_args))
        out.set_int_custom_property("num_classes", int(report["n_classes"]))
        out.set_int_custom_property("dim", int(report["dim"]))
        out.set_string_custom_property("vectors_source", exec_properties["vectors_path"])
        out.set_string_custom_property("lookup", report["lookup"])
        out.set_int_custom_property("num_oov_tokens", len(report["oov_tokens"]))


class ClassEmbeddingGen(base_beam_component.BaseBeamComponent):
    """Runs avca_tf.beam.embed_classes.run_embed_classes; output `class_embeddings`."""
    SPEC_CLASS = ClassEmbeddingGenSpec
    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(ClassEmbeddingGenExecutor)

    def __init__(self, classes_file: str, vectors_path: str, input_fingerprint: str = ""):
        super().__init__(spec=ClassEmbeddingGenSpec(
            classes_file=classes_file, vectors_path=vectors_path,
            input_fingerprint=input_fingerprint,
            class_embeddings=Channel(type=ClassEmbeddings)))
