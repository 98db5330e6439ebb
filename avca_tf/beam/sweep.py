"""Beam job: many protocol runs (tables, sweeps), one element per run, on any Beam runner.

Each element is (run name, RunConfig); its run dir is OUT_ROOT/<run name>, on
any filesystem TensorFlow reads and writes (local, gs://, ...). A worker
that gets an element

- skips it when results.json is there (the run is finished),
- resumes it from its last epoch checkpoint when config.json is there,
- trains it otherwise, with `avca_tf.training.protocol.run_protocol`.

A run dir whose config.json is not the element's RunConfig is neither skipped
nor resumed: the driver (and the worker, under the run dir's lock) raises
ConfigError naming the differing fields (`check_run_config`).

A run dir has one writer at a time: on a local filesystem the worker holds
an exclusive lock on RUN_DIR.lock (fcntl.flock) while it trains; a second
worker waits, then finds results.json and skips. On an object store (gs://)
the worker trains in a local folder and uploads it after every epoch
(results.json last, so it marks a complete run); there is no lock there,
the runner gives each element to one worker at a time.

Runs are seeded (TrainConfig.seed), so a run's results.json is the same bit
for bit whichever worker, process or machine trained it.

Default runner: DirectRunner in multi_processing mode with one worker per
core; any other runner through standard Beam pipeline options.
"""
from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import time
from typing import Callable, Sequence

import apache_beam as beam
from apache_beam.options.pipeline_options import DirectOptions, StandardOptions

from avca_tf.beam import beam_io
from avca_tf.config import RunConfig
from avca_tf.errors import AvcaError, ConfigError

RUN_LOCK_WAIT_S = 7 * 24 * 3600.0  # a run of the paper's schedule takes hours


@dataclasses.dataclass(frozen=True)
class SweepRun:
    """One protocol run of a sweep: its run dir is OUT_ROOT/`name` ('/'-separated)."""
    name: str
    config: RunConfig


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """What a worker did with one run."""
    name: str
    status: str          # "finished" (results.json was there), "trained" or "resumed"
    seconds: float
    worker: str          # host:pid of the worker process


def join(root: str, name: str) -> str:
    return root.rstrip("/") + "/" + name.strip("/")


def run_dir(out_root: str, name: str) -> str:
    return join(out_root, name)


def _gfile():
    import tensorflow as tf
    return tf.io.gfile


def is_finished(path: str) -> bool:
    """True when the run dir holds results.json (written last by run_protocol)."""
    from avca_tf.training.protocol import RESULTS_FILE
    return _gfile().exists(join(path, RESULTS_FILE))


def read_results(path: str) -> dict | None:
    """results.json of a finished run dir, None if the run is not finished."""
    from avca_tf.training.protocol import RESULTS_FILE
    if not is_finished(path):
        return None
    with _gfile().GFile(join(path, RESULTS_FILE)) as f:
        return json.load(f)


def check_run_config(path: str, config: RunConfig) -> None:
    """Raises ConfigError when the run dir holds a config.json other than `config` (a run
    of another configuration, which must not be reused or resumed); no config.json: no run."""
    from avca_tf.training.protocol import CONFIG_FILE, config_diff, resolved_config
    config_path = join(path, CONFIG_FILE)
    if not _gfile().exists(config_path):
        return
    try:
        with _gfile().GFile(config_path) as f:
            existing = RunConfig.from_dict(json.load(f))
    except (ValueError, TypeError, ConfigError) as e:
        raise ConfigError(f"{config_path} is not a readable run config ({e}); choose another "
                          f"--out or delete {path}") from e
    # compared after from_dict: fields added since the run was written take their defaults
    # and with precision "auto" as this machine resolves it (config.json records it resolved)
    diff = config_diff(resolved_config(existing).to_dict(), resolved_config(config).to_dict(),
                       "planned")
    if diff:
        more = f"; and {len(diff) - 3} more" if len(diff) > 3 else ""
        raise ConfigError(f"{path} holds a run of another configuration "
                          f"({'; '.join(diff[:3])}{more}); it is not reused: choose another "
                          f"--out or delete that run dir")


def sweep_options(beam_args: Sequence[str] = ()):
    """Pipeline options: the given ones, and for DirectRunner (the default) multi_processing
    mode with one worker per core unless --direct_running_mode/--direct_num_workers say
    otherwise."""
    args = list(beam_args)
    options = beam_io.pipeline_options(args)
    if options.view_as(StandardOptions).runner in ("DirectRunner", "BundleBasedDirectRunner"):
        direct = options.view_as(DirectOptions)
        if not any(a.startswith("--direct_running_mode") for a in args):
            direct.direct_running_mode = "multi_processing"
        if (not any(a.startswith("--direct_num_workers") for a in args)
                and direct.direct_running_mode != "in_memory"):
            direct.direct_num_workers = os.cpu_count() or 1
    return options


def describe_runner(options) -> str:
    runner = options.view_as(StandardOptions).runner
    if runner == "DirectRunner":
        direct = options.view_as(DirectOptions)
        return (f"DirectRunner ({direct.direct_running_mode}, "
                f"{direct.direct_num_workers} worker(s))")
    return str(runner)


def run_dir_lock(path: str):
    """The run directory's owner lock (avca_tf.locking), waiting while another worker holds
    it; object stores are not locked."""
    from avca_tf.locking import output_lock
    return output_lock(path, "run directory", wait_s=RUN_LOCK_WAIT_S)


class _RemoteMirror:
    """A local working copy of a run dir on an object store: `pull` copies what is there
    (an interrupted run), `push` uploads new or changed files (results.json last)."""

    def __init__(self, remote: str):
        from avca_tf.training.protocol import RESULTS_FILE
        self.remote, self.results = remote.rstrip("/"), RESULTS_FILE
        self.local = tempfile.mkdtemp(prefix="avca-run-")
        self._sent: dict = {}

    def pull(self) -> None:
        gfile = _gfile()
        if not gfile.exists(self.remote):
            return
        for folder, _, files in gfile.walk(self.remote):
            rel = folder[len(self.remote):].lstrip("/")
            os.makedirs(os.path.join(self.local, rel), exist_ok=True)
            for name in files:
                dst = os.path.join(self.local, rel, name)
                gfile.copy(f"{folder.rstrip('/')}/{name}", dst, overwrite=True)
                st = os.stat(dst)
                self._sent[os.path.join(rel, name)] = (st.st_size, st.st_mtime_ns)

    def push(self, final: bool = False) -> None:
        last = []
        for folder, _, files in os.walk(self.local):
            rel = os.path.relpath(folder, self.local)
            for name in files:
                key = os.path.normpath(os.path.join(rel, name))
                st = os.stat(os.path.join(folder, name))
                if self._sent.get(key) == (st.st_size, st.st_mtime_ns):
                    continue
                if key == self.results:
                    last.append(key)
                    continue
                self._upload(key)
                self._sent[key] = (st.st_size, st.st_mtime_ns)
        if final:
            for key in last:
                self._upload(key)

    def _upload(self, key: str) -> None:
        gfile = _gfile()
        dst = f"{self.remote}/{key.replace(os.sep, '/')}"
        gfile.makedirs(dst.rsplit("/", 1)[0])
        gfile.copy(os.path.join(self.local, key), dst, overwrite=True)

    def close(self) -> None:
        shutil.rmtree(self.local, ignore_errors=True)


def train_run(out_root: str, run: SweepRun, cache: dict | None = None,
              log: Callable[[str], None] = print) -> RunOutcome:
    """Trains (or resumes, or skips) one run into OUT_ROOT/run.name; see the module doc."""
    import socket

    from avca_tf.training.protocol import CONFIG_FILE, load_data, run_protocol
    from avca_tf.training.trainer import prepare_process
    prepare_process(run.config.train)  # before any TF op of this worker process
    path = run_dir(out_root, run.name)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    t0 = time.perf_counter()
    with run_dir_lock(path):
        check_run_config(path, run.config)
        if is_finished(path):
            return RunOutcome(run.name, "finished", 0.0, worker)
        resume = _gfile().exists(join(path, CONFIG_FILE))
        key = (run.config.data.root, run.config.data.dataset, run.config.data.feature_set,
               run.config.data.text_pairing, run.config.data.tfrecords)
        cache = {} if cache is None else cache
        if key not in cache:
            cache.clear()  # one benchmark in memory per worker
            cache[key] = load_data(run.config)
        log(f"[sweep] {run.name}: {'resuming' if resume else 'training'} in {path} ({worker})")

        mirror = None if beam_io.is_local(path) else _RemoteMirror(path)

        def on_epoch_end(stage, entry):
            log(f"[sweep] {run.name}: stage {stage} epoch {entry['epoch']} "
                f"loss {entry['loss']['total']:.4f}"
                + (f" val HM {entry['HM']:.4f}" if "HM" in entry else ""))
            if mirror is not None:
                mirror.push()
        try:
            if mirror is not None:
                mirror.pull()
            res = run_protocol(cache[key], run.config, path if mirror is None else mirror.local,
                               resume=resume, verbose=0, on_epoch_end=on_epoch_end)
            if mirror is not None:
                mirror.push(final=True)
        finally:
            if mirror is not None:
                mirror.close()
    seconds = time.perf_counter() - t0
    t = res["test"]
    log(f"[sweep] {run.name}: done in {seconds:.0f}s, test HM {100 * t['HM']:.2f} "
        f"ZSL {100 * t['ZSL']:.2f}")
    return RunOutcome(run.name, "resumed" if resume else "trained", seconds, worker)


class TrainRunFn(beam.DoFn):
    """(run name, RunConfig JSON) -> RunOutcome JSON; keeps one benchmark per worker."""

    def __init__(self, out_root: str, verbose: bool = True):
        self.out_root, self.verbose = out_root, verbose

    def setup(self):
        self._cache = {}

    def process(self, element):
        name, config_json = element
        run = SweepRun(name, RunConfig.from_dict(json.loads(config_json)))
        outcome = train_run(self.out_root, run, self._cache,
                            log=(lambda line: print(line, flush=True)) if self.verbose
                            else (lambda line: None))
        yield json.dumps(dataclasses.asdict(outcome), sort_keys=True)


def build_pipeline(p: beam.Pipeline, runs: Sequence[SweepRun], out_root: str, report: str,
                   verbose: bool = True):
    """One element per run, keyed by its index so runners spread them over workers
    (DirectRunner deals distinct keys round-robin); outcomes to `report` (JSON lines)."""
    elements = [(i, (r.name, json.dumps(r.config.to_dict(), sort_keys=True)))
                for i, r in enumerate(runs)]
    (p
     | "Runs" >> beam.Create(elements, reshuffle=False)
     | "Spread" >> beam.GroupByKey()
     | "Unkey" >> beam.FlatMap(lambda kv: kv[1])
     | "Train" >> beam.ParDo(TrainRunFn(out_root, verbose))
     | "Report" >> beam.io.WriteToText(report))


def check_runs(runs: Sequence[SweepRun]) -> None:
    names = [r.name for r in runs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"run names must be unique, repeated: {dupes}")
    for r in runs:
        if not r.name or r.name.startswith("/") or ".." in r.name.split("/"):
            raise ConfigError(f"run name {r.name!r} must be a relative path inside the output root")


def remove_dead_sweep_dirs(out_root: str, log=print) -> list[str]:
    """Removes the `.sweep-<pid>-<time>` work folders of killed sweeps (local roots; the
    pid is no live process) from `out_root`; returns their names."""
    import re
    if "://" in out_root or not os.path.isdir(out_root):
        return []
    removed = []
    for name in sorted(os.listdir(out_root)):
        m = re.fullmatch(r"\.sweep-(\d+)-\d+", name)
        if not m:
            continue
        try:
            os.kill(int(m.group(1)), 0)
            continue  # a sweep still running
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        beam_io.delete_tree(join(out_root, name))
        log(f"[sweep] removed {name}, left by a killed sweep")
        removed.append(name)
    return removed


def run_sweep(runs: Sequence[SweepRun], out_root: str, beam_args: Sequence[str] = (),
              log: Callable[[str], None] = print, verbose: bool = True) -> list[RunOutcome]:
    """Runs every unfinished run of `runs` as one Beam job; returns an outcome per run
    (finished ones are skipped by the driver without starting a job). A run dir of another
    configuration is a ConfigError before any job starts. `log` gets the driver's lines;
    `verbose` False silences the workers' per-epoch lines."""
    check_runs(runs)
    options = sweep_options(beam_args)
    outcomes, todo = {}, []
    for r in runs:
        path = run_dir(out_root, r.name)
        check_run_config(path, r.config)
        if is_finished(path):
            log(f"[sweep] {r.name}: finished run in {path}")
            outcomes[r.name] = RunOutcome(r.name, "finished", 0.0, "driver")
        else:
            todo.append(r)
    if todo:
        log(f"[sweep] {len(todo)} of {len(runs)} runs to train on {describe_runner(options)} "
            f"-> {out_root}")
        remove_dead_sweep_dirs(out_root, log)
        work = join(out_root, f".sweep-{os.getpid()}-{int(time.time())}")
        t0 = time.perf_counter()
        try:
            with beam.Pipeline(options=options) as p:
                build_pipeline(p, todo, out_root, join(work, "outcomes"), verbose)
            for row in beam_io.read_json_lines(join(work, "outcomes*")):
                outcomes[row["name"]] = RunOutcome(**row)
        except AvcaError:
            raise
        except Exception as e:  # a worker killed or lost, the runner failing
            first = str(e).strip().splitlines()[0][:300] if str(e).strip() else ""
            raise beam_io.PipelineError(
                f"the sweep job failed ({type(e).__name__}: {first}); runs that finished are "
                f"kept under {out_root}: run the same command again to train the others "
                "(AVCA_DEBUG=1 shows the runner's traceback)") from e
        finally:
            beam_io.delete_tree(work)
        missing = [r.name for r in todo if r.name not in outcomes]
        if missing:
            raise beam_io.PipelineError(f"the sweep job reported no outcome for {missing}; "
                                        f"see the runner's log")
        log(f"[sweep] {len(todo)} runs done in {time.perf_counter() - t0:.0f}s on "
            f"{len({outcomes[r.name].worker for r in todo})} worker process(es)")
    return [outcomes[r.name] for r in runs]
