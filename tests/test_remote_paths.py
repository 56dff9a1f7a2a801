"""The code paths that only object stores (gs://) take, taken here.

Vertex AI runs the pipeline on gs:// paths; the code branches on "://" there
(no atomic rename, TFX's copy_dir deleting its destination first, paths that
``pathlib`` would mangle). TensorFlow's filesystem and TFX's fileio accept
``file://`` URLs, which contain "://" and so take exactly those branches
while writing to a local folder. No GCS emulator is needed (TensorFlow's GCS
filesystem cannot be pointed at one offline).
"""

import json
import os
from types import SimpleNamespace

import pytest
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts
from tfx.utils import proto_utils

from components.pusher import component as pusher_executor
from components.shared import serving_layout
from components.trainer import training
from pipeline import dag
from pipeline.cli.main import main
from pipeline.config_loading import load_config
from pipeline.serving import promotion, versions
from pipeline.serving.served_models import format_served_models, list_served_models


def url(path) -> str:
    return f"file://{path}"


def make_model(root, name="model"):
    model = standard_artifacts.Model()
    model.uri = str(root / name)
    serving = root / name / "Format-Serving"
    (serving / "variables").mkdir(parents=True)
    (serving / "saved_model.pb").write_bytes(b"graph " + name.encode())
    (serving / "variables" / "variables.index").write_bytes(b"index")
    model.id = 7
    return model


def make_blessing(root):
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(root / "blessing")
    os.makedirs(blessing.uri, exist_ok=True)
    (root / "blessing" / "BLESSED").write_text("")
    blessing.set_int_custom_property("blessed", 1)
    return blessing


def push(root, model, blessing, serving_dir: str):
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(root / f"pushed-{len(os.listdir(root))}")
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving_dir)
    )
    pusher_executor.Executor().Do(
        {"model": [model], "model_blessing": [blessing]},
        {"pushed_model": [pushed]},
        {"push_destination": proto_utils.proto_to_json(destination)},
    )
    return pushed


def test_file_urls_take_the_remote_branch():
    assert serving_layout.is_remote("file:///tmp/x") and serving_layout.is_remote("gs://b/x")
    assert not serving_layout.is_remote("/tmp/x")


# ------------------------------------------------------------------------ the Pusher


def test_a_push_to_an_object_store_keeps_its_manifest(tmp_path):
    final = pusher_executor.publish_version(
        str(make_model(tmp_path).uri) + "/Format-Serving", url(tmp_path / "serving"), 5, {"model_uri": "m"}
    )
    assert final == url(tmp_path / "serving" / "5")
    version = tmp_path / "serving" / "5"
    assert json.loads((version / "assets.extra" / "push.json").read_text()) == {"model_uri": "m"}
    assert (version / "saved_model.pb").read_bytes() == b"graph model"
    assert (version / "variables" / "variables.index").is_file()
    assert not [name for name in os.listdir(tmp_path / "serving") if name.startswith(".")]  # no staging


def test_the_same_model_is_pushed_once_to_an_object_store(tmp_path):
    serving = url(tmp_path / "serving")
    model, blessing = make_model(tmp_path), make_blessing(tmp_path)
    first = push(tmp_path, model, blessing, serving)
    second = push(tmp_path, model, blessing, serving)

    [version] = [name for name in os.listdir(tmp_path / "serving") if name != ".claims"]  # the writers' lock
    assert (tmp_path / "serving" / version / serving_layout.MANIFEST_PATH).is_file()
    assert first.get_int_custom_property("pushed") == 1
    assert second.get_int_custom_property(pusher_executor.ALREADY_SERVING_KEY) == 1
    assert second.get_string_custom_property("pushed_version") == version
    assert pusher_executor.serving_versions(serving) == [int(version)]


def test_a_new_model_gets_a_higher_version_on_an_object_store(tmp_path):
    serving = url(tmp_path / "serving")
    blessing = make_blessing(tmp_path)
    push(tmp_path, make_model(tmp_path, "a"), blessing, serving)
    push(tmp_path, make_model(tmp_path, "b"), blessing, serving)
    first, second = serving_layout.version_dirs(serving).values()
    assert serving_layout.read_manifest(first)["model_uri"].endswith("/a")
    assert serving_layout.read_manifest(second)["model_uri"].endswith("/b")


# ---------------------------------------------------------------- reading it back


def test_models_list_reads_a_remote_serving_dir(tmp_path, capsys):
    serving = url(tmp_path / "serving")
    push(tmp_path, make_model(tmp_path), make_blessing(tmp_path), serving)
    [served] = list_served_models(serving, tmp_path / "no-metadata.sqlite")
    assert served.path.startswith(serving + "/")
    assert served.pushed_at and served.model_uri == str(tmp_path / "model")
    assert served.blessed is True  # the BLESSED file, read through the URL
    assert "metrics unknown" in served.notes[0]
    assert "1 version(s) in file://" in format_served_models([served], serving)

    status = main(["models", "list", "--serving-dir", serving, "--work-dir", str(tmp_path / "work"), "--json"])
    assert status == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["path"] == served.path and listed["model_uri"] == served.model_uri


def test_a_damaged_remote_manifest_is_named(tmp_path):
    version = tmp_path / "serving" / "3"
    (version / "assets.extra").mkdir(parents=True)
    (version / "assets.extra" / "push.json").write_text("[1, 2]")
    with pytest.raises(versions.ServingDirError, match="push.json: the push manifest is not a JSON object"):
        versions.read_manifest(url(version))
    assert versions.version_dirs(url(tmp_path / "serving")) == {3: url(version)}


@pytest.mark.parametrize(
    "command",
    [
        ["models", "promote", "3", "--to", "gs://bucket/production"],
        ["models", "rollback", "--to", "gs://bucket/production"],
    ],
)
def test_promotion_refuses_an_object_store_naming_it(tmp_path, capsys, command):
    status = main(command + ["--work-dir", str(tmp_path)])
    assert status == 2
    error = capsys.readouterr().err
    assert "gs://bucket/production: promotion and rollback need a local directory" in error


def test_promotion_refuses_a_remote_source(tmp_path, capsys):
    status = main(
        [
            "models",
            "promote",
            "3",
            "--to",
            str(tmp_path / "prod"),
            "--serving-dir",
            "gs://b/serving",
            "--work-dir",
            str(tmp_path),
        ]
    )
    assert status == 2
    assert "gs://b/serving: promotion and rollback need a local directory" in capsys.readouterr().err
    with pytest.raises(promotion.PromotionError, match="file:///x"):
        promotion.refuse_remote("/local", "file:///x")


# ------------------------------------------------------------------- data sources


def test_a_gs_data_source_is_not_checked_here():
    from pipeline.data.source import check_local_data, split_glob

    location = split_glob("gs://no-such-bucket-flowers/none/*.tfrec")
    assert location.base == "gs://no-such-bucket-flowers/none" and location.pattern == "*.tfrec"
    # Returns at once: no network, no credentials (ImportExampleGen checks it on Vertex).
    assert check_local_data(location, load_config(None, {})) is None


# ---------------------------------------------------------------- Trainer checkpoints

VERTEX = {
    "vertex.project": "flowers-test",
    "vertex.region": "europe-west4",
    "vertex.pipeline_root": "gs://flowers-test-bucket/root",
    "vertex.image": "europe-west4-docker.pkg.dev/flowers-test/p/flowers-tfx:1",
    "data.source": "gs://flowers-public/tfrecords-jpeg-192x192-2/*.tfrec",
}


def fn_args_for(custom_config: dict, model_run_dir: str):
    return SimpleNamespace(
        train_files=["gs://flowers-test-bucket/root/123/job-1/ImportExampleGen_1/examples/Split-train/*"],
        transform_output="gs://flowers-test-bucket/root/123/job-1/Transform_2/transform_graph",
        model_run_dir=model_run_dir,
        custom_config=custom_config,
    )


def test_vertex_checkpoints_are_found_by_the_next_pipeline_run():
    config = load_config(None, VERTEX)
    custom_config = dag.trainer_custom_config(config, "vertex")
    settings = custom_config["model"]
    # KFP v2 output artifacts: <root>/<project number>/<job>/<task>_<id>/<output>.
    first = fn_args_for(custom_config, "gs://flowers-test-bucket/root/123/job-1/Trainer_5/model_run")
    second = fn_args_for(custom_config, "gs://flowers-test-bucket/root/123/job-2/Trainer_9/model_run")
    folder = training.backup_dir(first, settings)
    assert folder == training.backup_dir(second, settings)
    assert folder.startswith("gs://flowers-test-bucket/root/Trainer/checkpoints/")


def test_local_checkpoints_stay_under_the_trainer_folder(tmp_path):
    config = load_config(None, {"run.work_dir": str(tmp_path)})
    custom_config = dag.trainer_custom_config(config, "local")
    run_dir = str(config.pipeline_root / "Trainer" / "model_run" / "12")
    folder = training.backup_dir(fn_args_for(custom_config, run_dir), custom_config["model"])
    assert os.path.dirname(folder) == str(config.pipeline_root / "Trainer" / "checkpoints")
