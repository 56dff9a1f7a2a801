"""Runs a compiled pipeline on Vertex AI Pipelines: one run now, or runs on a schedule.

Built on the Vertex AI SDK: ``PipelineJob`` submits a spec compiled by
``pipeline/kubeflow.py``, ``PipelineJob.create_schedule`` runs it on a cron.
Project, region, pipeline root and service account come from ``[vertex]``.

Schedules are known by their display name, and one name is one schedule:
creating a schedule whose name is taken is refused, naming the schedule that
has it, unless ``replace=True``, which deletes the old one first. (The SDK can
change an existing schedule's cron and limits, but not the pipeline it runs,
so replacing is the only way to put a newly compiled spec on a schedule.)

Anything the user must fix first (no project, no credentials, a spec file
that is not there, a bad cron) raises an error with a message that says what
to do, never a stack trace from deep inside the SDK.
"""

from __future__ import annotations

import re
from pathlib import Path

import google.auth
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import Credentials
from google.cloud import aiplatform

from components.run_notifier.webhook import outcome_of_job
from pipeline.config import Config
from pipeline.vertex_specs import VertexError, require_cloud_settings

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
# Five cron fields, optionally after a time zone: "TZ=Europe/Paris 0 3 * * 1".
_CRON = re.compile(r"((CRON_TZ|TZ)=\S+\s+)?\S+(\s+\S+){4}")
CRON_HELP = (
    "five fields: minute hour day-of-month month day-of-week, optionally after a "
    "time zone, e.g. '0 3 * * 1' or 'TZ=Europe/Paris 0 3 * * *'"
)


def default_credentials() -> Credentials:
    """Application Default Credentials, or a VertexError that says how to get them."""
    try:
        credentials, _ = google.auth.default(scopes=SCOPES)
    except auth_exceptions.DefaultCredentialsError:
        raise VertexError(
            "no Google Cloud credentials found: run 'gcloud auth application-default login', "
            "or set GOOGLE_APPLICATION_CREDENTIALS to a service account key file"
        ) from None
    return credentials


def _connect(config: Config, credentials: Credentials | None) -> Credentials:
    require_cloud_settings(config.vertex)
    return credentials or default_credentials()


def _location(config: Config, credentials: Credentials) -> dict:
    return {"project": config.vertex.project, "location": config.vertex.region, "credentials": credentials}


def pipeline_job(config: Config, spec: str | Path, credentials: Credentials) -> aiplatform.PipelineJob:
    """A run of the compiled ``spec`` (local file, gs:// or https URI), not yet submitted."""
    spec = str(spec)
    if "://" not in spec and not Path(spec).is_file():
        raise VertexError(f"{spec}: pipeline spec not found; make it with 'flowers-tfx compile --out {spec}'")
    return aiplatform.PipelineJob(
        display_name=config.run.pipeline_name,
        template_path=spec,
        # The .yaml spec has no pipeline root of its own; the .json one has the same.
        pipeline_root=config.vertex.pipeline_root,
        **_location(config, credentials),
    )


def submit(config: Config, spec: str | Path, credentials: Credentials | None = None) -> aiplatform.PipelineJob:
    """Starts one run of ``spec`` and returns without waiting for it."""
    credentials = _connect(config, credentials)
    job = pipeline_job(config, spec, credentials)
    job.submit(service_account=config.vertex.service_account or None)
    return job


def check_cron(cron: str) -> str:
    if not _CRON.fullmatch(cron.strip()):
        raise VertexError(f"--cron {cron!r} is not a cron schedule: use {CRON_HELP}")
    return cron.strip()


def find_schedules(config: Config, display_name: str, credentials: Credentials | None = None) -> list:
    """The schedules in the project and region whose display name is ``display_name``."""
    credentials = _connect(config, credentials)
    found = aiplatform.PipelineJobSchedule.list(
        filter=f'display_name="{display_name}"', **_location(config, credentials)
    )
    # The server filters already; this keeps an exact match whatever the filter syntax does.
    return [schedule for schedule in found if schedule.display_name == display_name]


def list_schedules(config: Config, credentials: Credentials | None = None) -> list:
    """Every pipeline schedule in the project and region."""
    credentials = _connect(config, credentials)
    return aiplatform.PipelineJobSchedule.list(**_location(config, credentials))


def create_schedule(
    config: Config,
    spec: str | Path,
    cron: str,
    display_name: str,
    max_concurrent_runs: int = 1,
    replace: bool = False,
    credentials: Credentials | None = None,
):
    """Schedules runs of ``spec`` on ``cron``, as the one schedule named ``display_name``."""
    cron = check_cron(cron)
    if max_concurrent_runs < 1:
        raise VertexError(f"max concurrent runs must be at least 1, not {max_concurrent_runs}")
    credentials = _connect(config, credentials)
    job = pipeline_job(config, spec, credentials)
    existing = find_schedules(config, display_name, credentials)
    if existing and not replace:
        names = ", ".join(schedule.resource_name for schedule in existing)
        raise VertexError(
            f"a schedule named {display_name!r} already exists ({names}); "
            "use --replace to replace it with this pipeline and cron, or "
            f"'flowers-tfx schedule delete --name {display_name}' first"
        )
    for schedule in existing:
        schedule.delete()
    return job.create_schedule(
        cron=cron,
        display_name=display_name,
        max_concurrent_run_count=max_concurrent_runs,
        service_account=config.vertex.service_account or None,
    )


def delete_schedules(config: Config, display_name: str, credentials: Credentials | None = None) -> list[str]:
    """Deletes the schedule(s) named ``display_name``; their resource names."""
    credentials = _connect(config, credentials)
    existing = find_schedules(config, display_name, credentials)
    if not existing:
        raise VertexError(
            f"no schedule named {display_name!r} in project {config.vertex.project}, "
            f"region {config.vertex.region} ('flowers-tfx schedule list' shows them)"
        )
    deleted = []
    for schedule in existing:
        deleted.append(schedule.resource_name)
        schedule.delete()
    return deleted


def console_url(config: Config, job: aiplatform.PipelineJob | None = None) -> str:
    """Where the Google Cloud console shows a run, or all schedules."""
    project, region = config.vertex.project, config.vertex.region
    if job is None:
        return f"https://console.cloud.google.com/vertex-ai/pipelines/schedules?project={project}"
    return f"https://console.cloud.google.com/vertex-ai/locations/{region}/pipelines/runs/{job.name}?project={project}"


# ------------------------------------------------------------------------- runs

# What `flowers-tfx runs` says of a PipelineJob, by its state.
_RUNNING_STATES = (
    "PIPELINE_STATE_QUEUED",
    "PIPELINE_STATE_PENDING",
    "PIPELINE_STATE_RUNNING",
    "PIPELINE_STATE_CANCELLING",
    "PIPELINE_STATE_PAUSED",
    "PIPELINE_STATE_UNSPECIFIED",
)
_FAILED_STATES = ("PIPELINE_STATE_FAILED", "PIPELINE_STATE_CANCELLED")


def list_runs(config: Config, limit: int = 20, credentials: Credentials | None = None) -> list:
    """The newest runs of the pipeline (its display name), newest first."""
    credentials = _connect(config, credentials)
    jobs = aiplatform.PipelineJob.list(
        filter=f'display_name="{config.run.pipeline_name}"',
        order_by="create_time desc",
        **_location(config, credentials),
    )
    return list(jobs)[:limit]


def get_run(config: Config, run: str, credentials: Credentials | None = None) -> aiplatform.PipelineJob:
    """The run with this job ID (as ``runs list`` shows it) or full resource name."""
    credentials = _connect(config, credentials)
    return aiplatform.PipelineJob.get(resource_name=run, **_location(config, credentials))


def run_state(job) -> str:
    """One of running, failed, pushed, unchanged, not_blessed (as for local runs)."""
    state = job.gca_resource.state.name
    if state in _RUNNING_STATES:
        return "running"
    if state in _FAILED_STATES:
        return "failed" if state.endswith("FAILED") else "cancelled"
    # A Pusher that never ran: the pipeline stopped before it without failing.
    return outcome_of_job(job.gca_resource).get("state", "not_blessed")


def failed_tasks(job) -> list[tuple[str, str]]:
    """``[(task, error message)]`` of the tasks that failed."""
    return [
        (task.task_name, task.error.message or task.state.name)
        for task in job.gca_resource.job_detail.task_details
        if task.state.name == "FAILED"
    ]


def wait_run(
    config: Config,
    run: str,
    timeout: float | None = None,
    poll_seconds: float = 30.0,
    on_progress=lambda line: None,
    credentials: Credentials | None = None,
    sleep=None,
):
    """Blocks until the run ends, reporting each task as it changes state; the job."""
    import time

    sleep = sleep or time.sleep
    deadline = None if timeout is None else time.monotonic() + timeout
    seen: dict[str, str] = {}
    while True:
        job = get_run(config, run, credentials)
        for task in job.gca_resource.job_detail.task_details:
            if seen.get(task.task_name) != task.state.name:
                seen[task.task_name] = task.state.name
                on_progress(f"{task.task_name}: {task.state.name.lower()}")
        if run_state(job) != "running":
            return job
        if deadline is not None and time.monotonic() > deadline:
            raise VertexError(f"{job.resource_name}: still running after {timeout:.0f} s")
        sleep(poll_seconds)
