"""The Pusher's executor: only blessed models, whole versions, no duplicates."""

import json
import os

import pytest
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.pusher import component as pusher_executor


def make_model(root, name="model"):
    model = standard_artifacts.Model()
    model.uri = str(root / name)
    serving = root / name / "Format-Serving"
    (serving / "variables").mkdir(parents=True)
    (serving / "saved_model.pb").write_bytes(b"graph " + name.encode())
    (serving / "variables" / "variables.index").write_bytes(b"index")
    model.id = hash(name) % 1000
    return model


def make_blessing(root, blessed: bool):
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(root / f"blessing-{blessed}")
    os.makedirs(blessing.uri, exist_ok=True)
    blessing.set_int_custom_property("blessed", int(blessed))
    return blessing


def push(root, model, blessing, serving_dir):
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(root / f"pushed-{len(os.listdir(root))}")
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(serving_dir))
    )
    pusher_executor.Executor().Do(
        {"model": [model], "model_blessing": [blessing]},
        {"pushed_model": [pushed]},
        {"push_destination": proto_utils.proto_to_json(destination)},
    )
    return pushed


def test_an_unblessed_model_is_not_pushed(tmp_path):
    serving = tmp_path / "serving"
    pushed = push(tmp_path, make_model(tmp_path), make_blessing(tmp_path, False), serving)
    assert pushed.get_int_custom_property("pushed") == 0
    assert not serving.exists()


def test_a_blessed_model_is_pushed_whole_with_its_manifest(tmp_path):
    serving = tmp_path / "serving"
    model = make_model(tmp_path)
    pushed = push(tmp_path, model, make_blessing(tmp_path, True), serving)
    (version,) = [name for name in os.listdir(serving) if name != ".claims"]  # .claims: the writers' lock
    assert version.isdigit()
    assert (serving / version / "saved_model.pb").read_bytes() == b"graph model"
    manifest = json.loads((serving / version / "assets.extra" / "push.json").read_text())
    assert manifest["model_uri"] == model.uri and manifest["version"] == int(version)
    assert pushed.get_string_custom_property("pushed_destination") == str(serving / version)


def test_the_same_model_is_not_pushed_twice_and_versions_only_go_up(tmp_path):
    serving = tmp_path / "serving"
    first = make_model(tmp_path, "first")
    push(tmp_path, first, make_blessing(tmp_path, True), serving)
    again = push(tmp_path, first, make_blessing(tmp_path, True), serving)
    assert again.get_int_custom_property(pusher_executor.ALREADY_SERVING_KEY) == 1
    push(tmp_path, make_model(tmp_path, "second"), make_blessing(tmp_path, True), serving)
    versions = pusher_executor.serving_versions(str(serving))
    assert len(versions) == 2 and versions[0] < versions[1]


def test_an_interrupted_push_leaves_no_version(tmp_path, monkeypatch):
    serving = tmp_path / "serving"
    copied = []

    def copy_then_die(src, dst, *args, **kwargs):
        os.makedirs(dst, exist_ok=True)
        (open(os.path.join(dst, "saved_model.pb"), "wb")).close()
        copied.append(dst)
        raise OSError("disk full")

    monkeypatch.setattr(pusher_executor.io_utils, "copy_dir", copy_then_die)
    with pytest.raises(OSError, match="disk full"):
        push(tmp_path, make_model(tmp_path), make_blessing(tmp_path, True), serving)
    assert copied and os.path.basename(copied[0]).startswith(pusher_executor.STAGING_PREFIX)
    assert pusher_executor.serving_versions(str(serving)) == []
    assert os.listdir(serving) == [".claims"]  # the staging directory is gone too
    assert os.listdir(serving / ".claims") == ["lock"]  # and so is the version's claim


def test_a_candidate_failing_the_gate_leaves_the_serving_directory_untouched(tmp_path):
    serving = tmp_path / "serving"
    push(tmp_path, make_model(tmp_path, "blessed"), make_blessing(tmp_path, True), serving)
    before = {p: p.read_bytes() for p in serving.rglob("*") if p.is_file()}
    pushed = push(tmp_path, make_model(tmp_path, "worse"), make_blessing(tmp_path, False), serving)
    assert pushed.get_int_custom_property("pushed") == 0
    assert {p: p.read_bytes() for p in serving.rglob("*") if p.is_file()} == before


def test_the_pushed_models_property_names_are_the_ones_tfx_writes():
    from tfx.components.pusher import executor as tfx_pusher

    assert pusher_executor.PUSHED_KEY == tfx_pusher._PUSHED_KEY
    assert pusher_executor.PUSHED_DESTINATION_KEY == tfx_pusher._PUSHED_DESTINATION_KEY
    assert pusher_executor.PUSHED_VERSION_KEY == tfx_pusher._PUSHED_VERSION_KEY
