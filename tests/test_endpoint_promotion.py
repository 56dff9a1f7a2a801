"""Canary and rollback on a Vertex AI endpoint.

The promotion step and ``models promote|rollback|list --endpoint`` run for
real against a fake Model Registry and endpoint that keep versions, aliases
(an alias is on one version at a time, as in Vertex AI) and the traffic split,
and that scale the other models' traffic on a deploy the way the Vertex AI SDK
does. Every traffic update and alias move is recorded and checked."""

import types

import pytest
from google.api_core import exceptions as google_exceptions
from tfx import v1 as tfx

from components.model_registry_pusher import component as model_registry_pusher
from pipeline.cli.main import main
from pipeline.serving import endpoint as endpoint_promotion

PROJECT, REGION = "flowers-test", "europe-west4"
SETTINGS = [
    f"--set=vertex.project={PROJECT}",
    f"--set=vertex.region={REGION}",
    "--set=vertex.pipeline_root=gs://flowers-test-bucket/root",
]
STEP = {
    "project": PROJECT,
    "region": REGION,
    "model_id": "flowers",
    "serving_image": "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-16:latest",
    "endpoint": "flowers",
    "machine_type": "n1-standard-2",
    "service_account": "",
    "traffic_percent": 100,
}


class FakeVertex:
    """The Model Registry and endpoints of one project, as far as the code uses them."""

    def __init__(self):
        self.versions = []  # [{"version_id", "aliases", "labels", "upload"}]
        self.endpoints = {}
        self.log = []  # ("traffic", split) and ("alias", alias, version id), in order
        cloud = self

        class Model:
            def __init__(self, model_name, project=None, location=None):
                model_id, _, ref = model_name.partition("@")
                if model_id != "flowers" or not cloud.versions:
                    raise google_exceptions.NotFound(model_name)
                if not ref:
                    found = cloud.versions[-1]
                elif ref.isdigit() and int(ref) <= len(cloud.versions) and len(ref) < 5:
                    found = cloud.versions[int(ref) - 1]
                else:
                    found = next((v for v in cloud.versions if ref in v["aliases"]), None)
                if found is None:
                    raise google_exceptions.NotFound(model_name)
                self.version_id = found["version_id"]
                self.labels = dict(found["labels"])
                self.version_aliases = list(found["aliases"])
                self.display_name, self.project, self.location = "flowers", project, location
                self.resource_name = f"projects/123/locations/{REGION}/models/flowers"
                self.versioned_resource_name = f"{self.resource_name}@{self.version_id}"
                self.versioning_registry = types.SimpleNamespace(
                    list_versions=lambda: [
                        types.SimpleNamespace(version_id=v["version_id"], version_aliases=list(v["aliases"]))
                        for v in cloud.versions
                    ],
                    add_version_aliases=cloud.move_alias,
                )

            @classmethod
            def upload(cls, **kwargs):
                cloud.versions.append(
                    {
                        "version_id": str(len(cloud.versions) + 1),
                        "aliases": list(kwargs["version_aliases"]),
                        "labels": dict(kwargs.get("labels") or {}),
                        "upload": kwargs,
                    }
                )
                return cls("flowers", kwargs["project"], kwargs["location"])

            def deploy(self, endpoint, traffic_percentage, **kwargs):
                endpoint.add(self.version_id, traffic_percentage)

        class Endpoint:
            def __init__(self, display_name):
                self.display_name = display_name
                self.resource_name = f"projects/123/locations/{REGION}/endpoints/{len(cloud.endpoints) + 1}"
                self.deployed = []
                self.traffic_split = {}

            def add(self, version_id, percent):
                """A deploy: the others' shares are scaled to 100 - percent (the SDK's rule)."""
                deployed_id = f"d{len(self.deployed) + 1}"
                rest, old = 100 - percent, dict(self.traffic_split)
                total = sum(old.values())
                split = {key: rest * value // total for key, value in old.items()} if total else {}
                for key in sorted(split, key=lambda key: -old[key]):
                    if sum(split.values()) < rest:
                        split[key] += 1
                split[deployed_id] = percent
                self.deployed.append(
                    types.SimpleNamespace(
                        id=deployed_id,
                        model_version_id=version_id,
                        model=f"projects/123/locations/{REGION}/models/flowers",
                        create_time=len(self.deployed),
                    )
                )
                self.traffic_split = split
                cloud.log.append(("traffic", self.names()))

            def names(self):
                """The split by registry version id, for readable assertions."""
                by_id = {d.id: d.model_version_id for d in self.deployed}
                return {by_id[key]: value for key, value in self.traffic_split.items() if value}

            def list_models(self):
                return list(self.deployed)

            def update(self, traffic_split):
                assert sum(traffic_split.values()) == 100, traffic_split
                self.traffic_split = dict(traffic_split)
                cloud.log.append(("traffic", self.names()))

            @staticmethod
            def list(filter, project, location):
                name = filter.partition("=")[2].strip('"')
                return [cloud.endpoints[name]] if name in cloud.endpoints else []

            @staticmethod
            def create(display_name, project, location, sync):
                cloud.endpoints[display_name] = Endpoint(display_name)
                return cloud.endpoints[display_name]

        self.module = types.SimpleNamespace(Model=Model, Endpoint=Endpoint)

    def move_alias(self, aliases, version_id):
        for alias in aliases:
            for version in self.versions:
                if alias in version["aliases"]:
                    version["aliases"].remove(alias)
            next(v for v in self.versions if v["version_id"] == version_id)["aliases"].append(alias)
            self.log.append(("alias", alias, version_id))

    def holder(self, alias):
        return next((v["version_id"] for v in self.versions if alias in v["aliases"]), None)


@pytest.fixture
def cloud(monkeypatch):
    fake = FakeVertex()
    monkeypatch.setattr(model_registry_pusher, "aiplatform", fake.module)
    monkeypatch.setattr(endpoint_promotion, "aiplatform", fake.module)
    monkeypatch.setattr("google.auth.default", lambda scopes=None, **kwargs: (None, PROJECT))
    return fake


def push(version: str, traffic: int = 100):
    """The pipeline's promotion step, for a model the Pusher pushed as ``version``."""
    pushed = tfx.types.standard_artifacts.PushedModel()
    pushed.set_int_custom_property("pushed", 1)
    pushed.set_string_custom_property("pushed_destination", f"gs://flowers-test-bucket/root/serving/{version}")
    pushed.set_string_custom_property("pushed_version", version)
    registered = tfx.types.standard_artifacts.PushedModel()
    executor = model_registry_pusher.ModelRegistryPusher.EXECUTOR_SPEC.executor_class()
    executor.Do({"pushed_model": [pushed]}, {"registered_model": [registered]}, {**STEP, "traffic_percent": traffic})


def test_a_canary_gets_its_share_and_the_previous_version_keeps_the_rest(cloud):
    push("1700000000")
    assert cloud.endpoints["flowers"].names() == {"1": 100}
    assert cloud.holder("serving") == "1"
    push("1700000500", traffic=10)
    assert cloud.endpoints["flowers"].names() == {"1": 90, "2": 10}
    assert cloud.holder("serving") == "1"  # the alias stays until the canary is promoted
    assert cloud.versions[1]["labels"] == {"blessed": "true", "serving_version": "1700000500"}


def test_the_first_version_on_an_endpoint_takes_all_traffic_even_with_a_canary_share(cloud):
    # Vertex AI's SDK refuses less than 100% for an endpoint's first model.
    push("1700000000", traffic=10)
    assert cloud.endpoints["flowers"].names() == {"1": 100}
    assert cloud.holder("serving") == "1"


def test_promote_and_rollback_move_traffic_and_the_serving_alias(cloud, capsys):
    push("1700000000")
    push("1700000500", traffic=10)
    cloud.log.clear()
    assert main(["models", "promote", "1700000500", "--endpoint", "flowers", "--traffic", "50", *SETTINGS]) == 0
    assert main(["models", "promote", "1700000500", "--endpoint", "flowers", *SETTINGS]) == 0
    assert main(["models", "rollback", "--endpoint", "flowers", *SETTINGS]) == 0
    assert cloud.log == [
        ("traffic", {"1": 50, "2": 50}),
        ("traffic", {"2": 100}),
        ("alias", "serving", "2"),
        ("traffic", {"1": 100}),
        ("alias", "serving", "1"),
    ]
    out = capsys.readouterr().out
    assert "now takes 50% of flowers" in out and "Rolled flowers back to registry version 1" in out
    assert main(["models", "list", "--endpoint", "flowers", *SETTINGS]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[1].split() == ["1", "1700000000", "serving-1700000000,serving", "yes", "100%"]
    assert listing[2].split() == ["2", "1700000500", "serving-1700000500", "yes", "0%"]


def test_a_version_that_was_never_blessed_is_refused(cloud, capsys):
    push("1700000000")
    # Uploaded by hand, not by the pipeline: no blessed label.
    cloud.module.Model.upload(project=PROJECT, location=REGION, version_aliases=["serving-1700000999"], labels={})
    before = dict(cloud.endpoints["flowers"].traffic_split)
    assert main(["models", "promote", "1700000999", "--endpoint", "flowers", *SETTINGS]) == 3
    assert "was not blessed by the pipeline" in capsys.readouterr().err
    assert cloud.endpoints["flowers"].traffic_split == before


def test_rollback_with_one_version_and_a_missing_endpoint_are_clear(cloud, capsys):
    push("1700000000")
    assert main(["models", "rollback", "--endpoint", "flowers", *SETTINGS]) == 1
    assert "no earlier version is deployed" in capsys.readouterr().err
    assert main(["models", "rollback", "--endpoint", "nowhere", *SETTINGS]) == 2
    assert "no endpoint named 'nowhere'" in capsys.readouterr().err
    assert main(["models", "promote", "1700000000", "--endpoint", "flowers", *SETTINGS]) == 0  # nothing to do
    assert "already has 100% of flowers; nothing to do" in capsys.readouterr().out
