"""Vertex AI Training, answered by the fake: the job service's CustomJobs.

The Trainer of a spec compiled with ``vertex.training = true`` asks for a
CustomJob through the generated ``JobServiceClient``
(``tfx.extensions.google_cloud_ai_platform.training_clients``). The fake
checks the request as google-cloud-aiplatform's own ``CustomJob`` type
(unknown fields, machine and accelerator enum names, worker pools, the
service account), records it, and runs the chief's container command when
it was given a way to (the rehearsal's: here, as the job would start it).
"""

from __future__ import annotations

from pipeline.runners.rehearsal.vertex_fake.checks import RequestRefused, as_type, stands_in_for

JOBS = "google.cloud.aiplatform_v1.services.job_service.JobServiceClient"


def validate_custom_job(custom_job: dict):
    """The request as aiplatform's CustomJob, or RequestRefused naming what is wrong."""
    job = as_type("CustomJob", custom_job)
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


class JobService:
    """``JobServiceClient``: a CustomJob runs to its end when it is created."""

    SDK_CLASS = JOBS

    def __init__(self, fake):
        self.fake = fake

    def __call__(self, *args, **kwargs):
        """The client's constructor (``client_options=...``): the same service."""
        return self

    @stands_in_for(f"{JOBS}.create_custom_job")
    def create_custom_job(self, *, request, parent, custom_job, **_):
        from google.cloud.aiplatform_v1.types import CustomJob, JobState

        if request is not None:
            parent, custom_job = request["parent"], request["custom_job"]
        if not isinstance(custom_job, dict):
            custom_job = CustomJob.to_dict(custom_job, preserving_proto_field_name=True)
        job = validate_custom_job(custom_job)
        self.fake.record("training-custom-job", {"parent": parent, "custom_job": custom_job})
        state = self.fake.state.load()
        job.name = f"{parent}/customJobs/{len(state['custom_jobs']) + 1}"
        # The first worker pool is the chief; its command is what the job runs.
        command = list(job.job_spec.worker_pool_specs[0].container_spec.command)
        succeeded = self.fake.run_job(command) if self.fake.run_job else True
        job.state = JobState.JOB_STATE_SUCCEEDED if succeeded else JobState.JOB_STATE_FAILED
        if not succeeded:
            job.error.message = f"the job's command failed; see {self.fake.job_log or 'its log'}"
        state = self.fake.state.load()
        state["custom_jobs"][job.name] = CustomJob.to_json(job)
        self.fake.state.save(state)
        return job

    @stands_in_for(f"{JOBS}.get_custom_job")
    def get_custom_job(self, *, request, name, **_):
        from google.api_core import exceptions as google_exceptions
        from google.cloud.aiplatform_v1.types import CustomJob

        name = request["name"] if request is not None else name
        found = self.fake.state.load()["custom_jobs"].get(name)
        if found is None:
            raise google_exceptions.NotFound(f"{name} not found")
        return CustomJob.from_json(found)


def describe(name: str, request: dict) -> str | None:
    """One line for a recorded CustomJob request; None for other services."""
    if "custom_job" not in request:
        return None
    spec = request["custom_job"]["job_spec"]
    pools = []
    for pool in spec["worker_pool_specs"]:
        machine = pool["machine_spec"]
        accelerator = (
            f" + {machine.get('accelerator_count', 1)} {machine['accelerator_type']}"
            if machine.get("accelerator_type")
            else ""
        )
        pools.append(f"{pool.get('replica_count', 1)} x {machine.get('machine_type')}{accelerator}")
    return (
        f"{name}: Vertex AI Training CustomJob in {request['parent']}: {', '.join(pools)}, "
        f"image {spec['worker_pool_specs'][0]['container_spec']['image_uri']}, "
        f"service account {spec.get('service_account') or 'the default'}"
    )
