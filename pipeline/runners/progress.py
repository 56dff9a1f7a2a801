"""Progress a person can follow while the local pipeline runs.

TFX's local runner logs each component as it starts and finishes, and the
launcher logs whether it reused a cached execution. This handler turns those
log records into one live line per component, with its duration (and the
Trainer's epochs), while every log record (Beam's included) goes to the run's
log file instead of the terminal.

The display is all that depends on the log's wording: the summary and the
report read what ran from ML Metadata (``pipeline/reporting/run_outputs``),
so a TFX release that rewords a line can make the display plainer, never
the summary wrong.
"""

from __future__ import annotations

import logging
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from components.trainer.outputs import EPOCH_LOG_FORMAT

# Friendlier names for the progress lines.
_TITLES = {
    "latest_blessed_model_resolver": "Resolver (last blessed model)",
}


@dataclass
class ComponentRun:
    """What happened to one component in this run."""

    node_id: str
    started: float
    seconds: float | None = None
    cached: bool = False
    skipped: bool = False


class ProgressTracker(logging.Handler):
    """A logging handler that records and prints component progress."""

    def __init__(self, out: TextIO | None = None):
        super().__init__(level=logging.INFO)
        self.out = out or sys.stdout
        self.runs: dict[str, ComponentRun] = {}
        self.current: ComponentRun | None = None

    def emit(self, record: logging.LogRecord) -> None:
        message, args = record.msg, record.args or ()
        if not isinstance(message, str) or not args:
            return
        if message == "Component %s is running.":
            self._start(str(args[0]))
        elif message == "Component %s is finished.":
            self._finish(str(args[0]))
        elif self.current is not None:
            if message == "A cached execution %d is used.":
                self.current.cached = True
            elif message.startswith("Skipping execution for"):
                self.current.skipped = True
            elif message == EPOCH_LOG_FORMAT:
                self._print("      " + record.getMessage())

    def _start(self, node_id: str) -> None:
        self.current = ComponentRun(node_id=node_id, started=time.monotonic())
        self.runs[node_id] = self.current
        self._print(f"  {_TITLES.get(node_id, node_id):<32} running ...")

    def _finish(self, node_id: str) -> None:
        run = self.runs.get(node_id)
        if run is None:
            return
        run.seconds = time.monotonic() - run.started
        how = "from cache" if run.cached else "skipped" if run.skipped else "done"
        self._print(f"  {_TITLES.get(node_id, node_id):<32} {how:<10} {run.seconds:7.1f} s")
        self.current = None

    def _print(self, line: str) -> None:
        self.out.write(line + "\n")
        self.out.flush()
