"""The project's one fake of the Vertex AI SDK (``pipeline/runners/rehearsal/vertex_fake/``).

The tests of the registry, endpoints, submissions and runs, and the
rehearsal, all talk to it; these check the fake itself: that it still
matches the installed google-cloud-aiplatform, that two fakes on one root
share their state (as the rehearsal's task processes do), and that it
refuses what Vertex AI would refuse.
"""

import subprocess
import sys

import pytest

from pipeline.runners.rehearsal.vertex_fake import RequestRefused, VertexFake, checks, endpoints

PROJECT, REGION = "flowers-test", "europe-west4"
WHERE = {"project": PROJECT, "location": REGION}
IMAGE = "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-16:latest"


def upload(fake: VertexFake, version: str, **changes):
    fields = {
        "display_name": "flowers",
        "artifact_uri": fake.put_saved_model(f"gs://bucket/serving/{version}"),
        "serving_container_image_uri": IMAGE,
        "version_aliases": [f"serving-{version}"],
        "labels": {"blessed": "true"},
        **WHERE,
    }
    if not fake.versions("flowers"):
        fields["model_id"] = "flowers"
    else:
        fields["parent_model"] = f"projects/{PROJECT}/locations/{REGION}/models/flowers"
    return fake.Model.upload(**{**fields, **changes})


def test_the_fake_has_the_installed_sdks_methods_and_parameters():
    assert VertexFake.surface_mismatches() == []


def test_a_fake_that_drifted_from_the_sdk_is_named():
    class Drifted(endpoints.Endpoint):
        @checks.stands_in_for("google.cloud.aiplatform.models.Endpoint.update")
        def update(self, *, traffic_splits, **_):  # the SDK's parameter is traffic_split
            pass

        def undeploy_everything(self):  # no such method in the SDK
            pass

    found = checks.surface_mismatches([Drifted])
    assert any("no parameter 'traffic_splits'" in line for line in found), found
    assert any("undeploy_everything: the SDK has no such attribute" in line for line in found), found


def test_a_call_the_sdk_would_not_take_fails_as_it_would(tmp_path):
    fake = VertexFake(tmp_path)
    with pytest.raises(TypeError, match="artefact_uri"):
        fake.Model.upload(display_name="flowers", artefact_uri="gs://bucket/serving/1", **WHERE)
    fake.sdk().init(project=PROJECT, location=REGION)
    with pytest.raises(TypeError, match="projet"):
        fake.sdk().init(projet=PROJECT)
    assert fake.requests() == []


def test_two_fakes_on_one_root_share_the_registry(tmp_path):
    first, second = VertexFake(tmp_path), VertexFake(tmp_path)
    upload(first, "1")
    endpoint = second.Endpoint.create(display_name="flowers", **WHERE)
    second.Model(model_name="flowers@serving-1", **WHERE).deploy(endpoint=endpoint, machine_type="n1-standard-2")
    [found] = first.Endpoint.list(filter='display_name="flowers"', **WHERE)
    upload(first, "2").deploy(endpoint=found, machine_type="n1-standard-2", traffic_percentage=10)
    assert second.traffic("flowers") == {"1": 90, "2": 10}
    assert [v["version_id"] for v in second.versions("flowers")] == ["1", "2"]
    assert second.alias_holder("flowers", "default") == "2"
    services = [path.stem.split("-", 1)[1] for path in (tmp_path / "requests").glob("*.json")]
    assert sorted(services) == sorted(
        ["model-registry-upload", "endpoint-create", "endpoint-deploy", "model-registry-upload", "endpoint-deploy"]
    )


def test_requests_vertex_ai_would_refuse_are_refused(tmp_path):
    fake = VertexFake(tmp_path)
    with pytest.raises(RequestRefused, match="label Blessed='true' breaks"):
        upload(fake, "1", labels={"Blessed": "true"})
    with pytest.raises(RequestRefused, match="holds no saved_model.pb"):
        upload(fake, "1", artifact_uri="gs://bucket/nothing/1")
    with pytest.raises(RequestRefused, match="CustomJob refused by google-cloud-aiplatform's type"):
        fake.training.create_custom_job(
            parent=f"projects/{PROJECT}/locations/{REGION}", custom_job={"dispaly_name": "x"}
        )
    model = upload(fake, "1")
    endpoint = fake.Endpoint.create(display_name="flowers", **WHERE)
    with pytest.raises(RequestRefused, match="must be 100, not 10"):
        model.deploy(endpoint=endpoint, machine_type="n1-standard-2", traffic_percentage=10)
    model.deploy(endpoint=endpoint, machine_type="n1-standard-2")
    with pytest.raises(RequestRefused, match="does not add up to 100"):
        endpoint.update(traffic_split={next(iter(endpoint.traffic_split)): 60})
    assert fake.traffic("flowers") == {"1": 100}


def test_a_training_job_from_tfxs_client_is_checked_recorded_and_run(tmp_path, monkeypatch):
    from google.cloud.aiplatform_v1.types import JobState
    from tfx.extensions.google_cloud_ai_platform import training_clients

    commands = []
    fake = VertexFake(tmp_path, run_job=lambda command: commands.append(command) or True)
    fake.install(monkeypatch.setattr, ("training",))
    client = training_clients.VertexJobClient(REGION)
    job = {
        "display_name": "tfx_1",
        "job_spec": {
            "worker_pool_specs": [
                {
                    "machine_spec": {"machine_type": "n1-standard-8"},
                    "replica_count": 1,
                    "container_spec": {"image_uri": "image:1", "command": ["python", "-m", "trainer"]},
                }
            ]
        },
    }
    client.launch_job(PROJECT, job)
    assert client.get_job_state(client.get_job()) == JobState.JOB_STATE_SUCCEEDED
    assert commands == [["python", "-m", "trainer"]]
    [request] = fake.requests("training-custom-job")
    assert request["parent"] == f"projects/{PROJECT}/locations/{REGION}"


def test_importing_the_fake_leaves_the_sdk_unimported():
    code = "import sys, pipeline.runners.rehearsal.vertex_fake; print('google.cloud.aiplatform' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"
