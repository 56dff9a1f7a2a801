"""Fixtures shared by several test files.

Pipeline runs are the slow part of the suite. Every test that only reads a
finished run shares one: ``trained_run``, trained once per test session on
small synthetic shards with the settings of ``SMALL_RUN``. Tests that
run the pipeline again in a work directory continue one chain of runs of
their own (``reruns`` in test_pipeline_e2e.py, the weekly schedule in
test_spans.py); tests that need other data, or a run that starts from
nothing, train with ``small_run`` (the same settings) in a folder of their own.

Markers: ``e2e`` (the whole pipeline runs) and ``slow`` (anything heavy; every
e2e test is slow too), so ``./test.sh -m "not slow"`` is the quick loop.
"""

import contextlib
import dataclasses
import fcntl
import io
import os
import pickle
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from components.shared import tf_environment

# Before any test module imports TensorFlow (some do before they import the
# project): its environment, as the CLI and the components set it.
tf_environment.configure()

# The project is cloned next to shared/, which holds real data on development
# machines only; tests that need it skip when it is absent.
SHARED_DATA_DIR = Path(__file__).resolve().parents[2] / "shared" / "data"

# The settings of every small pipeline run in the tests: small images, one
# epoch, and a gate whose floor is 0 so that one epoch is enough to push.
SMALL_RUN = {"model.image_size": 32, "model.batch_size": 16, "model.epochs": 1, "gate.min_accuracy": 0}
# The synthetic shards ``trained_run`` trains on.
SMALL_SHARDS = {"images": 200, "shards": 2, "seed": 11, "size": 64}


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    """The folder of real data (../shared/data); skips the test when it is absent."""
    if not SHARED_DATA_DIR.is_dir():
        pytest.skip(f"real data not available: {SHARED_DATA_DIR} does not exist (see the project README)")
    return SHARED_DATA_DIR


class SmallRun:
    """The small-run settings (``SMALL_RUN``) as configuration overrides, as
    ``--set`` options for ``flowers-tfx run``, and as a run in this process.
    ``source`` is the data source as a run takes it (``<folder>/*.tfrec``, a
    folder, ...); ``settings`` add to or replace SMALL_RUN's."""

    settings = SMALL_RUN

    def overrides(self, source: str | Path, work_dir: Path, **settings) -> dict:
        return {**SMALL_RUN, "data.source": str(source), "run.work_dir": str(work_dir), **settings}

    def config(self, source: str | Path, work_dir: Path, **settings):
        from pipeline.config_loading import load_config

        return load_config(overrides=self.overrides(source, work_dir, **settings), environ={})

    def run(self, source: str | Path, work_dir: Path, out=None, **settings):
        """Runs the pipeline here (TensorFlow is loaded once per session) and
        returns the RunResult and what the run printed (to ``out`` if given)."""
        from pipeline.runners.local import run_local  # TFX: only for the tests that need it

        stream = io.StringIO() if out is None else out
        result = run_local(self.config(source, work_dir, **settings), stream)
        return result, (stream.getvalue() if out is None else None)

    def cli_args(self, source: str | Path, work_dir: Path, **settings) -> list[str]:
        """``flowers-tfx`` arguments for the same run: run --data ... --work-dir ... --set ..."""
        args = ["run", "--data", str(source), "--work-dir", str(work_dir)]
        for key, value in {**SMALL_RUN, **settings}.items():
            args += ["--set", f"{key}={value}"]
        return args


@pytest.fixture(scope="session")
def small_run() -> SmallRun:
    return SmallRun()


@dataclasses.dataclass(frozen=True)
class TrainedRun:
    """One finished ``flowers-tfx run``: what it printed and where it wrote."""

    shards: Path  # the synthetic shards it trained on (SMALL_SHARDS)
    work_dir: Path
    returncode: int  # the command's exit status
    stdout: str
    stderr: str
    result: object  # pipeline.runners.local.RunResult

    @property
    def serving_dir(self) -> Path:
        return self.work_dir / "serving"


@contextlib.contextmanager
def captured_output():
    """Captures what is written to stdout and stderr, by Python and (for stderr)
    by native code too, as a ``flowers-tfx run`` process would show it."""
    out, err = io.StringIO(), io.StringIO()
    with tempfile.TemporaryFile() as native_err:
        for stream in (sys.stdout, sys.stderr):
            stream.flush()
        saved = os.dup(2)
        os.dup2(native_err.fileno(), 2)
        texts = {}
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                yield texts
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            native_err.seek(0)
            texts["stdout"] = out.getvalue()
            texts["stderr"] = err.getvalue() + native_err.read().decode(errors="replace")


def shared_folder(tmp_path_factory) -> Path:
    """A folder shared by the session's worker processes (pytest-xdist gives
    each its own base folder under one parent); this session's base folder
    when there are no workers."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


@contextlib.contextmanager
def made_once(folder: Path, name: str):
    """Holds ``folder/name.lock`` while the caller looks for ``folder/name``
    and makes it if missing: the first worker process to get there makes it,
    the others wait and reuse it."""
    with open(folder / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield folder / name
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def folder_made_once(tmp_path_factory, name: str, make) -> Path:
    """The shared folder ``name``, filled by ``make(partial)`` in a new empty
    folder by the first worker process to need it, then renamed into place:
    the others wait for it and never see it half made."""
    with made_once(shared_folder(tmp_path_factory), name) as folder:
        if not folder.is_dir():
            partial = Path(f"{folder}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir()
            make(partial)
            os.rename(partial, folder)
    return folder


@pytest.fixture(scope="session")
def small_shards(tmp_path_factory) -> Path:
    """A folder of small synthetic shards (SMALL_SHARDS), ``trained_run``'s data,
    written once per session. Read it, do not change it."""
    from pipeline.data.synth import write_synthetic_shards

    return folder_made_once(
        tmp_path_factory, "small-shards", lambda partial: write_synthetic_shards(str(partial), **SMALL_SHARDS)
    )


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, small_run, small_shards) -> TrainedRun:
    """One small pipeline run, made by ``flowers-tfx run`` (in this process),
    shared by every test that only reads a finished run, in every worker
    process of the session (the first to need it makes it). Do not change its
    work directory."""
    folder = shared_folder(tmp_path_factory)
    with made_once(folder, "trained-run.pickle") as saved:
        if saved.is_file():
            return pickle.loads(saved.read_bytes())
        run = make_trained_run(folder / "trained-run-work", small_run, small_shards)
        saved.write_bytes(pickle.dumps(run))
        return run


def make_trained_run(work_dir: Path, small_run: SmallRun, shards: Path) -> TrainedRun:
    from pipeline.cli.main import main as flowers_tfx
    from pipeline.runners import local

    results, original = [], local.run_local

    def run_local(config, out=None):
        results.append(original(config, out))
        return results[-1]

    with pytest.MonkeyPatch.context() as patch, captured_output() as output:
        patch.setattr(local, "run_local", run_local)  # to keep the RunResult as well
        returncode = flowers_tfx(small_run.cli_args(f"{shards}/*.tfrec", work_dir))
    return TrainedRun(
        shards=shards,
        work_dir=work_dir,
        returncode=returncode,
        stdout=output["stdout"],
        stderr=output["stderr"],
        result=results[0] if results else None,
    )


@pytest.fixture(scope="session")
def trainer_inputs(tmp_path_factory) -> Path:
    """Tiny shards and their transform graph for ``run_fn`` (40 training and 20
    eval examples, tests/trainer_inputs.py), made once for all worker
    processes. Read-only: run_fn writes next to its inputs, so a test trains
    on a copy (``trainer_inputs.copy_of``)."""
    from trainer_inputs import make_trainer_data

    return folder_made_once(tmp_path_factory, "trainer-inputs", lambda partial: make_trainer_data(partial, 40, 20))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("e2e"):
            item.add_marker(pytest.mark.slow)
    # The longest files first (pytest-xdist hands files to workers in this
    # order; test.sh turns off its own reordering): files with pipeline runs,
    # then other slow files, then the quick ones, which fill the gaps at the
    # end. A file's tests keep their order (some continue a chain of runs).
    rank = {}
    for item in items:
        weight = 0 if item.get_closest_marker("e2e") else 1 if item.get_closest_marker("slow") else 2
        rank[item.path] = min(weight, rank.get(item.path, 2))
    items.sort(key=lambda item: rank[item.path])
