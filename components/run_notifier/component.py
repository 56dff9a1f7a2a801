"""The exit handler of runs on Vertex AI: one webhook POST however the run ended.

Vertex AI Pipelines runs this task after every other task has ended, failed
ones included, and gives it the run's final status (a JSON
``PipelineTaskFinalStatus``: state, error, the job's resource name). The body
has the fields of a local run's notification (``pipeline/reporting/outcome``):
pipeline, run_id, state (``failed``, ``pushed``, ``not_blessed``,
``unchanged``, or ``succeeded`` when the Pusher's output cannot be read),
failed_component, error, pushed_version and a one-line ``text``. A webhook
that is down is logged; the task itself never fails because of it.
"""

# No `from __future__ import annotations`: TFX reads the component's type hints as objects.
import json
import logging
import re

from tfx import v1 as tfx

from components.run_notifier import webhook

# Vertex AI's message when tasks failed: "... The failed tasks are: [Trainer]."
_FAILED_TASKS = re.compile(r"failed tasks are: \[([^\]]*)\]")


def describe_final_status(final_status: str, pipeline_name: str) -> dict:
    """The notification body for a run's final status (without Vertex AI lookups)."""
    status = json.loads(final_status or "{}")
    resource = status.get("pipelineJobResourceName", "")
    run_id = resource.rsplit("/", 1)[-1] or status.get("pipelineJobName", "")
    error = (status.get("error") or {}).get("message") or None
    state = str(status.get("state", "")).upper()
    failed = state in ("FAILED", "CANCELLED", "CANCELED") or bool(error)
    match = _FAILED_TASKS.search(error or "")
    component = match.group(1).split(",")[0].strip().strip("'\"") if match else None
    body = {
        "pipeline": pipeline_name,
        "run_id": run_id,
        "resource_name": resource,
        "state": "failed" if failed else "succeeded",
        "failed_component": component,
        "error": error,
        "blessed": None,
        "reasons": [],
        "accuracy": None,
        "pushed_version": None,
    }
    return body


def pusher_outcome(resource_name: str) -> dict:
    """``{"state", "pushed_version", "blessed"}`` from the Pusher task of the job (Vertex AI SDK)."""
    from google.cloud import aiplatform  # only on Vertex AI

    return webhook.outcome_of_job(aiplatform.PipelineJob.get(resource_name=resource_name).gca_resource)


# A run that succeeded but whose Pusher output could not be read ended in one of these.
_SUCCESSFUL_OUTCOMES = ("pushed", "unchanged", "not_blessed")


def wanted_outcome(state: str, wanted: list) -> bool:
    """Whether ``notify.on`` asks for this state. ``succeeded`` (the Pusher's
    output unknown) is any successful outcome: posted when one of them is asked for."""
    if state == "succeeded":
        return any(outcome in wanted for outcome in _SUCCESSFUL_OUTCOMES)
    return state in wanted


def notify_final_status(
    final_status: str, webhook_url: str, notify_on: str, pipeline_name: str, timeout_seconds: float, lookup=None
) -> dict:
    """Builds the body, posts it if its state is one of ``notify_on`` (JSON list); returns it."""
    lookup = lookup or pusher_outcome  # looked up when called: a rehearsal stands in for it
    body = describe_final_status(final_status, pipeline_name)
    if body["state"] == "succeeded" and body["resource_name"]:
        try:
            body.update(lookup(body["resource_name"]))
        except Exception as error:  # noqa: BLE001 - the notification goes out anyway
            logging.warning("Could not read the Pusher's output of %s: %s", body["resource_name"], error)
    body["text"] = webhook.outcome_text(body)
    if webhook_url and wanted_outcome(body["state"], json.loads(notify_on or "[]")):
        sent, reason = webhook.send(webhook_url, body, timeout_seconds)
        if not sent:
            logging.warning("The run's notification was not delivered (%s)", reason)
    return body


@tfx.orchestration.experimental.exit_handler
def RunNotifier(
    final_status: tfx.dsl.components.Parameter[str],
    webhook_url: tfx.dsl.components.Parameter[str],
    notify_on: tfx.dsl.components.Parameter[str],
    pipeline_name: tfx.dsl.components.Parameter[str],
    timeout_seconds: tfx.dsl.components.Parameter[float],
):
    """Posts the run's outcome to the webhook (Vertex AI exit handler)."""
    notify_final_status(final_status, webhook_url, notify_on, pipeline_name, timeout_seconds)
