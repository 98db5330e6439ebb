"""The Python API: `import avca_tf as avca` (README, "Python").

    root = avca.synthesize("bench")                       # the toy benchmark
    cfg = avca.run_config("avca", "Toy", root=root, schedule="quick")
    run = avca.train(cfg, "runs/avca")                    # -> avca.Run
    run.test["HM"], run.model, avca.evaluate(run)
    avca.export(run, "serving", keras=True)

The same code paths as the `avca` commands (one RunConfig, the two-stage
protocol, the SavedModel export), with two differences that suit a
notebook: a run on the toy benchmark gets the "toy" schedule unless another
is named (the command line runs the model's full preset), and `train` refuses
to run in a process whose TensorFlow thread pools are not the run's (the
command line warns), saying how to get them: a run's bits depend on them.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from avca_tf.config import DataConfig, RunConfig
from avca_tf.errors import ConfigError

__all__ = ["Run", "evaluate", "export", "load_benchmark", "load_model", "load_run",
           "model_names", "presets", "run_config", "set_threads", "synthesize", "train"]

TOY = "Toy"
FULL = "full"  # schedule: the preset's own training length


def synthesize(out, dataset: str = TOY, feature_set: str = "main_features", *,
               temporal: bool = False, seed: int = 0, scale: float = 1.0) -> str:
    """Writes a benchmark under `out` (the toy one by default; UCF, ActivityNet or
    VGGSound: the packaged real class splits with generated features) and returns
    `out`, the benchmark root every other function takes. `temporal`: per-step
    sequences (the layout sequence models such as "tcaf" read)."""
    from avca_tf.data.synthesis.synth import synthesize as write
    write(out, dataset=dataset, feature_set=feature_set, seed=seed, scale=scale,
          temporal=temporal)
    return os.path.abspath(out)


def load_benchmark(root, dataset: str = TOY, feature_set: str = "main_features", *,
                   temporal: bool = False, text_pairing: str = "own"):
    """The benchmark under `root`, read and validated as a run reads it (`.splits`,
    `.class_names`, `.label_embeddings`, `.protocol(stage)`)."""
    from avca_tf.training.protocol import load_data
    data = DataConfig(root=os.path.abspath(root), dataset=dataset, feature_set=feature_set,
                      temporal=temporal, text_pairing=text_pairing)
    return load_data(RunConfig(data=data))


def model_names() -> list[str]:
    """The registered models ("avca", the baselines, the ablations, "tcaf", "clipclap")."""
    from avca_tf.models import model_names as names
    return names()


def presets(model: str | None = None) -> list[tuple[str, str, str]]:
    """Every registered (model, dataset, feature set), or only `model`'s."""
    from avca_tf.models import presets as registered
    return [p for p in registered() if model is None or p[0] == model]


def run_config(model: str = "avca", dataset: str = TOY, feature_set: str = "main_features", *,
               root="", schedule: str | None = None, **overrides) -> RunConfig:
    """The RunConfig of `model` on dataset/feature set: its registered preset, then
    `schedule`, then `overrides` ("section__field=value", e.g. train__seed=1,
    data__text_pairing="reference"; see avca_tf.config).

    `schedule`: "quick" (2 epochs x 5 batches), "toy" (4 x 40) or "full" (the
    preset's own length); default "toy" on the Toy benchmark, else "full".
    """
    from avca_tf.training.presets import SCHEDULES, RunOverrides, run_config as resolve
    schedule = schedule or (SCHEDULES[1] if dataset == TOY else FULL)
    if schedule not in (*SCHEDULES, FULL):
        raise ConfigError(f"unknown schedule {schedule!r}; expected one of "
                          f"{[*SCHEDULES, FULL]}")
    cfg = resolve(dataset, feature_set,
                  RunOverrides(model=model, schedule=None if schedule == FULL else schedule),
                  root=os.path.abspath(root) if root else "")
    try:
        return cfg.replace(**overrides).validate()
    except (TypeError, KeyError, ValueError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"bad override in {sorted(overrides)}: {e}; expected "
                          f"section__field=value with a section of data, model, loss, "
                          f"train") from None


def set_threads(intra_op: int = 1, inter_op: int = 1) -> tuple[int, int]:
    """Sets TensorFlow's intra-op and inter-op thread pools of this process (0: TF's
    default, one per core); returns them. TensorFlow fixes them at its first op, so
    call this (or `train`) before any other TensorFlow code; afterwards it raises
    ConfigError saying how to proceed unless the pools already are these."""
    import tensorflow as tf
    current = (tf.config.threading.get_intra_op_parallelism_threads(),
               tf.config.threading.get_inter_op_parallelism_threads())
    if current == (intra_op, inter_op):
        return current
    try:
        tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError:
        raise ConfigError(
            f"TensorFlow already runs in this process with intra_op_threads={current[0]}, "
            f"inter_op_threads={current[1]} (0: one per core), and a run's bits depend on "
            f"them; this run wants {intra_op}, {inter_op}. Either restart the Python process "
            f"(kernel) and call avca.set_threads({intra_op}, {inter_op}) or avca.train() "
            f"before any other TensorFlow code, or accept this process's pools: "
            f"cfg.replace(train__intra_op_threads={current[0]}, "
            f"train__inter_op_threads={current[1]})") from None
    return intra_op, inter_op


@dataclass
class Run:
    """A finished run in `run_dir`: its configuration, results.json, the thread pools it
    trained with and (loaded on first use) its final model and class data."""
    run_dir: str
    config: RunConfig
    results: dict
    thread_pools: dict | None = None   # {"intra_op": n, "inter_op": n} (timing.json)
    _loaded: object = field(default=None, repr=False)

    @property
    def test(self) -> dict:
        """Test S, U, HM, ZSL (fractions), beta and sample counts."""
        return self.results["test"]

    @property
    def loaded(self):
        """avca_tf.training.protocol.LoadedRun: model, class names, label embeddings, beta."""
        if self._loaded is None:
            from avca_tf.training.protocol import load_run as load
            self._loaded = load(self.run_dir)
        return self._loaded

    @property
    def model(self):
        """The trained (stage-2) Keras model."""
        return self.loaded.model


def load_run(run_dir) -> Run:
    """The finished run in `run_dir` (written by `train` or `avca train`)."""
    from avca_tf.training.protocol import CONFIG_FILE, RESULTS_FILE, TIMING_FILE
    run_dir = os.path.abspath(run_dir)
    missing = [f for f in (CONFIG_FILE, RESULTS_FILE) if not os.path.isfile(
        os.path.join(run_dir, f))]
    if missing:
        raise ConfigError(f"{run_dir} is not a finished run: missing {missing}")
    with open(os.path.join(run_dir, CONFIG_FILE)) as f:
        config = RunConfig.from_dict(json.load(f))
    with open(os.path.join(run_dir, RESULTS_FILE)) as f:
        results = json.load(f)
    pools = None
    if os.path.isfile(os.path.join(run_dir, TIMING_FILE)):
        with open(os.path.join(run_dir, TIMING_FILE)) as f:
            pools = json.load(f).get("thread_pools")
    return Run(run_dir, config, results, pools)


def train(cfg: RunConfig, out, *, resume: bool = False, progress: bool = False) -> Run:
    """Runs the two-stage protocol of `cfg` into the new run directory `out` (or
    continues it with `resume`) and returns the finished Run. Sets the thread pools
    of `cfg.train` first, or raises ConfigError if this process's are others."""
    from avca_tf.training.protocol import train as run_protocol
    cfg.validate()
    set_threads(cfg.train.intra_op_threads, cfg.train.inter_op_threads)
    run_protocol(cfg, str(out), resume=resume, verbose=1 if progress else 0)
    return load_run(out)


def _run(run) -> Run:
    return run if isinstance(run, Run) else load_run(run)


def evaluate(run, root=None) -> dict:
    """Test S, U, HM, ZSL recomputed from the run's saved weights (`run`: a Run or a run
    directory; `root`: the benchmark root if it moved since training)."""
    from avca_tf.training.protocol import reevaluate
    res, _, beta = reevaluate(_run(run).run_dir, str(root) if root else None)
    return {**{k: float(getattr(res, k)) for k in ("S", "U", "HM", "ZSL")}, "beta": beta}


def export(run, out, *, serving_name: str = "avca", version: int | None = None,
           keras: bool = False, **options) -> str:
    """A TF Serving SavedModel of the run: OUT/<serving_name>/<version>, as `avca export`
    (`options`: word_vectors, max_words, top_k, clip_preset, clap_savedmodel, ...);
    `keras`: also <version>/model.keras. Returns the version directory."""
    from avca_tf.serving.export import export_run
    return export_run(_run(run).run_dir, str(out), model_name=serving_name, version=version,
                      keras_file=keras, **options)


def load_model(path):
    """A model saved in Keras' format (`model.save("m.keras")`, `export(..., keras=True)`):
    a .keras file or an export version directory holding model.keras."""
    import keras

    import avca_tf.models  # noqa: F401  (registers the model classes with Keras)
    from avca_tf.serving.export import KERAS_FILE
    path = Path(path)
    if path.is_dir():
        path = path / KERAS_FILE
    if not path.is_file():
        raise ConfigError(f"{path}: no such Keras model file (write one with "
                          f"model.save('m.keras') or avca.export(run, out, keras=True))")
    return keras.saving.load_model(path)

