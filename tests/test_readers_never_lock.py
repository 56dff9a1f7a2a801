"""``runs list/show/wait`` learn whether a run is live from the record in its
lock file (pid, host, start), never by taking the lock (issue 27, item 2):
a reader must never block or fail a run that starts at that moment."""

import fcntl
import json
import socket
import subprocess
import sys

from components.shared import common
from pipeline.cli.main import main
from pipeline.reporting import runs
from pipeline.runners.local import WorkDirLocked, work_dir_lock


def _no_flock(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a reader took a lock")

    monkeypatch.setattr(fcntl, "flock", refuse)


def test_a_live_run_is_running_and_readers_never_take_its_lock(tmp_path, monkeypatch, capsys):
    with work_dir_lock(tmp_path):
        (tmp_path / "runs" / "20260101-000001").mkdir(parents=True)
        record = json.loads((tmp_path / ".lock").read_text())
        assert record["pid"] and record["host"] == socket.gethostname() and record["started_at"]
        with monkeypatch.context() as patched:
            _no_flock(patched)
            assert [r.state for r in runs.list_runs(tmp_path)] == ["running"]
            assert main(["runs", "show", "latest", "--work-dir", str(tmp_path)]) == 0
            assert main(["runs", "list", "--work-dir", str(tmp_path)]) == 0
        out = capsys.readouterr().out
        assert f"still going (pid {record['pid']} on {record['host']} since {record['started_at']})" in out
        # A second writer is still refused, naming the holder.
        try:
            with work_dir_lock(tmp_path):
                raise AssertionError("two runs held one work directory")
        except WorkDirLocked as busy:
            assert f"pid {record['pid']} on {record['host']}" in str(busy)
    assert [r.state for r in runs.list_runs(tmp_path)] == ["abandoned"]  # released, no outcome


def test_a_killed_runs_stale_record_is_abandoned(tmp_path, monkeypatch):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / "runs" / "20260101-000001").mkdir(parents=True)
    stale = {**common.holder_record(), "pid": int(dead.stdout)}
    (tmp_path / ".lock").write_text(json.dumps(stale))
    _no_flock(monkeypatch)
    assert [r.state for r in runs.list_runs(tmp_path)] == ["abandoned"]
    # A live process id whose start differs is another process: stale too.
    (tmp_path / ".lock").write_text(json.dumps({**common.holder_record(), "process_start": 1}))
    assert [r.state for r in runs.list_runs(tmp_path)] == ["abandoned"]
    # The older record ("pid N") of a live process still counts.
    (tmp_path / ".lock").write_text(f"pid {common.holder_record()['pid']}")
    assert [r.state for r in runs.list_runs(tmp_path)] == ["running"]


def test_a_holder_on_another_host_cannot_be_checked_and_counts_as_running(tmp_path, monkeypatch):
    (tmp_path / "runs" / "20260101-000001").mkdir(parents=True)
    (tmp_path / ".lock").write_text(json.dumps({**common.holder_record(), "host": "elsewhere", "pid": 1}))
    _no_flock(monkeypatch)
    assert [r.state for r in runs.list_runs(tmp_path)] == ["running"]
    assert common.holder_state(common.read_holder((tmp_path / ".lock").read_text())) == common.HOLDER_UNKNOWN
