"""Which data a model learned from: the spans it read, and how many examples
of each class were in its training and evaluation splits.

ExampleGen writes the full record, ``data_lineage.json``, into its Examples
artifact: each span read (its files and examples per class) and the profile
of each output split (``data_profile.py``), counted while the records were
written, so nothing reads the examples a second time for it. The Trainer
copies the short form (no histograms) into the model it exports
(``assets.extra/data_lineage.json``), and the Pusher into the push manifest:
the run summary, the report and ``models list`` read it from there, locally
and on Vertex AI alike.
"""

from __future__ import annotations

import json
import os

LINEAGE_FILE = "data_lineage.json"


def write(lineage: dict, directory: str) -> None:
    import tensorflow as tf  # only where files are read or written: `models list` need not load it

    tf.io.gfile.makedirs(directory)
    with tf.io.gfile.GFile(os.path.join(directory, LINEAGE_FILE), "w") as handle:
        handle.write(json.dumps(lineage, indent=1))


def read(directory: str) -> dict | None:
    """The lineage written into ``directory``; None when there is none (an
    artifact made before lineage was recorded) or it cannot be read."""
    import tensorflow as tf

    path = os.path.join(directory, LINEAGE_FILE)
    try:
        if not tf.io.gfile.exists(path):
            return None
        with tf.io.gfile.GFile(path) as handle:
            lineage = json.loads(handle.read())
    except (OSError, ValueError, tf.errors.OpError):
        return None
    return lineage if isinstance(lineage, dict) else None


def examples_dir(split_files: str) -> str:
    """The Examples artifact's folder from one split's file pattern
    (``<examples>/Split-train/*``), as the Trainer is given it."""
    return os.path.dirname(os.path.dirname(split_files.rstrip("/")))


def split_profile(lineage: dict | None, split: str) -> dict | None:
    """The full profile of one output split, as ExampleGen counted it."""
    return ((lineage or {}).get("splits") or {}).get(split)


def short(lineage: dict) -> dict:
    """What a model carries: spans, and examples per class of each split."""
    return {
        "spans": [
            {key: span[key] for key in ("span", "examples", "classes") if key in span}
            for span in lineage.get("spans", [])
        ],
        "splits": {
            name: {"examples": profile["examples"], "classes": profile["classes"]}
            for name, profile in (lineage.get("splits") or {}).items()
        },
    }


def span_numbers(lineage: dict | None) -> list[int]:
    return [span["span"] for span in (lineage or {}).get("spans", [])]


def describe_spans(lineage: dict | None) -> str:
    """``'2, 3'``, or ``''`` when the data has no spans."""
    return ", ".join(str(number) for number in span_numbers(lineage))


def describe(lineage: dict | None, labels: list[str]) -> list[str]:
    """Readable lines: the spans with their examples, then each split's class counts."""
    if not lineage:
        return []
    lines = []
    spans = lineage.get("spans", [])
    if spans:
        lines.append("spans " + ", ".join(f"{span['span']} ({span['examples']} examples)" for span in spans))
    for name, profile in sorted((lineage.get("splits") or {}).items(), key=lambda item: item[0] != "train"):
        counts = ", ".join(f"{label} {count}" for label, count in zip(labels, profile["classes"], strict=True))
        lines.append(f"{name} {profile['examples']}: {counts}")
    return lines
