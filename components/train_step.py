"""What the trainer component does, as a plain function: protocol run + serving export."""
import dataclasses
import json
import os
import shutil
import tempfile

from avca_tf.config import RunConfig
from components.pipeline_data import load_pipeline_benchmark

SERVING_SUBDIR = "Format-Serving"  # where TFX's Pusher looks for the SavedModel in a Model


def run_config(run_config_json: str, bench, examples_dir: str) -> RunConfig:
    """The component's RunConfig reading the ingested examples, with the data's widths."""
    cfg = RunConfig.from_dict(json.loads(run_config_json))
    train = bench.splits["stage_1_train"]
    dims = (train.feature_dims if hasattr(train, "feature_dims")  # streamed sequences
            else (train.audio.shape[1], train.video.shape[1]))
    return cfg.replace(
        data=dataclasses.replace(cfg.data, root="", dataset=bench.dataset,
                                 feature_set=bench.feature_set, tfrecords=examples_dir),
        model=dataclasses.replace(cfg.model, audio_dim=int(dims[0]), video_dim=int(dims[1])))


def train_and_export(examples_dir: str, class_embeddings_dir: str, run_config_json: str,
                     run_dir: str, model_dir: str, word_vectors: str = "",
                     resume: bool = False) -> dict:
    """Runs the two-stage protocol into `run_dir` and exports its serving SavedModel
    to `model_dir`/Format-Serving; returns results.json's content.

    `resume`: continue the run already in `run_dir` from its last epoch checkpoint.
    """
    from avca_tf.serving.export import export_run
    from avca_tf.training.protocol import run_protocol
    from avca_tf.training.trainer import prepare_process
    requested = RunConfig.from_dict(json.loads(run_config_json))
    prepare_process(requested.train)  # before the examples are read
    pairing = requested.data.text_pairing
    bench = load_pipeline_benchmark(examples_dir, class_embeddings_dir, pairing)
    results = run_protocol(bench, run_config(run_config_json, bench, examples_dir), run_dir,
                           resume=resume)
    staging = tempfile.mkdtemp(prefix=".export-", dir=model_dir)
    try:
        version_dir = export_run(run_dir, staging, model_name="avca", version=1,
                                 word_vectors=word_vectors or None)
        os.replace(version_dir, os.path.join(model_dir, SERVING_SUBDIR))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return results
