"""What the trainer component does, as a plain function: protocol run + serving export."""
import dataclasses
import os
import shutil
import tempfile

from avca_tf.config import RunConfig
from avca_tf.training.presets import get_preset
from components.pipeline_data import load_pipeline_benchmark
from pipelines.pipeline_config import TrainerParams

SERVING_SUBDIR = "Format-Serving"  # where TFX's Pusher looks for the SavedModel in a Model


def run_config(params: TrainerParams, bench, examples_dir: str) -> RunConfig:
    """The preset's architecture with the component's hyperparameters and the data's widths."""
    cfg = get_preset(params.preset)
    return cfg.replace(
        data=dataclasses.replace(cfg.data, root="", dataset=bench.dataset,
                                 feature_set=bench.feature_set, text_pairing=params.text_pairing,
                                 tfrecords=examples_dir),
        model=dataclasses.replace(cfg.model, name=params.model,
                                  audio_dim=int(bench.splits["stage_1_train"].audio.shape[1]),
                                  video_dim=int(bench.splits["stage_1_train"].video.shape[1])),
        train=dataclasses.replace(cfg.train, epochs=params.epochs, n_batches=params.n_batches,
                                  batch_size=params.batch_size, lr=params.learning_rate,
                                  seed=params.seed, strategy=params.strategy))


def train_and_export(examples_dir: str, class_embeddings_dir: str, params: TrainerParams,
                     run_dir: str, model_dir: str, word_vectors: str = "",
                     resume: bool = False) -> dict:
    """Runs the two-stage protocol into `run_dir` and exports its serving SavedModel
    to `model_dir`/Format-Serving; returns results.json's content.

    `resume`: continue the run already in `run_dir` from its last epoch checkpoint.
    """
    from avca_tf.serving.export import export_run
    from avca_tf.training.protocol import run_protocol
    params.validate()
    bench = load_pipeline_benchmark(examples_dir, class_embeddings_dir, params.text_pairing)
    results = run_protocol(bench, run_config(params, bench, examples_dir), run_dir, resume=resume)
    staging = tempfile.mkdtemp(prefix=".export-", dir=model_dir)
    try:
        version_dir = export_run(run_dir, staging, model_name="avca", version=1,
                                 word_vectors=word_vectors or None)
        os.replace(version_dir, os.path.join(model_dir, SERVING_SUBDIR))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return results
