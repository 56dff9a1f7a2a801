"""``aiplatform.Model``, answered by the fake: the Model Registry.

``components/model_registry_pusher/`` uploads versions and deploys them;
``pipeline/serving/endpoint.py`` finds versions, reads their labels and
moves aliases. Each upload is checked as Vertex AI would check it (the
request as google-cloud-aiplatform's own ``Model`` type, Vertex's rules for
IDs, labels and aliases, and a ``gs://`` model folder that holds a
SavedModel), recorded, and applied to the state under the fake's root.
"""

from __future__ import annotations

import re

from pipeline.runners.rehearsal.vertex_fake import endpoints
from pipeline.runners.rehearsal.vertex_fake.checks import as_type, check, stands_in_for

SDK = "google.cloud.aiplatform.models"
# Vertex AI's rules (Model.model_id, version aliases, resource labels).
_MODEL_ID = re.compile(r"[a-z_][a-z0-9_-]{0,62}")
_ALIAS = re.compile(r"[a-z][a-zA-Z0-9-]{0,126}[a-z0-9-]")
_LABEL = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_LABEL_VALUE = re.compile(r"[a-z0-9_-]{0,63}")


def find_version(state: dict, model_name: str) -> tuple[str, str, dict] | None:
    """``(model id, display name, version)`` for ``ID``, ``ID@VERSION`` or
    ``ID@ALIAS`` (the default version when none is named); None when there is none."""
    model_id, _, which = model_name.rsplit("/", 1)[-1].partition("@")
    entry = state["models"].get(model_id, {"display_name": "", "versions": []})
    matches = [v for v in entry["versions"] if (which or "default") in (v["version_id"], *v["aliases"])]
    return (model_id, entry["display_name"], matches[-1]) if matches else None


class Model:
    """One version of a registry model; NotFound when there is none."""

    SDK_CLASS = f"{SDK}.Model"
    fake = None  # the VertexFake, set on the subclass each fake makes

    @stands_in_for(f"{SDK}.Model.__init__")
    def __init__(self, model_name, project, location, version, **_):
        from google.api_core import exceptions as google_exceptions

        found = find_version(self.fake.state.load(), model_name if not version else f"{model_name}@{version}")
        if found is None:
            raise google_exceptions.NotFound(f"model {model_name} not found in {project}/{location}")
        self._set(project, location, *found)

    def _set(self, project: str, location: str, model_id: str, display_name: str, version: dict) -> None:
        self.project, self.location, self.model_id, self.display_name = project, location, model_id, display_name
        self.resource_name = f"projects/{project}/locations/{location}/models/{model_id}"
        self.version_id, self.labels = version["version_id"], dict(version["labels"])
        self.version_aliases = list(version["aliases"])
        self.versioned_resource_name = f"{self.resource_name}@{self.version_id}"
        self.versioning_registry = ModelRegistry(self)

    @classmethod
    @stands_in_for(f"{SDK}.Model.upload")
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
        project,
        location,
        **_,
    ):
        fake = cls.fake
        # A task of a rehearsal was given gs:// as folders under the root: name them as Vertex AI would.
        artifact_uri = fake.storage.to_gcs(artifact_uri or "")
        version_aliases, labels = list(version_aliases or []), dict(labels or {})
        request = {
            "display_name": display_name,
            "model_id": model_id,
            "parent_model": parent_model,
            "is_default_version": is_default_version,
            "version_aliases": version_aliases,
            "version_description": version_description,
            "labels": labels,
            "artifact_uri": artifact_uri,
            "serving_container_image_uri": serving_container_image_uri,
            "project": project,
            "location": location,
        }
        as_type(
            "Model",
            {
                "display_name": display_name,
                "artifact_uri": artifact_uri,
                "labels": labels,
                "version_aliases": version_aliases,
                "version_description": version_description or "",
                "container_spec": {"image_uri": serving_container_image_uri or ""},
            },
        )
        check(bool(display_name), "Model.upload: display_name is empty")
        check(artifact_uri.startswith("gs://"), f"Model.upload: artifact_uri {artifact_uri} is not a gs:// URL")
        check(
            (fake.storage.local_path(artifact_uri) / "saved_model.pb").is_file(),
            f"Model.upload: {artifact_uri} holds no saved_model.pb",
        )
        check(bool(serving_container_image_uri), "Model.upload: serving_container_image_uri is empty")
        for alias in version_aliases:
            check(bool(_ALIAS.fullmatch(alias)), f"Model.upload: version alias {alias!r} breaks Vertex AI's rule")
        for key, value in labels.items():
            check(
                bool(_LABEL.fullmatch(key)) and bool(_LABEL_VALUE.fullmatch(value)),
                f"Model.upload: label {key}={value!r} breaks Vertex AI's label rules",
            )
        state = fake.state.load()
        if parent_model:
            target = parent_model.rsplit("/", 1)[-1]
            check(target in state["models"], f"Model.upload: parent_model {parent_model} does not exist")
        else:
            target = model_id
            check(
                bool(model_id and _MODEL_ID.fullmatch(model_id)),
                f"Model.upload: model_id {model_id!r} breaks Vertex AI's rule ([a-z0-9_-], 63 at most)",
            )
            check(model_id not in state["models"], f"Model.upload: model {model_id} already exists")
        fake.record("model-registry-upload", request)
        entry = state["models"].setdefault(target, {"display_name": display_name, "versions": []})
        version = {
            "version_id": str(len(entry["versions"]) + 1),
            "aliases": version_aliases,
            "artifact_uri": artifact_uri,
            "labels": labels,
        }
        if is_default_version or not entry["versions"]:
            for other in entry["versions"]:
                other["aliases"] = [a for a in other["aliases"] if a != "default"]
            version["aliases"] = version_aliases + ["default"]
        entry["versions"].append(version)
        fake.state.save(state)
        model = cls.__new__(cls)
        model._set(project, location, target, entry["display_name"], version)
        return model

    @stands_in_for(f"{SDK}.Model.deploy")
    def deploy(
        self,
        *,
        endpoint,
        deployed_model_display_name,
        traffic_percentage,
        traffic_split,
        machine_type,
        service_account,
        **_,
    ):
        request = {
            "endpoint": endpoint.resource_name,
            "model": self.versioned_resource_name,
            "deployed_model_display_name": deployed_model_display_name,
            "machine_type": machine_type,
            "traffic_percentage": traffic_percentage,
            "service_account": service_account,
        }
        as_type(
            "DeployedModel",
            {
                "display_name": deployed_model_display_name or "",
                "service_account": service_account or "",
                "dedicated_resources": {"machine_spec": {"machine_type": machine_type or ""}, "min_replica_count": 1},
            },
        )
        check(traffic_split is None, "Model.deploy: the fake takes traffic_percentage, not traffic_split")
        check(bool(machine_type), "Model.deploy: machine_type is empty")
        check(
            not service_account or service_account.endswith(".gserviceaccount.com"),
            f"Model.deploy: service_account {service_account!r} is not a service account e-mail",
        )
        endpoints.add_deployed(self.fake, request, self.resource_name, self.version_id)
        return endpoint


class ModelRegistry:
    """``Model.versioning_registry``: a model's versions and their aliases."""

    SDK_CLASS = f"{SDK}.ModelRegistry"

    def __init__(self, model: Model):
        self.model = model

    @stands_in_for(f"{SDK}.ModelRegistry.add_version_aliases")
    def add_version_aliases(self, *, new_aliases, version, **_):
        """An alias is on one version at a time: it moves."""
        fake = self.model.fake
        for alias in new_aliases:
            check(bool(_ALIAS.fullmatch(alias)), f"add_version_aliases: alias {alias!r} breaks Vertex AI's rule")
        fake.record(
            "model-registry-add-aliases",
            {"model": self.model.resource_name, "version_id": version, "aliases": list(new_aliases)},
        )
        state = fake.state.load()
        for entry in state["models"][self.model.model_id]["versions"]:
            kept = [a for a in entry["aliases"] if a not in new_aliases]
            entry["aliases"] = kept + (list(new_aliases) if entry["version_id"] == version else [])
        fake.state.save(state)

    @stands_in_for(f"{SDK}.ModelRegistry.list_versions")
    def list_versions(self, **_):
        from google.cloud.aiplatform.models import VersionInfo

        entry = self.model.fake.state.load()["models"][self.model.model_id]
        return [
            VersionInfo(
                version_id=v["version_id"],
                version_create_time=None,
                version_update_time=None,
                model_display_name=entry["display_name"],
                model_resource_name=self.model.resource_name,
                version_aliases=list(v["aliases"]),
                version_description="",
            )
            for v in entry["versions"]
        ]


def describe(name: str, request: dict) -> str | None:
    """One line for a recorded registry or endpoint request; None for other services."""
    service = name.removesuffix(".json").split("-", 1)[-1]
    if service == "model-registry-upload":
        into = request["parent_model"] or f"new model {request['model_id']}"
        return (
            f"{name}: Model Registry upload of {request['artifact_uri']} into {into}, "
            f"aliases {', '.join(request['version_aliases'])}, serving image {request['serving_container_image_uri']}"
        )
    if service == "model-registry-add-aliases":
        aliases = ", ".join(request["aliases"])
        return f"{name}: Model Registry aliases {aliases} -> {request['model']}@{request['version_id']}"
    return endpoints.describe(name, service, request)
