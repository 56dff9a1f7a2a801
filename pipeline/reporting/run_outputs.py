"""The artifacts one run consumed and produced, read back from ML Metadata.

The progress tracker knows which execution each component ran (or reused
from cache) in this run; ML Metadata knows what each execution read and
wrote. This module joins the two, so the summary and report describe exactly this run,
cached steps included.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2


@dataclass
class Artifact:
    """An output artifact: where it is and its custom properties."""

    id: int
    uri: str
    type_name: str
    properties: dict[str, object] = field(default_factory=dict)


def _property_value(value: metadata_store_pb2.Value) -> object:
    kind = value.WhichOneof("value")
    if kind == "struct_value":
        from google.protobuf import json_format

        return json_format.MessageToDict(value.struct_value)
    return getattr(value, kind) if kind else None


def _to_artifact(artifact: metadata_store_pb2.Artifact, type_names: dict[int, str]) -> Artifact:
    properties = {key: _property_value(v) for key, v in artifact.properties.items()}
    properties.update({key: _property_value(v) for key, v in artifact.custom_properties.items()})
    return Artifact(
        id=artifact.id,
        uri=artifact.uri,
        type_name=type_names.get(artifact.type_id, ""),
        properties=properties,
    )


@dataclass
class ExecutionArtifacts:
    """What one component's execution consumed and produced, by key."""

    inputs: dict[str, list[Artifact]] = field(default_factory=dict)
    outputs: dict[str, list[Artifact]] = field(default_factory=dict)


_INPUT_EVENTS = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)
_OUTPUT_EVENTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)


def read_artifacts(
    connection_config: metadata_store_pb2.ConnectionConfig, execution_ids: dict[str, int]
) -> dict[str, ExecutionArtifacts]:
    """``{component id: its inputs and outputs}`` for the given executions."""
    store = metadata_store.MetadataStore(connection_config)
    node_by_execution = {execution_id: node for node, execution_id in execution_ids.items()}
    events = [
        e for e in store.get_events_by_execution_ids(list(node_by_execution))
        if e.type in _INPUT_EVENTS + _OUTPUT_EVENTS
    ]
    artifacts = {a.id: a for a in store.get_artifacts_by_id(sorted({e.artifact_id for e in events}))}
    type_names = {t.id: t.name for t in store.get_artifact_types()}

    result = {node: ExecutionArtifacts() for node in execution_ids}
    for event in events:
        side = result[node_by_execution[event.execution_id]]
        by_key = side.inputs if event.type in _INPUT_EVENTS else side.outputs
        artifact = _to_artifact(artifacts[event.artifact_id], type_names)
        # One event can name several keys: a model evaluated against itself
        # is both the Evaluator's `model` and its `baseline_model`.
        for key in [step.key for step in event.path.steps if step.HasField("key")]:
            if all(existing.id != artifact.id for existing in by_key.setdefault(key, [])):
                by_key[key].append(artifact)
    return result
