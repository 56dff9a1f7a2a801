"""Beam steps in worker processes: ``run.beam_args`` with the DirectRunner's
``multi_processing`` mode, where each step's functions are pickled and
shipped to SDK worker processes (``python -m apache_beam.runners.worker.sdk_worker_main``).

The options given to TFX must not make it package itself at every Beam step
(the DirectRunner's workers are this interpreter and never install it), and
a whole run in that mode must push a model and leave no worker behind. Its
data holds a few bad records (tests/bad_records.py), which the worker
processes must set aside, as tests/test_bad_input.py expects of a run.
"""

import json
import os
import uuid

import psutil
import pytest
from bad_records import BAD_RECORDS, GOOD_RECORDS, write_shards_with_bad_records

from pipeline import direct_runner

WORKER_MODE = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
# The whole run takes one worker process per Beam step: enough to ship every
# step's functions out of this process (a second worker adds only its start-up,
# about 10 s of CPU importing TensorFlow, per step).
ONE_WORKER = ["--direct_running_mode=multi_processing", "--direct_num_workers=1"]
# Set in the run's environment, so its worker processes (which inherit it) can be told from any other.
RUN_MARKER = "FLOWERS_TEST_BEAM_RUN"


def test_direct_runner_options_name_an_empty_requirements_file():
    assert direct_runner.local_beam_args(WORKER_MODE) == WORKER_MODE + [direct_runner.NOTHING_TO_INSTALL]
    assert direct_runner.local_beam_args(["--runner=DirectRunner", "--direct_num_workers=2"])[-1] == (
        direct_runner.NOTHING_TO_INSTALL
    )
    # No options: TFX packages nothing either, and the DirectRunner keeps its in-memory defaults.
    assert direct_runner.local_beam_args([]) == []


@pytest.mark.parametrize(
    "args",
    [
        ["--runner=FlinkRunner", "--flink_master=localhost:8081"],
        ["--runner", "DataflowRunner", "--project=p"],
        WORKER_MODE + ["--setup_file=./setup.py"],
        WORKER_MODE + ["--sdk_container_image", "gcr.io/p/image:1"],
    ],
)
def test_other_runners_and_given_dependencies_are_left_alone(args):
    assert direct_runner.local_beam_args(args) == args


def test_tfx_builds_no_package_for_direct_runner_workers(monkeypatch):
    from tfx.utils import dependency_utils

    built = []
    monkeypatch.setattr(dependency_utils, "build_ephemeral_package", lambda: built.append(1) or "/tmp/tfx.tar.gz")
    assert dependency_utils.make_beam_dependency_flags(direct_runner.local_beam_args(WORKER_MODE)) == (
        WORKER_MODE + [direct_runner.NOTHING_TO_INSTALL]
    )
    assert built == []
    # What the same options did before: an sdist of TFX for every Beam step.
    assert dependency_utils.make_beam_dependency_flags(WORKER_MODE)[-1] == "--extra_package=/tmp/tfx.tar.gz"
    assert built == [1]


def test_the_dag_passes_the_local_options_to_every_beam_step(small_run, tmp_path):
    from pipeline import dag

    config = small_run.config("unused/*.tfrec", tmp_path, **{"run.beam_args": " ".join(WORKER_MODE)})
    assert dag.default_beam_args(config, "local") == WORKER_MODE + [direct_runner.NOTHING_TO_INSTALL]


def worker_processes(marker: str) -> list[psutil.Process]:
    """Beam SDK worker processes started by the run marked ``marker``."""
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if "apache_beam.runners.worker.sdk_worker_main" in " ".join(process.info["cmdline"] or []):
                if process.environ().get(RUN_MARKER) == marker:
                    found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


@pytest.mark.e2e
@pytest.mark.slow  # the whole pipeline, each Beam step in a worker process
def test_pipeline_in_beam_worker_processes_sets_bad_records_aside_pushes_and_leaves_no_worker_e2e(
    small_run, tmp_path, monkeypatch
):
    """One run for two behaviours: Beam worker processes, and bad records
    within ``data.max_bad_fraction`` set aside (quarantined) by them."""
    import tensorflow as tf

    from components.example_gen.component import QUARANTINE_DIR

    marker = uuid.uuid4().hex
    monkeypatch.setenv(RUN_MARKER, marker)
    data, work = write_shards_with_bad_records(tmp_path / "data"), tmp_path / "work"
    settings = {"run.beam_args": " ".join(ONE_WORKER), "data.max_bad_fraction": 0.05}
    result, out = small_run.run(f"{data}/*.tfrec", work, **settings)
    assert result.succeeded, out
    pushed = [p for p in (work / "serving").iterdir() if p.is_dir() and p.name.isdigit()]  # not .claims
    assert len(pushed) == 1 and (pushed[0] / "saved_model.pb").exists(), out
    log = next(work.glob("runs/*/pipeline.log")).read_text(errors="replace")
    # The Beam steps ran in SDK worker processes (their log lines are relayed as "Worker: ...") ...
    assert "Python sdk harness exiting" in log
    # ... and TFX packaged nothing for them.
    assert "Attempting to infer TFX Python dependency" not in log
    assert "--extra_package" not in log

    # The bad records were set aside, each with its reason, and the good ones used.
    bad = len(BAD_RECORDS)
    assert result.summary.screened == GOOD_RECORDS + bad and result.summary.quarantined == bad
    assert f"Records screened: {GOOD_RECORDS + bad}, {bad} set aside in" in out
    quarantine = os.path.join(result.summary.examples_uri, QUARANTINE_DIR)
    reasons = [json.loads(line) for path in tf.io.gfile.glob(f"{quarantine}/*-reasons*.jsonl") for line in open(path)]
    by_index = {line["index"]: line["reasons"] for line in reasons}
    assert sorted(by_index) == list(range(bad)), reasons
    for index, (_, reason) in enumerate(BAD_RECORDS):
        assert any(reason in text for text in by_index[index]), (index, by_index[index])
    kept = sum(1 for p in tf.io.gfile.glob(f"{quarantine}/*-records*.tfrecord") for _ in tf.data.TFRecordDataset(p))
    assert kept == bad
    assert sum(counts["total"] for counts in result.summary.split_counts.values()) == GOOD_RECORDS

    leftover = worker_processes(marker)
    for process in leftover:
        process.kill()
    assert leftover == [], f"worker processes still running after the run: {[p.pid for p in leftover]}"
