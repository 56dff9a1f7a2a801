"""The model card every pushed version carries (components/pusher/), and
``models show`` / ``models list`` reading it.

The Pusher's tests here use a stand-in for the Evaluator's output (the
figures ``components/shared/eval_results.read`` would return); the last two
read a real one, from the session's shared ``trained_run``.
"""

import io
import json
import os
import types

import pytest
from PIL import Image
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.pusher import card_facts, model_card
from components.pusher import component as pusher
from components.shared import eval_results, serving_layout
from pipeline.cli.main import main

LABELS = ["daisy", "dandelion", "roses", "sunflowers", "tulips"]
LINEAGE = {
    "spans": [{"span": 3, "examples": 50, "classes": [10, 10, 10, 10, 10]}],
    "splits": {"train": {"examples": 40, "classes": [8, 8, 8, 8, 8]}, "eval": {"examples": 10, "classes": [2] * 5}},
}
HISTORY = {
    "model": "convnet",
    "settings": {"name": "convnet", "image_size": 64, "epochs": 2, "optimizer": "adam"},
    "train_examples": 40,
    "eval_examples": 10,
    "epochs": {"loss": [1.5, 1.2], "val_sparse_categorical_accuracy": [0.5, 0.7], "lr": [0.001, 1.234567e-05]},
}


def figures(accuracy, baseline=None):
    """What eval_results.read returns for an evaluation (with a baseline or not)."""
    confusion = [[2 if actual == predicted else 0 for predicted in range(5)] for actual in range(5)]
    confusion[4] = [0, 0, 0, 1, 1]  # one tulip taken for a sunflower
    return eval_results.EvalResults(
        accuracy=accuracy,
        example_count=10,
        confusion=confusion,
        failures=[],
        thresholds=eval_results.Thresholds(min_accuracy=0.5, max_accuracy_drop=0.02),
        baseline_accuracy=baseline,
        baseline_confusion=[[2 if a == p else 0 for p in range(5)] for a in range(5)] if baseline else None,
    )


def artifacts(root, name, baseline_uri=""):
    """A model (with its data lineage), its blessing, evaluation and model_run."""
    model = standard_artifacts.Model()
    model.uri = str(root / name)
    serving = root / name / "Format-Serving"
    (serving / "assets.extra").mkdir(parents=True)
    (serving / "saved_model.pb").write_bytes(b"graph")
    (serving / "assets.extra" / "data_lineage.json").write_text(json.dumps(LINEAGE))
    model.id = len(name)
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(root / f"{name}-blessing")
    blessing.set_int_custom_property("blessed", 1)
    if baseline_uri:
        blessing.set_string_custom_property(card_facts.BASELINE_MODEL_KEY, baseline_uri)
    evaluation = standard_artifacts.ModelEvaluation()
    evaluation.uri = str(root / f"{name}-evaluation")
    model_run = standard_artifacts.ModelRun()
    model_run.uri = str(root / f"{name}-run")
    os.makedirs(model_run.uri)
    (root / f"{name}-run" / "history.json").write_text(json.dumps(HISTORY))
    return model, blessing, evaluation, model_run


def push(root, serving, name, baseline_uri=""):
    """Runs the Pusher's executor; returns the new version's folder and its manifest."""
    model, blessing, evaluation, model_run = artifacts(root, name, baseline_uri)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(root / f"{name}-pushed")
    destination = pusher_pb2.PushDestination(filesystem={"base_directory": str(serving)})
    pusher.Executor().Do(
        {"model": [model], "model_blessing": [blessing], "model_evaluation": [evaluation], "model_run": [model_run]},
        {"pushed_model": [pushed]},
        {"push_destination": proto_utils.proto_to_json(destination), "custom_config": '{"max_image_pixels": 1234}'},
    )
    folder = pushed.get_string_custom_property("pushed_destination")
    push.last = pushed  # the output artifact, for the Model Registry step
    return folder, json.loads(open(os.path.join(pushed.uri, "push.json")).read())


def test_a_pushed_version_carries_a_card_comparing_it_with_the_previous_one(tmp_path, monkeypatch):
    serving = tmp_path / "serving"
    monkeypatch.setattr(card_facts.eval_results, "read", lambda uri: figures(0.9))
    first, _ = push(tmp_path, serving, "first")
    monkeypatch.setattr(card_facts.eval_results, "read", lambda uri: figures(0.9, baseline=0.8))
    second, manifest = push(tmp_path, serving, "second", baseline_uri=str(tmp_path / "first"))

    first_card = json.loads(open(os.path.join(first, serving_layout.CARD_JSON)).read())
    assert first_card["previous"] is None and first_card["gate"]["thresholds"]["max_accuracy_drop"] is None
    assert (
        "0.500 (no blessed model before it to compare with)" in open(os.path.join(first, serving_layout.CARD_MD)).read()
    )

    assert manifest["model_card"]["path"] == serving_layout.CARD_MD
    card = json.loads(open(os.path.join(second, serving_layout.CARD_JSON)).read())
    assert card["model"]["name"] == "convnet" and card["model"]["recipe"]["image_size"] == 64
    assert card["data"]["spans"][0]["span"] == 3
    assert card["evaluation"]["per_class_accuracy"]["tulips"] == 0.5
    previous = card["previous"]
    assert previous["version"] == int(os.path.basename(first))
    assert previous["change"]["accuracy"] == 0.1
    assert previous["change"]["per_class_accuracy"] == {
        "daisy": 0,
        "dandelion": 0,
        "roses": 0,
        "sunflowers": 0,
        "tulips": -0.5,
    }
    assert card["gate"]["verdict"] == "BLESSED" and card["gate"]["thresholds"]["max_accuracy_drop"] == 0.02
    assert card["input_contract"]["max_image_pixels"] == 1234 and card["missing"] == []

    text = open(os.path.join(second, serving_layout.CARD_MD)).read()
    assert f"version {os.path.basename(first)}" in text and "+10.0 points" in text
    assert "image_bytes" in text and "pixel budget 1,234" in text and "## Known limits" in text
    picture = Image.open(io.BytesIO(open(os.path.join(second, serving_layout.CARD_PNG), "rb").read()))
    assert picture.format == "PNG" and picture.width > 300


def test_on_an_object_store_the_card_is_written_and_shown(tmp_path, monkeypatch, capsys):
    """file:// URLs take the gs:// branch (no rename; saved_model.pb copied last), writing locally."""
    serving = f"file://{tmp_path / 'serving'}"
    monkeypatch.setattr(card_facts.eval_results, "read", lambda uri: figures(0.9))
    first, _ = push(tmp_path, serving, "first")
    monkeypatch.setattr(card_facts.eval_results, "read", lambda uri: figures(0.85, baseline=0.9))
    second, manifest = push(tmp_path, serving, "second", baseline_uri=str(tmp_path / "first"))
    assert second.startswith("file://") and manifest["model_card"]["path"] == serving_layout.CARD_MD
    version = second.rsplit("/", 1)[1]
    assert main(["models", "show", version, "--serving-dir", serving, "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["previous"]["version"] == int(first.rsplit("/", 1)[1])
    assert card["previous"]["change"]["accuracy"] == -0.05


def test_without_the_evaluation_the_card_says_what_is_missing(tmp_path):
    serving = tmp_path / "serving"
    model, blessing, _, _ = artifacts(tmp_path, "lone")
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    destination = pusher_pb2.PushDestination(filesystem={"base_directory": str(serving)})
    pusher.Executor().Do(
        {"model": [model], "model_blessing": [blessing]},
        {"pushed_model": [pushed]},
        {"push_destination": proto_utils.proto_to_json(destination)},
    )
    card = json.loads(
        open(os.path.join(pushed.get_string_custom_property("pushed_destination"), serving_layout.CARD_JSON)).read()
    )
    assert card["evaluation"] is None and any(gap.startswith("evaluation") for gap in card["missing"])


@pytest.mark.parametrize("broken", ["made", "written"])
def test_a_card_that_fails_never_fails_the_push(tmp_path, monkeypatch, broken):
    serving = tmp_path / "serving"
    monkeypatch.setattr(card_facts.eval_results, "read", lambda uri: figures(0.9))
    if broken == "made":
        monkeypatch.setattr(card_facts, "gather", lambda *args: 1 / 0)
    else:
        opened = model_card.fileio.open

        def refuse(path, mode="r"):  # the card's files only: the disk filled up just then
            if "push.json" not in str(path):
                raise OSError(28, "No space left on device")
            return opened(path, mode)

        monkeypatch.setattr(model_card.fileio, "open", refuse)
    folder, manifest = push(tmp_path, serving, "model")
    assert os.path.isfile(os.path.join(folder, "saved_model.pb"))
    assert manifest["model_card"]["error"].startswith(f"not {broken}")
    assert (
        json.loads(open(os.path.join(folder, serving_layout.MANIFEST_PATH)).read())["model_card"]
        == manifest["model_card"]
    )
    assert not os.path.exists(os.path.join(folder, serving_layout.CARD_MD))


def test_the_registry_upload_carries_the_cards_summary_and_labels(tmp_path, monkeypatch):
    from google.api_core import exceptions as google_exceptions
    from google.cloud.aiplatform_v1.types import Model as ModelType

    from components.model_registry_pusher import component as registry

    monkeypatch.setattr(card_facts.eval_results, "read", lambda uri: figures(0.9125))
    push(tmp_path, tmp_path / "serving", "model")
    uploads = []

    class Model:  # the Vertex AI SDK's Model, as far as upload_version uses it: an empty registry
        def __init__(self, model_name, **location):
            raise google_exceptions.NotFound(model_name)

        @classmethod
        def upload(cls, **request):
            uploads.append(request)
            return types.SimpleNamespace(versioned_resource_name="projects/p/locations/r/models/flowers@1")

    monkeypatch.setattr(registry, "aiplatform", types.SimpleNamespace(Model=Model))
    target = registry.RegistryTarget("p", "r", "flowers", "image")
    pushed = push.last
    registry.upload_version(
        "gs://b/serving/7",
        "7",
        target,
        pushed.get_string_custom_property(model_card.SUMMARY_KEY),
        json.loads(pushed.get_string_custom_property(model_card.LABELS_KEY)),
    )
    (request,) = uploads
    assert request["labels"] == {
        "model": "convnet",
        "accuracy_permille": "912",
        "spans": "3",
        "blessed": "true",
        "serving_version": "7",
    }
    description = request["version_description"]
    assert description.startswith("serving version 7 from gs://b/serving/7\nmodel convnet, 64 px, 2 epochs")
    assert description.endswith("model card: gs://b/serving/7/assets.extra/model_card.md")
    ModelType(version_description=description, labels=request["labels"])  # the SDK's own type accepts them


def test_the_last_epochs_figures_keep_four_significant_digits(tmp_path):
    from components.pusher import card_facts

    (tmp_path / "history.json").write_text(json.dumps(HISTORY))
    last = card_facts.model_facts(str(tmp_path))["last_epoch"]
    assert last == {"loss": 1.2, "val_sparse_categorical_accuracy": 0.7, "lr": 1.235e-05}  # not rounded to 0.0


def test_a_long_summary_is_cut_at_a_line_within_vertex_ais_limit():
    summary = "\n".join(f"line {number} " + "x" * 50 for number in range(100))
    description = model_card.registry_description("first", summary, "gs://b/s/1/assets.extra/model_card.md")
    assert len(description) <= model_card.DESCRIPTION_LIMIT
    assert "\n...\nmodel card: gs://b/s/1/assets.extra/model_card.md" in description
    assert all(line.startswith(("first", "line", "...", "model card")) for line in description.splitlines())


def test_the_thresholds_are_read_back_from_the_gates_eval_config(small_run, tmp_path):
    from pipeline.quality_gate import eval_config

    config = small_run.config(tmp_path / "data", tmp_path / "work", **{"gate.min_class_accuracy": 0.3})
    found = eval_results.thresholds_of(eval_config(config))
    assert found == eval_results.Thresholds(
        min_accuracy=0, max_accuracy_drop=0.02, min_class_accuracy=0.3, max_class_accuracy_drop=1.0
    )


@pytest.fixture(scope="module")
def pushed(trained_run):
    assert trained_run.returncode == 0, trained_run.stdout + trained_run.stderr
    (version,) = serving_layout.version_dirs(str(trained_run.serving_dir))
    return trained_run, version


def test_models_show_prints_the_card_of_a_real_run(pushed, capsys):
    run, version = pushed
    assert main(["models", "show", str(version), "--work-dir", str(run.work_dir)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"# Model card: flowers, version {version}") and "## Evaluation" in text
    assert main(["models", "show", str(version), "--work-dir", str(run.work_dir), "--json"]) == 0
    card = json.loads(capsys.readouterr().out)
    assert card["missing"] == [] and card["model"]["name"] == "convnet"
    assert main(["models", "list", "--work-dir", str(run.work_dir), "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert card["evaluation"]["accuracy"] == round(listed["metrics"]["accuracy"], 4)
    assert listed["card"].endswith(serving_layout.CARD_MD)
    assert sum(map(sum, card["evaluation"]["confusion_matrix"])) == card["evaluation"]["examples"]


def test_models_show_names_a_missing_version_or_card(pushed, tmp_path, capsys):
    run, version = pushed
    assert main(["models", "show", "1", "--work-dir", str(run.work_dir)]) == 2
    assert "no version 1" in capsys.readouterr().err
    old = tmp_path / "serving" / "7"
    old.mkdir(parents=True)
    (old / "saved_model.pb").write_bytes(b"")
    assert main(["models", "show", "7", "--serving-dir", str(tmp_path / "serving")]) == 2
    assert "no model card" in capsys.readouterr().err
