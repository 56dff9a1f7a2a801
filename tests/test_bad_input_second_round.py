"""Bad input, second round: a damaged metadata store, a failing report, the
configuration's holes and awkward data paths. Each case ends in one clear
line naming the file or key, with its exit status, and nothing else is
touched."""

import hashlib
import io
import json
import os
from pathlib import Path

import pytest
from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from pipeline.cli.main import main
from pipeline.config import Config, ConfigError
from pipeline.config_loading import load_config, to_toml
from pipeline.data.source import check_local_data, split_glob
from pipeline.data.synth import write_synthetic_shards
from pipeline.reporting import mlmd


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# ----------------------------------------------------------------- configuration


@pytest.mark.parametrize("key", ["gate.min_accuracy", "model.learning_rate", "data.eval_fraction", "model.epochs"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e400"])
def test_nan_and_infinities_are_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=f"{key}: '{value}' is not a finite number"):
        load_config(overrides={key: value}, environ={})


def test_a_number_too_large_in_a_file_is_refused_naming_the_file_and_key(tmp_path, capsys):
    file = tmp_path / "big.toml"
    file.write_text("[model]\nepochs = 1e400\n")
    assert main(["config", "show", "--config", str(file)]) == 2
    assert f"error: configuration: {file}: model.epochs: inf is not a finite number" in error_line(capsys)


@pytest.mark.parametrize("text, kind", [("- model\n- gate\n", "list"), ("42\n", "int"), ("just words\n", "str")])
def test_a_yaml_file_that_is_not_a_mapping_is_refused(tmp_path, capsys, text, kind):
    file = tmp_path / "bad.yaml"
    file.write_text(text)
    assert main(["config", "show", "--config", str(file)]) == 2
    assert f"{file}: the file holds a {kind}, not sections such as [model]" in error_line(capsys)


def test_a_file_that_is_not_utf8_is_refused(tmp_path, capsys):
    file = tmp_path / "latin1.toml"
    file.write_bytes("[run]\npipeline_name = 'fl\u00f6wers'\n".encode("latin-1"))
    assert main(["config", "show", "--config", str(file)]) == 2
    assert f"{file}: not a UTF-8 text file" in error_line(capsys)


def test_every_saved_configuration_loads_back(tmp_path):
    config = load_config(
        overrides={
            "model.learning_rate": "0.0003",
            "model.epochs": "7",
            "run.beam_args": "--direct_num_workers=2",
            "data.source": "gs://b/span-{SPAN}/*.tfrec",
            "vertex.endpoint": 'a "quoted" name',
        },
        environ={},
    )
    saved = tmp_path / "config.toml"
    saved.write_text(to_toml(config))
    assert load_config(saved, environ={}) == config
    assert load_config(tmp_path / "config.toml", environ={}) != Config()


# -------------------------------------------------------------------- data paths


@pytest.fixture
def shards(tmp_path) -> Path:
    folder = tmp_path / "shards"
    write_synthetic_shards(str(folder), images=6, shards=2, seed=3, size=32)
    return folder


def test_a_single_shard_file_is_a_data_source(shards):
    shard = sorted(shards.glob("*.tfrec"))[0]
    location = split_glob(str(shard))
    assert (location.base, location.pattern) == (str(shards), shard.name)
    check_local_data(location, Config())
    assert split_glob("gs://bucket/flowers/flowers00-230.tfrec").pattern == "flowers00-230.tfrec"
    assert split_glob("gs://bucket/flowers").pattern == "*.tfrec"


def test_a_symlink_loop_in_the_data_folder_is_named(shards, tmp_path, capsys):
    (shards / "loop.tfrec").symlink_to(shards / "loop.tfrec")
    status = main(["run", "--data", str(shards), "--work-dir", str(tmp_path / "work")])
    assert status == 2
    assert f"error: {shards / 'loop.tfrec'}: cannot read this shard (Too many levels of symbolic links)" in error_line(
        capsys
    )
    assert not (tmp_path / "work" / "metadata.sqlite").exists()


def test_a_data_folder_that_is_a_file_or_missing_is_named(tmp_path, capsys):
    assert main(["run", "--data", str(tmp_path / "none" / "*.tfrec"), "--work-dir", str(tmp_path / "w")]) == 2
    assert f"{tmp_path / 'none'}: data directory does not exist" in error_line(capsys)


# --------------------------------------------------------- a damaged metadata store


def make_store(path: Path) -> None:
    """A real ML Metadata store with a few records, big enough to truncate."""
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(path)
    store = metadata_store.MetadataStore(config)
    artifact_type = metadata_store_pb2.ArtifactType(name="Model")
    type_id = store.put_artifact_type(artifact_type)
    store.put_artifacts([metadata_store_pb2.Artifact(type_id=type_id, uri=f"/m/{i}") for i in range(300)])


def make_pushed_version(serving: Path, version: int) -> Path:
    folder = serving / str(version)
    (folder / "assets.extra").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"model")
    blessing = serving.parent / "blessing" / str(version)
    blessing.mkdir(parents=True)
    (blessing / "BLESSED").write_text("")
    (folder / "assets.extra" / "push.json").write_text(
        json.dumps(
            {
                "version": version,
                "model_uri": f"/m/{version}",
                "model_artifact_id": 1,
                "blessing_uri": str(blessing),
                "pushed_at": "2026-01-01T00:00:00Z",
            }
        )
    )
    return folder


@pytest.fixture(params=["truncated", "garbage"])
def damaged_work(tmp_path, request) -> Path:
    work = tmp_path / "work"
    work.mkdir()
    store = work / "metadata.sqlite"
    make_store(store)
    if request.param == "truncated":
        data = store.read_bytes()
        store.write_bytes(data[: len(data) // 2])
    else:
        store.write_bytes(os.urandom(8192))
    make_pushed_version(work / "serving", 1000)
    return work


def test_a_damaged_store_stops_run_naming_the_file_and_what_to_do(damaged_work, shards, capsys):
    store = damaged_work / "metadata.sqlite"
    before = digest(store)
    assert main(["run", "--data", str(shards), "--work-dir", str(damaged_work)]) == 2
    err = error_line(capsys)
    assert f"error: {store}: the ML Metadata store is damaged" in err
    assert f"mv {store} {store}.damaged" in err and "not affected" in err
    assert digest(store) == before


def test_models_list_falls_back_to_the_push_manifests(damaged_work, capsys):
    assert main(["models", "list", "--work-dir", str(damaged_work)]) == 0
    out = capsys.readouterr().out
    assert "version 1000  pushed 2026-01-01T00:00:00Z  BLESSED" in out
    assert "the ML Metadata store is damaged" in out


def test_promote_with_a_damaged_store_is_refused_and_touches_nothing(damaged_work, tmp_path, capsys):
    store = damaged_work / "metadata.sqlite"
    before = digest(store)
    prod = tmp_path / "prod"
    assert main(["models", "promote", "1000", "--to", str(prod), "--work-dir", str(damaged_work)]) == 2
    assert f"error: {store}: the ML Metadata store is damaged" in error_line(capsys)
    assert digest(store) == before
    assert not prod.exists() or not any(p.name.isdigit() for p in prod.iterdir())


def test_an_empty_store_file_is_no_store(tmp_path):
    empty = tmp_path / "metadata.sqlite"
    empty.write_bytes(b"")
    mlmd.check_store(empty)  # TFX starts a new store in it
    with pytest.raises(mlmd.StoreUnavailable):
        mlmd.open_store(empty)


# ------------------------------------------------------------ reporting and state


def test_a_report_that_cannot_be_written_is_one_warning_after_the_outcome(tmp_path, monkeypatch):
    from pipeline.reporting import report
    from pipeline.reporting import summary as summary_lib
    from pipeline.runners import local

    def disk_full(*args, **kwargs):
        raise OSError(28, "No space left on device", str(tmp_path / "run" / "training_curves.png"))

    monkeypatch.setattr(report, "write_report", disk_full)
    summary = summary_lib.RunSummary(failed="Pusher failed: no space left")
    out = io.StringIO()
    (tmp_path / "run").mkdir()
    assert local.write_outputs(summary, "the summary", tmp_path / "run", Config(), out) is None
    assert out.getvalue().strip() == (
        f"warning: the report could not be written in {tmp_path / 'run'} "
        f"({tmp_path / 'run' / 'training_curves.png'}: No space left on device)"
    )


def test_executions_a_killed_run_left_running_count_as_abandoned(tmp_path):
    from pipeline.reporting.run_outputs import read_run

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = str(tmp_path / "metadata.sqlite")
    store = metadata_store.MetadataStore(config)
    run_type = store.put_context_type(metadata_store_pb2.ContextType(name="pipeline_run"))
    node_type = store.put_context_type(metadata_store_pb2.ContextType(name="node"))
    trainer_type = store.put_execution_type(metadata_store_pb2.ExecutionType(name="Trainer"))
    run_id, node_id = store.put_contexts(
        [
            metadata_store_pb2.Context(type_id=run_type, name="2026-12-01T10:00:00"),
            metadata_store_pb2.Context(type_id=node_type, name="flowers.Trainer"),
        ]
    )
    [execution_id] = store.put_executions(
        [metadata_store_pb2.Execution(type_id=trainer_type, last_known_state=metadata_store_pb2.Execution.RUNNING)]
    )
    store.put_attributions_and_associations(
        [],
        [
            metadata_store_pb2.Association(execution_id=execution_id, context_id=run_id),
            metadata_store_pb2.Association(execution_id=execution_id, context_id=node_id),
        ],
    )
    [run] = read_run(config, "flowers", 0)
    assert (run.node_id, run.how) == ("Trainer", "abandoned")


def test_the_next_push_removes_staging_folders_that_a_killed_push_left(tmp_path):
    import subprocess
    import sys
    import time as time_module

    from components.pusher import component as pusher

    serving = tmp_path / "serving"
    serving.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = serving / f"{pusher.STAGING_PREFIX}1700000000-{dead.pid}-abcd1234"
    in_progress = serving / f"{pusher.STAGING_PREFIX}1700000001-{os.getpid()}-abcd1234"
    old_release = serving / f"{pusher.STAGING_PREFIX}1690000000-abcd1234"
    for folder in (killed, in_progress, old_release):
        (folder / "variables").mkdir(parents=True)
    long_ago = time_module.time() - 2 * 3600
    os.utime(old_release, (long_ago, long_ago))
    model = tmp_path / "model"
    (model / "variables").mkdir(parents=True)
    (model / "saved_model.pb").write_bytes(b"pb")
    final = pusher.publish_version(str(model), str(serving), 1700000005, {"version": 1700000005})
    assert sorted(p.name for p in serving.iterdir()) == sorted([in_progress.name, "1700000005"])
    assert Path(final, "assets.extra", "push.json").is_file()


def test_a_run_refused_for_a_damaged_store_leaves_no_run_folder(damaged_work, shards):
    assert main(["run", "--data", str(shards), "--work-dir", str(damaged_work)]) == 2
    assert not (damaged_work / "runs").exists()
