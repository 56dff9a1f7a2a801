"""What every rehearsal under one ``--root`` produced: it answers resolver
tasks and lets unchanged tasks reuse their outputs.

Vertex AI keeps both in its managed ML Metadata: resolver tasks
(``latest_blessed_model_resolver``) query it with a filter such as
``schema_title="tfx.ModelBlessing" AND state=LIVE AND
metadata.blessed.number_value=1``, and its cache reuses a task's outputs when
the task's inputs, parameters and image are unchanged. Here both live in
``ROOT/records/``: ``artifacts.jsonl`` (every output artifact, in order) and
``cache.jsonl`` (a task's cache key and the outputs it gave).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

_CLAUSE = re.compile(r'^\s*([\w.]+)\s*=\s*(.+?)\s*$')


class Records:
    def __init__(self, root: Path):
        self.folder = root / "records"
        self.folder.mkdir(parents=True, exist_ok=True)
        self.artifacts_file = self.folder / "artifacts.jsonl"
        self.cache_file = self.folder / "cache.jsonl"
        self._issued = 0  # names handed out by this rehearsal, not yet recorded

    # ------------------------------------------------------------------ artifacts

    def _lines(self, path: Path) -> list[dict]:
        if not path.is_file():
            return []
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def artifacts(self) -> list[dict]:
        return self._lines(self.artifacts_file)

    def next_name(self) -> str:
        """A new artifact name, unique under this root (Vertex names artifacts by resource name)."""
        count = len(self.artifacts()) + self._issued
        self._issued += 1
        return f"rehearsal/artifacts/{count + 1}"

    def add_artifacts(self, task: str, outputs: dict) -> None:
        with self.artifacts_file.open("a", encoding="utf-8") as f:
            for key, entry in outputs.items():
                for artifact in entry.get("artifacts", []):
                    f.write(json.dumps({"task": task, "output": key, **artifact}, sort_keys=True) + "\n")

    def query(self, filter_text: str) -> list[dict]:
        """The latest artifact matching an output-artifact query's filter, as a list of 0 or 1."""
        clauses = []
        for clause in filter_text.split(" AND "):
            match = _CLAUSE.match(clause)
            if not match:
                raise ValueError(f"resolver filter not understood: {clause!r} (in {filter_text!r})")
            field, value = match.groups()
            clauses.append((field, json.loads(value) if value.startswith('"') else _number(value)))
        from pipeline.runners.rehearsal.executor_input import schema_title

        def matches(artifact: dict) -> bool:
            for field, value in clauses:
                if field == "schema_title":
                    found = schema_title(artifact["type"])
                elif field == "state":
                    found = "LIVE"  # a rehearsal deletes nothing
                elif field == "name":
                    found = artifact.get("name")
                elif field.startswith("metadata."):
                    _, key, _kind = field.split(".")
                    found = artifact.get("metadata", {}).get(key)
                else:
                    raise ValueError(f"resolver filter field not understood: {field} (in {filter_text!r})")
                if found != value:
                    return False
            return True

        found = [artifact for artifact in self.artifacts() if matches(artifact)]
        return found[-1:]

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
        hits = [entry["outputs"] for entry in self._lines(self.cache_file) if entry["key"] == key]
        return hits[-1] if hits else None

    def add_cache(self, key: str, task: str, outputs: dict) -> None:
        with self.cache_file.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"key": key, "task": task, "outputs": outputs}, sort_keys=True) + "\n")


def _number(text: str):
    """``1`` or ``0.5`` as numbers; a bare word such as ``LIVE`` as itself."""
    try:
        return float(text) if "." in text else int(text)
    except ValueError:
        return text
