"""The configuration object: layers, conversions and the errors users see."""

import pytest

from pipeline.cli.main import main
from pipeline.config import Config, ConfigError, valid_keys
from pipeline.config_loading import load_config, to_toml


def test_defaults_run_locally():
    config = Config()
    assert config.data.source == ""  # the embedded synthetic data set
    assert config.model.name == "convnet"
    assert config.serving_dir == config.work_dir / "serving"
    assert config.metadata_path.name == "metadata.sqlite"


def test_layers_override_in_order(tmp_path):
    file = tmp_path / "run.toml"
    file.write_text("[model]\nepochs = 7\nbatch_size = 8\n[gate]\nmin_accuracy = 0.6\n")
    environ = {"FLOWERS_TFX__MODEL__EPOCHS": "9", "FLOWERS_TFX__RUN__BEAM_ARGS": "--a=1 --b=2"}
    config = load_config(file, overrides={"model.batch_size": "16"}, environ=environ)
    assert config.model.epochs == 9  # environment beats the file
    assert config.model.batch_size == 16  # command line beats the file
    assert config.gate.min_accuracy == 0.6  # the file beats the default
    assert config.run.beam_args == ["--a=1", "--b=2"]


def test_yaml_file(tmp_path):
    file = tmp_path / "run.yaml"
    file.write_text("model:\n  name: dense\n  image_size: 32\nrun:\n  enable_cache: false\n")
    config = load_config(file, environ={})
    assert (config.model.name, config.model.image_size, config.run.enable_cache) == ("dense", 32, False)


def test_to_toml_round_trips(tmp_path):
    config = load_config(overrides={"model.epochs": 3, "data.source": 'a "quoted"/*.tfrec'}, environ={})
    file = tmp_path / "back.toml"
    file.write_text(to_toml(config))
    assert load_config(file, environ={}) == config


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("model.nmae", "x", "unknown configuration key 'model.nmae'; valid keys in [model]: name,"),
        ("training.epochs", "3", "sections: data, model, gate, run, vertex"),
        ("model.name", "resnet", "choose one of: dense, convnet, squeezenet, mobilenetv2, xception"),
        ("model.epochs", "-1", "model.epochs: -1 is out of range; it must be at least 1"),
        ("model.epochs", "two", "model.epochs: 'two' is not an integer"),
        ("model.cache_mb", "-5", "model.cache_mb: -5 is out of range; it must be at least 0"),
        ("gate.min_accuracy", "1.5", "gate.min_accuracy: 1.5 is out of range; it must be between 0.0 and 1.0"),
        ("run.enable_cache", "maybe", "run.enable_cache: 'maybe' is not a boolean"),
        ("run.batch_inference_source", " ", "run.batch_inference_source: ' ' is blank; leave it empty"),
        ("run.batch_inference_source", "http://x/*.jpg", "neither a local path nor a gs:// one"),
        (
            "run.batch_inference_source",
            "gs://bucket/photos/",
            "names a folder; name its files, e.g. gs://bucket/photos/*.jpg",
        ),
    ],
)
def test_bad_values_name_the_key(key, value, message):
    with pytest.raises(ConfigError) as error:
        load_config(overrides={key: value}, environ={})
    assert message in str(error.value)


@pytest.mark.parametrize("glob", ["", "photos/*.jpg", "gs://bucket/shards/*.tfrec", "/data/flowers00-230.tfrec"])
def test_the_batch_inference_source_is_empty_or_a_local_or_gs_glob(glob):
    config = load_config(overrides={"run.batch_inference_source": glob}, environ={})
    assert config.run.batch_inference_source == glob
    assert Config().run.batch_inference_source == ""  # off by default


def test_file_errors_name_the_file(tmp_path):
    file = tmp_path / "bad.toml"
    file.write_text("[model]\nepochs = 0\n")
    with pytest.raises(ConfigError, match=r"bad.toml: model.epochs: 0 is out of range"):
        load_config(file, environ={})
    file.write_text("[model\n")
    with pytest.raises(ConfigError, match=r"bad.toml: cannot parse"):
        load_config(file, environ={})
    with pytest.raises(ConfigError, match=r"missing.toml: configuration file not found"):
        load_config(tmp_path / "missing.toml", environ={})


def test_environment_errors_name_the_variable():
    with pytest.raises(ConfigError, match="FLOWERS_TFX__MODEL__EPOCHS: model.epochs"):
        load_config(environ={"FLOWERS_TFX__MODEL__EPOCHS": "0"})


def test_cli_reports_config_errors_without_traceback(capsys):
    assert main(["config", "show", "--set", "model.name=resnet"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: configuration: model.name: 'resnet' is not a valid choice")
    assert "Traceback" not in err


def test_cli_config_show_applies_shortcut_layers(capsys, monkeypatch):
    monkeypatch.setenv("FLOWERS_TFX__MODEL__EPOCHS", "5")
    assert main(["config", "show", "--set", "gate.max_accuracy_drop=0.1"]) == 0
    out = capsys.readouterr().out
    assert "epochs = 5" in out and "max_accuracy_drop = 0.1" in out


def test_every_key_is_listed():
    keys = valid_keys()
    assert "model.epochs" in keys and "vertex.project" in keys and len(keys) == len(set(keys))
