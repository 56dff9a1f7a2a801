"""The runs of a work directory: ``flowers-tfx runs list|show|wait``.

Every local run has a folder ``<work_dir>/runs/<run id>/``; a run that
finished wrote its outcome there (``outcome.json``, see ``outcome.py``). A
folder without one belongs to the run holding the work directory's lock (it
is still going) or to a run that was killed (abandoned). Which one is read
from the lock file's record of its holder (pid, host, start), never by
taking the lock: reading never blocks or fails a run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from components.shared.common import HOLDER_GONE, describe_holder, holder_state, read_holder
from pipeline.errors import EXIT_NOT_BLESSED, EXIT_OK, EXIT_PROBLEMS, FlowersError
from pipeline.reporting.outcome import RunOutcome, read_outcome
from pipeline.reporting.table import format_table

# `run` and `runs wait` exit with this when the run finished but pushed
# nothing because the gate refused the model.
EXIT_NOT_PUSHED = EXIT_NOT_BLESSED
LOG_FILE = "pipeline.log"


@dataclass
class RunRecord:
    run_id: str
    folder: Path
    # The outcome's state; for a run without one "running", "abandoned" (killed)
    # or "unknown" (it wrote a summary but no outcome: an older version's run).
    state: str
    outcome: RunOutcome | None


def lock_holder(work_dir: Path) -> dict | None:
    """The run that holds the work directory's lock, as its lock file records
    it (pid, host, start), when that process is still there (or on another
    host, where it cannot be checked); None when no run holds it or the
    record is stale (a killed run). Reads the file only: a reader never
    takes the lock, so it never blocks nor fails a run that starts."""
    try:
        record = read_holder((work_dir / ".lock").read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return None
    return None if holder_state(record) == HOLDER_GONE else record


def list_runs(work_dir: Path) -> list[RunRecord]:
    """Every run of ``work_dir``, oldest first."""
    runs_dir = work_dir / "runs"
    folders = sorted(path for path in runs_dir.iterdir() if path.is_dir()) if runs_dir.is_dir() else []
    busy = lock_holder(work_dir) is not None if folders else False
    records = []
    for index, folder in enumerate(folders):
        outcome = read_outcome(folder)
        if outcome is not None:
            state = outcome.state
        elif busy and index == len(folders) - 1:
            state = "running"
        elif (folder / "summary.txt").is_file():
            state = "unknown"  # finished before runs recorded their outcome
        else:
            state = "abandoned"
        records.append(RunRecord(folder.name, folder, state, outcome))
    return records


def find_run(work_dir: Path, run_id: str) -> RunRecord:
    """The run called ``run_id`` (``latest`` for the newest); FlowersError if none."""
    records = list_runs(work_dir)
    if not records:
        raise FlowersError(f"{work_dir / 'runs'}: no runs in this work directory")
    if run_id == "latest":
        return records[-1]
    for record in records:
        if record.run_id == run_id:
            return record
    known = ", ".join(record.run_id for record in records[-5:])
    raise FlowersError(f"{work_dir / 'runs' / run_id}: no such run (the latest: {known})")


def exit_status(state: str) -> int:
    """The exit status of a run that ended in ``state`` (``run`` and ``runs
    wait`` alike): 0 succeeded (pushed, or the blessed model already serving),
    1 failed, cancelled or abandoned, 3 finished without pushing because the
    model was not blessed."""
    if state in ("pushed", "unchanged"):
        return EXIT_OK  # "failed", "cancelled", "abandoned": 1
    if state == "not_blessed":
        return EXIT_NOT_PUSHED
    return EXIT_PROBLEMS


def run_exit_status(result) -> int:
    """The exit status ``flowers-tfx run`` gives a local run that ended with
    ``result`` (pipeline.runners.local.RunResult): a run that did not finish is 1."""
    return exit_status(result.state) if result.succeeded else EXIT_PROBLEMS


def wait_for(
    work_dir: Path,
    run_id: str,
    timeout: float | None,
    poll_seconds: float = 2.0,
    on_progress: Callable[[str], None] = lambda line: None,
) -> RunRecord:
    """Blocks until the run has ended; reports each new progress line of its log."""
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = 0
    while True:
        record = find_run(work_dir, run_id)
        log = record.folder / LOG_FILE
        if log.is_file():
            lines = [
                line
                for line in log.read_text(encoding="utf-8", errors="replace").splitlines()
                if "Component " in line and (" is running." in line or " is finished." in line)
            ]
            for line in lines[seen:]:
                on_progress(line.split(": ", 1)[-1])
            seen = len(lines)
        if record.state != "running":
            return record
        if deadline is not None and time.monotonic() > deadline:
            raise FlowersError(f"{record.folder}: still running after {timeout:.0f} s")
        time.sleep(poll_seconds)


def format_runs(records: list[RunRecord]) -> str:
    rows = [("RUN", "STATE", "STARTED", "SECONDS", "ACCURACY", "PUSHED")]
    for record in records:
        outcome = record.outcome
        rows.append(
            (
                record.run_id,
                record.state,
                (outcome.started_at or "-") if outcome else "-",
                f"{outcome.seconds:.0f}" if outcome and outcome.seconds is not None else "-",
                f"{outcome.accuracy:.3f}" if outcome and outcome.accuracy is not None else "-",
                (outcome.pushed_version or "-") if outcome else "-",
            )
        )
    return format_table(rows)


def format_run(record: RunRecord) -> str:
    outcome = record.outcome
    lines = [f"run {record.run_id}: {record.state}", f"  folder    {record.folder}"]
    if outcome is None:
        if record.state == "running":
            holder = lock_holder(record.folder.parent.parent)
            note = f"still going ({describe_holder(holder)})" if holder else "still going"
        else:
            note = "it never finished (killed?)"
        lines.append(f"  {note}; its log: {record.folder / LOG_FILE}")
        return "\n".join(lines)
    lines.append(f"  {outcome.text}")
    if outcome.started_at:
        lines.append(f"  started   {outcome.started_at}, {outcome.seconds:.0f} s")
    if outcome.blessed is not None:
        lines.append(f"  {'BLESSED' if outcome.blessed else 'NOT BLESSED'}: {' '.join(outcome.reasons)}")
    if outcome.pushed_path:
        lines.append(f"  pushed    {outcome.pushed_path}")
    if outcome.components:
        lines.append("  components")
        lines.extend(f"    {node:<32}{how:<10}{seconds:7.1f} s" for node, how, seconds in outcome.components)
    if outcome.failed_component or outcome.error:
        lines.append(f"  failed in {outcome.failed_component or 'the pipeline'}: {outcome.error}")
    return "\n".join(lines)
