"""Submitting and scheduling on Vertex AI, against a fake Vertex AI service.

The Vertex AI SDK runs for real down to its generated (GAPIC) clients; their
methods are replaced by :class:`FakeVertex`, which records each request proto
and answers like the service (schedules it created are listed and deleted).
Credentials are anonymous, the project is given, and any attempt to open a
network connection fails the test.
"""

import json
import socket

import pytest
from google.api_core import exceptions as api_exceptions
from google.auth import credentials as auth_credentials
from google.auth import exceptions as auth_exceptions
from google.cloud.aiplatform.utils import gcs_utils
from google.cloud.aiplatform_v1.services.pipeline_service import PipelineServiceClient
from google.cloud.aiplatform_v1.services.schedule_service import ScheduleServiceClient
from google.cloud.aiplatform_v1.types import pipeline_job as gca_pipeline_job
from google.cloud.aiplatform_v1.types import pipeline_service, schedule_service
from google.cloud.aiplatform_v1.types import schedule as gca_schedule
from google.protobuf import json_format

from pipeline.cli.main import main
from pipeline.config_loading import load_config
from pipeline.runners import vertex
from pipeline.runners.kubeflow import compile_pipeline

PROJECT, REGION = "flowers-test", "europe-west4"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
ROOT = "gs://flowers-test-bucket/root"
SERVICE_ACCOUNT = "pipelines@flowers-test.iam.gserviceaccount.com"
SETTINGS = {
    "vertex.project": PROJECT,
    "vertex.region": REGION,
    "vertex.pipeline_root": ROOT,
    "vertex.image": "us-central1-docker.pkg.dev/flowers-test/pipelines/flowers-tfx:1",
    "vertex.service_account": SERVICE_ACCOUNT,
    "data.source": "gs://flowers-public/tfrecords-jpeg-192x192-2/*.tfrec",
}
SET_OPTIONS = [f"--set={key}={value}" for key, value in SETTINGS.items()]


@pytest.fixture(scope="module")
def specs(tmp_path_factory):
    """The pipeline compiled once, as .json (PipelineJob) and .yaml (PipelineSpec)."""
    folder = tmp_path_factory.mktemp("specs")
    config = load_config(overrides=SETTINGS, environ={})
    return {suffix: compile_pipeline(config, folder / f"pipeline.{suffix}") for suffix in ("json", "yaml")}


def compiled_spec(specs) -> dict:
    return json.loads(specs["json"].read_text())["pipelineSpec"]


@pytest.fixture
def config():
    return load_config(overrides=SETTINGS, environ={})


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError(f"a test tried to open a network connection: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


class FakeOperation:
    """A finished long-running operation."""

    class operation:
        name = "operations/1"

    def result(self, timeout=None):
        return None


class FakeVertex:
    """Vertex AI's pipeline and schedule services, as far as the commands use them."""

    def __init__(self):
        self.requests = []  # every request proto, in order
        self.schedules = {}  # resource name -> Schedule
        self.refuse_with = None  # an exception every call raises, if set

    def _record(self, request):
        if self.refuse_with:
            raise self.refuse_with
        self.requests.append(request)

    def sent(self, kind):
        return [request for request in self.requests if isinstance(request, kind)]

    def create_pipeline_job(self, client, parent, pipeline_job, pipeline_job_id, timeout=None, **kwargs):
        request = pipeline_service.CreatePipelineJobRequest(
            parent=parent, pipeline_job=pipeline_job, pipeline_job_id=pipeline_job_id
        )
        self._record(request)
        created = gca_pipeline_job.PipelineJob(pipeline_job)
        created.name = f"projects/123/locations/{REGION}/pipelineJobs/{pipeline_job_id}"
        return created

    def create_schedule(self, client, parent, schedule, timeout=None, **kwargs):
        self._record(schedule_service.CreateScheduleRequest(parent=parent, schedule=schedule))
        created = gca_schedule.Schedule(schedule)
        created.name = f"projects/123/locations/{REGION}/schedules/{len(self.schedules) + 1}"
        created.state = gca_schedule.Schedule.State.ACTIVE
        self.schedules[created.name] = created
        return created

    def list_schedules(self, client, request=None, **kwargs):
        request = schedule_service.ListSchedulesRequest(request)
        self._record(request)
        wanted = request.filter.partition("display_name=")[2].strip('"')
        return [s for s in self.schedules.values() if not wanted or s.display_name == wanted]

    def delete_schedule(self, client, name=None, **kwargs):
        self._record(schedule_service.DeleteScheduleRequest(name=name))
        del self.schedules[name]
        return FakeOperation()

    def install(self, monkeypatch):
        def method(name):
            return lambda client, *args, **kwargs: getattr(self, name)(client, *args, **kwargs)

        monkeypatch.setattr(PipelineServiceClient, "create_pipeline_job", method("create_pipeline_job"))
        for name in ("create_schedule", "list_schedules", "delete_schedule"):
            monkeypatch.setattr(ScheduleServiceClient, name, method(name))
        # submit() would make sure the pipeline root's bucket exists, through Cloud Storage.
        monkeypatch.setattr(
            gcs_utils, "create_gcs_bucket_for_pipeline_artifacts_if_it_does_not_exist", lambda **kwargs: None
        )


@pytest.fixture
def fake_vertex(monkeypatch):
    fake = FakeVertex()
    fake.install(monkeypatch)
    return fake


@pytest.fixture
def credentials():
    return auth_credentials.AnonymousCredentials()


@pytest.fixture
def signed_in(monkeypatch, credentials):
    """Application Default Credentials, as after 'gcloud auth application-default login'."""
    monkeypatch.setattr("google.auth.default", lambda scopes=None, **kwargs: (credentials, PROJECT))


def as_dict(message) -> dict:
    return json_format.MessageToDict(type(message).pb(message))


def test_submit_sends_the_compiled_pipeline(specs, config, fake_vertex, credentials):
    job = vertex.submit(config, specs["json"], credentials=credentials)

    (request,) = fake_vertex.sent(pipeline_service.CreatePipelineJobRequest)
    assert request.parent == PARENT
    assert request.pipeline_job_id.startswith("flowers-")
    sent = request.pipeline_job
    assert sent.display_name == "flowers"
    assert sent.service_account == SERVICE_ACCOUNT
    assert as_dict(sent)["pipelineSpec"] == compiled_spec(specs)
    assert sent.runtime_config.gcs_output_directory == ROOT
    # The pipeline declares no runtime parameters, so none are sent.
    assert dict(sent.runtime_config.parameter_values) == {}
    assert sent.template_uri == ""  # a local file is sent as its content
    assert job.resource_name.endswith(f"/pipelineJobs/{request.pipeline_job_id}")
    assert vertex.console_url(config, job).startswith(
        f"https://console.cloud.google.com/vertex-ai/locations/{REGION}/pipelines/runs/flowers-"
    )


def test_a_yaml_spec_runs_under_the_configured_pipeline_root(specs, config, fake_vertex, credentials):
    vertex.submit(config, specs["yaml"], credentials=credentials)
    (request,) = fake_vertex.sent(pipeline_service.CreatePipelineJobRequest)
    assert request.pipeline_job.runtime_config.gcs_output_directory == ROOT
    assert as_dict(request.pipeline_job)["pipelineSpec"] == compiled_spec(specs)


def test_schedule_create_sends_cron_limits_and_service_account(specs, config, fake_vertex, credentials):
    schedule = vertex.create_schedule(
        config,
        specs["json"],
        "TZ=Europe/Paris 0 3 * * 1",
        "weekly-flowers",
        max_concurrent_runs=2,
        credentials=credentials,
    )

    (listed,) = fake_vertex.sent(schedule_service.ListSchedulesRequest)
    assert listed.parent == PARENT
    assert listed.filter == 'display_name="weekly-flowers"'
    (request,) = fake_vertex.sent(schedule_service.CreateScheduleRequest)
    assert request.parent == PARENT
    sent = request.schedule
    assert sent.display_name == "weekly-flowers"
    assert sent.cron == "TZ=Europe/Paris 0 3 * * 1"
    assert sent.max_concurrent_run_count == 2
    run = sent.create_pipeline_job_request
    assert run.parent == PARENT
    assert run.pipeline_job.service_account == SERVICE_ACCOUNT
    assert run.pipeline_job.runtime_config.gcs_output_directory == ROOT
    assert as_dict(run.pipeline_job)["pipelineSpec"] == compiled_spec(specs)
    assert schedule.resource_name == f"projects/123/locations/{REGION}/schedules/1"


def test_creating_a_schedule_twice_keeps_one(specs, config, fake_vertex, credentials):
    vertex.create_schedule(config, specs["json"], "0 3 * * *", "nightly", credentials=credentials)
    with pytest.raises(vertex.VertexError, match="a schedule named 'nightly' already exists .*schedules/1.*--replace"):
        vertex.create_schedule(config, specs["json"], "0 4 * * *", "nightly", credentials=credentials)
    assert len(fake_vertex.sent(schedule_service.CreateScheduleRequest)) == 1
    assert [s.cron for s in fake_vertex.schedules.values()] == ["0 3 * * *"]


def test_replacing_a_schedule_deletes_the_old_one_first(specs, config, fake_vertex, credentials):
    vertex.create_schedule(config, specs["json"], "0 3 * * *", "nightly", credentials=credentials)
    vertex.create_schedule(config, specs["json"], "0 4 * * *", "nightly", replace=True, credentials=credentials)

    (deleted,) = fake_vertex.sent(schedule_service.DeleteScheduleRequest)
    assert deleted.name == f"projects/123/locations/{REGION}/schedules/1"
    kinds = [type(request).__name__ for request in fake_vertex.requests]
    assert kinds.index("DeleteScheduleRequest") < len(kinds) - 1 - kinds[::-1].index("CreateScheduleRequest")
    assert [(s.display_name, s.cron) for s in fake_vertex.schedules.values()] == [("nightly", "0 4 * * *")]


def test_schedule_delete_by_name(specs, config, fake_vertex, credentials):
    vertex.create_schedule(config, specs["json"], "0 3 * * *", "nightly", credentials=credentials)
    vertex.create_schedule(config, specs["json"], "0 3 * * 0", "weekly", credentials=credentials)
    assert vertex.delete_schedules(config, "nightly", credentials=credentials) == [
        f"projects/123/locations/{REGION}/schedules/1"
    ]
    assert [s.display_name for s in fake_vertex.schedules.values()] == ["weekly"]
    with pytest.raises(vertex.VertexError, match="no schedule named 'nightly'"):
        vertex.delete_schedules(config, "nightly", credentials=credentials)


@pytest.mark.parametrize("cron", ["every day", "0 3 * *", "0 3 * * * *", ""])
def test_a_bad_cron_is_refused_before_any_request(cron, specs, config, fake_vertex, credentials):
    with pytest.raises(vertex.VertexError, match="is not a cron schedule"):
        vertex.create_schedule(config, specs["json"], cron, "nightly", credentials=credentials)
    assert fake_vertex.requests == []


# The command line, as a user runs it.


def test_submit_command(specs, fake_vertex, signed_in, capsys):
    assert main(["submit", "--spec", str(specs["json"]), *SET_OPTIONS]) == 0
    printed = capsys.readouterr().out
    (request,) = fake_vertex.sent(pipeline_service.CreatePipelineJobRequest)
    assert f"Submitted projects/123/locations/{REGION}/pipelineJobs/{request.pipeline_job_id}" in printed
    assert "https://console.cloud.google.com/vertex-ai/" in printed


def test_schedule_commands(specs, fake_vertex, signed_in, capsys):
    create = ["schedule", "create", "--spec", str(specs["json"]), "--cron", "0 3 * * 1", *SET_OPTIONS]
    assert main([*create, "--max-concurrent-runs", "3"]) == 0
    assert "Scheduled 'flowers' (0 3 * * 1)" in capsys.readouterr().out
    (request,) = fake_vertex.sent(schedule_service.CreateScheduleRequest)
    assert request.schedule.max_concurrent_run_count == 3

    assert main(create) == 2
    assert "error: a schedule named 'flowers' already exists" in capsys.readouterr().err

    assert main(["schedule", "list", *SET_OPTIONS]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].split()[:2] == ["NAME", "STATE"]
    assert listing[1].split()[:3] == ["flowers", "ACTIVE", "0"]
    assert len(listing) == 2

    assert main(["schedule", "delete", *SET_OPTIONS]) == 0
    assert f"Deleted projects/123/locations/{REGION}/schedules/1" in capsys.readouterr().out
    assert main(["schedule", "list", *SET_OPTIONS]) == 0
    assert "No schedules in project flowers-test" in capsys.readouterr().out


def test_missing_credentials_are_a_clear_error(specs, fake_vertex, monkeypatch, capsys):
    def no_credentials(**kwargs):
        raise auth_exceptions.DefaultCredentialsError("Your default credentials were not found.")

    monkeypatch.setattr("google.auth.default", no_credentials)
    assert main(["submit", "--spec", str(specs["json"]), *SET_OPTIONS]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no Google Cloud credentials found: run 'gcloud auth application-default login'")
    assert "Traceback" not in err
    assert fake_vertex.requests == []


def test_missing_project_is_a_clear_error(specs, fake_vertex, signed_in, capsys):
    assert main(["schedule", "list", *SET_OPTIONS, "--set", "vertex.project="]) == 2
    err = capsys.readouterr().err
    assert "vertex.project is required" in err and "Traceback" not in err
    assert fake_vertex.requests == []


def test_a_missing_spec_file_is_a_clear_error(tmp_path, fake_vertex, signed_in, capsys):
    missing = tmp_path / "pipeline.json"
    assert main(["submit", "--spec", str(missing), *SET_OPTIONS]) == 2
    assert f"error: {missing}: pipeline spec not found" in capsys.readouterr().err


def test_a_refused_request_is_one_line_and_exit_status_1(specs, fake_vertex, signed_in, capsys):
    fake_vertex.refuse_with = api_exceptions.PermissionDenied("aiplatform.pipelineJobs.create denied")
    assert main(["submit", "--spec", str(specs["json"]), *SET_OPTIONS]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Vertex AI refused the request: 403 aiplatform.pipelineJobs.create denied")
    assert "Traceback" not in err
