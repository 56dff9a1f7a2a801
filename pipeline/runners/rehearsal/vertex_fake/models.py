"""Vertex AI's Model Registry and endpoints, answered here for a rehearsal.

``components/model_registry_pusher/`` talks to the Vertex AI SDK
(``aiplatform.Model``, ``Model.upload``, ``Endpoint.list``/``create``,
``Model.deploy``, version aliases). This stand-in takes the SDK's place in
that module: each request is checked as Vertex AI would check it (the
request as google-cloud-aiplatform's own ``Model`` and ``DeployedModel``
types, Vertex's rules for IDs, labels and aliases, and a ``gs://`` model
folder that holds a SavedModel), recorded under ``ROOT/requests/``, and
applied to a registry kept in ``ROOT/registry.json``, so the next rehearsal
finds the versions and endpoints that this one made, as the next scheduled
run on Vertex AI would.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

from google.api_core import exceptions as google_exceptions

from pipeline.runners.rehearsal.storage import Storage
from pipeline.runners.rehearsal.vertex_fake.recorded_requests import record

STATE_FILE = "registry.json"
# Vertex AI's rules (Model.model_id, version aliases, resource labels).
_MODEL_ID = re.compile(r"[a-z_][a-z0-9_-]{0,62}")
_ALIAS = re.compile(r"[a-z][a-zA-Z0-9-]{0,126}[a-z0-9-]")
_LABEL = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")


class RegistryRequestRefused(ValueError):
    """A Model Registry or endpoint request Vertex AI would refuse."""


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise RegistryRequestRefused(message)


class Registry:
    """The registry's state under the rehearsal root: models with their
    versions, and endpoints with their deployed models."""

    def __init__(self, root: Path):
        self.root, self.path = root, root / STATE_FILE

    def load(self) -> dict:
        if not self.path.is_file():
            return {"models": {}, "endpoints": []}
        return json.loads(self.path.read_text(encoding="utf-8"))

    def save(self, state: dict) -> None:
        self.path.write_text(json.dumps(state, indent=2, sort_keys=True), encoding="utf-8")

    def record(self, service: str, request: dict) -> None:
        record(self.root, service, request)  # one numbering for every recorded request


def make_sdk(root: Path) -> SimpleNamespace:
    """What ``aiplatform`` is to the ModelRegistryPusher during a rehearsal."""
    registry = Registry(root)
    storage = Storage(root)

    class Model:
        """``aiplatform.Model``: one version of a registry model, found by
        ``ID``, ``ID@VERSION`` or ``ID@ALIAS``; NotFound otherwise."""

        def __init__(self, model_name: str, project: str, location: str):
            model_id, _, which = model_name.partition("@")
            entry = registry.load()["models"].get(model_id)
            versions = (entry or {}).get("versions", [])
            if which:
                matches = [v for v in versions if which == v["version_id"] or which in v["aliases"]]
            else:
                matches = [v for v in versions if "default" in v["aliases"]]
            if not matches:
                raise google_exceptions.NotFound(f"model {model_name} not found in {project}/{location}")
            self._set(project, location, model_id, matches[-1])

        def _set(self, project: str, location: str, model_id: str, version: dict) -> None:
            self.project, self.location, self.model_id = project, location, model_id
            self.resource_name = f"projects/{project}/locations/{location}/models/{model_id}"
            self.version_id = version["version_id"]
            self.versioned_resource_name = f"{self.resource_name}@{self.version_id}"
            self.versioning_registry = SimpleNamespace(add_version_aliases=self._add_aliases)

        @classmethod
        def upload(
            cls,
            *,
            display_name,
            model_id,
            parent_model,
            is_default_version,
            version_aliases,
            version_description,
            labels,
            artifact_uri,
            serving_container_image_uri,
            sync,
            project,
            location,
        ):
            from google.cloud.aiplatform_v1.types import Model as ModelType

            # The task was given gs:// as folders under the root: name them as Vertex AI would see them.
            artifact_uri = storage.to_gcs(artifact_uri)
            request = {
                "display_name": display_name,
                "model_id": model_id,
                "parent_model": parent_model,
                "is_default_version": is_default_version,
                "version_aliases": list(version_aliases),
                "version_description": version_description,
                "labels": dict(labels),
                "artifact_uri": artifact_uri,
                "serving_container_image_uri": serving_container_image_uri,
                "project": project,
                "location": location,
            }
            try:
                ModelType(
                    display_name=display_name,
                    artifact_uri=artifact_uri,
                    labels=labels,
                    version_aliases=version_aliases,
                    version_description=version_description,
                    container_spec={"image_uri": serving_container_image_uri},
                )
            except (ValueError, TypeError, KeyError) as error:
                raise RegistryRequestRefused(f"Model refused by google-cloud-aiplatform's type: {error}") from None
            _check(bool(display_name), "Model.upload: display_name is empty")
            _check(artifact_uri.startswith("gs://"), f"Model.upload: artifact_uri {artifact_uri} is not a gs:// URL")
            _check(
                (storage.local_path(artifact_uri) / "saved_model.pb").is_file(),
                f"Model.upload: {artifact_uri} holds no saved_model.pb",
            )
            _check(bool(serving_container_image_uri), "Model.upload: serving_container_image_uri is empty")
            for alias in version_aliases:
                _check(bool(_ALIAS.fullmatch(alias)), f"Model.upload: version alias {alias!r} breaks Vertex AI's rule")
            for key, value in labels.items():
                _check(
                    bool(_LABEL.fullmatch(key)) and bool(_LABEL_VALUE.fullmatch(value)),
                    f"Model.upload: label {key}={value!r} breaks Vertex AI's label rules",
                )
            state = registry.load()
            if parent_model:
                parent_id = parent_model.rsplit("/", 1)[-1]
                _check(parent_id in state["models"], f"Model.upload: parent_model {parent_model} does not exist")
            else:
                _check(
                    bool(model_id and _MODEL_ID.fullmatch(model_id)),
                    f"Model.upload: model_id {model_id!r} breaks Vertex AI's rule ([a-z0-9_-], 63 at most)",
                )
                _check(model_id not in state["models"], f"Model.upload: model {model_id} already exists")
            target = parent_model.rsplit("/", 1)[-1] if parent_model else model_id
            registry.record("model-registry-upload", request)
            entry = state["models"].setdefault(target, {"display_name": display_name, "versions": []})
            version = {
                "version_id": str(len(entry["versions"]) + 1),
                "aliases": list(version_aliases),
                "artifact_uri": artifact_uri,
                "labels": dict(labels),
            }
            if is_default_version or not entry["versions"]:
                for other in entry["versions"]:
                    other["aliases"] = [a for a in other["aliases"] if a != "default"]
                version["aliases"].append("default")
            entry["versions"].append(version)
            registry.save(state)
            model = cls.__new__(cls)
            model._set(project, location, target, version)
            return model

        def _add_aliases(self, aliases: list[str], version_id: str) -> None:
            registry.record(
                "model-registry-add-aliases",
                {"model": self.resource_name, "version_id": version_id, "aliases": list(aliases)},
            )
            state = registry.load()
            for version in state["models"][self.model_id]["versions"]:
                kept = [a for a in version["aliases"] if a not in aliases]
                version["aliases"] = kept + (list(aliases) if version["version_id"] == version_id else [])
            registry.save(state)

        def deploy(
            self, *, endpoint, deployed_model_display_name, machine_type, traffic_percentage, service_account, sync
        ):
            from google.cloud.aiplatform_v1.types import DeployedModel

            request = {
                "endpoint": endpoint.resource_name,
                "model": self.versioned_resource_name,
                "deployed_model_display_name": deployed_model_display_name,
                "machine_type": machine_type,
                "traffic_percentage": traffic_percentage,
                "service_account": service_account,
            }
            try:
                DeployedModel(
                    display_name=deployed_model_display_name,
                    service_account=service_account or "",
                    dedicated_resources={"machine_spec": {"machine_type": machine_type}, "min_replica_count": 1},
                )
            except (ValueError, TypeError, KeyError) as error:
                raise RegistryRequestRefused(
                    f"DeployedModel refused by google-cloud-aiplatform's type: {error}"
                ) from None
            _check(bool(machine_type), "Model.deploy: machine_type is empty")
            _check(
                0 <= traffic_percentage <= 100, f"Model.deploy: traffic_percentage {traffic_percentage} is not 0..100"
            )
            _check(
                not service_account or service_account.endswith(".gserviceaccount.com"),
                f"Model.deploy: service_account {service_account!r} is not a service account e-mail",
            )
            state = registry.load()
            [entry] = [e for e in state["endpoints"] if e["name"] == endpoint.resource_name]
            # The SDK refuses a first model that would not take all the traffic.
            _check(
                bool(entry["deployed"]) or traffic_percentage in (0, 100),
                f"Model.deploy: {endpoint.resource_name} has no deployed model, so the traffic percentage "
                f"must be 100, not {traffic_percentage}",
            )
            registry.record("endpoint-deploy", request)
            # The models already there keep the rest of the traffic, in their
            # proportions, rounded down and the remainder handed out one by one (the SDK's rule).
            rest = 100 - traffic_percentage
            for deployed in entry["deployed"]:
                deployed["traffic"] = int(deployed["traffic"] / 100 * rest)
            for deployed in entry["deployed"][: rest - sum(d["traffic"] for d in entry["deployed"])]:
                deployed["traffic"] += 1
            traffic_percentage = traffic_percentage or 100
            entry["deployed"].append(
                {"model": self.resource_name, "version_id": self.version_id, "traffic": traffic_percentage}
            )
            registry.save(state)

    class Endpoint:
        """``aiplatform.Endpoint``: found by display name, created on first use."""

        def __init__(self, entry: dict):
            self.resource_name, self.display_name = entry["name"], entry["display_name"]

        @classmethod
        def list(cls, *, filter: str, project: str, location: str):
            name = re.fullmatch(r'display_name="(.*)"', filter)
            _check(name is not None, f'Endpoint.list: filter {filter!r} is not display_name="..."')
            return [cls(e) for e in registry.load()["endpoints"] if e["display_name"] == name.group(1)]

        @classmethod
        def create(cls, *, display_name: str, sync: bool, project: str, location: str):
            _check(bool(display_name) and len(display_name) <= 128, f"Endpoint.create: display_name {display_name!r}")
            registry.record("endpoint-create", {"display_name": display_name, "project": project, "location": location})
            state = registry.load()
            entry = {
                "name": f"projects/{project}/locations/{location}/endpoints/{len(state['endpoints']) + 1}",
                "display_name": display_name,
                "deployed": [],
            }
            state["endpoints"].append(entry)
            registry.save(state)
            return cls(entry)

        def list_models(self):
            [entry] = [e for e in registry.load()["endpoints"] if e["name"] == self.resource_name]
            return [SimpleNamespace(model=d["model"], model_version_id=d["version_id"]) for d in entry["deployed"]]

    return SimpleNamespace(Model=Model, Endpoint=Endpoint)


def describe(path: Path, request: dict) -> str | None:
    """One line for a recorded registry or endpoint request; None for other services."""
    service = path.stem.split("-", 1)[-1]
    if service == "model-registry-upload":
        into = request["parent_model"] or f"new model {request['model_id']}"
        return (
            f"{path.name}: Model Registry upload of {request['artifact_uri']} into {into}, "
            f"aliases {', '.join(request['version_aliases'])}, serving image {request['serving_container_image_uri']}"
        )
    if service == "model-registry-add-aliases":
        aliases = ", ".join(request["aliases"])
        return f"{path.name}: Model Registry aliases {aliases} -> {request['model']}@{request['version_id']}"
    if service == "endpoint-create":
        return f"{path.name}: endpoint {request['display_name']} created in {request['project']}/{request['location']}"
    if service == "endpoint-deploy":
        return (
            f"{path.name}: {request['model']} deployed to {request['endpoint']} on {request['machine_type']} "
            f"with {request['traffic_percentage']}% of the traffic"
        )
    return None
