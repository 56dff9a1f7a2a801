"""The promotion step on Vertex AI: Model Registry upload and endpoint deployment.

The component's executor runs as the pipeline would run it, on artifacts as
the Pusher leaves them; the Vertex AI SDK is replaced by a small fake registry
that records uploads and deployments.
"""

import types

import pytest
from google.api_core import exceptions as google_exceptions
from tfx import v1 as tfx

from components.model_registry_pusher import component as model_registry

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


class FakeRegistry:
    """Just enough of aiplatform.Model and aiplatform.Endpoint."""

    def __init__(self):
        self.versions = []  # upload keyword arguments, one per version
        self.endpoints = {}  # display name -> FakeEndpoint
        self.aliases = {}  # moving alias -> version id
        registry = self

        class Model:
            def __init__(self, model_name, project, location):
                model_id, _, alias = model_name.partition("@")
                matches = [
                    number
                    for number, upload in enumerate(registry.versions, 1)
                    if not alias or alias in upload["version_aliases"]
                ]
                if model_id != "flowers" or not matches:
                    raise google_exceptions.NotFound(model_name)
                self.version_id = str(matches[-1])
                self.resource_name = f"projects/123/locations/{location}/models/flowers"
                self.versioned_resource_name = f"{self.resource_name}@{self.version_id}"
                self.deployments = []
                self.versioning_registry = types.SimpleNamespace(
                    add_version_aliases=lambda aliases, version: registry.aliases.update(
                        {alias: version for alias in aliases}
                    )
                )

            @classmethod
            def upload(cls, **kwargs):
                registry.versions.append(kwargs)
                return cls("flowers", kwargs["project"], kwargs["location"])

            def deploy(self, endpoint, **kwargs):
                endpoint.deployed.append(
                    types.SimpleNamespace(model=self.resource_name, model_version_id=self.version_id, settings=kwargs)
                )

        class Endpoint:
            def __init__(self, display_name):
                self.display_name = display_name
                self.resource_name = f"projects/123/locations/europe-west4/endpoints/{len(registry.endpoints) + 1}"
                self.deployed = []

            def list_models(self):
                return list(self.deployed)

            @staticmethod
            def list(filter, project, location):
                name = filter.partition("=")[2].strip('"')
                return [registry.endpoints[name]] if name in registry.endpoints else []

            @staticmethod
            def create(display_name, project, location, sync):
                registry.endpoints[display_name] = Endpoint(display_name)
                return registry.endpoints[display_name]

        self.module = types.SimpleNamespace(Model=Model, Endpoint=Endpoint)


@pytest.fixture
def registry(monkeypatch):
    fake = FakeRegistry()
    monkeypatch.setattr(model_registry, "aiplatform", fake.module)
    return fake


def pushed_model(pushed: bool, version: str = "1700000000"):
    """The Pusher's output artifact, as the filesystem Pusher marks it."""
    artifact = tfx.types.standard_artifacts.PushedModel()
    artifact.set_int_custom_property("pushed", int(pushed))
    if pushed:
        artifact.set_string_custom_property("pushed_destination", f"{SERVING}/{version}")
        artifact.set_string_custom_property("pushed_version", version)
    return artifact


def promote(pushed, **parameters):
    """Runs the component's executor once; returns its output artifact."""
    registered = tfx.types.standard_artifacts.PushedModel()
    executor = model_registry.ModelRegistryPusher.EXECUTOR_SPEC.executor_class()
    executor.Do({"pushed_model": [pushed]}, {"registered_model": [registered]}, {**PARAMETERS, **parameters})
    return registered


def test_a_model_that_was_not_pushed_is_not_registered(registry):
    registered = promote(pushed_model(False))
    assert registry.versions == []
    assert registered.get_int_custom_property("pushed") == 0


def test_the_first_push_creates_the_registry_model(registry):
    registered = promote(pushed_model(True, "1700000000"))
    (upload,) = registry.versions
    assert upload["artifact_uri"] == f"{SERVING}/1700000000"
    assert upload["model_id"] == "flowers" and upload["parent_model"] is None
    assert upload["version_aliases"] == ["serving-1700000000"]
    assert upload["serving_container_image_uri"] == PARAMETERS["serving_image"]
    assert (upload["project"], upload["location"]) == ("flowers-test", "europe-west4")
    assert registered.get_int_custom_property("pushed") == 1
    assert registered.get_string_custom_property("pushed_destination") == (
        "projects/123/locations/europe-west4/models/flowers@1"
    )


def test_later_pushes_are_new_versions_and_a_version_is_uploaded_once(registry):
    promote(pushed_model(True, "1700000000"))
    promote(pushed_model(True, "1700000500"))
    promote(pushed_model(True, "1700000500"))  # the Pusher found it already serving
    assert [upload["version_aliases"] for upload in registry.versions] == [
        ["serving-1700000000"],
        ["serving-1700000500"],
    ]
    second = registry.versions[1]
    assert second["model_id"] is None
    assert second["parent_model"] == "projects/123/locations/europe-west4/models/flowers"


def test_with_an_endpoint_the_version_is_deployed_once_with_all_traffic(registry):
    promote(pushed_model(True), endpoint="flowers-endpoint")
    promote(pushed_model(True), endpoint="flowers-endpoint")
    (deployed,) = registry.endpoints["flowers-endpoint"].deployed
    assert deployed.model_version_id == "1"
    assert deployed.settings["traffic_percentage"] == 100
    assert deployed.settings["machine_type"] == "n1-standard-2"
    assert deployed.settings["service_account"] == PARAMETERS["service_account"]
