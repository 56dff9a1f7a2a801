"""Promotion on Vertex AI: a pushed model into the Model Registry, and onto an endpoint.

The step runs after the filesystem Pusher and reads its output, so it acts only
on a model that was blessed and pushed, and uploads exactly the version the
Pusher wrote to ``<serving_dir>/<version>/``. Every upload is a new version of
one registry model (its ID is the pipeline's name) and carries the alias
``serving-<version>``; a version already in the registry is not uploaded again
(the Pusher reports the same version when the model is already serving). With
an endpoint named, the version is deployed there and takes all the traffic;
the endpoint is created on first use. The version's description is its model
card's summary (the Pusher puts it on its output), its labels the card's
model, accuracy and spans.
"""

# No `from __future__ import annotations`: TFX reads the component's type hints as objects.
import json
import logging
from dataclasses import dataclass

from google.api_core import exceptions as google_exceptions
from google.cloud import aiplatform
from tfx import v1 as tfx

from components.pusher import model_card
from components.pusher.component import PUSHED_DESTINATION_KEY, PUSHED_KEY, PUSHED_VERSION_KEY

ALIAS_PREFIX = "serving-"
# The alias of the registry version that takes all of the endpoint's traffic.
SERVING_ALIAS = "serving"
# Set on every version this step uploads: only the Pusher's blessed models get here.
BLESSED_LABEL = "blessed"


@dataclass(frozen=True)
class RegistryTarget:
    """Where a model version goes: the component's parameters."""

    project: str
    region: str
    model_id: str
    serving_image: str
    endpoint: str = ""
    machine_type: str = "n1-standard-2"
    service_account: str = ""
    # The share of the endpoint's traffic a new version gets (the canary).
    traffic_percent: int = 100

    @property
    def location(self) -> dict:
        return {"project": self.project, "location": self.region}


def _existing_model(name: str, target: RegistryTarget):
    try:
        return aiplatform.Model(model_name=name, **target.location)
    except google_exceptions.NotFound:
        return None


def upload_version(
    model_dir: str,
    serving_version: str,
    target: RegistryTarget,
    card_summary: str = "",
    card_labels: dict | None = None,
):
    """The registry version of ``serving_version``, uploaded unless already there,
    described by its model card's summary and labelled with its figures."""
    alias = f"{ALIAS_PREFIX}{serving_version}"
    existing = _existing_model(f"{target.model_id}@{alias}", target)
    if existing is not None:
        logging.info(
            "Serving version %s is already in the registry as %s", serving_version, existing.versioned_resource_name
        )
        return existing
    parent = _existing_model(target.model_id, target)
    description = f"serving version {serving_version} from {model_dir}"
    if card_summary:
        card_path = f"{model_dir.rstrip('/')}/{model_card.CARD_MD}"
        description = model_card.registry_description(description, card_summary, card_path)
    model = aiplatform.Model.upload(
        display_name=target.model_id,
        # The first upload creates the model under this ID, later ones add versions.
        model_id=None if parent else target.model_id,
        parent_model=parent.resource_name if parent else None,
        is_default_version=True,
        version_aliases=[alias],
        version_description=description,
        labels={**(card_labels or {}), BLESSED_LABEL: "true", "serving_version": str(serving_version)},
        artifact_uri=model_dir,
        serving_container_image_uri=target.serving_image,
        sync=True,
        **target.location,
    )
    logging.info("Uploaded %s as %s", model_dir, model.versioned_resource_name)
    return model


def _endpoint(target: RegistryTarget):
    """The endpoint with the configured display name, created when there is none."""
    found = aiplatform.Endpoint.list(filter=f'display_name="{target.endpoint}"', **target.location)
    if found:
        return found[0]
    logging.info("Creating endpoint %s", target.endpoint)
    return aiplatform.Endpoint.create(display_name=target.endpoint, sync=True, **target.location)


def deploy(model, target: RegistryTarget) -> None:
    """Puts ``model`` on the endpoint with ``target.traffic_percent`` of the
    traffic, unless it is there already. The models already deployed keep the
    rest in their proportions (the SDK's rule), so with one model before, a
    10% canary leaves it 90%. At 100% the ``serving`` alias moves to it."""
    endpoint = _endpoint(target)
    deployed_models = endpoint.list_models()
    for deployed in deployed_models:
        if deployed.model == model.resource_name and deployed.model_version_id == model.version_id:
            logging.info("%s is already deployed to %s", model.versioned_resource_name, endpoint.resource_name)
            return
    # The first model on an endpoint takes all the traffic: there is nothing to
    # be a canary beside (the SDK refuses anything else).
    traffic = target.traffic_percent if deployed_models else 100
    model.deploy(
        endpoint=endpoint,
        deployed_model_display_name=f"{target.model_id}-v{model.version_id}",
        machine_type=target.machine_type,
        traffic_percentage=traffic,
        service_account=target.service_account or None,
        sync=True,
    )
    logging.info(
        "Deployed %s to %s with %d%% of the traffic",
        model.versioned_resource_name,
        endpoint.resource_name,
        traffic,
    )
    if traffic == 100:
        model.versioning_registry.add_version_aliases([SERVING_ALIAS], model.version_id)


@tfx.dsl.components.component
def ModelRegistryPusher(
    pushed_model: tfx.dsl.components.InputArtifact[tfx.types.standard_artifacts.PushedModel],
    registered_model: tfx.dsl.components.OutputArtifact[tfx.types.standard_artifacts.PushedModel],
    project: tfx.dsl.components.Parameter[str],
    region: tfx.dsl.components.Parameter[str],
    model_id: tfx.dsl.components.Parameter[str],
    serving_image: tfx.dsl.components.Parameter[str],
    endpoint: tfx.dsl.components.Parameter[str],
    machine_type: tfx.dsl.components.Parameter[str],
    service_account: tfx.dsl.components.Parameter[str],
    traffic_percent: tfx.dsl.components.Parameter[int],
):
    """Uploads the Pusher's version to the Model Registry (and deploys it); nothing
    when the Pusher did not push."""
    if not pushed_model.get_int_custom_property(PUSHED_KEY):
        logging.info("The model was not pushed (not blessed); nothing goes to the registry.")
        registered_model.set_int_custom_property(PUSHED_KEY, 0)
        return
    target = RegistryTarget(
        project, region, model_id, serving_image, endpoint, machine_type, service_account, traffic_percent
    )
    model = upload_version(
        pushed_model.get_string_custom_property(PUSHED_DESTINATION_KEY),
        pushed_model.get_string_custom_property(PUSHED_VERSION_KEY),
        target,
        pushed_model.get_string_custom_property(model_card.SUMMARY_KEY),
        json.loads(pushed_model.get_string_custom_property(model_card.LABELS_KEY) or "{}"),
    )
    if target.endpoint:
        deploy(model, target)
    registered_model.set_int_custom_property(PUSHED_KEY, 1)
    registered_model.set_string_custom_property(PUSHED_DESTINATION_KEY, model.versioned_resource_name)
    registered_model.set_string_custom_property(PUSHED_VERSION_KEY, model.version_id)
