"""The two-stage GZSL protocol with resumable, atomic run directories.

RUN_DIR layout:
  config.json                     the RunConfig (a different one is refused)
  checkpoints/stage{1,2}/ckpt-N   after every epoch: model, optimizer, schedule, history
  logs/stage{1,2}/                TensorBoard scalars (loss terms, lr, val S/U/HM/ZSL)
  model/                          final weights + class names, label embeddings, test ids, beta
  results.json                    stage 1 per-epoch validation, best epoch and beta, test metrics

Stage 2 retrains from scratch on all stage-1 data for the best stage-1 epoch
count; train.stage2_lr picks its learning rates (replay stage 1's, constant, or a
plateau schedule on the stage-1 validation data, which stage 2 trains on: AVCA's
presets) and train.stage2_length its length (docs/training.md). Batches are stateless functions of (seed,
epoch, step) and every variable (dropout RNG states included) is
checkpointed, so a resumed run ends with the same results.json.
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass

import keras
import numpy as np
import tensorflow as tf

from avca_tf.config import RunConfig
from avca_tf.errors import ConfigError
from avca_tf.io_utils import atomic_path, write_json
from avca_tf.safe_load import load_npy
from avca_tf.models import build_model
from avca_tf.models.base import load_weights
from avca_tf.inputs import kind_of
from avca_tf.training.trainer import (DistanceFn, PlateauScheduler, Trainer, evaluate_gzsl,
                                      get_strategy, prepare_process, resolve_precision,
                                      set_learning_rate, worker_run_dir)

CONFIG_FILE = "config.json"
RESULTS_FILE = "results.json"
# wall seconds per part of the run (not in results.json, which is the same bits for a seed)
TIMING_FILE = "timing.json"
MODEL_DIR = "model"
WEIGHTS_FILE = "model.weights.h5"
CLASSES_FILE = "classes.json"
EMBEDDINGS_FILE = "label_embeddings.npy"


def _metrics_dict(res) -> dict:
    return {"S": float(res.S), "U": float(res.U), "HM": float(res.HM), "ZSL": float(res.ZSL)}


def validate_benchmark(benchmark, cfg: RunConfig) -> None:
    """The benchmark holds what the model's input kind reads; feature widths match the model;
    both stages have training samples and unseen classes."""
    kind_of(cfg.model.name).check_benchmark(benchmark, cfg)
    train = benchmark.splits["stage_1_train"]
    dims = (train.feature_dims if hasattr(train, "feature_dims")  # streamed: no arrays
            else (train.audio.shape[1], train.video.shape[1]))
    for modality, width, field in (("audio", dims[0], "audio_dim"),
                                   ("video", dims[1], "video_dim")):
        expected = getattr(cfg.model, field)
        if width != expected:
            raise ConfigError(
                f"{modality} features of {benchmark.dataset}/{benchmark.feature_set} are {width}-d "
                f"but the model expects {field}={expected} (preset {cfg.preset!r}); use the preset "
                f"of this feature set")
    text_dim = benchmark.label_embeddings.shape[1]
    if text_dim != cfg.model.text_dim:
        raise ConfigError(
            f"label embeddings of {benchmark.dataset}/{benchmark.feature_set} are {text_dim}-d "
            f"but the model expects text_dim={cfg.model.text_dim} (preset {cfg.preset!r}); use "
            f"the preset of this feature set")
    for stage, (seen_name, unseen_name) in ((1, ("stage_1_val_seen", "stage_1_val_unseen")),
                                            (2, ("stage_2_test_seen", "stage_2_test_unseen"))):
        data = benchmark.protocol(stage)
        if len(data.train) == 0:
            raise ConfigError(f"stage {stage} of {benchmark.dataset}/{benchmark.feature_set} has an "
                              f"empty training set ({data.train.name})")
        if len(data.unseen_class_ids) == 0 or len(data.eval_unseen) == 0:
            raise ConfigError(f"stage {stage} of {benchmark.dataset}/{benchmark.feature_set} has no "
                              f"unseen classes/samples in {unseen_name}: GZSL needs unseen classes")
        if len(data.seen_class_ids) == 0 or len(data.eval_seen) == 0:
            raise ConfigError(f"stage {stage} of {benchmark.dataset}/{benchmark.feature_set} has no "
                              f"seen classes/samples in {seen_name}")


def resolved_config(cfg: RunConfig) -> RunConfig:
    """`cfg` as a run on this machine executes it: train.precision "auto" resolved
    (trainer.resolve_precision); what config.json records and run dirs are compared by."""
    precision = resolve_precision(cfg.train.precision)
    return cfg if precision == cfg.train.precision else cfg.replace(train__precision=precision)


def config_diff(a: dict, b: dict, wanted: str = "requested", prefix="") -> list[str]:
    """'section.field: A (in run dir) vs B (<wanted>)' for each field where the config dicts
    `a` (a run dir's) and `b` differ."""
    out = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if isinstance(va, dict) and isinstance(vb, dict):
            out += config_diff(va, vb, wanted, f"{prefix}{key}.")
        elif va != vb:
            out.append(f"{prefix}{key}: {va!r} (in run dir) vs {vb!r} ({wanted})")
    return out


def read_run_json(path: str):
    """A JSON file of a run directory; ConfigError naming the file if it is damaged."""
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: damaged run file, not JSON ({e}); train into a new --out "
                          "(or restore the file)") from None


def read_run_config(path: str) -> RunConfig:
    data = read_run_json(path)
    try:
        return RunConfig.from_dict(data)
    except (TypeError, ValueError, KeyError, AttributeError) as e:
        raise ConfigError(f"{path}: damaged run configuration ({e}); train into a new --out") \
            from None


def load_weights_file(model, path: str) -> None:
    """models.base.load_weights (old layouts too) with a ConfigError naming a damaged or
    truncated file."""
    try:
        load_weights(model, path)
    except Exception as e:  # h5py/keras raise OSError, ValueError, KeyError... for damage
        raise ConfigError(f"{path}: damaged weights file ({type(e).__name__}: "
                          f"{str(e).splitlines()[0][:200] if str(e) else ''}); train again "
                          "(or restore the file)") from None


@contextlib.contextmanager
def claim_run_dir(run_dir: str, flag: str = "--out"):
    """The one-writer lock of a run directory, taken before any work (also refuses a
    path that is a file)."""
    from avca_tf.locking import check_dir_target, output_lock
    check_dir_target(run_dir, flag)
    with output_lock(run_dir, "run directory"):
        yield


def prepare_run_dir(run_dir: str, cfg: RunConfig, resume: bool) -> None:
    """Creates RUN_DIR/config.json, or checks that RUN_DIR holds this same config.
    Temporaries of a killed earlier writer (`.model.tmp-*`, ...) are removed."""
    from avca_tf.io_utils import remove_temporaries
    remove_temporaries(run_dir)
    path = os.path.join(run_dir, CONFIG_FILE)
    if os.path.exists(path):
        # fields added since the run was written compare by their defaults
        diff = config_diff(resolved_config(read_run_config(path)).to_dict(), cfg.to_dict())
        if diff:
            raise ConfigError(f"{run_dir} already holds a run with a different configuration "
                              f"({'; '.join(diff)}); choose another --out")
        if not resume:
            raise ConfigError(f"{run_dir} already holds a run with this configuration; pass "
                              f"--resume to continue it or choose another --out")
        return
    if os.path.isdir(run_dir) and os.listdir(run_dir):
        raise ConfigError(f"{run_dir} is not empty and holds no {CONFIG_FILE}; refusing to write "
                          f"a run into it")
    write_json(path, cfg.to_dict())


@contextlib.contextmanager
def _precision(precision: str):
    """precision "mixed": mixed_float16 on a GPU, mixed_bfloat16 on CPU; the previous policy
    is restored. ("bf16-matmul" is the Trainer's: it applies inside the training step only.)"""
    previous = keras.mixed_precision.global_policy()
    if precision == "mixed":
        gpu = bool(tf.config.list_physical_devices("GPU"))
        keras.mixed_precision.set_global_policy("mixed_float16" if gpu else "mixed_bfloat16")
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


KEPT_WEIGHTS = "kept.weights.h5"


def remove_checkpoint_temporaries(ckpt_dir: str) -> list[str]:
    """Removes what a killed save left in a checkpoint folder (TF's `ckpt-N_temp*`
    folders, a half-written kept-weights file); the run directory's lock is held."""
    import shutil
    removed = []
    if not os.path.isdir(ckpt_dir):
        return removed
    for name in sorted(os.listdir(ckpt_dir)):
        p = os.path.join(ckpt_dir, name)
        if "_temp" in name and name.startswith("ckpt-") and os.path.isdir(p):
            shutil.rmtree(p, ignore_errors=True)
            removed.append(name)
        elif name == KEPT_WEIGHTS + ".tmp.weights.h5":
            os.remove(p)
            removed.append(name)
    return removed


def _add_time(timing, key, t0):
    """timing[key] += the seconds since perf_counter() was t0; returns those seconds."""
    seconds = time.perf_counter() - t0
    timing[key] = timing.get(key, 0.0) + seconds
    return seconds


def _run_stage(stage, benchmark, cfg: RunConfig, run_dir, epochs, resume, lr_schedule=None,
               verbose=1, on_epoch_end=None, validate=None, keep_epoch=None, timing=None):
    """Trains one protocol stage; returns (model, history).

    `validate` (default: stage 1 only) evaluates the stage-1 validation data after every
    epoch; without `lr_schedule` the LR follows a plateau schedule on its HM. With
    `keep_epoch` < `epochs` the weights after that epoch are kept (a file beside the
    checkpoints) and are those of the returned model. Wall seconds of its parts are added
    to `timing` (stage<k>_{setup,train,validation,checkpoint}_s).
    """
    timing = {} if timing is None else timing
    t_setup = time.perf_counter()
    data = benchmark.protocol(stage)
    validate = stage == 1 if validate is None else validate
    val_data = benchmark.protocol(1) if validate else None
    emb = benchmark.label_embeddings
    keras.utils.set_random_seed(cfg.train.seed)
    batching = kind_of(cfg.model.name).batching(cfg, benchmark)
    with get_strategy(cfg.train.strategy).scope():  # distributed variables, if any
        model = build_model(cfg.model.name, cfg.model, cfg.loss)
        trainer = Trainer(model, cfg.train, data.train, emb, batching=batching)
    distance_fn = DistanceFn(model, cfg.train.eval_batch_size, batching) if validate else None
    plateau = PlateauScheduler(cfg.train.lr, cfg.train.lr_factor, cfg.train.lr_patience,
                               cfg.train.lr_threshold)
    state = tf.Variable(json.dumps({"epoch": 0, "history": [], "plateau": plateau.state}))
    ckpt = tf.train.Checkpoint(model=[v.value for v in model.variables],
                               optimizer=[v.value for v in trainer.optimizer.variables],
                               state=state)
    ckpt_dir = os.path.join(run_dir, "checkpoints", f"stage{stage}")
    remove_checkpoint_temporaries(ckpt_dir)
    manager = tf.train.CheckpointManager(ckpt, ckpt_dir, max_to_keep=2, checkpoint_name="ckpt")
    start, history = 0, []
    if resume and manager.latest_checkpoint:
        try:
            ckpt.restore(manager.latest_checkpoint).assert_existing_objects_matched()
            saved = json.loads(state.numpy().decode())
        except (tf.errors.OpError, ValueError, AssertionError, KeyError) as e:
            raise ConfigError(
                f"checkpoint {manager.latest_checkpoint} (files {manager.latest_checkpoint}.*) is "
                f"damaged ({type(e).__name__}: {str(e).splitlines()[0][:200]}); delete those "
                "files to resume from the checkpoint before, or train into a new --out") from None
        start, history, plateau.state = saved["epoch"], saved["history"], saved["plateau"]
        if verbose:
            print(f"stage {stage}: resumed after epoch {start} from {manager.latest_checkpoint}")
    writer = tf.summary.create_file_writer(os.path.join(run_dir, "logs", f"stage{stage}"))
    _add_time(timing, f"stage{stage}_setup_s", t_setup)
    for epoch in range(start, epochs):
        lr = lr_schedule[epoch] if lr_schedule is not None else plateau.state["lr"]
        set_learning_rate(trainer.optimizer, lr)
        if verbose:
            print(f"stage {stage} epoch {epoch + 1}/{epochs} (lr {lr:g})")
        t0 = time.perf_counter()
        losses = trainer.train_epoch(epoch, verbose=verbose)
        t_train = _add_time(timing, f"stage{stage}_train_s", t0)
        entry = {"epoch": epoch + 1, "lr": lr, "loss": losses}
        with writer.as_default(step=epoch + 1):
            for key, value in losses.items():
                tf.summary.scalar(f"loss/{key}", value)
            tf.summary.scalar("lr", lr)
            if validate:
                t0 = time.perf_counter()
                beta, res = evaluate_gzsl(distance_fn, val_data, emb,
                                          betas=cfg.train.beta_grid())
                t_eval = _add_time(timing, f"stage{stage}_validation_s", t0)
                entry.update(_metrics_dict(res), beta=float(beta))
                for key in ("S", "U", "HM", "ZSL"):
                    tf.summary.scalar(f"val/{key}", entry[key])
                tf.summary.scalar("val/beta", beta)
                tf.summary.scalar("time/eval_fraction", t_eval / (t_train + t_eval))
                plateau.step(entry["HM"])
                if verbose:
                    print(f"  val S {res.S:.4f} U {res.U:.4f} HM {res.HM:.4f} ZSL {res.ZSL:.4f} "
                          f"beta {beta:.2f} | train {t_train:.1f}s eval {t_eval:.2f}s")
            tf.summary.scalar("time/train_epoch_s", t_train)
        history.append(entry)
        t0 = time.perf_counter()
        if keep_epoch is not None and epoch + 1 == keep_epoch and keep_epoch < epochs:
            kept = os.path.join(run_dir, "checkpoints", f"stage{stage}", KEPT_WEIGHTS)
            os.makedirs(os.path.dirname(kept), exist_ok=True)  # epoch 1: no checkpoint yet
            model.save_weights(kept + ".tmp.weights.h5")
            os.replace(kept + ".tmp.weights.h5", kept)
        state.assign(json.dumps({"epoch": epoch + 1, "history": history, "plateau": plateau.state}))
        manager.save(checkpoint_number=epoch + 1)
        writer.flush()
        _add_time(timing, f"stage{stage}_checkpoint_s", t0)
        if on_epoch_end is not None:
            on_epoch_end(stage, entry)
    if keep_epoch is not None and keep_epoch < epochs:
        load_weights_file(model, os.path.join(run_dir, "checkpoints", f"stage{stage}", KEPT_WEIGHTS))
    return model, history


def best_epoch(history: list[dict]) -> dict:
    """The first epoch with the highest validation HM (as the reference's strict '>')."""
    best = history[0]
    for entry in history[1:]:
        if entry["HM"] > best["HM"]:
            best = entry
    return best


def stage2_epochs(best: int, train_cfg) -> int:
    """Stage-2 epochs trained: the best stage-1 epoch (1-based); with the TCaF quirk
    `stage2_all_epochs_when_best_first`, all epochs when the first was best
    (the authors' `if best_epoch:` on a 0-based epoch index). The model tested is
    the one after `best` stage-2 epochs either way (the authors' get_evaluation
    loads the stage-2 checkpoint of the best epoch), see `run_protocol`."""
    if train_cfg.stage2_all_epochs_when_best_first and best == 1:
        return train_cfg.epochs
    return best


def _save_model(run_dir, model, benchmark, data, beta) -> None:
    with atomic_path(os.path.join(run_dir, MODEL_DIR)) as tmp:
        os.makedirs(tmp)
        model.save_weights(os.path.join(tmp, WEIGHTS_FILE))
        np.save(os.path.join(tmp, EMBEDDINGS_FILE), benchmark.label_embeddings)
        with open(os.path.join(tmp, CLASSES_FILE), "w") as f:
            json.dump({"class_names": list(benchmark.class_names),
                       "seen_ids": [int(i) for i in data.seen_class_ids],
                       "unseen_ids": [int(i) for i in data.unseen_class_ids],
                       "beta": float(beta)}, f, indent=2)


def run_protocol(benchmark, cfg: RunConfig, run_dir: str, resume: bool = False,
                 verbose: int = 1, on_epoch_end=None, timing: dict | None = None) -> dict:
    """Stage 1, stage 2, test; returns (and writes) the results.json content.

    The wall seconds of each part (`timing`'s entries, e.g. the data loading, plus this
    process's stages, test evaluation and saving) go to timing.json beside it.

    `on_epoch_end(stage, entry)` is called after each epoch's checkpoint is written.
    With cfg.train.strategy "multi-worker" every worker calls this, each with its
    own run_dir (`train` gives the non-chief workers `run_dir`.worker<i>).
    """
    run_dir = os.path.abspath(run_dir)
    cfg.validate()
    cfg = resolved_config(cfg)  # precision "auto" -> this machine's; config.json says which
    validate_benchmark(benchmark, cfg)
    prepare_run_dir(run_dir, cfg, resume)
    results_path = os.path.join(run_dir, RESULTS_FILE)
    if resume and os.path.exists(results_path):
        return read_run_json(results_path)
    # the thread pools this process trains with (a run's bits depend on them)
    timing = dict(timing or {}, resumed=bool(resume), thread_pools={
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads()})
    t_start = time.perf_counter()
    with _precision(cfg.train.precision):
        _, history1 = _run_stage(1, benchmark, cfg, run_dir, cfg.train.epochs, resume,
                                 verbose=verbose, on_epoch_end=on_epoch_end, timing=timing)
        best = best_epoch(history1)
        n2 = best["epoch"]  # the stage-2 epoch whose weights are tested
        n_train2 = (cfg.train.epochs if cfg.train.stage2_length == "all"
                    else stage2_epochs(n2, cfg.train))
        schedule = {"replay": [h["lr"] for h in history1[:n_train2]],
                    "constant": [cfg.train.lr] * n_train2,
                    "validation": None}[cfg.train.stage2_lr]
        model, history2 = _run_stage(2, benchmark, cfg, run_dir, n_train2, resume,
                                     lr_schedule=schedule, verbose=verbose,
                                     on_epoch_end=on_epoch_end,
                                     validate=cfg.train.stage2_lr == "validation", keep_epoch=n2,
                                     timing=timing)
        t0 = time.perf_counter()
        test_data = benchmark.protocol(2)
        beta = best["beta"]
        test = evaluate_test(model, cfg, benchmark, beta)
        _add_time(timing, "test_evaluation_s", t0)
        t0 = time.perf_counter()
        _save_model(run_dir, model, benchmark, test_data, beta)
        _add_time(timing, "save_model_s", t0)
    results = {
        "dataset": benchmark.dataset, "feature_set": benchmark.feature_set,
        "text_pairing": benchmark.text_pairing, "model": cfg.model.name, "seed": cfg.train.seed,
        "stage1": {"best_epoch": best["epoch"], "beta": beta,
                   "best": {k: best[k] for k in ("S", "U", "HM", "ZSL")},
                   "epochs": history1},
        "stage2": {"epochs": history2,
                   **({"tested_epoch": n2} if cfg.train.stage2_length == "all"
                      or n_train2 != n2 else {})},
        "test": {**_metrics_dict(test), "beta": beta,
                 "num_seen_samples": len(test_data.eval_seen),
                 "num_unseen_samples": len(test_data.eval_unseen)},
    }
    timing["protocol_s"] = time.perf_counter() - t_start
    write_json(os.path.join(run_dir, TIMING_FILE), timing)
    write_json(results_path, results)  # last: marks the run finished
    if verbose:
        print(f"test S {test.S:.4f} U {test.U:.4f} HM {test.HM:.4f} ZSL {test.ZSL:.4f} "
              f"(beta {beta:.2f}, best stage-1 epoch {best['epoch']}, stage 2 {n2} epochs"
              f"{f' of {n_train2} trained' if n_train2 != n2 else ''}) "
              f"-> {results_path}")
    return results


def evaluate_test(model, cfg: RunConfig, benchmark, beta: float, label_embeddings=None):
    """The GZSLResult of `model` (a run of `cfg`) on the benchmark's test folders at `beta`
    (`label_embeddings`: the class vectors it scores against, default the benchmark's)."""
    distance_fn = DistanceFn(model, cfg.train.eval_batch_size,
                             kind_of(cfg.model.name).batching(cfg, benchmark))
    emb = benchmark.label_embeddings if label_embeddings is None else label_embeddings
    return evaluate_gzsl(distance_fn, benchmark.protocol(2), emb, beta=beta)[1]


@dataclass
class LoadedRun:
    """A finished run, rebuilt from RUN_DIR without reading the benchmark."""
    model: object
    run_config: RunConfig
    results: dict
    class_names: tuple
    label_embeddings: np.ndarray
    seen_ids: np.ndarray
    unseen_ids: np.ndarray
    beta: float


def load_run(run_dir: str) -> LoadedRun:
    """Rebuilds the final (stage-2) model of a finished run with its class data and beta."""
    missing = [p for p in (CONFIG_FILE, RESULTS_FILE, os.path.join(MODEL_DIR, WEIGHTS_FILE),
                           os.path.join(MODEL_DIR, CLASSES_FILE),
                           os.path.join(MODEL_DIR, EMBEDDINGS_FILE))
               if not os.path.exists(os.path.join(run_dir, p))]
    if missing:
        raise ConfigError(f"{run_dir} is not a finished run: missing {missing} "
                          f"(train it with `avca train --out {run_dir}`)")
    cfg = read_run_config(os.path.join(run_dir, CONFIG_FILE))
    results = read_run_json(os.path.join(run_dir, RESULTS_FILE))
    classes_path = os.path.join(run_dir, MODEL_DIR, CLASSES_FILE)
    classes = read_run_json(classes_path)
    if not isinstance(classes, dict) or not {"class_names", "seen_ids", "unseen_ids",
                                             "beta"} <= set(classes):
        raise ConfigError(f"{classes_path}: damaged run file, expected class_names, seen_ids, "
                          "unseen_ids and beta")
    emb_path = os.path.join(run_dir, MODEL_DIR, EMBEDDINGS_FILE)
    try:
        embeddings = np.asarray(load_npy(emb_path), np.float32)
    except Exception as e:  # numpy raises many types for damaged files
        raise ConfigError(f"{emb_path}: damaged run file ({e}); train again") from None
    model = build_model(cfg.model.name, cfg.model, cfg.loss)
    load_weights_file(model, os.path.join(run_dir, MODEL_DIR, WEIGHTS_FILE))  # old layouts too
    return LoadedRun(model=model, run_config=cfg, results=results,
                     class_names=tuple(classes["class_names"]),
                     label_embeddings=embeddings,
                     seen_ids=np.asarray(classes["seen_ids"], np.int64),
                     unseen_ids=np.asarray(classes["unseen_ids"], np.int64),
                     beta=float(classes["beta"]))


def load_data(cfg: RunConfig, stream: bool = True):
    """The Benchmark a RunConfig names: the TFRecords of data.tfrecords, else the h5 files
    under data.root. Sequences from TFRecords are streamed (an index of the records, see
    `avca_tf.data.formats.record_index`) unless `stream` is False."""
    kind = kind_of(cfg.model.name)
    kind.check_config(cfg)
    if cfg.data.tfrecords:
        from avca_tf.data.formats.tfrecord_input import load_benchmark_from_tfrecords
        bench = load_benchmark_from_tfrecords(cfg.data.tfrecords,
                                              text_pairing=cfg.data.text_pairing, stream=stream)
        if (bench.dataset, bench.feature_set) != (cfg.data.dataset, cfg.data.feature_set):
            raise ConfigError(f"{cfg.data.tfrecords} holds {bench.dataset}/{bench.feature_set}, "
                              f"not the requested {cfg.data.dataset}/{cfg.data.feature_set}")
        kind.check_benchmark(bench, cfg)
        return bench
    if not cfg.data.root:
        raise ConfigError("--root (or --tfrecords) is required")
    if kind.temporal:
        from avca_tf.data.formats.temporal import load_temporal_benchmark
        return load_temporal_benchmark(cfg.data.root, cfg.data.dataset, cfg.data.feature_set,
                                       text_pairing=cfg.data.text_pairing)
    from avca_tf.data.formats.benchmark import load_benchmark
    return load_benchmark(cfg.data.root, cfg.data.dataset, cfg.data.feature_set,
                          text_pairing=cfg.data.text_pairing)


def train(cfg: RunConfig, run_dir: str, resume: bool = False, verbose: int = 1) -> dict:
    """Loads the run's data and runs the two-stage protocol; results.json's content.
    The run directory is locked for this process before anything is read or written."""
    cfg.validate()
    prepare_process(cfg.train)  # before any TF op runs
    # collective ops are set up before any other TF op; non-chief workers write beside run_dir
    run_dir = worker_run_dir(os.path.abspath(run_dir), get_strategy(cfg.train.strategy))
    from avca_tf.locking import input_lock
    with claim_run_dir(run_dir), (input_lock(cfg.data.tfrecords, "TFRecords")
                                  if cfg.data.tfrecords else contextlib.nullcontext()):
        t0 = time.perf_counter()
        data = load_data(cfg)
        return run_protocol(data, cfg, run_dir, resume=resume, verbose=verbose,
                            timing={"load_data_s": time.perf_counter() - t0})


def reevaluate(run_dir: str, root: str | None = None):
    """(test GZSLResult recomputed from the saved weights, results.json's test dict, beta);
    `root`: the benchmark root if it moved since training."""
    import dataclasses
    loaded = load_run(run_dir)
    cfg = loaded.run_config
    if root:
        cfg = cfg.replace(data=dataclasses.replace(cfg.data, root=os.path.abspath(root),
                                                   tfrecords=None))
    res = evaluate_test(loaded.model, cfg, load_data(cfg), loaded.beta, loaded.label_embeddings)
    return res, loaded.results["test"], loaded.beta
