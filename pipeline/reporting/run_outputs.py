"""One run of the pipeline, read back from ML Metadata.

TFX gives every run a ``pipeline_run`` context and records each component's
execution in it: its state (COMPLETE, CACHED, FAILED), when it started and
ended, and the artifacts it read and wrote. :func:`read_run` finds this run's
executions and :func:`read_artifacts` their artifacts, so the summary and the
report describe exactly this run, cached steps included, without depending on
what TFX writes in its log.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.reporting import mlmd


@dataclass
class Artifact:
    """An output artifact: where it is and its custom properties."""

    id: int
    uri: str
    type_name: str
    properties: dict[str, object] = field(default_factory=dict)


def _to_artifact(artifact: metadata_store_pb2.Artifact, type_names: dict[int, str]) -> Artifact:
    return Artifact(
        id=artifact.id,
        uri=artifact.uri,
        type_name=type_names.get(artifact.type_id, ""),
        properties=mlmd.properties(artifact),
    )


@dataclass
class ComponentRun:
    """What one component did in a run, as ML Metadata recorded it."""

    node_id: str
    execution_id: int
    # "ran", "cached", "failed", or "abandoned": left unfinished by a process
    # that was killed (ML Metadata still says RUNNING; nothing runs it any more).
    how: str
    seconds: float


_HOW = {
    mlmd.Execution.COMPLETE: "ran",
    mlmd.Execution.CACHED: "cached",
    mlmd.Execution.FAILED: "failed",
    mlmd.Execution.RUNNING: "abandoned",
    mlmd.Execution.NEW: "abandoned",
    mlmd.Execution.CANCELED: "failed",
}


def read_run(
    connection_config: metadata_store_pb2.ConnectionConfig, pipeline_name: str, started_ms: int
) -> list[ComponentRun]:
    """The executions of the newest run of ``pipeline_name`` that began at or
    after ``started_ms`` (milliseconds since the epoch), in the order they ran;
    empty when no such run was recorded (it failed before its first component)."""
    store = metadata_store.MetadataStore(connection_config)
    context_types = {t.name: t.id for t in store.get_context_types()}
    if mlmd.PIPELINE_RUN_CONTEXT not in context_types:
        return []

    def of_this_pipeline(context) -> bool:
        parents = store.get_parent_contexts_by_context(context.id)
        return not parents or any(parent.name == pipeline_name for parent in parents)

    runs = [
        context
        for context in store.get_contexts_by_type(mlmd.PIPELINE_RUN_CONTEXT)
        if context.create_time_since_epoch >= started_ms and of_this_pipeline(context)
    ]
    if not runs:
        return []
    this_run = max(runs, key=lambda context: context.create_time_since_epoch)
    result = []
    executions = sorted(store.get_executions_by_context(this_run.id), key=lambda e: (e.create_time_since_epoch, e.id))
    for execution in executions:
        node = mlmd.node_id(store, execution, context_types.get(mlmd.NODE_CONTEXT)) or str(execution.id)
        seconds = max(0, execution.last_update_time_since_epoch - execution.create_time_since_epoch) / 1000
        result.append(ComponentRun(node, execution.id, _HOW.get(execution.last_known_state, "ran"), seconds))
    return result


@dataclass
class ExecutionArtifacts:
    """What one component's execution consumed and produced, by key."""

    inputs: dict[str, list[Artifact]] = field(default_factory=dict)
    outputs: dict[str, list[Artifact]] = field(default_factory=dict)


def read_artifacts(
    connection_config: metadata_store_pb2.ConnectionConfig, execution_ids: dict[str, int]
) -> dict[str, ExecutionArtifacts]:
    """``{component id: its inputs and outputs}`` for the given executions."""
    store = metadata_store.MetadataStore(connection_config)
    node_by_execution = {execution_id: node for node, execution_id in execution_ids.items()}
    events = [
        e
        for e in store.get_events_by_execution_ids(list(node_by_execution))
        if e.type in mlmd.INPUT_EVENTS + mlmd.OUTPUT_EVENTS
    ]
    artifacts = {a.id: a for a in store.get_artifacts_by_id(sorted({e.artifact_id for e in events}))}
    type_names = {t.id: t.name for t in store.get_artifact_types()}

    result = {node: ExecutionArtifacts() for node in execution_ids}
    for event in events:
        side = result[node_by_execution[event.execution_id]]
        by_key = side.inputs if event.type in mlmd.INPUT_EVENTS else side.outputs
        artifact = _to_artifact(artifacts[event.artifact_id], type_names)
        # One event can name several keys: a model evaluated against itself
        # is both the Evaluator's `model` and its `baseline_model`.
        for key in mlmd.event_keys(event):
            if all(existing.id != artifact.id for existing in by_key.setdefault(key, [])):
                by_key[key].append(artifact)
    return result
