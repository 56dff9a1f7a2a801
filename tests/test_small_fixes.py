"""Issue 27, item 4: five small faults, each with the test that showed it.

- the exit handler on Vertex AI posted ``succeeded`` whatever ``notify.on`` said;
- ``adamw`` with ``model.weight_decay = 0`` decayed anyway;
- every worker of a multi-worker job wrote the first phase's weights to the shared folder;
- an in-process rehearsal left its stand-ins in the live modules;
- ``models promote --endpoint`` turned a permission error into "no such version".
"""

import json
import types

import numpy as np
import pytest
import tf_keras as keras
from webhook_receivers import webhook_server

# ------------------------------------------------------------ RunNotifier and notify.on


def test_the_exit_handler_honours_notify_on_when_the_pusher_output_is_unknown():
    from components.run_notifier.component import notify_final_status

    status = json.dumps({"state": "SUCCEEDED", "pipelineJobResourceName": "projects/1/locations/r/pipelineJobs/j2"})

    def unreadable(name):
        raise RuntimeError("no Pusher output")

    with webhook_server() as (url, received):
        body = notify_final_status(status, url, '["failed"]', "flowers", 2.0, lookup=unreadable)
        assert body["state"] == "succeeded" and received == []  # only failures were asked for
        notify_final_status(status, url, '["failed", "pushed"]', "flowers", 2.0, lookup=unreadable)
    assert [body["state"] for body in received] == ["succeeded"]  # it may have pushed


# ------------------------------------------------------------ AdamW's weight decay


def test_adamw_with_weight_decay_zero_does_not_decay():
    from components.trainer import recipes
    from components.trainer.training import make_optimizer
    from pipeline.config import Config

    assert make_optimizer("adamw", 0.01, 0.0).weight_decay == 0.0
    settings = {**Config().model.__dict__, "optimizer": "adamw"}
    assert recipes.resolve({**settings, "weight_decay": 0.0})["weight_decay"] == 0.0
    assert recipes.resolve({**settings, "weight_decay": 0.01})["weight_decay"] == 0.01
    # Left at auto, AdamW keeps Keras' default decay; the other optimizers none.
    assert recipes.resolve(settings)["weight_decay"] == recipes.ADAMW_WEIGHT_DECAY
    assert recipes.resolve({**settings, "optimizer": "adam"})["weight_decay"] == 0.0


# ------------------------------------------------------------ the first phase of a multi-worker job


def _tiny_model():
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    return model


def test_only_the_chief_writes_the_first_phase_into_the_shared_folder(tmp_path):
    from components.trainer import training

    shared = tmp_path / "checkpoints" / "first_phase"
    chief_args = types.SimpleNamespace(
        model_run_dir=str(tmp_path / "chief" / "model_run"), serving_model_dir=str(tmp_path / "chief" / "model")
    )
    worker_args = types.SimpleNamespace(
        model_run_dir=str(tmp_path / "scratch" / "model_run"), serving_model_dir=str(tmp_path / "scratch" / "model")
    )
    history = {"loss": [np.float32(0.5)]}

    written = training.keep_first_phase(_tiny_model(), history, str(shared), worker_args, chief_args)
    assert not (tmp_path / "checkpoints").exists()  # a worker leaves the shared folder alone
    assert written.startswith(str(tmp_path / "scratch"))
    assert json.loads(open(written + ".json").read()) == {"loss": [0.5]}

    assert training.keep_first_phase(_tiny_model(), history, str(shared), chief_args, chief_args) == str(shared)
    assert (tmp_path / "checkpoints" / "first_phase.json").is_file()


def test_run_fn_waits_for_every_worker_after_the_first_phase():
    """The others wait at a barrier until the chief has written the first phase."""
    import inspect

    from components.trainer import training

    source = inspect.getsource(training.run_fn)
    after_keep = source[source.index("keep_first_phase(") :]
    assert after_keep.index("wait_for_every_worker") < after_keep.index("if fine_tune:")


# ------------------------------------------------------------ the rehearsal's stand-ins


def test_an_in_process_rehearsal_puts_the_live_modules_back(tmp_path, monkeypatch):
    from tfx.extensions.google_cloud_ai_platform import training_clients

    from components.model_registry_pusher import component as model_registry_pusher
    from components.run_notifier import component as run_notifier
    from pipeline.runners import rehearsal
    from pipeline.runners.rehearsal import runner, stand_ins
    from pipeline.serving import endpoint

    def modules():
        return (
            training_clients.gapic,
            model_registry_pusher.aiplatform,
            endpoint.aiplatform,
            run_notifier.pusher_outcome,
        )

    live = modules()

    def a_rehearsal(*args, **kwargs):  # its tasks install the stand-ins, as runner.py does
        stand_ins.install(tmp_path, tmp_path / "task.log", stand_ins.REGISTRY_MODULE)
        stand_ins.install(tmp_path, tmp_path / "task.log", stand_ins.REGISTRY_MODULE)
        assert training_clients.gapic is not live[0] and model_registry_pusher.aiplatform is not live[1]
        return 0

    monkeypatch.setattr(runner, "rehearse", a_rehearsal)
    assert rehearsal.rehearse("spec.json", tmp_path) == 0
    assert modules() == live

    def a_failing_rehearsal(*args, **kwargs):
        stand_ins.install(tmp_path, tmp_path / "task.log", "")
        raise rehearsal.RehearsalError("bad spec")

    monkeypatch.setattr(runner, "rehearse", a_failing_rehearsal)
    with pytest.raises(rehearsal.RehearsalError):
        rehearsal.rehearse("spec.json", tmp_path)
    assert training_clients.gapic is live[0]


# ------------------------------------------------------------ endpoint errors


def test_a_permission_error_on_the_registry_is_not_called_a_missing_version(monkeypatch, capsys):
    from google.api_core import exceptions as google_exceptions
    from test_endpoint_promotion import SETTINGS

    from pipeline.cli.main import main
    from pipeline.serving import endpoint

    class Model:
        def __init__(self, model_name, **kwargs):
            raise google_exceptions.PermissionDenied("aiplatform.models.get denied on projects/flowers-test")

    monkeypatch.setattr(endpoint, "aiplatform", types.SimpleNamespace(Model=Model))
    monkeypatch.setattr("google.auth.default", lambda scopes=None, **kwargs: (None, "flowers-test"))
    status = main(["models", "promote", "1700000000", "--endpoint", "flowers", *SETTINGS])
    err = capsys.readouterr().err
    assert "aiplatform.models.get denied" in err and "has no registry version" not in err
    assert status == 1

    class Typo:
        def __init__(self, model_name, **kwargs):
            raise AttributeError("'Model' object has no attribute 'verison_id'")

    monkeypatch.setattr(endpoint, "aiplatform", types.SimpleNamespace(Model=Typo))
    with pytest.raises(AttributeError, match="verison_id"):  # a bug keeps its traceback
        main(["models", "promote", "1700000000", "--endpoint", "flowers", *SETTINGS])
