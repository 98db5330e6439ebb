"""Runs the pipeline with TFX's LocalDagRunner and an sqlite MLMD store.

One writer at a time per pipeline root, MLMD store and serving model
directory (`claim_outputs`, held by the caller from before any work; the
locks are released by the OS even when the process is killed). Before
running, executions a killed run left NEW/RUNNING are marked CANCELED and
their unpublished outputs removed, and a cached ingestion output whose
TFRecords no longer read back intact is marked DELETED, so the store stays
consistent and the re-run serves only sound finished upstream nodes from the
cache.

A local pipeline root belongs to one MLMD store (`bind_store`, the marker
PIPELINE_ROOT/.avca-store.json): artifact paths are keyed by execution ids,
which every new store starts again at 1, so a second store writing into the
same root would overwrite (and TFX delete) the first store's artifacts.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from avca_tf.errors import AvcaError
from pipelines import mlmd_report
from pipelines.pipeline_config import PipelineConfig, is_remote


class PipelineRunError(AvcaError):
    """The pipeline could not be started (store in use, bad paths)."""


@dataclass
class RunSummary:
    run: mlmd_report.PipelineRun
    metrics: dict | None          # the evaluator's metrics.json
    pushed_to: str | None         # serving version directory, None if nothing was pushed
    cancelled: list[int]          # executions of a killed earlier run marked CANCELED
    seconds: float


def fingerprint(paths) -> str:
    """Hash of (relative path, size, mtime) of every file under `paths` (cheap, no reads)."""
    h = hashlib.sha256()
    for base in paths:
        base = Path(base)
        if is_remote(str(base)):
            return ""
        files = sorted(p for p in base.rglob("*") if p.is_file()) if base.is_dir() else [base]
        for p in files:
            try:
                st = p.stat()
            except FileNotFoundError:
                continue
            h.update(f"{p.relative_to(base.parent)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def check_output_paths(pipeline_root: str, metadata_path: str, serving_dir: str) -> None:
    """Refuses, before anything is written, output paths of the wrong kind."""
    from avca_tf.locking import check_dir_target
    check_dir_target(pipeline_root, "--pipeline-root")
    check_dir_target(serving_dir, "--serving-dir")
    if metadata_path:
        if os.path.isdir(metadata_path):
            raise PipelineRunError(f"--metadata {metadata_path}: is a directory; expected the "
                                   "sqlite MLMD file (or a path that does not exist yet)")
        check_dir_target(os.path.dirname(os.path.abspath(metadata_path)), "--metadata")


@contextlib.contextmanager
def claim_outputs(pipeline_root: str, metadata_path: str, serving_dir: str, model_name: str):
    """The write locks of a local run: pipeline root first (a second run sharing it is
    refused before it writes anything), then the MLMD store and the serving model
    directory."""
    from avca_tf.locking import output_lock
    check_output_paths(pipeline_root, metadata_path, serving_dir)
    with contextlib.ExitStack() as stack:
        stack.enter_context(output_lock(pipeline_root, "pipeline root"))
        if metadata_path:
            stack.enter_context(output_lock(metadata_path, "MLMD store"))
        if not is_remote(serving_dir):
            stack.enter_context(output_lock(os.path.join(serving_dir, model_name),
                                            "serving model directory"))
        yield


STORE_MARKER = ".avca-store.json"


def bind_store(pipeline_root: str, metadata_path: str) -> None:
    """Ties a local pipeline root to one sqlite MLMD store, or refuses the run.

    First use: PIPELINE_ROOT/.avca-store.json records the store's absolute path.
    Later runs must name the same store, and it must still exist; a root that
    already holds artifacts but no marker (written before the marker existed) is
    adopted only by a store that already exists. Called under the root's lock,
    before the store is opened (opening creates it).
    """
    if is_remote(pipeline_root) or not metadata_path:
        return
    root, store = os.path.abspath(pipeline_root), os.path.abspath(metadata_path)
    marker = os.path.join(root, STORE_MARKER)
    if os.path.isfile(marker):
        try:
            with open(marker, encoding="utf-8") as f:
                bound = json.load(f)["metadata"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise PipelineRunError(f"{marker}: unreadable ({e}); it names the MLMD store the "
                                   f"artifacts under --pipeline-root {root} belong to") from e
        if os.path.abspath(bound) != store:
            raise PipelineRunError(
                f"--pipeline-root {root} holds the artifacts of the MLMD store {bound} "
                f"({marker}); a run with another store ({store}) would reuse its execution ids "
                f"and overwrite them: pass --metadata {bound} (or the same --work-dir), or "
                "another --pipeline-root")
        if not os.path.exists(store):
            raise PipelineRunError(
                f"the MLMD store {store} of --pipeline-root {root} is gone; a new store would "
                "overwrite the artifacts there: use another --pipeline-root (or delete the old "
                "one)")
        return
    leftovers = [n for n in os.listdir(root)] if os.path.isdir(root) else []
    if leftovers and not os.path.exists(store):
        raise PipelineRunError(
            f"--pipeline-root {root} already holds artifacts ({', '.join(sorted(leftovers)[:3])}"
            f"{', ...' if len(leftovers) > 3 else ''}) of another MLMD store; a new store "
            f"({store}) would overwrite them: pass that run's --metadata/--work-dir, or another "
            "--pipeline-root")
    from avca_tf.io_utils import write_json
    os.makedirs(root, exist_ok=True)
    write_json(marker, {"metadata": store})


# Warnings TFX emits on every resolver run of a healthy pipeline.
_NOISE = ("ArtifactQuery.property_predicate is not supported.",)


class _ProgressHandler(logging.Handler):
    """Turns the runner's and launcher's log records into one line per node."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.started: dict[str, float] = {}
        self.node = ""

    def emit(self, record):
        if record.levelno >= logging.WARNING and record.msg not in _NOISE:
            logging.getLogger().handle(record)  # what the absl logger showed before
        if not record.pathname.endswith(("local_dag_runner.py", "launcher.py")):
            return
        msg, args = record.msg, record.args
        if msg == "Component %s is running.":
            self.node = args[0]
            self.started[self.node] = time.monotonic()
            print(f"[pipeline] {self.node}: started", flush=True)
        elif msg == "A cached execution %d is used.":
            print(f"[pipeline] {self.node}: served from cache (execution {args[0]})", flush=True)
        elif msg == "Going to run a new execution %d":
            print(f"[pipeline] {self.node}: running execution {args[0]}", flush=True)
        elif msg == "Component %s is finished.":
            dt = time.monotonic() - self.started.get(args[0], time.monotonic())
            print(f"[pipeline] {args[0]}: done in {dt:.1f}s", flush=True)


@contextlib.contextmanager
def _progress():
    logger = logging.getLogger("absl")
    handler, level, propagate = _ProgressHandler(), logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # INFO records go to the progress lines only
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def run_local(cfg: PipelineConfig, classes_file: str, vectors_path: str) -> RunSummary:
    """Runs the whole pipeline once; returns what ran, what was cached and the results.

    The caller holds `claim_outputs` for the config's paths.
    """
    from tfx.orchestration.local.local_dag_runner import LocalDagRunner

    from avca_tf.serving.export import write_models_config
    from pipelines.tfx_pipeline import create_pipeline
    if not cfg.metadata_path:
        raise PipelineRunError("a local run needs an sqlite MLMD path (--metadata)")
    data = cfg.data
    prints = (fingerprint([os.path.join(data.root, data.dataset, "class-split"),
                           os.path.join(data.root, data.dataset, "features",
                                        data.feature_set + ("_non_averaged" if cfg.temporal
                                                            else ""))]
                          + ([data.media] if data.media else [])),
              fingerprint([classes_file, vectors_path]))
    t0 = time.monotonic()
    bind_store(cfg.pipeline_root, cfg.metadata_path)
    store = mlmd_report.open_store(cfg.metadata_path, readonly=False)
    cancelled = mlmd_report.cancel_interrupted(store, cfg.name, cfg.pipeline_root)
    if cancelled:
        print(f"[pipeline] marked executions {cancelled} of an interrupted run as CANCELED",
              flush=True)
    for uri, problem in mlmd_report.invalidate_corrupt_examples(store, cfg.name, prints[0]):
        print(f"[pipeline] cached ingestion output {uri} is corrupt ({problem}); marked "
              "DELETED, ingestion runs again", flush=True)
    before = mlmd_report.max_execution_id(store)
    pipeline = create_pipeline(cfg, classes_file, vectors_path, prints)
    try:
        with _progress():
            LocalDagRunner().run(pipeline)
    except KeyboardInterrupt:  # Ctrl-C: leave no execution RUNNING behind
        stopped = mlmd_report.cancel_interrupted(store, cfg.name, cfg.pipeline_root)
        print(f"[pipeline] interrupted; executions {stopped} marked CANCELED", flush=True)
        raise
    run = mlmd_report.last_run(store, cfg.name, before)
    # LocalDagRunner logs a node whose inputs could not be resolved and goes on.
    unfinished = [c.id for c in pipeline.components
                  if run.node(c.id) is None or run.node(c.id).state not in ("COMPLETE", "CACHED")]
    if unfinished:
        raise PipelineRunError(f"run {run.run_id} did not finish nodes {unfinished} (see the log "
                               f"above; `avca pipeline show --metadata {cfg.metadata_path}`)")
    evaluation = run.output("GZSLEvaluator", "evaluation")
    metrics = mlmd_report.evaluation_metrics(evaluation) if evaluation else None
    pushed = run.output("Pusher", "pushed_model")
    pushed_to = None
    if pushed and pushed.properties.get("pushed") == 1:
        pushed_to = pushed.properties.get("pushed_destination")
        if not is_remote(cfg.serving_dir):
            write_models_config(cfg.serving_dir)
    return RunSummary(run=run, metrics=metrics, pushed_to=pushed_to, cancelled=cancelled,
                      seconds=time.monotonic() - t0)
