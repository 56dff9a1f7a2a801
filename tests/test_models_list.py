"""``flowers-tfx models list``: each pushed version with its metrics and lineage.

One small pipeline run (a few hundred synthetic images, one epoch: the
session's shared ``trained_run``, tests/conftest.py) gives a work directory
with a real ML Metadata store; the listing must agree with what the run itself
reported and with the store.
"""

import json
import shutil
from pathlib import Path

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

import schema
from pipeline.cli.main import main as flowers_tfx
from pipeline.serving import versions as pushed_versions
from pipeline.serving.served_models import list_served_models

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def shards(trained_run) -> Path:
    return trained_run.shards


@pytest.fixture(scope="module")
def work(trained_run) -> Path:
    return trained_run.work_dir


@pytest.fixture(scope="module")
def first_run(trained_run):
    """The RunResult of the shared run."""
    assert trained_run.returncode == 0 and trained_run.result.succeeded, trained_run.stdout + trained_run.stderr
    return trained_run.result


def pipeline_run_names(work: Path) -> list[str]:
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(work / "metadata.sqlite")
    store = metadata_store.MetadataStore(config)
    return [context.name for context in store.get_contexts_by_type("pipeline_run")]


def test_the_manifest_path_is_the_pushers(first_run):
    from components.pusher.component import PUSH_MANIFEST

    assert str(pushed_versions.MANIFEST_PATH) == PUSH_MANIFEST


def test_the_pushed_version_with_its_accuracy_blessing_data_and_run(first_run, shards, work):
    [served] = list_served_models(work / "serving", work / "metadata.sqlite")

    assert Path(served.path).parent == work / "serving" and served.notes == []
    assert served.blessed is True
    evaluation = first_run.summary.evaluation
    # From the model card, which rounds to 4 places (model_card.json: no TensorFlow to list versions).
    assert served.metrics.accuracy == pytest.approx(evaluation.accuracy, abs=5e-5)
    assert served.metrics.example_count == evaluation.example_count > 0
    assert served.metrics.per_class_accuracy == pytest.approx(evaluation.per_class_accuracy, abs=5e-5)
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
    assert f"  accuracy  {round(first_run.summary.evaluation.accuracy, 4):.3f} on " in text
    assert f"  data      {shards} (all: *.tfrec)" in text
    assert f"  run       {run_name}" in text

    assert flowers_tfx(["models", "list", "--work-dir", str(work), "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["version"] == version and listed["blessed"] is True
    assert listed["lineage"]["pipeline_run"] == run_name
    assert 0 <= listed["metrics"]["accuracy"] <= 1


def test_a_version_without_a_card_has_its_metrics_read_from_the_evaluator(first_run, work, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(work / "serving", copy)
    [with_card] = list_served_models(work / "serving", work / "metadata.sqlite")
    (copy / str(with_card.version) / "assets.extra" / "model_card.json").unlink()

    [without] = list_served_models(copy, work / "metadata.sqlite")  # TFMA's own output, full precision
    assert without.metrics.accuracy == pytest.approx(first_run.summary.evaluation.accuracy)
    assert without.metrics.accuracy == pytest.approx(with_card.metrics.accuracy, abs=5e-5)
    assert without.metrics.failures == with_card.metrics.failures == []


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
