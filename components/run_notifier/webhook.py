"""Posting JSON to a webhook without ever failing the caller or leaking its secret.

Webhook URLs carry their secret in the path or query (Slack's
``/services/T.../B.../XXXX``), so only the scheme and host are ever shown or
logged. Used by the local run's notification (``pipeline/reporting/notify``)
and by the exit handler of runs on Vertex AI (``component.py`` here), with the
one-line text both post.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request


def masked(url: str) -> str:
    """``https://hooks.example.com/***``: the URL without its path and query."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    if parts.port:
        host += f":{parts.port}"
    return f"{parts.scheme or '?'}://{host}/***"


def post(url: str, body: dict, timeout: float) -> int:
    """POSTs ``body`` as JSON; the HTTP status. Raises on any failure."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode("utf-8"),
        headers={"Content-Type": "application/json", "User-Agent": "flowers-tfx"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - the user's own URL
        return response.status


def send(url: str, body: dict, timeout: float) -> tuple[bool, str]:
    """Posts ``body``; ``(sent, why not)``. Never raises, never shows the URL's secret."""
    where = masked(url)
    try:
        status = post(url, body, timeout)
    except urllib.error.HTTPError as error:
        reason = f"it answered HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        reason = str(getattr(error, "reason", None) or error)
    except ValueError:  # urllib's message would repeat the whole URL
        reason = "not a URL urllib can open"
    else:
        logging.info("Posted to %s (HTTP %d)", where, status)
        return True, ""
    logging.warning("Posting to %s failed: %s", where, reason)
    return False, reason


def outcome_text(body: dict) -> str:
    """The one-line ``text`` of a run's outcome, which Slack-style webhooks display."""
    head = f"{body['pipeline']} run {body['run_id']}"
    accuracy = f" (accuracy {body['accuracy']:.3f})" if body.get("accuracy") is not None else ""
    state = body["state"]
    if state == "failed":
        return f"{head} FAILED in {body.get('failed_component') or 'the pipeline'}: {body.get('error')}"
    if state == "pushed":
        return f"{head} pushed version {body.get('pushed_version')}{accuracy}"
    if state == "not_blessed":
        reasons = " ".join(body.get("reasons") or [])
        return f"{head} not blessed{accuracy}" + (f": {reasons}" if reasons else "")
    if state == "unchanged":
        return f"{head} finished; the blessed model was already serving{accuracy}"
    return f"{head} {state}"


def outcome_of_push(metadata: dict) -> dict:
    """What the Pusher's output artifact metadata says of a run: its state
    (``pushed``, ``unchanged``, ``not_blessed``), blessing and pushed version."""
    if not metadata.get("pushed"):
        return {"state": "not_blessed", "blessed": False}
    state = "unchanged" if metadata.get("already_serving") else "pushed"
    return {"state": state, "blessed": True, "pushed_version": metadata.get("pushed_version")}


def outcome_of_job(job) -> dict:
    """``outcome_of_push`` for a Vertex AI PipelineJob proto, from its Pusher
    task's output; empty when the Pusher never ran."""
    for task in job.job_detail.task_details:
        if task.task_name != "Pusher":
            continue
        for output in task.outputs.values():
            for artifact in output.artifacts:
                return outcome_of_push(dict(artifact.metadata or {}))
    return {}
