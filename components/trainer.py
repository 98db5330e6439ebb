"""AVCA trainer: the two-stage GZSL protocol as a Python-function component.

The standard TFX Trainer imports tensorflow_data_validation, which this
install does not have; this component takes its place with
the same outputs: `model` (a serving SavedModel under Format-Serving, what
Pusher pushes) and `model_run` (the run directory: TensorBoard logs,
results.json, config.json, checkpoints, weights).
"""
import hashlib
import json
import os

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts

from components.artifact_io import local_input, local_output
from components.artifacts import ClassEmbeddings
from avca_tf.io_utils import is_remote

RESUME = ".resume"  # <pipeline_root>/AvcaTrainer/.resume/<key>: unfinished training runs


def resume_dir(model_run_uri: str, examples_id: int, embeddings_id: int, run_config: str,
               word_vectors: str, code_version: str) -> str:
    key = hashlib.sha256(json.dumps([examples_id, embeddings_id, json.loads(run_config),
                                     word_vectors, code_version],
                                    sort_keys=True).encode()).hexdigest()[:16]
    node_dir = os.path.dirname(os.path.dirname(model_run_uri))
    return os.path.join(node_dir, RESUME, key)


@component
def AvcaTrainer(
    examples: InputArtifact[standard_artifacts.Examples],
    class_embeddings: InputArtifact[ClassEmbeddings],
    model: OutputArtifact[standard_artifacts.Model],
    model_run: OutputArtifact[standard_artifacts.ModelRun],
    run_config: Parameter[str],
    word_vectors: Parameter[str],
    code_version: Parameter[str],
):
    """`run_config`: the run's avca_tf.config.RunConfig as JSON (RunConfig.to_dict);
    `code_version`: a hash of the code that trains (part of the cache key). Its
    train.strategy "multi-worker" runs this component's container on every worker with
    TF_CONFIG set (e.g. a Vertex AI custom job / TFJob worker pool); "mirrored": all GPUs
    of the pod."""
    from avca_tf.training.trainer import get_strategy
    from components.train_step import train_and_export
    # collective ops are set up when the strategy is made: before any other TF op
    get_strategy(json.loads(run_config).get("train", {}).get("strategy", "default"))
    if is_remote(model_run.uri):
        with local_input(examples.uri) as ex_dir, local_input(class_embeddings.uri) as emb_dir, \
                local_output(model_run.uri) as run_dir, local_output(model.uri) as model_dir:
            results = train_and_export(ex_dir, emb_dir, run_config, run_dir, model_dir, word_vectors)
    else:
        # Train in a folder keyed by inputs and parameters, so a run killed during
        # training resumes from its last epoch checkpoint; it becomes the ModelRun
        # when finished.
        work = resume_dir(model_run.uri, examples.id, class_embeddings.id, run_config, word_vectors,
                          code_version)
        if os.path.isdir(work):
            print(f"AvcaTrainer: resuming the interrupted training in {work}", flush=True)
        results = train_and_export(examples.uri, class_embeddings.uri, run_config, work, model.uri,
                                   word_vectors, resume=True)
        os.replace(work, model_run.uri)  # model_run.uri is the empty folder TFX made
        print(f"AvcaTrainer: the finished run (results.json, TensorBoard logs) moved from "
              f"{work} to {model_run.uri}", flush=True)
    model_run.set_string_custom_property("tensorboard_logdir", model_run.uri)
    model_run.set_int_custom_property("best_epoch", int(results["stage1"]["best_epoch"]))
    model_run.set_float_custom_property("trainer_test_HM", 100.0 * results["test"]["HM"])
