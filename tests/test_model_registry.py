"""The promotion step on Vertex AI: Model Registry upload and endpoint deployment.

The component's executor runs as the pipeline would run it, on artifacts as
the Pusher leaves them; the Vertex AI SDK is the project's one fake
(``pipeline/runners/rehearsal/vertex_fake/``), which checks each request and
records it.
"""

import pytest
from tfx.types import standard_artifacts

from components.model_registry_pusher import component as model_registry
from pipeline.runners.rehearsal.vertex_fake import VertexFake

PARAMETERS = {
    "project": "flowers-test",
    "region": "europe-west4",
    "model_id": "flowers",
    "serving_image": "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-16:latest",
    "endpoint": "",
    "machine_type": "n1-standard-2",
    "service_account": "pipelines@flowers-test.iam.gserviceaccount.com",
    "traffic_percent": 100,
}
SERVING = "gs://flowers-test-bucket/root/serving"


@pytest.fixture
def registry(tmp_path, monkeypatch):
    fake = VertexFake(tmp_path)
    fake.install(monkeypatch.setattr, ("registry",))
    return fake


def pushed_model(registry: VertexFake, pushed: bool, version: str = "1700000000"):
    """The Pusher's output artifact, as the filesystem Pusher marks it."""
    artifact = standard_artifacts.PushedModel()
    artifact.set_int_custom_property("pushed", int(pushed))
    if pushed:
        destination = registry.put_saved_model(f"{SERVING}/{version}")
        artifact.set_string_custom_property("pushed_destination", destination)
        artifact.set_string_custom_property("pushed_version", version)
    return artifact


def promote(pushed, **parameters):
    """Runs the component's executor once; returns its output artifact."""
    registered = standard_artifacts.PushedModel()
    executor = model_registry.ModelRegistryPusher.EXECUTOR_SPEC.executor_class()
    executor.Do({"pushed_model": [pushed]}, {"registered_model": [registered]}, {**PARAMETERS, **parameters})
    return registered


def test_a_model_that_was_not_pushed_is_not_registered(registry):
    registered = promote(pushed_model(registry, False))
    assert registry.requests() == []
    assert registered.get_int_custom_property("pushed") == 0


def test_the_first_push_creates_the_registry_model(registry):
    registered = promote(pushed_model(registry, True, "1700000000"))
    (upload,) = registry.requests("model-registry-upload")
    assert upload["artifact_uri"] == f"{SERVING}/1700000000"
    assert upload["model_id"] == "flowers" and upload["parent_model"] is None
    assert upload["version_aliases"] == ["serving-1700000000"]
    assert upload["serving_container_image_uri"] == PARAMETERS["serving_image"]
    assert (upload["project"], upload["location"]) == ("flowers-test", "europe-west4")
    assert registered.get_int_custom_property("pushed") == 1
    assert registered.get_string_custom_property("pushed_destination") == (
        "projects/flowers-test/locations/europe-west4/models/flowers@1"
    )


def test_later_pushes_are_new_versions_and_a_version_is_uploaded_once(registry):
    promote(pushed_model(registry, True, "1700000000"))
    promote(pushed_model(registry, True, "1700000500"))
    promote(pushed_model(registry, True, "1700000500"))  # the Pusher found it already serving
    uploads = registry.requests("model-registry-upload")
    assert [upload["version_aliases"] for upload in uploads] == [
        ["serving-1700000000"],
        ["serving-1700000500"],
    ]
    second = uploads[1]
    assert second["model_id"] is None
    assert second["parent_model"] == "projects/flowers-test/locations/europe-west4/models/flowers"


def test_with_an_endpoint_the_version_is_deployed_once_with_all_traffic(registry):
    promote(pushed_model(registry, True), endpoint="flowers-endpoint")
    promote(pushed_model(registry, True), endpoint="flowers-endpoint")
    (deployed,) = registry.requests("endpoint-deploy")
    assert deployed["model"] == "projects/flowers-test/locations/europe-west4/models/flowers@1"
    assert deployed["traffic_percentage"] == 100
    assert deployed["machine_type"] == "n1-standard-2"
    assert deployed["service_account"] == PARAMETERS["service_account"]
    assert registry.traffic("flowers-endpoint") == {"1": 100}
