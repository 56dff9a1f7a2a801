"""The requests the fake Vertex AI answered, recorded under ``ROOT/requests/``
with one numbering for every service (Training, the Model Registry,
endpoints, pipelines), so they can be read back, and printed, in the order
they were made."""

from __future__ import annotations

import json
from pathlib import Path


def requests_dir(root: Path) -> Path:
    return root / "requests"


def record(root: Path, service: str, request: dict) -> Path:
    folder = requests_dir(root)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{len(list(folder.glob('*.json'))) + 1:03d}-{service}.json"
    path.write_text(json.dumps(request, indent=2, sort_keys=True, default=str), encoding="utf-8")
    return path


def recorded(root: Path, service: str = "*") -> list[Path]:
    """The recorded requests, oldest first; only ``service``'s when given."""
    folder = requests_dir(root)
    return sorted(folder.glob(f"[0-9][0-9][0-9]-{service}.json")) if folder.is_dir() else []
