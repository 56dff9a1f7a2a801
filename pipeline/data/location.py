"""Where a run's shards are, as ImportExampleGen wants them.

A module of its own, without TFX, so that ``flowers-tfx run`` can check the
data path (``pipeline/data/source.py``) before TFX and TensorFlow load.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DataLocation:
    """Shards as ImportExampleGen wants them: a base directory and a pattern in it."""

    base: str
    pattern: str
