"""A JSON POST to a webhook at the end of a run (``[notify]`` in the configuration).

The body is the run's outcome (``outcome.RunOutcome.to_dict``), with a
one-line ``text`` that Slack-style webhooks display. A webhook that is down,
refuses, or does not answer within ``notify.timeout_seconds`` is reported in
one warning line: it never fails the run or changes its exit status. Webhook
URLs carry secrets in their path or query, so only the scheme and host are
ever shown or logged.
"""

from __future__ import annotations

from components.run_notifier.webhook import masked, send
from pipeline.config import NotifyConfig
from pipeline.reporting.outcome import RunOutcome


def should_notify(settings: NotifyConfig, outcome: RunOutcome) -> bool:
    return bool(settings.webhook) and outcome.state in settings.on


def notify(settings: NotifyConfig, outcome: RunOutcome) -> str | None:
    """Sends the notification if the configuration asks for this outcome.

    Returns a line for the terminal (sent, or why not), or None when nothing
    was to be sent. Never raises.
    """
    if not should_notify(settings, outcome):
        return None
    where = masked(settings.webhook)
    sent, reason = send(settings.webhook, outcome.to_dict(), settings.timeout_seconds)
    if sent:
        return f"Notified {where} ({outcome.state})"
    return f"warning: the notification to {where} failed ({reason}); the run's outcome is unchanged"
