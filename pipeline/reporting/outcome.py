"""How a run ended, in one record: what a notification posts, what
``runs/<run id>/outcome.json`` keeps, and what ``flowers-tfx runs`` lists.

The state is one of ``config.RUN_OUTCOMES``:

- ``pushed``: a blessed model became a new version in the serving directory;
- ``not_blessed``: the Evaluator refused the candidate, nothing was pushed;
- ``unchanged``: the blessed model was already serving (every step from cache);
- ``failed``: a component failed; ``failed_component`` and ``error`` say which and why.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from components.run_notifier.webhook import outcome_text

if TYPE_CHECKING:  # summary.py reads artifacts with TensorFlow; `runs list` reads only this file's JSON
    from pipeline.reporting.summary import RunSummary

OUTCOME_FILE = "outcome.json"


@dataclass
class RunOutcome:
    pipeline: str
    run_id: str
    state: str
    started_at: str | None = None
    seconds: float | None = None
    failed_component: str | None = None
    error: str | None = None
    blessed: bool | None = None
    # Why the gate decided as it did, one sentence each.
    reasons: list[str] = field(default_factory=list)
    accuracy: float | None = None
    pushed_version: str | None = None
    pushed_path: str | None = None
    # [component, how (ran, cached, failed, abandoned), seconds] in the order they ran.
    components: list[list] = field(default_factory=list)

    @property
    def text(self) -> str:
        """One line for a chat channel."""
        return outcome_text(asdict(self))

    def to_dict(self) -> dict:
        return {**asdict(self), "text": self.text}

    @classmethod
    def from_dict(cls, data: dict) -> "RunOutcome":
        names = set(cls.__dataclass_fields__)
        return cls(**{key: value for key, value in data.items() if key in names})


def outcome_of(
    summary: RunSummary,
    pipeline: str,
    run_id: str,
    started_at: str | None,
    seconds: float | None,
    failed_component: str | None = None,
    error: str | None = None,
) -> RunOutcome:
    """The outcome a run's summary describes."""
    evaluation = summary.evaluation
    outcome = RunOutcome(
        pipeline=pipeline,
        run_id=run_id,
        state="failed",
        started_at=started_at,
        seconds=round(seconds, 1) if seconds is not None else None,
        failed_component=failed_component,
        error=error,
        blessed=evaluation.blessed if evaluation else None,
        reasons=list(evaluation.reasons) if evaluation else [],
        accuracy=round(evaluation.accuracy, 4) if evaluation else None,
        pushed_path=summary.pushed_path,
        pushed_version=os.path.basename(summary.pushed_path.rstrip("/")) if summary.pushed_path else None,
        components=[[node, how, round(seconds, 1)] for node, how, seconds in summary.timings],
    )
    if summary.failed is None:
        if summary.pushed_path and not summary.already_serving:
            outcome.state = "pushed"
        elif evaluation is not None and not evaluation.blessed:
            outcome.state = "not_blessed"
        else:
            outcome.state = "unchanged"
    return outcome


def write_outcome(outcome: RunOutcome, run_dir: Path) -> Path:
    path = run_dir / OUTCOME_FILE
    path.write_text(json.dumps(outcome.to_dict(), indent=2) + "\n", encoding="utf-8")
    return path


def read_outcome(run_dir: Path) -> RunOutcome | None:
    """The outcome a finished run wrote; None for a run that never finished
    (killed, or still going) or whose file is unreadable."""
    try:
        return RunOutcome.from_dict(json.loads((run_dir / OUTCOME_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
