"""The fake Vertex AI's state, one JSON file under its root (``ROOT/vertex.json``).

A file, not attributes of an object: a rehearsal runs tasks in processes of
their own, and the next rehearsal (the next scheduled run) must find the
model versions, endpoints and jobs this one made, as it would on Vertex AI.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

STATE_FILE = "vertex.json"


def empty() -> dict:
    return {
        "models": {},  # model id -> {"display_name", "versions": [{"version_id", "aliases", "labels", ...}]}
        "endpoints": [],  # [{"name", "display_name", "deployed": [...], "traffic_split": {id: percent}}]
        "pipeline_jobs": {},  # resource name -> [PipelineJob as JSON, one per get still to come]
        "schedules": {},  # resource name -> Schedule as JSON
        "custom_jobs": {},  # resource name -> CustomJob as JSON
        "deployed_count": 0,  # deployed model ids are numbers, as Vertex AI's are
    }


class State:
    """Read and written whole, on every request: requests are few."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.path = self.root / STATE_FILE

    def load(self) -> dict:
        if not self.path.is_file():
            return empty()
        return {**empty(), **json.loads(self.path.read_text(encoding="utf-8"))}

    def save(self, state: dict) -> None:
        """Written aside and renamed, so another process never reads half a file."""
        self.root.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{STATE_FILE}.{os.getpid()}")
        partial.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")
        partial.replace(self.path)
