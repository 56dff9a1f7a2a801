"""What every rehearsal under one ``--root`` produced, in an ML Metadata
store: it answers resolver tasks and lets unchanged tasks reuse their outputs.

Vertex AI keeps both in its managed ML Metadata: resolver tasks
(``latest_blessed_model_resolver``) query it with a filter such as
``schema_title="tfx.ModelBlessing" AND state=LIVE AND
metadata.blessed.number_value=1``, and its cache reuses a task's outputs when
the task's inputs, parameters and image are unchanged. Here both live in
``ROOT/metadata.sqlite``: every output artifact (its type is the schema
title, its name the one the ExecutorInput gave it, its metadata as custom
properties), and one execution per task that ran, keyed by its cache key,
with an output event to each artifact it wrote. The store can be opened like
any ML Metadata store (``ml_metadata``'s Python API, or
``flowers-tfx``'s own readers).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

STORE_FILE = "metadata.sqlite"
TASK_TYPE = "rehearsal.Task"
# The whole artifact entry as the output file gave it, for an exact round trip.
_RECORD = "rehearsal_record"
_CLAUSE = re.compile(r"^\s*([\w.]+)\s*=\s*(.+?)\s*$")


class Records:
    def __init__(self, root: Path):
        root.mkdir(parents=True, exist_ok=True)
        config = metadata_store_pb2.ConnectionConfig()
        config.sqlite.filename_uri = str(root / STORE_FILE)
        config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
        self.store = metadata_store.MetadataStore(config)
        self._issued = 0  # names handed out by this rehearsal, not yet recorded

    # ------------------------------------------------------------------ artifacts

    def artifacts(self) -> list[dict]:
        """Every recorded artifact, oldest first: ``task``, ``output`` and the
        entry of the task's output file (name, uri, type, metadata)."""
        found = sorted(self.store.get_artifacts(), key=lambda artifact: artifact.id)
        return [
            json.loads(artifact.custom_properties[_RECORD].string_value)
            for artifact in found
            if _RECORD in artifact.custom_properties
        ]

    def next_name(self) -> str:
        """A new artifact name, unique under this root (Vertex names artifacts by resource name)."""
        count = len(self.store.get_artifacts()) + self._issued
        self._issued += 1
        return f"rehearsal/artifacts/{count + 1}"

    def _artifact_type(self, name: str) -> int:
        return self.store.put_artifact_type(metadata_store_pb2.ArtifactType(name=name))

    def add_artifacts(self, task: str, outputs: dict) -> list[int]:
        from pipeline.runners.rehearsal.executor_input import schema_title

        protos = []
        for key, entry in outputs.items():
            for artifact in entry.get("artifacts", []):
                record = {"task": task, "output": key, **artifact}
                proto = metadata_store_pb2.Artifact(
                    type_id=self._artifact_type(schema_title(artifact["type"])),
                    uri=artifact["uri"],
                    name=artifact.get("name", ""),
                    state=metadata_store_pb2.Artifact.LIVE,
                )
                for name, value in artifact.get("metadata", {}).items():
                    _set_value(proto.custom_properties[name], value)
                proto.custom_properties[_RECORD].string_value = json.dumps(record, sort_keys=True)
                protos.append(proto)
        return list(self.store.put_artifacts(protos)) if protos else []

    def query(self, filter_text: str) -> list[dict]:
        """The latest artifact matching an output-artifact query's filter, as a list of 0 or 1."""
        clauses = []
        for clause in filter_text.split(" AND "):
            match = _CLAUSE.match(clause)
            if not match:
                raise ValueError(f"resolver filter not understood: {clause!r} (in {filter_text!r})")
            field, value = match.groups()
            clauses.append((field, json.loads(value) if value.startswith('"') else _number(value)))
        titles = [value for field, value in clauses if field == "schema_title"]
        candidates = self.store.get_artifacts_by_type(titles[0]) if titles else self.store.get_artifacts()

        def matches(artifact: metadata_store_pb2.Artifact) -> bool:
            for field, value in clauses:
                if field == "schema_title":
                    continue  # chosen by type above
                if field == "state":
                    found = metadata_store_pb2.Artifact.State.Name(artifact.state)
                elif field == "name":
                    found = artifact.name
                elif field.startswith("metadata."):
                    _, key, _kind = field.split(".")
                    found = _value(artifact.custom_properties[key]) if key in artifact.custom_properties else None
                else:
                    raise ValueError(f"resolver filter field not understood: {field} (in {filter_text!r})")
                if found != value:
                    return False
            return True

        found = sorted((artifact for artifact in candidates if matches(artifact)), key=lambda artifact: artifact.id)
        return [json.loads(artifact.custom_properties[_RECORD].string_value) for artifact in found[-1:]]

    # ---------------------------------------------------------------------- cache

    @staticmethod
    def cache_key(executor: dict, executor_input: dict) -> str:
        """The task's image, command, parameters and input artifacts (by name):
        what Vertex AI's cache compares."""
        inputs = executor_input["inputs"]
        key = {
            "executor": executor,
            "parameters": [inputs.get("parameterValues", {}), inputs.get("parameters", {})],
            "artifacts": {k: [a.get("name") for a in v["artifacts"]] for k, v in inputs.get("artifacts", {}).items()},
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()

    def cached(self, key: str) -> dict | None:
        """The outputs of the latest task that ran with this cache key."""
        executions = self.store.get_executions_by_type(TASK_TYPE)
        hits = sorted(
            (e for e in executions if e.custom_properties["cache_key"].string_value == key),
            key=lambda execution: execution.id,
        )
        return json.loads(hits[-1].custom_properties["outputs"].string_value) if hits else None

    def add_task(self, key: str, task: str, outputs: dict) -> None:
        """A task that ran: its artifacts, and its execution with an output event to each."""
        artifact_ids = self.add_artifacts(task, outputs)
        execution = metadata_store_pb2.Execution(
            type_id=self.store.put_execution_type(metadata_store_pb2.ExecutionType(name=TASK_TYPE)),
            last_known_state=metadata_store_pb2.Execution.COMPLETE,
        )
        execution.custom_properties["task"].string_value = task
        execution.custom_properties["cache_key"].string_value = key
        execution.custom_properties["outputs"].string_value = json.dumps(outputs, sort_keys=True)
        execution_id = self.store.put_execution(execution, artifact_and_events=[], contexts=[])[0]
        keys = [output for output, entry in outputs.items() for _ in entry.get("artifacts", [])]
        events = []
        for artifact_id, output in zip(artifact_ids, keys, strict=False):
            event = metadata_store_pb2.Event(
                type=metadata_store_pb2.Event.OUTPUT, artifact_id=artifact_id, execution_id=execution_id
            )
            event.path.steps.add().key = output
            events.append(event)
        if events:
            self.store.put_events(events)


def _set_value(value: metadata_store_pb2.Value, python_value) -> None:
    if isinstance(python_value, bool):
        value.int_value = int(python_value)
    elif isinstance(python_value, int):
        value.int_value = python_value
    elif isinstance(python_value, float):
        value.double_value = python_value
    elif isinstance(python_value, str):
        value.string_value = python_value
    else:
        value.string_value = json.dumps(python_value, sort_keys=True)


def _value(value: metadata_store_pb2.Value):
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


def _number(text: str):
    """``1`` or ``0.5`` as numbers; a bare word such as ``LIVE`` as itself."""
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        return text
