"""Promotion where the model is really served: a Vertex AI endpoint.

The pipeline's promotion step (``components/model_registry_pusher/``)
uploads each blessed, pushed version to the Model Registry (alias
``serving-<version>``, label ``blessed=true``) and deploys it to
``vertex.endpoint`` with ``vertex.canary_percent`` of the traffic. From
there a person decides:

- ``models promote VERSION --endpoint NAME [--traffic P]``: the version gets
  P% of the traffic (100 by default), the version that served before keeps the
  rest, and at 100% the registry alias ``serving`` moves to it;
- ``models rollback --endpoint NAME``: all the traffic goes back to the
  version that served before the current one, and the alias with it;
- ``models list --endpoint NAME``: the registry versions with their aliases,
  blessing and share of the endpoint's traffic.

A registry version the pipeline did not bless (no ``blessed`` label) is never
promoted. Every change is one traffic-split update of the endpoint, which
Vertex AI applies at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from google.api_core import exceptions as google_exceptions
from google.cloud import aiplatform

from components.model_registry_pusher.component import ALIAS_PREFIX, BLESSED_LABEL, SERVING_ALIAS
from pipeline.config import Config
from pipeline.errors import FlowersError, NotBlessed, Refused
from pipeline.reporting.table import format_table
from pipeline.vertex_specs import require_cloud_settings


@dataclass
class EndpointVersion:
    """One registry version and its place on the endpoint."""

    version_id: str
    serving_version: str | None
    aliases: list[str] = field(default_factory=list)
    blessed: bool = False
    traffic: int = 0
    deployed_model_id: str | None = None


def _location(config: Config) -> dict:
    require_cloud_settings(config.vertex)
    return {"project": config.vertex.project, "location": config.vertex.region}


def find_endpoint(config: Config, name: str):
    """The endpoint with this display name; FlowersError when there is none."""
    found = aiplatform.Endpoint.list(filter=f'display_name="{name}"', **_location(config))
    if not found:
        raise FlowersError(
            f"no endpoint named {name!r} in project {config.vertex.project}, region {config.vertex.region}; "
            "the pipeline creates it on its first push when vertex.endpoint is set"
        )
    return found[0]


def _registry_model(config: Config, version: str):
    """The registry version with this id, ``serving-<version>`` alias or alias."""
    model_id = config.run.pipeline_name
    for name in (f"{model_id}@{ALIAS_PREFIX}{version}", f"{model_id}@{version}"):
        try:
            return aiplatform.Model(model_name=name, **_location(config))
        except (google_exceptions.NotFound, google_exceptions.InvalidArgument):  # no such version, or not a valid name
            continue  # anything else (a permission, the network) is its own message
    raise FlowersError(f"model {model_id!r} has no registry version {version!r} (nor alias {ALIAS_PREFIX}{version})")


def list_versions(config: Config, endpoint_name: str) -> list[EndpointVersion]:
    """Every registry version of the pipeline's model, with its traffic on the endpoint."""
    endpoint = find_endpoint(config, endpoint_name)
    split = dict(endpoint.traffic_split)
    deployed = {(d.model_version_id or ""): d.id for d in endpoint.list_models()}
    model = aiplatform.Model(model_name=config.run.pipeline_name, **_location(config))
    result = []
    for info in model.versioning_registry.list_versions():
        version = aiplatform.Model(model_name=f"{config.run.pipeline_name}@{info.version_id}", **_location(config))
        labels = dict(version.labels or {})
        aliases = list(info.version_aliases or [])
        serving = next((a[len(ALIAS_PREFIX) :] for a in aliases if a.startswith(ALIAS_PREFIX)), None)
        deployed_id = deployed.get(info.version_id)
        result.append(
            EndpointVersion(
                version_id=info.version_id,
                serving_version=labels.get("serving_version", serving),
                aliases=aliases,
                blessed=labels.get(BLESSED_LABEL) == "true",
                traffic=int(split.get(deployed_id, 0)) if deployed_id else 0,
                deployed_model_id=deployed_id,
            )
        )
    return result


def _new_split(split: dict[str, int], promoted: str, traffic: int, previous: str | None) -> dict[str, int]:
    """``promoted`` gets ``traffic``; the rest goes to ``previous`` (the version
    that served before), or is shared by the others as they had it."""
    others = {key: value for key, value in split.items() if key != promoted}
    rest = 100 - traffic
    if previous and previous != promoted:
        result = {key: 0 for key in others}
        result[previous] = rest
    else:
        total = sum(others.values())
        result = {key: (rest * value // total if total else 0) for key, value in others.items()}
        if result and sum(result.values()) < rest:
            first = max(result, key=lambda key: others[key])
            result[first] += rest - sum(result.values())
    result[promoted] = traffic
    return {key: value for key, value in result.items() if value > 0}


def _serving_deployed_model(endpoint, model) -> str | None:
    """The deployed model of the version carrying the ``serving`` alias, else the busiest one."""
    split = dict(endpoint.traffic_split)
    try:
        serving = aiplatform.Model(
            model_name=f"{model.display_name}@{SERVING_ALIAS}", project=model.project, location=model.location
        )
        for deployed in endpoint.list_models():
            if deployed.model_version_id == serving.version_id:
                return deployed.id
    except google_exceptions.NotFound:  # no version has the alias yet
        pass
    return max(split, key=split.get) if split else None


def promote(config: Config, endpoint_name: str, version: str, traffic: int = 100) -> str:
    """Gives the registry version ``traffic`` percent of the endpoint; a sentence saying what changed."""
    if not 1 <= traffic <= 100:
        raise FlowersError(f"--traffic {traffic}: must be between 1 and 100")
    model = _registry_model(config, version)
    if dict(model.labels or {}).get(BLESSED_LABEL) != "true":
        raise NotBlessed(
            f"registry version {model.version_id} of {config.run.pipeline_name!r} was not blessed by the pipeline "
            f"(no label {BLESSED_LABEL}=true); only blessed versions are promoted"
        )
    endpoint = find_endpoint(config, endpoint_name)
    previous = _serving_deployed_model(endpoint, model)
    deployed_id = next((d.id for d in endpoint.list_models() if d.model_version_id == model.version_id), None)
    if deployed_id is not None and int(dict(endpoint.traffic_split).get(deployed_id, 0)) == traffic:
        return f"Registry version {model.version_id} already has {traffic}% of {endpoint_name}; nothing to do"
    if deployed_id is None:
        # Not on the endpoint yet: deploy it with its share, then set the split exactly.
        model.deploy(
            endpoint=endpoint,
            deployed_model_display_name=f"{config.run.pipeline_name}-v{model.version_id}",
            machine_type=config.vertex.serving_machine_type,
            traffic_percentage=traffic,
            service_account=config.vertex.service_account or None,
            sync=True,
        )
        deployed_id = next(d.id for d in endpoint.list_models() if d.model_version_id == model.version_id)
    endpoint.update(traffic_split=_new_split(dict(endpoint.traffic_split), deployed_id, traffic, previous))
    if traffic == 100:
        model.versioning_registry.add_version_aliases([SERVING_ALIAS], model.version_id)
        return (
            f"Registry version {model.version_id} now takes all the traffic of {endpoint_name} (alias {SERVING_ALIAS})"
        )
    return (
        f"Registry version {model.version_id} now takes {traffic}% of {endpoint_name}; "
        f"the version before keeps {100 - traffic}%"
    )


def rollback(config: Config, endpoint_name: str) -> str:
    """All the traffic back to the version that served before the current one."""
    endpoint = find_endpoint(config, endpoint_name)
    model = aiplatform.Model(model_name=config.run.pipeline_name, **_location(config))
    current = _serving_deployed_model(endpoint, model)
    deployed = sorted(endpoint.list_models(), key=lambda d: (str(d.create_time), d.id))
    earlier = [d for d in deployed if d.id != current]
    if not earlier:
        raise Refused(f"{endpoint_name}: no earlier version is deployed to roll back to")
    # The version before the current one: deployed most recently before it.
    current_time = next((str(d.create_time) for d in deployed if d.id == current), "")
    before = [d for d in earlier if str(d.create_time) <= current_time] or earlier
    target = before[-1]
    endpoint.update(traffic_split={target.id: 100})
    model.versioning_registry.add_version_aliases([SERVING_ALIAS], target.model_version_id)
    return (
        f"Rolled {endpoint_name} back to registry version {target.model_version_id} "
        f"(all the traffic, alias {SERVING_ALIAS})"
    )


def format_versions(versions: list[EndpointVersion], endpoint_name: str) -> str:
    rows = [("VERSION", "SERVING VERSION", "ALIASES", "BLESSED", f"TRAFFIC ON {endpoint_name}")]
    for version in versions:
        rows.append(
            (
                version.version_id,
                version.serving_version or "-",
                ",".join(version.aliases) or "-",
                "yes" if version.blessed else "no",
                f"{version.traffic}%",
            )
        )
    return format_table(rows)
