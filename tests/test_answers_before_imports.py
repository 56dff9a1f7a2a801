"""Commands that only read files, and any mistake in a command's arguments,
answer without loading TensorFlow, TFX or Beam (about 12 s of CPU on 2 cores).

Each command runs as ``python -m pipeline.cli.main ...`` in a process of its
own; when it exits, the process writes which of those libraries it had loaded.
The work directory is made by hand (a run's outcome.json, a pushed version's
manifest and model card), so no pipeline has to run.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from components.shared import serving_layout
from pipeline.reporting.outcome import RunOutcome, write_outcome

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("tensorflow", "tfx", "apache_beam")
VERSION = "1732200000"

# Runs the command line as `python -m pipeline.cli.main` does, and at exit
# writes the heavy libraries found in sys.modules to the file $LOADED_FILE.
RUN_AND_REPORT = f"""
import atexit, json, os, runpy, sys
atexit.register(lambda: open(os.environ["LOADED_FILE"], "w").write(
    json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules))))
sys.argv = ["flowers-tfx", *sys.argv[1:]]
runpy.run_module("pipeline.cli.main", run_name="__main__")
"""


def flowers_tfx(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    loaded = tmp_path / "loaded.json"
    result = subprocess.run(
        [sys.executable, "-c", RUN_AND_REPORT, *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "LOADED_FILE": str(loaded)},
        timeout=120,
    )
    return result, json.loads(loaded.read_text())


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    """A work directory with one finished run and one pushed version (manifest and card)."""
    work = tmp_path_factory.mktemp("work")
    run_dir = work / "runs" / "20261206-010000"
    run_dir.mkdir(parents=True)
    write_outcome(RunOutcome(pipeline="flowers", run_id=run_dir.name, state="pushed", accuracy=0.9), run_dir)
    version = work / "serving" / VERSION
    (version / "assets.extra").mkdir(parents=True)
    (version / serving_layout.MANIFEST_PATH).write_text(
        json.dumps({"pushed_at": "2026-12-06T01:00:00Z", "model_card": {"path": serving_layout.CARD_MD}})
    )
    (version / serving_layout.CARD_MD).write_text("# flowers, version 1732200000\n")
    (version / serving_layout.CARD_JSON).write_text(json.dumps({"version": int(VERSION)}))
    return work


@pytest.mark.parametrize(
    "args, status, says",
    [
        (["runs", "list", "--work-dir", "{work}"], 0, "20261206-010000  pushed"),
        (["runs", "show", "latest", "--work-dir", "{work}"], 0, "run 20261206-010000: pushed"),
        (["models", "list", "--work-dir", "{work}"], 0, f"version {VERSION}  pushed 2026-12-06T01:00:00Z"),
        (["models", "show", VERSION, "--work-dir", "{work}"], 0, "# flowers, version 1732200000"),
        (["models", "show", VERSION, "--json", "--work-dir", "{work}"], 0, '"version": 1732200000'),
        (["config", "show"], 0, "[model]"),
        (["config", "keys"], 0, "model.name"),
        (["data", "inspect", "{tmp}/nowhere/*.tfrec"], 2, "error: no files match"),
        (["data", "convert", "--from", "{tmp}/nowhere", "--out", "out"], 2, "does not exist or is not a folder"),
        (["run", "--set", "model.epochs=-1"], 2, "error: configuration: model.epochs: -1 is out of range"),
        (["run", "--no-such-option"], 2, "unrecognized arguments: --no-such-option"),
        (["predict", "--server", "http://127.0.0.1:9", "rose.jpg"], 1, "no answer"),
        (["predict", "--endpoint", "flowers", "rose.jpg"], 2, "--endpoint needs vertex.project"),
        (["predict", "--model", "{tmp}/none", "rose.jpg"], 2, "none: no such directory"),
        (["batch-predict", "--model", "{tmp}/none", "--input", "*.jpg", "--out", "out"], 2, "none: no such directory"),
        (
            ["data", "synth", "--out", "s", "--images", "3", "--shards", "1", "--seed", "0", "--size", "8"],
            2,
            "error: size must be at least 16 pixels, got 8",
        ),
    ],
    ids=lambda value: " ".join(value[:3]) if isinstance(value, list) else None,
)
def test_commands_that_read_files_load_no_tensorflow(work, tmp_path, args, status, says):
    args = [arg.replace("{work}", str(work)).replace("{tmp}", str(tmp_path)) for arg in args]
    result, loaded = flowers_tfx(tmp_path, *args)
    assert result.returncode == status, result.stderr[-2000:]
    assert says in result.stdout + result.stderr
    assert loaded == []


def test_a_run_with_a_missing_data_path_says_so_before_loading_tensorflow(tmp_path):
    missing = tmp_path / "nowhere"
    result, loaded = flowers_tfx(tmp_path, "run", "--data", f"{missing}/*.tfrec", "--work-dir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {missing}: data directory does not exist"
    assert loaded == []


def test_a_run_on_a_busy_work_dir_says_so_before_loading_tensorflow(tmp_path):
    from pipeline.runners.local import work_dir_lock

    with work_dir_lock(tmp_path / "w"):
        result, loaded = flowers_tfx(tmp_path, "run", "--work-dir", str(tmp_path / "w"))
    assert result.returncode == 2
    assert f"error: {tmp_path / 'w'} is in use by another run (pid " in result.stderr
    assert loaded == []
