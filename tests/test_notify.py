"""Knowing how runs end: the outcome record, webhook notifications, and
``flowers-tfx runs``. The webhook receivers are loopback HTTP servers the
tests start on free ports and stop (tests/webhook_receivers.py).

Real runs that notify are part of the chain of runs in test_pipeline_e2e.py:
a pushed, a not blessed and a failed run each post once, and ``runs``
lists them."""

import json
import time

import pytest
from webhook_receivers import FIELDS, refused_url, silent_server, webhook_server

from pipeline.cli.main import main
from pipeline.config import NotifyConfig
from pipeline.config_loading import load_config
from pipeline.reporting import notify
from pipeline.reporting.outcome import RunOutcome, outcome_of
from pipeline.reporting.summary import Evaluation, RunSummary


def evaluation(blessed: bool) -> Evaluation:
    return Evaluation(
        accuracy=0.8125,
        example_count=80,
        confusion=[[1] * 5] * 5,
        blessed=blessed,
        reasons=["accuracy 0.812 is at least the floor 0.500"]
        if blessed
        else ["sparse_categorical_accuracy 0.812 is below the floor 0.900"],
    )


@pytest.mark.parametrize(
    "summary, state, text",
    [
        (
            RunSummary(evaluation=evaluation(True), pushed_path="/srv/serving/1700000000"),
            "pushed",
            "flowers run R1 pushed version 1700000000 (accuracy 0.812)",
        ),
        (
            RunSummary(evaluation=evaluation(False)),
            "not_blessed",
            "flowers run R1 not blessed (accuracy 0.812): sparse_categorical_accuracy 0.812 is below the floor 0.900",
        ),
        (
            RunSummary(evaluation=evaluation(True), pushed_path="/srv/serving/1", already_serving=True),
            "unchanged",
            "flowers run R1 finished; the blessed model was already serving (accuracy 0.812)",
        ),
        (
            RunSummary(failed="Trainer failed: too few examples"),
            "failed",
            "flowers run R1 FAILED in Trainer: too few examples",
        ),
    ],
)
def test_the_outcome_says_how_a_run_ended(summary, state, text):
    failed = ("Trainer", "too few examples") if state == "failed" else (None, None)
    outcome = outcome_of(summary, "flowers", "R1", "2026-12-01T10:00:00Z", 12.34, *failed)
    assert (outcome.state, outcome.text) == (state, text)
    assert FIELDS <= set(outcome.to_dict())
    assert RunOutcome.from_dict(json.loads(json.dumps(outcome.to_dict()))) == outcome


def test_a_webhook_receives_the_outcome_and_the_url_is_masked(caplog):
    outcome = RunOutcome("flowers", "R1", "pushed", pushed_version="7", accuracy=0.9)
    with webhook_server() as (url, received):
        line = notify.notify(NotifyConfig(webhook=url), outcome)
    assert received == [outcome.to_dict()]
    assert line == "Notified http://127.0.0.1:%s/*** (pushed)" % url.split(":")[2].split("/")[0]
    assert "SECRET" not in caplog.text and "token" not in caplog.text


def test_only_the_chosen_outcomes_are_posted():
    with webhook_server() as (url, received):
        assert notify.notify(NotifyConfig(webhook=url, on=["failed"]), RunOutcome("f", "R", "pushed")) is None
        notify.notify(NotifyConfig(webhook=url, on=["failed"]), RunOutcome("f", "R", "failed"))
    assert [body["state"] for body in received] == ["failed"]


@pytest.mark.parametrize("kind", ["refused", "silent", "not a url"])
def test_a_webhook_that_is_down_or_silent_is_one_warning(kind, caplog):
    settings = NotifyConfig(timeout_seconds=1.0)
    started = time.monotonic()
    if kind == "silent":
        with silent_server() as url:
            line = notify.notify(NotifyConfig(webhook=url, timeout_seconds=1.0), RunOutcome("f", "R", "failed"))
    else:
        settings.webhook = refused_url() if kind == "refused" else "hxxp:/nowhere/SECRET"
        line = notify.notify(settings, RunOutcome("f", "R", "failed"))
    assert time.monotonic() - started < 5
    assert line.startswith("warning: the notification to ") and "the run's outcome is unchanged" in line
    assert "SECRET" not in line and "SECRET" not in caplog.text


def test_notify_settings_are_checked():
    from pipeline.config import ConfigError

    assert load_config(overrides={"notify.on": "failed pushed"}, environ={}).notify.on == ["failed", "pushed"]
    with pytest.raises(ConfigError, match="notify.on: 'sometimes' is not a valid choice"):
        load_config(overrides={"notify.on": "failed sometimes"}, environ={})


def test_runs_of_an_empty_work_dir_and_an_unknown_run(tmp_path, capsys):
    assert main(["runs", "list", "--work-dir", str(tmp_path)]) == 0
    assert "No runs in" in capsys.readouterr().out
    assert main(["runs", "show", "nope", "--work-dir", str(tmp_path)]) == 2
    assert "no runs in this work directory" in capsys.readouterr().err


# ------------------------------------------------------------- runs on Vertex AI

VERTEX = {
    "vertex.project": "flowers-test",
    "vertex.region": "europe-west4",
    "vertex.pipeline_root": "gs://b/root",
    "vertex.image": "europe-west4-docker.pkg.dev/flowers-test/p/flowers-tfx:1",
    "data.source": "gs://b/d/*.tfrec",
}


def test_the_compiled_spec_notifies_from_an_exit_handler_after_every_task(tmp_path):
    from pipeline.runners.kubeflow import compile_pipeline

    url = "https://hooks.example.com/services/T0/B0/SECRET"
    config = load_config(overrides={**VERTEX, "notify.webhook": url, "notify.on": "failed"}, environ={})
    spec = json.loads(compile_pipeline(config, tmp_path / "pipeline.json").read_text())["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    handler = tasks["RunNotifier"]
    assert handler["triggerPolicy"]["strategy"] == "ALL_UPSTREAM_TASKS_COMPLETED"
    assert handler["dependentTasks"] == [name for name in tasks if name != "RunNotifier"]
    parameters = handler["inputs"]["parameters"]
    assert parameters["webhook_url"]["runtimeValue"]["constantValue"]["stringValue"] == url
    assert parameters["final_status"] == {"taskFinalStatus": {"producerTask": handler["dependentTasks"][0]}}
    # Without a webhook there is no exit handler.
    plain = json.loads(compile_pipeline(load_config(overrides=VERTEX, environ={}), tmp_path / "p2.json").read_text())
    assert "RunNotifier" not in plain["pipelineSpec"]["root"]["dag"]["tasks"]


def test_the_exit_handler_posts_a_failed_run_with_its_failing_task():
    from components.run_notifier.component import notify_final_status

    status = json.dumps(
        {
            "state": "FAILED",
            "error": {
                "code": 9,
                "message": "The DAG failed because some tasks failed. The failed tasks are: [Trainer].",
            },
            "pipelineJobResourceName": "projects/123/locations/europe-west4/pipelineJobs/flowers-20261201",
        }
    )
    with webhook_server() as (url, received):
        body = notify_final_status(status, url, '["failed"]', "flowers", 2.0, lookup=lambda name: pytest.fail())
    assert received == [body]
    assert (body["state"], body["failed_component"], body["run_id"]) == ("failed", "Trainer", "flowers-20261201")
    assert body["text"].startswith("flowers run flowers-20261201 FAILED in Trainer: The DAG failed")
    assert FIELDS <= set(body)


def test_the_exit_handler_reads_whether_a_successful_run_pushed_and_survives_a_dead_webhook():
    from components.run_notifier.component import notify_final_status

    status = json.dumps({"state": "SUCCEEDED", "pipelineJobResourceName": "projects/1/locations/r/pipelineJobs/j1"})
    pushed = lambda name: {"state": "pushed", "blessed": True, "pushed_version": "1700000000"}  # noqa: E731
    with webhook_server() as (url, received):
        notify_final_status(status, url, '["pushed"]', "flowers", 2.0, lookup=pushed)
        notify_final_status(status, url, '["failed"]', "flowers", 2.0, lookup=pushed)  # not asked for
    assert [body["text"] for body in received] == ["flowers run j1 pushed version 1700000000"]
    started = time.monotonic()
    body = notify_final_status(status, refused_url(), '["pushed"]', "flowers", 1.0, lookup=pushed)
    assert body["state"] == "pushed" and time.monotonic() - started < 5
