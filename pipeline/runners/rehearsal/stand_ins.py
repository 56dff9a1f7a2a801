"""Vertex AI services, answered here: the Training job service, the Model
Registry and endpoints.

The Trainer of a spec compiled with ``vertex.training = true`` asks Vertex AI
Training for a CustomJob through the aiplatform job service client
(``tfx.extensions.google_cloud_ai_platform.training_clients``). The stand-in
takes that client's place: it validates the request against
google-cloud-aiplatform's own ``CustomJob`` type (unknown fields, machine and
accelerator enum names, worker pools, the service account), records it
under ``ROOT/requests/``, and runs the job's container command here, so the
training code runs exactly as the job would start it. Every recorded request
is printed at the end of the rehearsal.

Model Registry and endpoint calls are answered by ``model_registry.py``,
which keeps the registry's state under the root between rehearsals.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from pipeline.runners.rehearsal import launcher
from pipeline.runners.rehearsal.vertex_fake.recorded_requests import record

ROOT_VARIABLE = "FLOWERS_REHEARSAL_ROOT"


class RequestRefused(ValueError):
    """A request Vertex AI would refuse: named field, reason."""


def validate_custom_job(custom_job: dict):
    """The request as aiplatform's CustomJob, or RequestRefused naming what is wrong."""
    from google.cloud.aiplatform_v1.types import CustomJob

    try:
        job = CustomJob(custom_job)
    except (ValueError, TypeError, KeyError) as error:
        raise RequestRefused(f"CustomJob refused by google-cloud-aiplatform's type: {error}") from None
    if not job.display_name:
        raise RequestRefused("CustomJob.display_name is empty")
    pools = job.job_spec.worker_pool_specs
    if not pools:
        raise RequestRefused("CustomJob.job_spec.worker_pool_specs is empty")
    for number, pool in enumerate(pools):
        where = f"job_spec.worker_pool_specs[{number}]"
        if not pool.machine_spec.machine_type:
            raise RequestRefused(f"{where}.machine_spec.machine_type is empty")
        if pool.machine_spec.accelerator_count and not pool.machine_spec.accelerator_type:
            raise RequestRefused(f"{where}.machine_spec: accelerator_count without accelerator_type")
        if pool.replica_count < 1:
            raise RequestRefused(f"{where}.replica_count must be at least 1")
        if not pool.container_spec.image_uri or not pool.container_spec.command:
            raise RequestRefused(f"{where}.container_spec needs image_uri and command")
    account = job.job_spec.service_account
    if account and not account.endswith(".gserviceaccount.com"):
        raise RequestRefused(f"job_spec.service_account {account!r} is not a service account e-mail")
    return job


class TrainingJobService:
    """Stands in for ``google.cloud.aiplatform.gapic.JobServiceClient``."""

    def __init__(self, root: Path, log_file: Path):
        self.root, self.log_file, self.jobs = root, log_file, {}

    def __call__(self, *args, **kwargs):  # the client's constructor (client_options=...)
        return self

    def create_custom_job(self, parent: str, custom_job: dict):
        from google.cloud.aiplatform_v1.types import JobState

        job = validate_custom_job(custom_job)
        record(self.root, "training-custom-job", {"parent": parent, "custom_job": custom_job})
        name = f"{parent}/customJobs/{len(self.jobs) + 1}"
        # The first worker pool is the chief; its command is what the job runs.
        command = list(job.job_spec.worker_pool_specs[0].container_spec.command)
        try:
            launcher.run_command(command[:3], command[3:], self.log_file, isolated=False)
            state = JobState.JOB_STATE_SUCCEEDED
        except launcher.CommandFailed:
            state = JobState.JOB_STATE_FAILED
        self.jobs[name] = SimpleNamespace(name=name, state=state, error=f"see {self.log_file}")
        return self.jobs[name]

    def get_custom_job(self, name: str, retry=None):
        return self.jobs[name]


# The module whose Vertex AI SDK the registry stand-in replaces; a task whose
# command names it gets the stand-in (others need not import the SDK).
REGISTRY_MODULE = "components.model_registry_pusher.component"


def install(root: Path, log_file: Path, command_text: str = "") -> None:
    """Puts the stand-ins in place of the Vertex AI clients, in this process,
    until restore(). ``command_text``: the task's container command and arguments."""
    import warnings

    with warnings.catch_warnings():  # the Google clients' notices about Python versions
        warnings.simplefilter("ignore")
        from tfx.extensions.google_cloud_ai_platform import training_clients

    _replace(training_clients, "gapic", SimpleNamespace(JobServiceClient=TrainingJobService(root, log_file)))
    if REGISTRY_MODULE in command_text:  # the ModelRegistryPusher's SDK: the registry kept under the root
        from components.model_registry_pusher import component as model_registry_pusher
        from pipeline.runners.rehearsal.vertex_fake import models as model_registry

        _replace(model_registry_pusher, "aiplatform", model_registry.make_sdk(root))
    # The exit handler asks Vertex AI whether the run pushed: answered from the Pusher's recorded output.
    from components.run_notifier import component as run_notifier

    _replace(run_notifier, "pusher_outcome", lambda resource_name: recorded_push_outcome(root))


# What install() replaced: {(module, attribute): the original}, kept from the
# first replacement on, so that restore() puts back the live objects.
_ORIGINALS: dict = {}
_ABSENT = object()


def _replace(module, name: str, stand_in) -> None:
    _ORIGINALS.setdefault((module, name), getattr(module, name, _ABSENT))
    setattr(module, name, stand_in)


def restore() -> None:
    """Puts back every module attribute install() replaced: after an
    in-process rehearsal, the same process talks to Vertex AI again."""
    while _ORIGINALS:
        (module, name), original = _ORIGINALS.popitem()
        if original is _ABSENT:
            delattr(module, name)
        else:
            setattr(module, name, original)


def recorded_push_outcome(root: Path) -> dict:
    """What the latest recorded Pusher output says (what Vertex AI's job detail would)."""
    from components.run_notifier.webhook import outcome_of_push
    from pipeline.runners.rehearsal.records import Records

    pushes = [artifact for artifact in Records(root).artifacts() if artifact.get("task") == "Pusher"]
    return outcome_of_push(pushes[-1].get("metadata", {})) if pushes else {}


def describe(path: Path) -> str:
    """One line for a recorded request: what was asked, of which service."""
    request = json.loads(path.read_text(encoding="utf-8"))
    if "custom_job" in request:
        spec = request["custom_job"]["job_spec"]
        pools = [
            "{} x {}{}".format(
                pool.get("replica_count", 1),
                pool["machine_spec"].get("machine_type"),
                f" + {pool['machine_spec'].get('accelerator_count', 1)} {pool['machine_spec']['accelerator_type']}"
                if pool["machine_spec"].get("accelerator_type")
                else "",
            )
            for pool in spec["worker_pool_specs"]
        ]
        return (
            f"{path.name}: Vertex AI Training CustomJob in {request['parent']}: {', '.join(pools)}, "
            f"image {spec['worker_pool_specs'][0]['container_spec']['image_uri']}, "
            f"service account {spec.get('service_account') or 'the default'}"
        )
    from pipeline.runners.rehearsal.vertex_fake import models as model_registry

    return model_registry.describe(path, request) or f"{path.name}: {', '.join(sorted(request))}"
