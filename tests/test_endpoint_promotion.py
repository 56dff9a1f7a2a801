"""Canary and rollback on a Vertex AI endpoint.

The promotion step and ``models promote|rollback|list --endpoint`` run for
real against the project's fake Vertex AI (``vertex_fake``), whose registry
and endpoints keep versions, aliases (an alias is on one version at a time,
as in Vertex AI) and the traffic split, and scale the other models' traffic
on a deploy with the Vertex AI SDK's own rule. Every traffic update and
alias move is recorded and checked."""

import json

import pytest
from tfx.types import standard_artifacts

from components.model_registry_pusher import component as model_registry_pusher
from pipeline.cli.main import main
from pipeline.runners.rehearsal.vertex_fake import VertexFake
from pipeline.runners.rehearsal.vertex_fake.recorded_requests import recorded

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


@pytest.fixture
def cloud(tmp_path, monkeypatch):
    fake = VertexFake(tmp_path)
    fake.install(monkeypatch.setattr, ("registry",))
    monkeypatch.setattr("google.auth.default", lambda scopes=None, **kwargs: (None, PROJECT))
    return fake


def changes(cloud) -> list[tuple]:
    """The traffic updates and alias moves recorded, in order, by registry version id."""
    version_of = {d["id"]: d["version_id"] for e in cloud.state.load()["endpoints"] for d in e["deployed"]}
    found = []
    for path in recorded(cloud.root):
        request = json.loads(path.read_text())
        if path.stem.endswith("-endpoint-update"):
            found.append(("traffic", {version_of[k]: v for k, v in request["traffic_split"].items() if v}))
        elif path.stem.endswith("-model-registry-add-aliases"):
            found += [("alias", alias, request["version_id"]) for alias in request["aliases"]]
    return found


def push(cloud: VertexFake, version: str, traffic: int = 100):
    """The pipeline's promotion step, for a model the Pusher pushed as ``version``."""
    pushed = standard_artifacts.PushedModel()
    pushed.set_int_custom_property("pushed", 1)
    destination = cloud.put_saved_model(f"gs://flowers-test-bucket/root/serving/{version}")
    pushed.set_string_custom_property("pushed_destination", destination)
    pushed.set_string_custom_property("pushed_version", version)
    registered = standard_artifacts.PushedModel()
    executor = model_registry_pusher.ModelRegistryPusher.EXECUTOR_SPEC.executor_class()
    executor.Do({"pushed_model": [pushed]}, {"registered_model": [registered]}, {**STEP, "traffic_percent": traffic})


def test_a_canary_gets_its_share_and_the_previous_version_keeps_the_rest(cloud):
    push(cloud, "1700000000")
    assert cloud.traffic("flowers") == {"1": 100}
    assert cloud.alias_holder("flowers", "serving") == "1"
    push(cloud, "1700000500", traffic=10)
    assert cloud.traffic("flowers") == {"1": 90, "2": 10}
    assert cloud.alias_holder("flowers", "serving") == "1"  # the alias stays until the canary is promoted
    assert cloud.versions("flowers")[1]["labels"] == {"blessed": "true", "serving_version": "1700000500"}


def test_the_first_version_on_an_endpoint_takes_all_traffic_even_with_a_canary_share(cloud):
    # Vertex AI's SDK refuses less than 100% for an endpoint's first model.
    push(cloud, "1700000000", traffic=10)
    assert cloud.traffic("flowers") == {"1": 100}
    assert cloud.alias_holder("flowers", "serving") == "1"


def test_promote_and_rollback_move_traffic_and_the_serving_alias(cloud, capsys):
    push(cloud, "1700000000")
    push(cloud, "1700000500", traffic=10)
    before = len(changes(cloud))
    assert main(["models", "promote", "1700000500", "--endpoint", "flowers", "--traffic", "50", *SETTINGS]) == 0
    assert main(["models", "promote", "1700000500", "--endpoint", "flowers", *SETTINGS]) == 0
    assert main(["models", "rollback", "--endpoint", "flowers", *SETTINGS]) == 0
    assert changes(cloud)[before:] == [
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
    # "default": Vertex AI's alias of the newest upload (is_default_version).
    assert listing[2].split() == ["2", "1700000500", "serving-1700000500,default", "yes", "0%"]


def test_a_version_that_was_never_blessed_is_refused(cloud, capsys):
    push(cloud, "1700000000")
    # Uploaded by hand, not by the pipeline: no blessed label.
    cloud.Model.upload(
        display_name="flowers",
        parent_model=f"projects/{PROJECT}/locations/{REGION}/models/flowers",
        artifact_uri=cloud.put_saved_model("gs://flowers-test-bucket/by-hand/1700000999"),
        serving_container_image_uri=STEP["serving_image"],
        project=PROJECT,
        location=REGION,
        version_aliases=["serving-1700000999"],
        labels={},
    )
    before = cloud.traffic("flowers")
    assert main(["models", "promote", "1700000999", "--endpoint", "flowers", *SETTINGS]) == 3
    assert "was not blessed by the pipeline" in capsys.readouterr().err
    assert cloud.traffic("flowers") == before


def test_rollback_with_one_version_and_a_missing_endpoint_are_clear(cloud, capsys):
    push(cloud, "1700000000")
    assert main(["models", "rollback", "--endpoint", "flowers", *SETTINGS]) == 1
    assert "no earlier version is deployed" in capsys.readouterr().err
    assert main(["models", "rollback", "--endpoint", "nowhere", *SETTINGS]) == 2
    assert "no endpoint named 'nowhere'" in capsys.readouterr().err
    assert main(["models", "promote", "1700000000", "--endpoint", "flowers", *SETTINGS]) == 0  # nothing to do
    assert "already has 100% of flowers; nothing to do" in capsys.readouterr().out
