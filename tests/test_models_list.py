"""``flowers-tfx models list``: each pushed version with its metrics and lineage.

One small pipeline run (a few hundred synthetic images, one epoch) gives a
work directory with a real ML Metadata store; the listing must agree with
what the run itself reported and with the store.
"""

import io
import json
import shutil
from pathlib import Path

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

import schema
from pipeline.serving import versions as pushed_versions
from pipeline.cli.main import main as flowers_tfx
from pipeline.serving.lineage import LineageReader
from pipeline.serving.served_models import list_served_models

pytestmark = pytest.mark.e2e

SMALL_RUN = {"model.image_size": 32, "model.batch_size": 16, "model.epochs": 1, "gate.min_accuracy": 0}


def run_pipeline(shards: Path, work: Path):
    from pipeline.config import load_config
    from pipeline.runners.local import run_local

    overrides = {**SMALL_RUN, "data.source": f"{shards}/*.tfrec", "run.work_dir": str(work)}
    out = io.StringIO()
    result = run_local(load_config(overrides=overrides, environ={}), out)
    assert result.succeeded, out.getvalue()
    return result


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    from pipeline.data.synth import write_synthetic_shards

    folder = tmp_path_factory.mktemp("shards")
    write_synthetic_shards(str(folder), images=200, shards=2, seed=11, size=64)
    return folder


@pytest.fixture(scope="module")
def work(shards, tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("work")


@pytest.fixture(scope="module")
def first_run(shards, work):
    return run_pipeline(shards, work)


def pipeline_run_names(work: Path) -> list[str]:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(work / "metadata.sqlite")
    store = metadata_store.MetadataStore(config)
    return [context.name for context in store.get_contexts_by_type("pipeline_run")]


def test_the_manifest_path_is_the_pushers(first_run):
    from components.pusher import PUSH_MANIFEST

    assert str(pushed_versions.MANIFEST_PATH) == PUSH_MANIFEST


def test_the_pushed_version_with_its_accuracy_blessing_data_and_run(first_run, shards, work):
    [served] = list_served_models(work / "serving", work / "metadata.sqlite")

    assert Path(served.path).parent == work / "serving" and served.notes == []
    assert served.blessed is True
    evaluation = first_run.summary.evaluation
    assert served.metrics.accuracy == pytest.approx(evaluation.accuracy)
    assert served.metrics.example_count == evaluation.example_count > 0
    assert served.metrics.per_class_accuracy == pytest.approx(evaluation.per_class_accuracy)
    assert set(served.metrics.per_class_accuracy) == set(schema.LABELS)
    lineage = served.lineage
    assert lineage.training_data.input_base == str(shards)
    assert lineage.training_data.patterns == {"all": "*.tfrec"}
    assert lineage.training_data.examples_uri == first_run.summary.examples_uri
    assert lineage.pipeline_run == pipeline_run_names(work)[0]
    assert served.model_uri == lineage.model_uri and first_run.summary.model_path.startswith(lineage.model_uri)


def test_the_command_prints_each_version_or_json(first_run, shards, work, capsys):
    [version] = pushed_versions.version_dirs(work / "serving")
    run_name = pipeline_run_names(work)[0]

    assert flowers_tfx(["models", "list", "--work-dir", str(work)]) == 0
    text = capsys.readouterr().out
    assert f"version {version}  pushed 20" in text and "BLESSED" in text
    assert f"  accuracy  {first_run.summary.evaluation.accuracy:.3f} on " in text
    assert f"  data      {shards} (all: *.tfrec)" in text
    assert f"  run       {run_name}" in text

    assert flowers_tfx(["models", "list", "--work-dir", str(work), "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["version"] == version and listed["blessed"] is True
    assert listed["lineage"]["pipeline_run"] == run_name
    assert 0 <= listed["metrics"]["accuracy"] <= 1


def test_a_copied_serving_directory_is_listed_without_metrics(first_run, work, tmp_path, capsys):
    copy = tmp_path / "copy"
    shutil.copytree(work / "serving", copy)
    (copy / "42").mkdir()  # a version from elsewhere, without a manifest

    assert flowers_tfx(["models", "list", "--serving-dir", str(copy), "--work-dir", str(tmp_path / "none")]) == 0
    text = capsys.readouterr().out
    assert "2 version(s) in" in text
    assert f"metrics unknown: {tmp_path / 'none' / 'metadata.sqlite'}: no ML Metadata store" in text
    assert "no push manifest (assets.extra/push.json): its origin is unknown" in text
    assert not (tmp_path / "none").exists()  # looking did not create a store

    assert flowers_tfx(["models", "list", "--serving-dir", str(tmp_path / "nothing")]) == 2
    assert f"error: {tmp_path / 'nothing'}: no such serving directory" in capsys.readouterr().err


def test_a_later_evaluation_against_itself_does_not_replace_the_push_evaluation(first_run, shards, work):
    [before] = list_served_models(work / "serving", work / "metadata.sqlite")
    run_pipeline(shards, work)  # everything cached but the Evaluator, now with a baseline: itself

    [after] = list_served_models(work / "serving", work / "metadata.sqlite")
    assert after.lineage == before.lineage
    latest = LineageReader.open(work / "metadata.sqlite").lineage(after.model_uri, after.lineage.model_artifact_id)
    assert latest.evaluation_uri != before.lineage.evaluation_uri
    assert latest.has_baseline  # the model filled both inputs, model and baseline_model
