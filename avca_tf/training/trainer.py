"""The custom training loop: class-aware batches, one compiled step, Adam with
coupled L2 weight decay, ReduceLROnPlateau on validation HM, batched evaluation.
"""
from __future__ import annotations

import contextlib
import math
import os
import sys

import keras
import numpy as np
import tensorflow as tf

from avca_tf.config import STRATEGIES, TrainConfig
from avca_tf.errors import ConfigError
from avca_tf.inputs import input_kind
from avca_tf.models.layers import matmul_dtype
from avca_tf.training.optimizers import CoupledAdam


class PlateauScheduler:
    """torch.optim.lr_scheduler.ReduceLROnPlateau(mode="max", threshold_mode="rel").

    The LR is multiplied by `factor` once the metric has not improved by more
    than `threshold` (relative) for more than `patience` epochs. Its state is a
    plain dict so it can be checkpointed.
    """

    def __init__(self, lr: float, factor: float = 0.1, patience: int = 3, threshold: float = 1e-4,
                 min_lr: float = 0.0, eps: float = 1e-8):
        self.factor, self.patience, self.threshold, self.min_lr, self.eps = (
            factor, patience, threshold, min_lr, eps)
        self.state = {"lr": float(lr), "best": -math.inf, "num_bad_epochs": 0}

    def step(self, value: float) -> float:
        """Records one epoch's metric; returns the LR for the next epoch."""
        s = self.state
        if value > s["best"] * (1.0 + self.threshold):  # -inf stays -inf before the first epoch
            s["best"], s["num_bad_epochs"] = float(value), 0
        else:
            s["num_bad_epochs"] += 1
        if s["num_bad_epochs"] > self.patience:
            new_lr = max(s["lr"] * self.factor, self.min_lr)
            if s["lr"] - new_lr > self.eps:
                s["lr"] = new_lr
            s["num_bad_epochs"] = 0
        return s["lr"]


def make_optimizer(cfg: TrainConfig):
    """Adam with coupled L2 (epsilon as torch); wrapped for dynamic loss scaling under float16."""
    opt = CoupledAdam(learning_rate=cfg.lr, l2=cfg.weight_decay, epsilon=cfg.adam_epsilon)
    if keras.mixed_precision.global_policy().compute_dtype == "float16":
        opt = keras.optimizers.LossScaleOptimizer(opt)
    return opt


def configure_threads(intra_op_threads: int, inter_op_threads: int) -> tuple[int, int]:
    """Sets TensorFlow's intra-op and inter-op pool sizes (TrainConfig.intra_op_threads,
    inter_op_threads; 0: TF's default) if this process has not run a TF op yet; returns the
    sizes in effect, after a warning for each that could not be changed any more (e.g.
    several runs in one process)."""
    pools = (("intra_op", intra_op_threads, tf.config.threading.get_intra_op_parallelism_threads,
              tf.config.threading.set_intra_op_parallelism_threads),
             ("inter_op", inter_op_threads, tf.config.threading.get_inter_op_parallelism_threads,
              tf.config.threading.set_inter_op_parallelism_threads))
    in_effect = []
    for name, wanted, get, set_ in pools:
        current = get()
        if current != wanted:
            try:
                set_(wanted)
                current = wanted
            except RuntimeError:
                import sys
                print(f"warning: TensorFlow already runs with {name}_threads={current}; "
                      f"train.{name}_threads={wanted} not applied in this process",
                      file=sys.stderr)
        in_effect.append(current)
    return tuple(in_effect)


_CPU_BF16_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_bf16_units(cpuinfo: str | None = None) -> str | None:
    """The CPU's bfloat16 matmul units by /proc/cpuinfo flag ("amx_bf16" or "avx512_bf16",
    AMX first), or None (none, or no /proc/cpuinfo). `cpuinfo`: that file's text."""
    if cpuinfo is None:
        try:
            with open("/proc/cpuinfo") as f:
                cpuinfo = f.read()
        except OSError:
            return None
    flags = set(cpuinfo.split())
    return next((f for f in _CPU_BF16_FLAGS if f in flags), None)


def resolve_precision(precision: str) -> str:
    """TrainConfig.precision with "auto" made concrete for this machine: "bf16-matmul" on a
    CPU with bfloat16 units (cpu_bf16_units) and no GPU, else "float32"; other values as
    they are."""
    if precision != "auto":
        return precision
    if tf.config.list_physical_devices("GPU") or cpu_bf16_units() is None:
        return "float32"
    return "bf16-matmul"


def warn_if_bf16_is_emulated(precision: str) -> None:
    """A warning when precision "bf16-matmul" runs on a CPU without bfloat16 instructions
    (AMX or AVX512-BF16; Linux flags) and no GPU: oneDNN then emulates it, slower than
    float32 (pass --precision float32 or auto)."""
    if precision != "bf16-matmul" or tf.config.list_physical_devices("GPU"):
        return
    if not os.path.exists("/proc/cpuinfo"):
        return
    if cpu_bf16_units() is None:
        import sys
        print("warning: train.precision bf16-matmul on a CPU without AMX/AVX512-BF16 is "
              "emulated and slower than float32; pass --precision auto or float32",
              file=sys.stderr)


def prepare_process(cfg: TrainConfig) -> tuple[int, int]:
    """What a process does before it loads a run's data or runs any TF op: the run's thread
    pools (a run's bits depend on them) and the bf16 warning. Every entry point that trains
    calls it: `avca train` (protocol.train), sweep/reproduce workers (beam.sweep.train_run),
    the TFX Trainer (components.train_step) and `avca pipeline run`, whose local Trainer
    shares the CLI process. Returns the (intra-op, inter-op) pool sizes in effect."""
    threads = configure_threads(cfg.intra_op_threads, cfg.inter_op_threads)
    warn_if_bf16_is_emulated(cfg.precision)
    return threads


_STRATEGIES: dict = {}


def get_strategy(name: str = "default") -> tf.distribute.Strategy:
    """The process's tf.distribute strategy for TrainConfig.strategy (one instance per name).

    "default": no distribution. "mirrored": MirroredStrategy over all local
    GPUs (or the CPU). "multi-worker": MultiWorkerMirroredStrategy; every
    worker process runs the same command with TF_CONFIG naming the cluster
    and its own task.
    """
    if name not in STRATEGIES:
        raise ConfigError(f"strategy must be one of {list(STRATEGIES)}, got {name!r}")
    if name == "default":
        return tf.distribute.get_strategy()
    if name not in _STRATEGIES:
        if name == "multi-worker":
            cluster, task = check_tf_config()
            with _worker_watchdog(cluster, task):
                _STRATEGIES[name] = tf.distribute.MultiWorkerMirroredStrategy()
        else:
            _STRATEGIES[name] = tf.distribute.MirroredStrategy()
    return _STRATEGIES[name]


_TF_CONFIG_EXAMPLE = ('{"cluster": {"worker": ["host1:port", "host2:port"]}, '
                      '"task": {"type": "worker", "index": 0}}')
WORKER_WAIT_S = 600.0  # default of AVCA_WORKER_WAIT_S


def check_tf_config() -> tuple[dict, dict]:
    """(cluster, task) of TF_CONFIG for --strategy multi-worker; ConfigError naming what is
    wrong (not JSON, no workers, a task type the cluster lacks, an index out of range)."""
    import json
    import os
    raw = os.environ.get("TF_CONFIG", "")
    try:
        spec = json.loads(raw) if raw else {}
    except ValueError as e:
        raise ConfigError(f"TF_CONFIG is not JSON ({e}); expected e.g. {_TF_CONFIG_EXAMPLE}") \
            from None
    cluster = spec.get("cluster") if isinstance(spec, dict) else None
    if not isinstance(cluster, dict) or not (cluster.get("worker") or cluster.get("chief")):
        raise ConfigError("--strategy multi-worker needs TF_CONFIG with a cluster and this "
                          f"process's task, e.g. {_TF_CONFIG_EXAMPLE}")
    for kind, addresses in cluster.items():
        if not isinstance(addresses, list) or not all(
                isinstance(a, str) and a.rpartition(":")[2].isdigit() for a in addresses):
            raise ConfigError(f"TF_CONFIG cluster[{kind!r}]: expected a list of 'host:port', "
                              f"got {addresses!r}")
    task = spec.get("task")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise ConfigError(f"TF_CONFIG has no task {{\"type\": ..., \"index\": ...}} naming this "
                          f"process; expected e.g. {_TF_CONFIG_EXAMPLE}")
    kind, index = task["type"], task["index"]
    if kind not in cluster:
        raise ConfigError(f"TF_CONFIG task type {kind!r} is not in the cluster "
                          f"({sorted(cluster)})")
    if not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise ConfigError(f"TF_CONFIG task index {index!r} is out of range: the cluster has "
                          f"{len(cluster[kind])} {kind} task(s), indices 0..{len(cluster[kind]) - 1}")
    return cluster, task


# The watchdog process of `_worker_watchdog`: argv = parent pid, seconds, message. It ends
# when its stdin closes (the parent is past the wait, or gone); at the deadline, or on
# Ctrl-C (SIGINT reaches the whole foreground process group), it prints the message and
# kills the parent, which sits in C++ where Python signal handlers never run.
_WATCHDOG = """
import os, select, signal, sys
pid, wait_s, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
def stop(text, *_):
    print(text, file=sys.stderr, flush=True)
    try:
        os.kill(pid, signal.SIGKILL)
    finally:
        os._exit(0)
signal.signal(signal.SIGINT, lambda *a: stop("interrupted while waiting for the other workers"))
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
ready, _, _ = select.select([sys.stdin], [], [], wait_s)
if not ready:
    stop(message)
"""


@contextlib.contextmanager
def _worker_watchdog(cluster: dict, task: dict):
    """Bounds the wait of MultiWorkerMirroredStrategy for the other workers (a silent hang
    in C++ before: no timeout, SIGTERM taken by TF's preemption notifier, SIGINT never seen
    by Python). A small watchdog process kills this one after AVCA_WORKER_WAIT_S seconds
    (default 600) with an `error:` line naming the missing workers, or at once on Ctrl-C."""
    import os
    import sys
    try:
        wait_s = float(os.environ.get("AVCA_WORKER_WAIT_S", WORKER_WAIT_S))
        if not wait_s > 0:
            raise ValueError
    except ValueError:
        raise ConfigError(f"AVCA_WORKER_WAIT_S={os.environ['AVCA_WORKER_WAIT_S']!r}: expected "
                          "seconds > 0") from None
    me = f"{task['type']} {task['index']}"
    peers = ", ".join(f"{k} {i} ({a})" for k, addrs in cluster.items()
                      for i, a in enumerate(addrs) if (k, i) != (task["type"], task["index"]))
    message = (f"error: multi-worker training ({me}): the other workers ({peers}) did not all "
               f"join within {wait_s:.0f}s (AVCA_WORKER_WAIT_S); start every worker of "
               "TF_CONFIG with the same command, or check their addresses")
    print(f"multi-worker training ({me}): waiting up to {wait_s:.0f}s (AVCA_WORKER_WAIT_S) for "
          f"{peers}", file=sys.stderr, flush=True)
    # posix_spawn, not fork: fork handlers of TF's gRPC would run in this process
    read_end, write_end = os.pipe()
    try:
        pid = os.posix_spawn(sys.executable, [sys.executable, "-c", _WATCHDOG, str(os.getpid()),
                                              str(wait_s), message], os.environ,
                             file_actions=[(os.POSIX_SPAWN_DUP2, read_end, 0),
                                           (os.POSIX_SPAWN_CLOSE, write_end)])
    finally:
        os.close(read_end)
    try:
        yield
    finally:
        os.close(write_end)
        os.waitpid(pid, 0)


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """True except on the non-chief workers of a multi-worker strategy."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not resolver.cluster_spec().as_dict():
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    return task_type == "chief" or (task_type == "worker" and task_id == 0
                                    and "chief" not in resolver.cluster_spec().as_dict())


def worker_run_dir(run_dir: str, strategy: tf.distribute.Strategy) -> str:
    """`run_dir` on the chief; `run_dir`.worker<i> on the other workers of a multi-worker
    strategy (every worker checkpoints, only the chief's run dir is the run)."""
    if is_chief(strategy):
        return run_dir
    resolver = strategy.cluster_resolver
    return f"{run_dir.rstrip('/')}.{resolver.task_type}{resolver.task_id}"


def set_learning_rate(optimizer, lr: float) -> None:
    inner = getattr(optimizer, "inner_optimizer", optimizer)
    inner.learning_rate.assign(lr)


class Trainer:
    """Trains `model` on one Split with class-aware batches.

    The step gathers its batch from the full feature matrices (passed as
    arguments, not captured), runs model.compute_losses under a GradientTape
    and applies CoupledAdam (torch's Adam with weight decay).

    With a distribution strategy (cfg.strategy; model built in its scope) each
    of the R replicas takes its 1/R slice of the sampler's global batch, its
    loss is divided by R, and the optimizer all-reduces (sums) the gradients
    before the unchanged CoupledAdam update.
    The batches are the `batching`'s (avca_tf.inputs; default: the model's input kind
    with no run settings, enough for averaged vectors): what it gathers from the
    sampler's indices and the split's tensors inside the step. A model's
    `after_step(batch)`, if it has one, runs after each update.
    """

    def __init__(self, model, cfg: TrainConfig, split, label_embeddings, seed: int | None = None,
                 optimizer=None, batching=None):
        self.model, self.cfg = model, cfg
        self.strategy = get_strategy(cfg.strategy)
        self.replicas = self.strategy.num_replicas_in_sync
        if cfg.strategy != "default":
            if cfg.batch_size % self.replicas:
                raise ConfigError(f"batch_size {cfg.batch_size} is not divisible by the "
                                  f"{self.replicas} replicas of strategy {cfg.strategy!r}")
            if cfg.jit_compile:
                raise ConfigError(f"jit_compile is not supported with strategy {cfg.strategy!r}")
        seed = cfg.seed if seed is None else seed
        batching = batching or input_kind(model.input_kind).batching(None, None)
        source = batching.training_input(split, label_embeddings, model.uses_training_classes)
        self._gather, self._data = source.gather, source.tensors
        if source.streams and cfg.strategy != "default":
            raise ConfigError(f"streaming from TFRecords trains with strategy 'default' "
                              f"only, got {cfg.strategy!r}")
        self.sampler = source.sampler(split.labels, cfg.batch_size, cfg.n_batches, seed,
                                      split_name=f"training set {split.name}")
        with self.strategy.scope():
            self.optimizer = optimizer or make_optimizer(cfg)
            self.optimizer.build(model.trainable_variables)
        if cfg.strategy != "default":
            self._step_fn = tf.function(self._distributed_step)
        elif cfg.jit_compile and batching.gather_outside_xla:
            # padded lengths vary per batch: gather and pad outside XLA, compile the update
            # once per padded shape (few with data.pad_multiple buckets)
            update = tf.function(self._update, jit_compile=True)
            self._step_fn = tf.function(lambda indices, *data: update(
                self._gather(indices, *data)), reduce_retracing=source.streams)
        else:
            # streamed batches bring tables of varying sizes: one trace with unknown sizes
            self._step_fn = tf.function(self._step, jit_compile=cfg.jit_compile,
                                        reduce_retracing=source.streams)

    def _step(self, indices, *data):
        return self._update(self._gather(indices, *data))

    def _update(self, batch):
        variables = self.model.trainable_variables
        scaled = isinstance(self.optimizer, keras.optimizers.LossScaleOptimizer)
        bf16 = "bfloat16" if resolve_precision(self.cfg.precision) == "bf16-matmul" else None
        with tf.GradientTape() as tape, matmul_dtype(bf16):
            losses = self.model.compute_losses(batch, training=True)
            loss = losses["total"]
            if self.replicas > 1:  # the all-reduced sum of the gradients is the global mean's
                loss = loss / self.replicas
            loss = self.optimizer.scale_loss(loss) if scaled else loss
        grads = tape.gradient(loss, variables)
        # variables no active loss term reaches get no gradient and are left
        # alone, as torch leaves parameters whose .grad is None
        pairs = [(g, v) for g, v in zip(grads, variables) if g is not None]
        self.optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
        if hasattr(self.model, "after_step"):
            with matmul_dtype(bf16):
                self.model.after_step(batch)
        return losses

    def _replica_indices(self, indices):
        """Per-replica values: replica r gets rows [r*B/R, (r+1)*B/R) of the global batch."""
        per = self.cfg.batch_size // self.replicas

        def part(ctx):
            start = ctx.replica_id_in_sync_group * per
            return {k: v[start:start + per] for k, v in indices.items()}
        return self.strategy.experimental_distribute_values_from_function(part)

    def _distributed_step(self, indices, *data):
        per_replica = self.strategy.run(self._step, args=(self._replica_indices(indices), *data))
        return {k: self.strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None)
                for k, v in per_replica.items()}

    def train_step(self, indices):
        """One optimisation step on the batch `indices` (dict from the sampler)."""
        return self._step_fn(indices, *self._data)

    def train_epoch(self, epoch: int, verbose: int = 1) -> dict[str, float]:
        """Runs `n_batches` steps; returns the mean of every loss term."""
        # a bar (carriage returns, colour codes) on a terminal; one plain line per epoch in a
        # log file or a pipe
        display = verbose if not verbose or sys.stdout.isatty() else 2
        bar = keras.utils.Progbar(self.cfg.n_batches, verbose=display, unit_name="step")
        sums = None
        for i, indices in enumerate(self.sampler.epoch_dataset(epoch)):
            losses = self.train_step(indices)
            sums = dict(losses) if sums is None else {k: sums[k] + v for k, v in losses.items()}
            if verbose and ((i + 1) % 20 == 0 or i + 1 == self.cfg.n_batches):
                bar.update(i + 1, [("loss", float(losses["total"]))])
        means = {k: float(v) / self.cfg.n_batches for k, v in sums.items()}
        if not np.isfinite(means["total"]):
            from avca_tf.errors import TrainingDivergedError
            raise TrainingDivergedError(
                f"training diverged in epoch {epoch + 1}: mean loss {means} (learning rate "
                f"{self.cfg.lr:g}); lower the learning rate (--lr) and train into a new "
                "output directory")
        return means


class DistanceFn:
    """Distances [n, C] of a split's samples to all class embeddings, in the evaluation
    batches of `batching` (avca_tf.inputs; default: the model's input kind with no run
    settings), one compiled call per batch."""

    def __init__(self, model, batch_size: int = 8192, batching=None):
        self.model, self.batch_size = model, batch_size
        self.batching = batching or input_kind(model.input_kind).batching(None, None)

        def distances(inputs, emb):
            audio, video, seq = self.batching.model_inputs(inputs)
            return model.class_distances(audio, video, emb, training=False, **seq)
        self._fn = tf.function(distances, reduce_retracing=True)

    def __call__(self, split, label_embeddings) -> np.ndarray:
        emb = tf.constant(label_embeddings, tf.float32)
        out = [self._fn(inputs, emb).numpy()[:n]
               for inputs, n in self.batching.eval_batches(split, self.batch_size)]
        return np.concatenate(out).astype(np.float32)


def evaluate_gzsl(distance_fn, data, label_embeddings, beta: float | None = None, betas=None):
    """GZSL metrics on data.eval_seen + data.eval_unseen (a ProtocolData).

    beta None: search it over `betas` (default metrics.BETAS) (validation);
    otherwise use it (test). Returns (beta, GZSLResult).
    """
    from avca_tf.metrics import BETAS, gzsl_metrics, search_beta
    labels = np.concatenate([data.eval_seen.labels, data.eval_unseen.labels])
    distances = distance_fn(data.eval_split(), label_embeddings)
    if beta is None:
        return search_beta(distances, labels, data.seen_class_ids, data.unseen_class_ids,
                           BETAS if betas is None else betas)
    return beta, gzsl_metrics(distances, labels, data.seen_class_ids, data.unseen_class_ids, beta)
