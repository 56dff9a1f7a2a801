"""The whole pipeline, end to end, as a user runs it: ``flowers-tfx run``.

A few hundred small synthetic images and one epoch keep it to a couple of
minutes. The first run must execute every component once and push a model
whose serving signature classifies raw JPEG bytes; the second, with nothing
changed, must come entirely from the TFX cache and push nothing new.

The first run is the session's shared ``trained_run`` (tests/conftest.py);
the reruns happen in a run of their own on the same shards (``reruns``),
then once with the BatchInference step turned on, once with a per-class
floor that the model cannot reach, once killed in the Trainer and
resumed, and last with runs that notify a webhook (the first run and the
per-class floor's posted already) and fail. Those tests run in this file's
order, each in the work directory the one before it left.
"""

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import tensorflow as tf
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2
from warm_cli import WarmCli
from webhook_receivers import webhook_server

import schema
from pipeline.data.shards import shard_filename, write_shard
from pipeline.data.synth import write_synthetic_shards
from pipeline.runners.local import run_local
from pipeline.serving.lineage import LineageReader
from pipeline.serving.served_models import list_served_models

pytestmark = pytest.mark.e2e

COMPONENTS = [
    "ImportExampleGen",
    "ImportSchemaGen",
    "latest_blessed_model_resolver",
    "StatisticsGen",
    "ExampleValidator",
    "AnomaliesGate",
    "Transform",
    "DriftGate",
    "Trainer",
    "Evaluator",
    "Pusher",
]


def flowers_tfx(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli.main", *args], capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="module")
def shards(small_shards) -> Path:
    return small_shards


@pytest.fixture(scope="module")
def work_dir(trained_run) -> Path:
    return trained_run.work_dir


@pytest.fixture(scope="module")
def first_run(trained_run):
    """``flowers-tfx run`` on the shards: its exit status (returncode), stdout and stderr."""
    return trained_run


def executions_per_component(work_dir: Path) -> dict[str, list]:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(work_dir / "metadata.sqlite")
    store = metadata_store.MetadataStore(config)
    return {
        context.name.split(".", 1)[1]: sorted(store.get_executions_by_context(context.id), key=lambda e: e.id)
        for context in store.get_contexts_by_type("node")
    }


def pushed_versions(work_dir: Path) -> list[Path]:
    return sorted(p for p in (work_dir / "serving").glob("*") if p.is_dir() and p.name.isdigit())  # not .claims


def test_first_run_executes_every_component_once(first_run, work_dir):
    assert first_run.returncode == 0, first_run.stdout + first_run.stderr
    for component in COMPONENTS:
        assert f"{component:<32} done" in first_run.stdout.replace(
            "Resolver (last blessed model)", "latest_blessed_model_resolver"
        )
    executions = executions_per_component(work_dir)
    assert sorted(executions) == sorted(COMPONENTS)
    # Transform writes its graph only: no analyzer cache, which no run would read.
    assert sorted(p.name for p in (work_dir / "pipeline" / "Transform").iterdir()) == [".system", "transform_graph"]
    for component, runs in executions.items():
        assert len(runs) == 1, component
    assert "Traceback" not in first_run.stdout + first_run.stderr


def test_summary_and_report(first_run, work_dir):
    out = first_run.stdout
    assert "Examples" in out and "train" in out and "eval" in out
    assert "BLESSED: accuracy" in out
    assert "Pushed to " in out
    run_dir = sorted((work_dir / "runs").iterdir())[0]
    for name in (
        "pipeline.log",
        "config.toml",
        "summary.txt",
        "report.md",
        "training_curves.png",
        "confusion_matrix.png",
        "sample_predictions.png",
    ):
        assert (run_dir / name).is_file(), name
    assert "Component Trainer is finished" in (run_dir / "pipeline.log").read_text()


def test_pushed_model_classifies_jpeg_bytes(first_run, shards, work_dir):
    assert first_run.returncode == 0
    versions = pushed_versions(work_dir)
    assert len(versions) == 1
    serve = tf.saved_model.load(str(versions[0])).signatures["serving_default"]
    records = tf.data.TFRecordDataset(sorted(str(p) for p in shards.glob("*.tfrec"))).take(8)
    jpegs = [tf.train.Example.FromString(r.numpy()).features.feature["image"].bytes_list.value[0] for r in records]

    outputs = serve(image_bytes=tf.constant(jpegs))

    probabilities = outputs["probabilities"].numpy()
    assert probabilities.shape == (8, len(schema.LABELS))
    assert abs(probabilities.sum(axis=1) - 1).max() < 1e-4
    names = [name.decode() for name in outputs["class_name"].numpy()]
    assert names == [schema.LABELS[i] for i in outputs["class_id"].numpy()]
    assert list(outputs["class_id"].numpy()) == list(probabilities.argmax(axis=1))


def run_again(small_run, shards: Path, work_dir: Path, **settings) -> str:
    """Runs the pipeline in this process (it has TensorFlow loaded already)."""
    result, out = small_run.run(f"{shards}/*.tfrec", work_dir, **settings)
    assert result.succeeded, out
    return out


@pytest.fixture(scope="module")
def webhook():
    """A webhook receiver for the chain's runs that notify (the reruns' first
    run, the per-class floor's, the failed one): its URL and the bodies it got."""
    with webhook_server() as (url, received):
        yield url, received


def notifying(url: str, **settings) -> dict:
    """Settings of a run that posts its outcome to ``url``."""
    return {"notify.webhook": url, "notify.timeout_seconds": 1.0, **settings}


@pytest.fixture(scope="module")
def reruns(small_run, shards, tmp_path_factory, webhook) -> dict:
    """A first run of its own on the shards (these tests change its work
    directory), then the second and third: what they printed, the served
    version as ``models list`` saw it after the first, and the executions of
    each component after the third. The first run posts to ``webhook``."""
    work_dir = tmp_path_factory.mktemp("reruns") / "work"
    first = run_again(small_run, shards, work_dir, **notifying(webhook[0]))
    [served_after_first] = list_served_models(work_dir / "serving", work_dir / "metadata.sqlite")
    second = run_again(small_run, shards, work_dir)
    third = run_again(small_run, shards, work_dir)
    return {
        "work_dir": work_dir,
        "first": first,
        "second": second,
        "third": third,
        "served_after_first": served_after_first,
        "executions": executions_per_component(work_dir),
    }


def test_reruns_are_served_from_cache(reruns):
    work_dir, second, third = reruns["work_dir"], reruns["second"], reruns["third"]
    # The second run has a blessed baseline that the first did not: the
    # Evaluator compares the (cached) model with it, and the Pusher sees that
    # this model is already serving.
    for component in ("ImportExampleGen", "StatisticsGen", "Transform", "Trainer"):
        assert f"{component:<32} from cache" in second
    assert "Already serving from" in second
    assert "of the last blessed model's" in second  # compared with the baseline
    assert len(pushed_versions(work_dir)) == 1

    # With nothing changed since, every component comes from the cache.
    for component in COMPONENTS:
        if component != "latest_blessed_model_resolver":
            assert f"{component:<32} from cache" in third, component
    for component, runs in reruns["executions"].items():
        assert len(runs) == 3, component
        if component != "latest_blessed_model_resolver":
            assert runs[2].last_known_state == metadata_store_pb2.Execution.CACHED, component


def test_a_later_evaluation_against_itself_does_not_replace_the_push_evaluation(reruns):
    """The second run evaluated the served model again, with itself as the
    baseline: ``models list`` still shows the evaluation it was pushed on."""
    work_dir, before = reruns["work_dir"], reruns["served_after_first"]
    [after] = list_served_models(work_dir / "serving", work_dir / "metadata.sqlite")
    assert after.lineage == before.lineage
    latest = LineageReader.open(work_dir / "metadata.sqlite").lineage(after.model_uri, after.lineage.model_artifact_id)
    assert latest.evaluation_uri != before.lineage.evaluation_uri
    assert latest.has_baseline  # the model filled both inputs, model and baseline_model


def test_the_batch_inference_step_classifies_its_source_with_the_pushed_model(reruns, small_run, shards):
    """Once more with run.batch_inference_source: every other step comes from the
    cache, and the new one writes a line per record of the shards."""
    work_dir = reruns["work_dir"]
    source = f"{shards}/*.tfrec"
    result, out = small_run.run(source, work_dir, **{"run.batch_inference_source": source})
    assert result.succeeded, out
    for component in ("ImportExampleGen", "Trainer", "Evaluator", "Pusher"):
        assert f"{component:<32} from cache" in out, component
    assert f"{'BatchInference':<32} done" in out
    [version] = pushed_versions(work_dir)

    [execution] = executions_per_component(work_dir)["BatchInference"]
    assert execution.last_known_state == metadata_store_pb2.Execution.COMPLETE
    [folder] = (work_dir / "pipeline" / "BatchInference" / "inference_result").iterdir()
    lines = [json.loads(line) for path in folder.glob("predictions-*.jsonl") for line in path.read_text().splitlines()]
    records = sum(1 for path in shards.glob("*.tfrec") for _ in tf.data.TFRecordDataset(str(path)))
    assert len(lines) == records and len({line["file"] for line in lines}) == records
    assert all(line["class"] in schema.LABELS and line["model_version"] == version.name for line in lines)
    tally = json.loads((folder / "tally.json").read_text())
    assert tally["images"] == records and tally["refused"] == 0
    assert f"Batch inference: {records} of {records} image(s) classified by version {version.name}" in out


def test_a_class_below_its_floor_is_named_and_nothing_new_is_pushed(reruns, small_run, shards, webhook):
    """Once more with a per-class floor the model cannot reach: only the
    Evaluator runs again, each class below the floor is named, and the
    serving directory keeps what it had. The run posts to ``webhook``."""
    work_dir = reruns["work_dir"]
    before = pushed_versions(work_dir)
    result, out = small_run.run(
        f"{shards}/*.tfrec", work_dir, **notifying(webhook[0], **{"gate.min_class_accuracy": 0.99})
    )
    assert result.succeeded, out
    assert f"{'Trainer':<32} from cache" in out and f"{'Evaluator':<32} done" in out
    evaluation = result.summary.evaluation
    assert not evaluation.blessed and result.state == "not_blessed"
    # One epoch on 200 pictures leaves some class below 0.99; each is named with its value and the floor.
    per_class = {name: value for name, value in evaluation.per_class_accuracy.items() if value is not None}
    below = sorted(name for name, value in per_class.items() if value < 0.99)
    assert below
    for name in below:
        reason = next(r for r in evaluation.reasons if f"on class {name} " in r)
        assert reason == f"sparse_categorical_accuracy on class {name} {per_class[name]:.3f} is below the floor 0.990"
    assert "NOT BLESSED: sparse_categorical_accuracy on class" in out
    assert pushed_versions(work_dir) == before


def test_records_breaking_the_schema_stop_the_run_before_transform(small_run, tmp_path):
    # Each record is usable on its own (screening passes it), but one carries
    # a feature the curated schema does not know: ExampleValidator flags it.
    data = tmp_path / "bad"
    # (enough that each split fills a batch: DriftGate checks that first)
    write_synthetic_shards(str(data), images=120, shards=1, seed=3, size=48)
    good = next(data.glob("*.tfrec"))
    example = tf.train.Example.FromString(next(iter(tf.data.TFRecordDataset(str(good)))).numpy())
    example.features.feature["photographer"].bytes_list.value.append(b"someone")
    write_shard(str(data / shard_filename(1, 1)), [example.SerializeToString()])
    config = small_run.config(data, tmp_path / "work")
    out = tmp_path / "out.txt"
    with out.open("w") as stream:
        result = run_local(config, stream)
    text = out.read_text()
    assert not result.succeeded
    assert "AnomaliesGate failed" in text and "feature 'photographer'" in text
    assert "Transform" not in text
    assert not (tmp_path / "work" / "serving").exists()


def test_missing_data_is_a_clear_error(tmp_path):
    result = flowers_tfx("run", "--data", str(tmp_path / "nowhere" / "*.tfrec"), "--work-dir", str(tmp_path))
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'nowhere'}: data directory does not exist"


def test_a_second_run_on_a_busy_work_dir_stops_at_once(tmp_path):
    from pipeline.runners.local import work_dir_lock

    with work_dir_lock(tmp_path):
        result = flowers_tfx("run", "--work-dir", str(tmp_path))
    assert result.returncode == 2
    assert f"error: {tmp_path} is in use by another run (pid " in result.stderr
    assert not (tmp_path / "metadata.sqlite").exists()


# The run killed in the Trainer and its resumption: three epochs (a new
# Trainer run), and any model blessed. Training is not bit-for-bit repeatable,
# so whether three epochs beat the one-epoch model by the default gate varies
# from run to run; the notify test below reruns these settings and expects
# the resumed model to be serving.
RESUMED_RUN = {"model.epochs": 3, "gate.max_accuracy_drop": 1}


def test_a_run_killed_in_the_trainer_resumes_where_it_stopped(reruns, small_run, shards):
    """In the reruns' work directory, with three epochs: the Trainer runs again
    (its settings changed), is killed in its second epoch, and the next run
    resumes from that run's checkpoint, not from the one-epoch model's,
    and pushes what it trained."""
    import signal

    work_dir = reruns["work_dir"]
    versions = pushed_versions(work_dir)
    trainer_runs_before = len(executions_per_component(work_dir)["Trainer"])
    args = small_run.cli_args(f"{shards}/*.tfrec", work_dir, **RESUMED_RUN)
    process = WarmCli(args, cwd=Path.cwd())  # a `flowers-tfx run` process, its imports done (tests/warm_cli.py)
    seen = []
    for line in process.stdout:
        seen.append(line)
        if "Epoch 2/3" in line:
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert any("Epoch 2/3" in line for line in seen), "".join(seen)
    assert pushed_versions(work_dir) == versions  # the killed run pushed nothing

    out = io.StringIO()
    result = run_local(small_run.config(f"{shards}/*.tfrec", work_dir, **RESUMED_RUN), out)
    text = out.getvalue()
    assert result.state == "pushed", text
    for component in ("ImportExampleGen", "StatisticsGen", "Transform"):
        assert f"{component:<32} from cache" in text
    epochs = [line.strip().split(":")[0] for line in text.splitlines() if line.strip().startswith("Epoch ")]
    assert epochs == ["Epoch 3/3"], text  # resumed after the two finished epochs
    trainer_runs = executions_per_component(work_dir)["Trainer"]
    assert len(trainer_runs) == trainer_runs_before + 2
    assert trainer_runs[-2].last_known_state != metadata_store_pb2.Execution.COMPLETE  # the killed one
    assert trainer_runs[-1].last_known_state == metadata_store_pb2.Execution.COMPLETE


def test_pushed_not_blessed_and_failed_runs_each_post_once_and_runs_lists_them(
    reruns, small_run, shards, webhook, capsys
):
    """The chain's first run (pushed) and its per-class floor (not blessed)
    posted to the webhook; a batch larger than the data now fails at
    DriftGate, before any Beam step reads the examples, and posts too. What
    the runs wrote is what ``runs`` shows."""
    from webhook_receivers import FIELDS, refused_url, silent_server

    from pipeline.cli.main import main
    from pipeline.reporting.outcome import read_outcome
    from pipeline.reporting.runs import run_exit_status

    work_dir, (url, received) = reruns["work_dir"], webhook
    source = f"{shards}/*.tfrec"
    failed_run, out = small_run.run(source, work_dir, **notifying(url, **{"model.batch_size": 4096}))
    assert run_exit_status(failed_run) == 1, out

    assert [body["state"] for body in received] == ["pushed", "not_blessed", "failed"]
    for body in received:
        assert FIELDS <= set(body)
    pushed, not_blessed, failed = received
    assert pushed["blessed"] is True and pushed["pushed_version"].isdigit() and pushed["accuracy"] is not None
    assert not_blessed["blessed"] is False and "below the floor 0.990" in not_blessed["reasons"][0]
    assert failed["failed_component"] == "DriftGate" and "too few examples for a batch of 4096" in failed["error"]
    assert failed["text"].startswith(f"flowers run {failed['run_id']} FAILED in DriftGate:")

    run_ids = [body["run_id"] for body in received]
    assert [read_outcome(work_dir / "runs" / run_id).state for run_id in run_ids] == [
        "pushed",
        "not_blessed",
        "failed",
    ]
    assert main(["runs", "list", "--work-dir", str(work_dir)]) == 0
    listing = capsys.readouterr().out
    assert all(run_id in listing for run_id in run_ids) and "not_blessed" in listing
    assert main(["runs", "show", run_ids[2], "--work-dir", str(work_dir)]) == 0
    assert "failed in DriftGate: too few examples" in capsys.readouterr().out
    assert [main(["runs", "wait", run_id, "--work-dir", str(work_dir)]) for run_id in run_ids] == [0, 3, 1]

    # A webhook that never answers, or refuses: the outcome and exit status do not change.
    with silent_server() as silent:
        result, out = small_run.run(source, work_dir, **notifying(silent, **{"model.batch_size": 4096}))
    assert run_exit_status(result) == 1 and "warning: the notification to" in out and "SECRET" not in out
    # The last run's settings again (the resumed run's): the model is already
    # serving, an "unchanged" run, posted only when asked for.
    result, out = small_run.run(
        source, work_dir, **notifying(refused_url(), **RESUMED_RUN, **{"notify.on": "unchanged"})
    )
    assert result.state == "unchanged" and run_exit_status(result) == 0, out
    assert "warning: the notification to" in out
