"""The data contract shared by every part of the pipeline.

``schema.pbtxt`` is the curated schema of the raw records (TFMD text
format) that ImportSchemaGen loads and ExampleValidator enforces.
``LABELS`` is the single source of the class names and their order: the
integer ``class`` of a record is an index into it. It is read from
``labels.txt`` next to this file so that non-Python tools can read it too.
"""

from pathlib import Path

SCHEMA_DIR = Path(__file__).resolve().parent
SCHEMA_FILE = SCHEMA_DIR / "schema.pbtxt"
LABELS_FILE = SCHEMA_DIR / "labels.txt"


def _load_labels(path: Path) -> tuple[str, ...]:
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    names = [name for name in names if name and not name.startswith("#")]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: duplicate class names in {names}")
    return tuple(names)


LABELS: tuple[str, ...] = _load_labels(LABELS_FILE)
