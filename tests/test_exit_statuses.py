"""One meaning for each exit status, for every command (issue 27, item 3):

    0 done (pushed, or nothing to do), 1 a step failed, 2 bad arguments,
    configuration or data, 3 finished but the model was not blessed (or a
    promotion refused for that reason), 130 interrupted.

The end-to-end runs that end in each state are in test_notify.py (``run``
and ``runs wait`` on the same runs) and test_pipeline_e2e.py; here each
command's mapping is checked without training.
"""

from pathlib import Path

import pytest

from pipeline.cli.main import main
from pipeline.errors import EXIT_STATUSES
from pipeline.reporting.outcome import RunOutcome, write_outcome
from pipeline.reporting.summary import RunSummary


def test_the_table_is_in_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert EXIT_STATUSES.strip() in out
    for line in (
        "0    done",
        "1    a step failed",
        "2    bad arguments",
        "3    finished, but the model was not blessed",
        "130  interrupted",
    ):
        assert line in out


@pytest.mark.parametrize(
    "succeeded, state, status",
    [
        (True, "pushed", 0),
        (True, "unchanged", 0),
        (True, "not_blessed", 3),
        (False, "failed", 1),
    ],
)
def test_run_exits_by_how_the_run_ended(monkeypatch, tmp_path, succeeded, state, status):
    from pipeline.runners import local

    monkeypatch.setattr(
        local, "run_local", lambda config: local.RunResult(succeeded, tmp_path, RunSummary(), None, state)
    )
    assert main(["run", "--work-dir", str(tmp_path)]) == status


def test_an_interrupted_command_exits_130(monkeypatch, tmp_path, capsys):
    from pipeline.runners import local

    def interrupted(config):
        raise KeyboardInterrupt

    monkeypatch.setattr(local, "run_local", interrupted)
    assert main(["run", "--work-dir", str(tmp_path)]) == 130
    assert "interrupted" in capsys.readouterr().err


def _finished_run(work: Path, run_id: str, state: str) -> None:
    folder = work / "runs" / run_id
    folder.mkdir(parents=True)
    write_outcome(RunOutcome(pipeline="flowers", run_id=run_id, state=state), folder)


def test_runs_wait_exits_as_run_does(tmp_path):
    for run_id, state in [
        ("20260101-000001", "pushed"),
        ("20260101-000002", "unchanged"),
        ("20260101-000003", "not_blessed"),
        ("20260101-000004", "failed"),
    ]:
        _finished_run(tmp_path, run_id, state)
    statuses = [
        main(["runs", "wait", run_id, "--work-dir", str(tmp_path)])
        for run_id in ("20260101-000001", "20260101-000002", "20260101-000003", "20260101-000004")
    ]
    assert statuses == [0, 0, 3, 1]
    (tmp_path / "runs" / "20260101-000005").mkdir()  # killed: no outcome, no live lock
    assert main(["runs", "wait", "latest", "--work-dir", str(tmp_path)]) == 1
    assert main(["runs", "wait", "nope", "--work-dir", str(tmp_path)]) == 2


@pytest.mark.parametrize(
    "pushed, status",
    [
        ({"state": "pushed"}, 0),
        ({"state": "unchanged"}, 0),
        ({"state": "not_blessed"}, 3),
        ({}, 0),
    ],
)
def test_a_rehearsal_whose_model_is_not_blessed_exits_3(monkeypatch, tmp_path, pushed, status):
    from pipeline.runners import rehearsal
    from pipeline.runners.rehearsal import stand_ins

    monkeypatch.setattr(rehearsal, "rehearse", lambda *args, **kwargs: 0)
    monkeypatch.setattr(stand_ins, "recorded_push_outcome", lambda root: pushed)
    assert main(["rehearse", "spec.json", "--root", str(tmp_path)]) == status
    monkeypatch.setattr(rehearsal, "rehearse", lambda *args, **kwargs: 1)
    assert main(["rehearse", "spec.json", "--root", str(tmp_path)]) == 1
