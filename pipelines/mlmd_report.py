"""Reads the pipeline's history back from an ML Metadata store.

Used by `avca pipeline run` (what ran, what came from cache, where the outputs
are) and `avca pipeline show`; also repairs what a killed run left behind.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd_pb2

from avca_tf.errors import AvcaError

STATES = {v: k for k, v in mlmd_pb2.Execution.State.items()}
# Execution states a live run passes through; a store that holds them with no
# run in progress was left behind by a killed process.
_IN_FLIGHT = (mlmd_pb2.Execution.NEW, mlmd_pb2.Execution.RUNNING)


class MetadataError(AvcaError):
    """The MLMD store is missing or does not hold the pipeline asked for."""


@dataclass
class ArtifactInfo:
    id: int
    key: str            # the output name on the producing node
    type: str
    uri: str
    state: str
    properties: dict = field(default_factory=dict)


@dataclass
class NodeExecution:
    node_id: str
    execution_id: int
    state: str          # COMPLETE (ran), CACHED (from cache), FAILED, CANCELED, RUNNING, ...
    outputs: list[ArtifactInfo]

    @property
    def from_cache(self) -> bool:
        return self.state == "CACHED"


@dataclass
class PipelineRun:
    pipeline: str
    run_id: str
    nodes: list[NodeExecution]

    def node(self, node_id: str) -> NodeExecution | None:
        return next((n for n in self.nodes if n.node_id == node_id), None)

    def output(self, node_id: str, key: str) -> ArtifactInfo | None:
        node = self.node(node_id)
        return next((a for a in node.outputs if a.key == key), None) if node else None


def open_store(path: str, readonly: bool = True) -> metadata_store.MetadataStore:
    if readonly and not os.path.isfile(path):
        raise MetadataError(f"{path}: no MLMD store there (run `avca pipeline run` first, "
                            "or pass --metadata PATH of an existing sqlite store)")
    config = mlmd_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = (mlmd_pb2.SqliteMetadataSourceConfig.READONLY if readonly
                                     else mlmd_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE)
    return metadata_store.MetadataStore(config)


def _value(v: mlmd_pb2.Value):
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def artifact_properties(artifact: mlmd_pb2.Artifact) -> dict:
    out = {k: _value(v) for k, v in artifact.properties.items()}
    out.update({k: _value(v) for k, v in artifact.custom_properties.items()
                if not k.startswith("__")})  # TFX bookkeeping (versions, producer ids)
    return out


def _node_id(store, execution_id: int, pipeline: str) -> str:
    for ctx in store.get_contexts_by_execution(execution_id):
        if ctx.type == "node" and ctx.name.startswith(pipeline + "."):
            return ctx.name[len(pipeline) + 1:]
    return "?"


def _outputs(store, execution_ids: list[int]) -> dict[int, list[ArtifactInfo]]:
    events = [e for e in store.get_events_by_execution_ids(execution_ids)
              if e.type in (mlmd_pb2.Event.OUTPUT, mlmd_pb2.Event.DECLARED_OUTPUT)]
    artifacts = {a.id: a for a in store.get_artifacts_by_id(list({e.artifact_id for e in events}))}
    types = {t.id: t.name for t in store.get_artifact_types()}
    out: dict[int, list[ArtifactInfo]] = {i: [] for i in execution_ids}
    for e in events:
        a = artifacts.get(e.artifact_id)
        if a is None:
            continue
        key = next((s.key for s in e.path.steps if s.HasField("key")), "")
        out[e.execution_id].append(ArtifactInfo(
            id=a.id, key=key, type=types.get(a.type_id, "?"), uri=a.uri,
            state=mlmd_pb2.Artifact.State.Name(a.state), properties=artifact_properties(a)))
    return out


def pipeline_names(store) -> list[str]:
    return sorted(c.name for c in store.get_contexts_by_type("pipeline"))


def pipeline_runs(store, pipeline: str) -> list[PipelineRun]:
    """All runs of `pipeline`, oldest first, with each node's execution and outputs."""
    if store.get_context_by_type_and_name("pipeline", pipeline) is None:
        raise MetadataError(f"the MLMD store has no pipeline {pipeline!r}; it holds "
                            f"{pipeline_names(store) or 'no pipelines'}")
    runs = []
    for ctx in sorted(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.id):
        executions = sorted(store.get_executions_by_context(ctx.id), key=lambda e: e.id)
        nodes = []
        outputs = _outputs(store, [e.id for e in executions]) if executions else {}
        for e in executions:
            node = _node_id(store, e.id, pipeline)
            if node == "?":
                break  # a run of another pipeline in the same store
            nodes.append(NodeExecution(node, e.id, STATES[e.last_known_state], outputs[e.id]))
        if nodes:
            runs.append(PipelineRun(pipeline, ctx.name, nodes))
    return runs


def last_run(store, pipeline: str, after_execution_id: int = 0) -> PipelineRun:
    runs = [r for r in pipeline_runs(store, pipeline)
            if any(n.execution_id > after_execution_id for n in r.nodes)]
    if not runs:
        raise MetadataError(f"the MLMD store records no run of {pipeline!r} after execution "
                            f"{after_execution_id}")
    return runs[-1]


def max_execution_id(store) -> int:
    return max((e.id for e in store.get_executions()), default=0)


def cancel_interrupted(store, pipeline: str, pipeline_root: str) -> list[int]:
    """Marks executions a killed run left NEW/RUNNING as CANCELED; returns their ids.

    Call it only while holding the run lock (no run is in progress). Their
    unpublished outputs, `<pipeline_root>/<node>/<output>/<execution id>`, are
    removed so no half-written model stays on disk.
    """
    ctx = store.get_context_by_type_and_name("pipeline", pipeline)
    if ctx is None:
        return []
    stale = [e for e in store.get_executions_by_context(ctx.id) if e.last_known_state in _IN_FLIGHT]
    live_uris = {a.uri for a in store.get_artifacts() if a.state == mlmd_pb2.Artifact.LIVE}
    for e in stale:
        e.last_known_state = mlmd_pb2.Execution.CANCELED
        node_dir = os.path.join(pipeline_root, _node_id(store, e.id, pipeline))
        if not os.path.isdir(node_dir):
            continue
        for key in os.listdir(node_dir):
            partial = os.path.join(node_dir, key, str(e.id))
            if key != ".system" and os.path.isdir(partial) and partial not in live_uris:
                shutil.rmtree(partial)
    if stale:
        store.put_executions(stale)
    return [e.id for e in stale]


def invalidate_corrupt_examples(store, pipeline: str, input_fingerprint: str = "") -> list:
    """Marks DELETED the LIVE ingestion outputs (Examples) the cache could serve whose
    TFRecords no longer read back intact; returns [(uri, problem)].

    Checked: the outputs of this pipeline's FeatureIngestion executions with the
    given input fingerprint (all of them if it is ""). Every shard is read in
    full (record CRCs) and parsed, so a flipped byte or a truncated shard is
    found; a DELETED artifact is never a cache hit, so the run ingests again.
    Call it only while holding the run's locks.
    """
    from avca_tf.data.formats.tfrecord_input import verify_tfrecords
    from avca_tf.errors import AvcaError
    ctx = store.get_context_by_type_and_name("pipeline", pipeline)
    if ctx is None:
        return []
    producers = []
    for e in store.get_executions_by_context(ctx.id):
        if not store.get_execution_types_by_id([e.type_id])[0].name.endswith("FeatureIngestion"):
            continue
        prop = e.custom_properties.get("input_fingerprint")
        if input_fingerprint and prop is not None and prop.string_value != input_fingerprint:
            continue
        producers.append(e.id)
    outputs = [ev.artifact_id for ev in store.get_events_by_execution_ids(producers)
               if ev.type == mlmd_pb2.Event.OUTPUT]
    bad = []
    for a in store.get_artifacts_by_id(outputs):
        if a.state != mlmd_pb2.Artifact.LIVE:
            continue
        try:
            verify_tfrecords(a.uri)
        except AvcaError as err:
            a.state = mlmd_pb2.Artifact.DELETED
            store.put_artifacts([a])
            bad.append((a.uri, str(err)))
    return bad


def evaluation_metrics(artifact: ArtifactInfo) -> dict:
    """The evaluator's metrics.json of a ModelEvaluation artifact."""
    path = os.path.join(artifact.uri, "metrics.json")
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        raise MetadataError(f"{path}: the ModelEvaluation artifact {artifact.id} has no "
                            "metrics.json") from None
