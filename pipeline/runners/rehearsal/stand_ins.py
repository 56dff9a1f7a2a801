"""Vertex AI during a rehearsal: the shared fake (``vertex_fake``) installed in
a task's process, and removed when the rehearsal ends.

The Trainer of a spec compiled with ``vertex.training = true`` asks Vertex AI
Training for a CustomJob: the fake checks it and runs the job's container
command here, so the training code runs exactly as the job would start it.
The ModelRegistryPusher's uploads and deployments go to the fake's registry,
kept under the root between rehearsals. Every request answered is recorded
under ``ROOT/requests/`` and printed at the end of the rehearsal.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.runners.rehearsal import launcher
from pipeline.runners.rehearsal.vertex_fake import VertexFake

# The module that uses the Model Registry; a task whose command names it gets
# the registry (the others need not import the SDK).
REGISTRY_MODULE = "components.model_registry_pusher.component"


def install(root: Path, log_file: Path, command_text: str = "") -> None:
    """Puts the fake in place of the Vertex AI clients, in this process,
    until restore(). ``command_text``: the task's container command and arguments."""

    def run_job(command: list[str]) -> bool:
        try:
            launcher.run_command(command[:3], command[3:], log_file, isolated=False)
        except launcher.CommandFailed:
            return False
        return True

    fake = VertexFake(root, run_job=run_job, job_log=log_file)
    fake.install(_replace, ("training", "registry") if REGISTRY_MODULE in command_text else ("training",))
    # The exit handler asks Vertex AI whether the run pushed: answered from the Pusher's recorded output.
    from components.run_notifier import component as run_notifier

    _replace(run_notifier, "pusher_outcome", lambda resource_name: recorded_push_outcome(root))


# What install() replaced: {(owner, attribute): the original}, kept from the
# first replacement on, so that restore() puts back the live objects.
_ORIGINALS: dict = {}
_ABSENT = object()


def _replace(owner, name: str, stand_in) -> None:
    _ORIGINALS.setdefault((owner, name), getattr(owner, name, _ABSENT))
    setattr(owner, name, stand_in)


def restore() -> None:
    """Puts back every attribute install() replaced: after an in-process
    rehearsal, the same process talks to Vertex AI again."""
    while _ORIGINALS:
        (owner, name), original = _ORIGINALS.popitem()
        if original is _ABSENT:
            delattr(owner, name)
        else:
            setattr(owner, name, original)


def recorded_push_outcome(root: Path) -> dict:
    """What the latest recorded Pusher output says (what Vertex AI's job detail would)."""
    from components.run_notifier.webhook import outcome_of_push
    from pipeline.runners.rehearsal.records import Records

    pushes = [artifact for artifact in Records(root).artifacts() if artifact.get("task") == "Pusher"]
    return outcome_of_push(pushes[-1].get("metadata", {})) if pushes else {}
