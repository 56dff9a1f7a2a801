"""Reading ML Metadata: one place that opens the store and decodes what it holds.

TFX records every component run as an *execution*, linked by *events* to the
artifacts it read (INPUT) and wrote (OUTPUT), and by *contexts* to its
pipeline, its pipeline run and its node (``<pipeline>.<node id>``). The run
summary (``run_outputs``) and ``models list`` (``pipeline/serving/lineage``)
both read those links through the helpers here.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.errors import FlowersError

Event = metadata_store_pb2.Event
Execution = metadata_store_pb2.Execution
INPUT_EVENTS = (Event.INPUT, Event.DECLARED_INPUT)
OUTPUT_EVENTS = (Event.OUTPUT, Event.DECLARED_OUTPUT)
# Context type names TFX uses.
PIPELINE_RUN_CONTEXT = "pipeline_run"
NODE_CONTEXT = "node"


class StoreUnavailable(RuntimeError):
    """There is no metadata store at the given path."""


class DamagedStore(FlowersError):
    """The metadata store's file exists but is not a readable SQLite database."""


_SQLITE_HEADER = b"SQLite format 3\x00"


def check_store(metadata_path: Path) -> None:
    """Raises DamagedStore, naming the file and what to do, when the store at
    ``metadata_path`` is truncated or corrupted. A missing or empty file is
    fine: TFX starts a new store there. Read-only: nothing is changed."""
    path = Path(metadata_path)
    if not path.is_file() or path.stat().st_size == 0:
        return
    problem = None
    with open(path, "rb") as handle:
        if handle.read(len(_SQLITE_HEADER)) != _SQLITE_HEADER:
            problem = "it is not an SQLite database"
    if problem is None:
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as connection:
                result = connection.execute("PRAGMA quick_check").fetchone()
            if result and result[0] != "ok":
                problem = f"SQLite finds it damaged ({result[0]})"
        except sqlite3.DatabaseError as error:
            problem = f"SQLite cannot read it ({error})"
    if problem:
        raise DamagedStore(
            f"{path}: the ML Metadata store is damaged: {problem}. Move it aside "
            f"(mv {path} {path}.damaged) and run again: a new store starts empty, the next run "
            "trains anew, and the models already pushed to the serving directory are not affected"
        )


def open_store(metadata_path: Path, read_only: bool = True) -> metadata_store.MetadataStore:
    """The sqlite store at ``metadata_path``, read-only by default: looking
    never changes it. Raises StoreUnavailable when the file does not exist or
    is empty (opening it would create an empty store), DamagedStore when it
    cannot be read."""
    if not Path(metadata_path).is_file() or Path(metadata_path).stat().st_size == 0:
        raise StoreUnavailable(f"{metadata_path}: no ML Metadata store")
    check_store(metadata_path)
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(metadata_path)
    if read_only:
        config.sqlite.connection_mode = metadata_store_pb2.SqliteMetadataSourceConfig.READONLY
    return metadata_store.MetadataStore(config)


def property_value(value: metadata_store_pb2.Value) -> object:
    """A property's Python value: int, float, str, or a dict for a struct."""
    kind = value.WhichOneof("value")
    if kind == "struct_value":
        from google.protobuf import json_format

        return json_format.MessageToDict(value.struct_value)
    return getattr(value, kind) if kind else None


def properties(node) -> dict[str, object]:
    """An artifact's or execution's properties and custom properties, decoded."""
    values = {key: property_value(v) for key, v in node.properties.items()}
    values.update({key: property_value(v) for key, v in node.custom_properties.items()})
    return values


def event_keys(event: Event) -> list[str]:
    """The input or output keys an event links its artifact under. One artifact
    can fill several inputs at once (a model evaluated against itself is both
    ``model`` and ``baseline_model``): the path then holds each key."""
    return [step.key for step in event.path.steps if step.HasField("key")]


def node_id(store: metadata_store.MetadataStore, execution: Execution, node_type_id: int | None) -> str | None:
    """The pipeline node an execution belongs to (``Trainer``, ``Pusher``, ...)."""
    for context in store.get_contexts_by_execution(execution.id):
        if context.type_id == node_type_id:
            return context.name.split(".", 1)[-1]
    return None
