"""``aiplatform.Endpoint``, answered by the fake: endpoints, their deployed
models and traffic split.

A deploy shares the traffic as the SDK does (its own ``_allocate_traffic``:
the models already there keep the rest in their proportions), the first
model on an endpoint must take all of it, and a split must add up to 100.
"""

from __future__ import annotations

import datetime
import re

from pipeline.runners.rehearsal.vertex_fake.checks import as_type, check, stands_in_for

SDK = "google.cloud.aiplatform.models"


def _entry(state: dict, resource_name: str) -> dict:
    [entry] = [e for e in state["endpoints"] if e["name"] == resource_name]
    return entry


def add_deployed(fake, request: dict, model: str, version_id: str) -> None:
    """``Model.deploy``'s effect on the endpoint (request as ``models.Model.deploy`` records it)."""
    from google.cloud.aiplatform import models as sdk_models

    state = fake.state.load()
    entry = _entry(state, request["endpoint"])
    percentage = request["traffic_percentage"]
    check(0 <= percentage <= 100, f"Model.deploy: traffic_percentage {percentage} is not 0..100")
    # The SDK refuses a first model that would not take all the traffic.
    check(
        bool(entry["traffic_split"]) or percentage in (0, 100),
        f"Model.deploy: {entry['name']} has no deployed model, so the traffic percentage must be 100, not {percentage}",
    )
    fake.record("endpoint-deploy", request)
    if not entry["traffic_split"]:
        percentage = 100  # the SDK's default for a first model
    split = sdk_models.Endpoint._allocate_traffic(entry["traffic_split"], percentage)
    state["deployed_count"] += 1
    deployed_id = str(1_000_000 + state["deployed_count"])
    split[deployed_id] = split.pop("0")  # the SDK's key for the model being deployed
    entry["traffic_split"] = split
    entry["deployed"].append(
        {
            "id": deployed_id,
            "model": model,
            "version_id": version_id,
            "display_name": request["deployed_model_display_name"],
            "created": state["deployed_count"],
        }
    )
    fake.state.save(state)


class Endpoint:
    """An endpoint, found by display name, created on first use."""

    SDK_CLASS = f"{SDK}.Endpoint"
    fake = None  # the VertexFake, set on the subclass each fake makes

    def __init__(self, entry: dict):
        self.resource_name, self.display_name = entry["name"], entry["display_name"]

    @property
    def traffic_split(self) -> dict:
        return dict(_entry(self.fake.state.load(), self.resource_name)["traffic_split"])

    @classmethod
    @stands_in_for(f"{SDK}.Endpoint.list")
    def list(cls, *, filter, project, location, **_):
        name = re.fullmatch(r'display_name="(.*)"', filter or "")
        check(name is not None, f'Endpoint.list: filter {filter!r} is not display_name="..."')
        prefix = f"projects/{project}/locations/{location}/"
        return [
            cls(e)
            for e in cls.fake.state.load()["endpoints"]
            if e["display_name"] == name.group(1) and e["name"].startswith(prefix)
        ]

    @classmethod
    @stands_in_for(f"{SDK}.Endpoint.create")
    def create(cls, *, display_name, project, location, **_):
        check(bool(display_name) and len(display_name) <= 128, f"Endpoint.create: display_name {display_name!r}")
        as_type("Endpoint", {"display_name": display_name})
        cls.fake.record("endpoint-create", {"display_name": display_name, "project": project, "location": location})
        state = cls.fake.state.load()
        entry = {
            "name": f"projects/{project}/locations/{location}/endpoints/{len(state['endpoints']) + 1}",
            "display_name": display_name,
            "deployed": [],
            "traffic_split": {},
        }
        state["endpoints"].append(entry)
        cls.fake.state.save(state)
        return cls(entry)

    @stands_in_for(f"{SDK}.Endpoint.list_models")
    def list_models(self, **_):
        """The deployed models, as google-cloud-aiplatform's ``DeployedModel``."""
        deployed = _entry(self.fake.state.load(), self.resource_name)["deployed"]
        epoch = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
        return [
            as_type(
                "DeployedModel",
                {
                    "id": d["id"],
                    "model": d["model"],
                    "model_version_id": d["version_id"],
                    "display_name": d["display_name"],
                    "create_time": epoch + datetime.timedelta(seconds=d["created"]),
                },
            )
            for d in deployed
        ]

    @stands_in_for(f"{SDK}.Endpoint.update")
    def update(self, *, traffic_split, **_):
        """A new traffic split, applied at once: it must name deployed models and add up to 100."""
        state = self.fake.state.load()
        entry = _entry(state, self.resource_name)
        split = {str(key): int(value) for key, value in (traffic_split or {}).items()}
        as_type("Endpoint", {"traffic_split": split})
        check(sum(split.values()) == 100, f"Endpoint.update: traffic split {split} does not add up to 100")
        unknown = set(split) - {d["id"] for d in entry["deployed"]}
        check(not unknown, f"Endpoint.update: {sorted(unknown)} are not deployed to {self.resource_name}")
        self.fake.record("endpoint-update", {"endpoint": self.resource_name, "traffic_split": split})
        entry["traffic_split"] = split
        self.fake.state.save(state)
        return self


def describe(name: str, service: str, request: dict) -> str | None:
    """One line for a recorded endpoint request; None for other services."""
    if service == "endpoint-create":
        return f"{name}: endpoint {request['display_name']} created in {request['project']}/{request['location']}"
    if service == "endpoint-deploy":
        return (
            f"{name}: {request['model']} deployed to {request['endpoint']} on {request['machine_type']} "
            f"with {request['traffic_percentage']}% of the traffic"
        )
    if service == "endpoint-update":
        return f"{name}: traffic of {request['endpoint']} set to {request['traffic_split']}"
    return None
