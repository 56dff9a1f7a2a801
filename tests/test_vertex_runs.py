"""``flowers-tfx runs`` on Vertex AI, against a fake pipeline service.

The Vertex AI SDK runs for real down to its generated client, whose
``get_pipeline_job`` and ``list_pipeline_jobs`` the project's fake Vertex AI
(``vertex_fake``) answers from PipelineJob protos the test builds; any
network connection fails the test.
"""

import socket

import pytest
from google.auth import credentials as auth_credentials
from google.cloud.aiplatform_v1.types import artifact as gca_artifact
from google.cloud.aiplatform_v1.types import pipeline_job as gca_pipeline_job
from google.cloud.aiplatform_v1.types import pipeline_service, pipeline_state

from pipeline.cli.main import main
from pipeline.runners.rehearsal.vertex_fake import VertexFake

PROJECT, REGION = "flowers-test", "europe-west4"
PARENT = f"projects/{PROJECT}/locations/{REGION}"
SET_OPTIONS = [
    f"--set=vertex.project={PROJECT}",
    f"--set=vertex.region={REGION}",
    "--set=vertex.pipeline_root=gs://flowers-test-bucket/root",
]
State = pipeline_state.PipelineState
Task = gca_pipeline_job.PipelineTaskDetail


def job(job_id: str, state, pushed: int | None = None, already_serving: int = 0, failed_task: str | None = None):
    """A PipelineJob as Vertex AI returns it, with the tasks of this pipeline."""
    tasks = []
    for name in ("ImportExampleGen", "Trainer", "Evaluator", "Pusher"):
        detail = Task(task_name=name, state=Task.State.SUCCEEDED)
        if name == failed_task:
            detail.state = Task.State.FAILED
            detail.error.message = f"{name} ran out of patience"
        if name == "Pusher" and pushed is not None:
            artifact = gca_artifact.Artifact(metadata={"pushed": pushed, "already_serving": already_serving})
            detail.outputs["pushed_model"] = Task.ArtifactList(artifacts=[artifact])
        if failed_task and name in ("Evaluator", "Pusher"):
            continue
        tasks.append(detail)
    return gca_pipeline_job.PipelineJob(
        name=f"{PARENT}/pipelineJobs/{job_id}",
        display_name="flowers",
        state=state,
        job_detail=gca_pipeline_job.PipelineJobDetail(task_details=tasks),
    )


@pytest.fixture
def service(tmp_path, monkeypatch):
    """The fake pipeline service; ``service.add_pipeline_job(*states)`` gives
    a job the states it goes through, one per get."""
    fake = VertexFake(tmp_path)
    fake.install(monkeypatch.setattr, ("pipelines",))

    def refuse(*args, **kwargs):
        raise AssertionError(f"a test tried to open a network connection: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(
        "google.auth.default", lambda scopes=None, **kwargs: (auth_credentials.AnonymousCredentials(), PROJECT)
    )
    return fake


@pytest.mark.parametrize(
    "final, status",
    [
        (job("r1", State.PIPELINE_STATE_SUCCEEDED, pushed=1), 0),
        (job("r1", State.PIPELINE_STATE_SUCCEEDED, pushed=1, already_serving=1), 0),
        (job("r1", State.PIPELINE_STATE_SUCCEEDED, pushed=0), 3),
        (job("r1", State.PIPELINE_STATE_FAILED, failed_task="Trainer"), 1),
        (job("r1", State.PIPELINE_STATE_CANCELLED), 1),
    ],
)
def test_runs_wait_maps_each_final_state_to_its_exit_status(service, capsys, final, status):
    service.add_pipeline_job(job("r1", State.PIPELINE_STATE_PENDING), job("r1", State.PIPELINE_STATE_RUNNING), final)
    assert main(["runs", "wait", "r1", "--poll", "0", *SET_OPTIONS]) == status
    out = capsys.readouterr().out
    gets = service.sent(pipeline_service.GetPipelineJobRequest)
    assert [request.name for request in gets] == [f"{PARENT}/pipelineJobs/r1"] * 3
    if final.state == State.PIPELINE_STATE_FAILED:
        assert "failed in Trainer: Trainer ran out of patience" in out
    assert "  Trainer: succeeded" in out or "  Trainer: failed" in out


def test_runs_list_and_show_on_vertex(service, capsys):
    service.add_pipeline_job(job("r1", State.PIPELINE_STATE_SUCCEEDED, pushed=1))
    service.add_pipeline_job(job("r2", State.PIPELINE_STATE_RUNNING))
    assert main(["runs", "list", *SET_OPTIONS]) == 0
    out = capsys.readouterr().out
    assert "r1" in out and "pushed" in out and "r2" in out and "running" in out
    (listed,) = service.sent(pipeline_service.ListPipelineJobsRequest)
    assert (listed.parent, listed.filter) == (PARENT, 'display_name="flowers"')
    assert main(["runs", "show", "r1", *SET_OPTIONS]) == 0
    assert "run r1: pushed" in capsys.readouterr().out


def test_runs_wait_gives_up_after_its_timeout(service, capsys):
    service.add_pipeline_job(job("r3", State.PIPELINE_STATE_RUNNING))
    assert main(["runs", "wait", "r3", "--poll", "0.01", "--timeout", "0.05", *SET_OPTIONS]) == 2
    assert "still running after 0 s" in capsys.readouterr().err
