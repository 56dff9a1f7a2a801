"""Vertex AI Pipelines, answered by the fake: pipeline jobs and schedules.

``pipeline/runners/vertex.py`` (submit, schedule, runs) and the exit
handler use the SDK's ``PipelineJob`` and ``PipelineJobSchedule``. The fake
stands in one level lower, for the generated clients' methods, so that the
SDK itself still turns a compiled spec into the request: what the fake
records is the request the SDK would send, as google-cloud-aiplatform's
own request types.
"""

from __future__ import annotations

import functools
from types import SimpleNamespace

from pipeline.runners.rehearsal.vertex_fake.checks import stands_in_for

PIPELINES = "google.cloud.aiplatform_v1.services.pipeline_service.PipelineServiceClient"
SCHEDULES = "google.cloud.aiplatform_v1.services.schedule_service.ScheduleServiceClient"


def _request(type_name: str, request, fields: dict):
    """The request as the client builds it: given whole, or from its fields."""
    from google.cloud.aiplatform_v1.types import pipeline_service, schedule_service

    kind = getattr(pipeline_service, type_name, None) or getattr(schedule_service, type_name)
    return kind(request) if request is not None else kind({k: v for k, v in fields.items() if v is not None})


class PipelineService:
    """``PipelineServiceClient``: jobs created, got (one state after another) and listed."""

    SDK_CLASS = PIPELINES

    def __init__(self, fake):
        self.fake = fake

    @stands_in_for(f"{PIPELINES}.create_pipeline_job")
    def create_pipeline_job(self, *, request, parent, pipeline_job, pipeline_job_id, **_):
        from google.cloud.aiplatform_v1.types import PipelineJob, PipelineState

        request = _request(
            "CreatePipelineJobRequest",
            request,
            {"parent": parent, "pipeline_job": pipeline_job, "pipeline_job_id": pipeline_job_id},
        )
        self.fake.record_proto(request)
        created = PipelineJob(request.pipeline_job)
        created.name = f"{request.parent}/pipelineJobs/{request.pipeline_job_id}"
        created.state = PipelineState.PIPELINE_STATE_PENDING
        self.fake.add_pipeline_job(created)
        return created

    @stands_in_for(f"{PIPELINES}.get_pipeline_job")
    def get_pipeline_job(self, *, request, name, **_):
        from google.api_core import exceptions as google_exceptions
        from google.cloud.aiplatform_v1.types import PipelineJob

        request = _request("GetPipelineJobRequest", request, {"name": name})
        self.fake.record_proto(request)
        state = self.fake.state.load()
        history = state["pipeline_jobs"].get(request.name)
        if history is None:
            raise google_exceptions.NotFound(f"{request.name} not found")
        job = history.pop(0) if len(history) > 1 else history[0]
        self.fake.state.save(state)
        return PipelineJob.from_json(job)

    @stands_in_for(f"{PIPELINES}.list_pipeline_jobs")
    def list_pipeline_jobs(self, *, request, parent, **_):
        from google.cloud.aiplatform_v1.types import PipelineJob

        request = _request("ListPipelineJobsRequest", request, {"parent": parent})
        self.fake.record_proto(request)
        jobs = [PipelineJob.from_json(history[-1]) for history in self.fake.state.load()["pipeline_jobs"].values()]
        wanted = request.filter.partition("display_name=")[2].strip('"')
        return [
            job
            for job in jobs
            if job.name.startswith(f"{request.parent}/") and (not wanted or job.display_name == wanted)
        ]


class ScheduleService:
    """``ScheduleServiceClient``: schedules created, listed by display name, deleted."""

    SDK_CLASS = SCHEDULES

    def __init__(self, fake):
        self.fake = fake

    def _all(self) -> list:
        from google.cloud.aiplatform_v1.types import Schedule

        return [Schedule.from_json(text) for text in self.fake.state.load()["schedules"].values()]

    @stands_in_for(f"{SCHEDULES}.create_schedule")
    def create_schedule(self, *, request, parent, schedule, **_):
        from google.cloud.aiplatform_v1.types import Schedule

        request = _request("CreateScheduleRequest", request, {"parent": parent, "schedule": schedule})
        self.fake.record_proto(request)
        state = self.fake.state.load()
        created = Schedule(request.schedule)
        created.name = f"{request.parent}/schedules/{len(state['schedules']) + 1}"
        created.state = Schedule.State.ACTIVE
        state["schedules"][created.name] = Schedule.to_json(created)
        self.fake.state.save(state)
        return created

    @stands_in_for(f"{SCHEDULES}.list_schedules")
    def list_schedules(self, *, request, parent, **_):
        request = _request("ListSchedulesRequest", request, {"parent": parent})
        self.fake.record_proto(request)
        wanted = request.filter.partition("display_name=")[2].strip('"')
        return [
            schedule
            for schedule in self._all()
            if schedule.name.startswith(f"{request.parent}/") and (not wanted or schedule.display_name == wanted)
        ]

    @stands_in_for(f"{SCHEDULES}.delete_schedule")
    def delete_schedule(self, *, request, name, **_):
        from google.api_core import exceptions as google_exceptions

        request = _request("DeleteScheduleRequest", request, {"name": name})
        self.fake.record_proto(request)
        state = self.fake.state.load()
        if state["schedules"].pop(request.name, None) is None:
            raise google_exceptions.NotFound(f"{request.name} not found")
        self.fake.state.save(state)
        # A long-running operation, already done.
        return SimpleNamespace(
            operation=SimpleNamespace(name=f"{request.name}/operations/1"), result=lambda timeout=None: None
        )


def install(fake, replace) -> None:
    """The generated clients' methods answered by the fake (``replace(owner, name, value)``)."""
    from google.cloud.aiplatform.utils import gcs_utils
    from google.cloud.aiplatform_v1.services.pipeline_service import PipelineServiceClient
    from google.cloud.aiplatform_v1.services.schedule_service import ScheduleServiceClient

    for client, service in ((PipelineServiceClient, fake.pipelines), (ScheduleServiceClient, fake.schedules)):
        for name, value in vars(type(service)).items():
            if hasattr(value, "stands_in_for"):
                replace(client, name, _forward(service, name, getattr(client, name)))
    # submit() makes sure the pipeline root's bucket exists, through Cloud Storage: the fake has no buckets.
    replace(gcs_utils, "create_gcs_bucket_for_pipeline_artifacts_if_it_does_not_exist", lambda **kwargs: None)


def _forward(service, name: str, original):
    """The client's method, answered by ``service``; it keeps the original's
    signature (``__wrapped__``), which ``checks.stands_in_for`` binds calls to."""

    @functools.wraps(original)
    def method(client, *args, **kwargs):
        return getattr(service, name)(*args, **kwargs)

    return method
