"""The artifacts one run produced, read back from ML Metadata.

The progress tracker knows which execution each component ran (or reused
from cache) in this run; ML Metadata knows what each execution output. This
module joins the two, so the summary and report describe exactly this run,
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


def read_outputs(
    connection_config: metadata_store_pb2.ConnectionConfig, execution_ids: dict[str, int]
) -> dict[str, dict[str, list[Artifact]]]:
    """``{component id: {output key: [artifacts]}}`` for the given executions."""
    store = metadata_store.MetadataStore(connection_config)
    node_by_execution = {execution_id: node for node, execution_id in execution_ids.items()}
    events = store.get_events_by_execution_ids(list(node_by_execution))
    output_types = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)
    wanted = [e for e in events if e.type in output_types]
    artifacts = {a.id: a for a in store.get_artifacts_by_id(sorted({e.artifact_id for e in wanted}))}
    type_names = {t.id: t.name for t in store.get_artifact_types()}

    outputs: dict[str, dict[str, list[Artifact]]] = {node: {} for node in execution_ids}
    for event in wanted:
        key = event.path.steps[0].key if event.path.steps else ""
        node = node_by_execution[event.execution_id]
        artifact = _to_artifact(artifacts[event.artifact_id], type_names)
        outputs[node].setdefault(key, [])
        if all(existing.id != artifact.id for existing in outputs[node][key]):
            outputs[node][key].append(artifact)
    return outputs
