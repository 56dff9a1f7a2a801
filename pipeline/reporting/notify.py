"""A JSON POST to a webhook at the end of a run (``[notify]`` in the configuration).

The body is the run's outcome (``outcome.RunOutcome.to_dict``), with a
one-line ``text`` that Slack-style webhooks display. A webhook that is down,
refuses, or does not answer within ``notify.timeout_seconds`` is reported in
one warning line: it never fails the run or changes its exit status. Webhook
URLs carry secrets in their path or query, so only the scheme and host are
ever shown or logged.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.parse
import urllib.request

from pipeline.config import NotifyConfig
from pipeline.reporting.outcome import RunOutcome


def masked(url: str) -> str:
    """``https://hooks.example.com/***``: the URL without its path and query."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    if parts.port:
        host += f":{parts.port}"
    return f"{parts.scheme or '?'}://{host}/***"


def should_notify(settings: NotifyConfig, outcome: RunOutcome) -> bool:
    return bool(settings.webhook) and outcome.state in settings.on


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


def notify(settings: NotifyConfig, outcome: RunOutcome) -> str | None:
    """Sends the notification if the configuration asks for this outcome.

    Returns a line for the terminal (sent, or why not), or None when nothing
    was to be sent. Never raises.
    """
    if not should_notify(settings, outcome):
        return None
    where = masked(settings.webhook)
    try:
        status = post(settings.webhook, outcome.to_dict(), settings.timeout_seconds)
    except urllib.error.HTTPError as error:
        reason = f"it answered HTTP {error.code}"
    except (urllib.error.URLError, OSError) as error:
        reason = str(getattr(error, "reason", None) or error)
    except ValueError:  # urllib's message would repeat the whole URL
        reason = "not a URL urllib can open"
    else:
        logging.info("Notified %s of %s (HTTP %d)", where, outcome.state, status)
        return f"Notified {where} ({outcome.state})"
    logging.warning("Notification to %s failed: %s", where, reason)
    return f"warning: the notification to {where} failed ({reason}); the run's outcome is unchanged"
