"""One fake of the Vertex AI SDK, for the tests and the rehearsal alike.

The code talks to Vertex AI through google-cloud-aiplatform: the Model
Registry and endpoints (``aiplatform.Model``, ``aiplatform.Endpoint``),
pipeline jobs and schedules (``PipelineJob``, ``PipelineJobSchedule``, over
the generated pipeline and schedule clients) and Training (TFX's job client,
over the generated ``JobServiceClient``). ``VertexFake`` answers all of
them, one description of the API instead of one per test file:

- ``models.py``, ``endpoints.py``, ``pipelines.py``, ``jobs.py``: the services;
- ``checks.py``: every call bound to the real SDK method's signature, every
  request built as google-cloud-aiplatform's types, ``surface_mismatches()``;
- ``state.py``: the state, as JSON under the root, which the rehearsal's
  task processes and its next run share;
- ``recorded_requests.py``: each request answered, under ``ROOT/requests/``.

google-cloud-aiplatform is imported when the fake is installed or called,
not when this package is imported.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from pipeline.runners.rehearsal.storage import Storage
from pipeline.runners.rehearsal.vertex_fake import checks, endpoints, jobs, models, pipelines
from pipeline.runners.rehearsal.vertex_fake.checks import RequestRefused
from pipeline.runners.rehearsal.vertex_fake.recorded_requests import record, recorded
from pipeline.runners.rehearsal.vertex_fake.state import State

__all__ = ["RequestRefused", "VertexFake", "describe"]

# The modules whose ``aiplatform`` the fake replaces: the code that uses the registry and endpoints.
REGISTRY_USERS = ("components.model_registry_pusher.component", "pipeline.serving.endpoint")
PARTS = ("registry", "pipelines", "training")


class VertexFake:
    """Vertex AI for one project's worth of tests, or one rehearsal root.

    ``run_job(command) -> bool`` runs a CustomJob's chief command (the
    rehearsal's launcher); without it a job succeeds at once. ``job_log``
    is where a failed job's message points."""

    def __init__(self, root: Path, run_job: Callable[[list[str]], bool] | None = None, job_log: Path | None = None):
        self.root = Path(root)
        self.state, self.storage = State(self.root), Storage(self.root)
        self.run_job, self.job_log = run_job, job_log
        # An exception every pipeline or schedule request raises, when set (a refusal by the service).
        self.refuse_with: Exception | None = None
        self.Model = type("Model", (models.Model,), {"fake": self})
        self.Endpoint = type("Endpoint", (endpoints.Endpoint,), {"fake": self})
        self.pipelines, self.schedules = pipelines.PipelineService(self), pipelines.ScheduleService(self)
        self.training = jobs.JobService(self)

    # ------------------------------------------------------------ installing

    def sdk(self):
        """What ``aiplatform`` is to the code using the registry and endpoints."""
        from types import SimpleNamespace

        return SimpleNamespace(Model=self.Model, Endpoint=self.Endpoint, init=self.init)

    @checks.stands_in_for("google.cloud.aiplatform.initializer._Config.init")
    def init(self, **_):
        """``aiplatform.init``: the fake takes project and location from each call instead."""

    def install(self, replace: Callable, parts: tuple[str, ...] = PARTS) -> None:
        """Puts the fake in place: ``replace(owner, name, value)`` is pytest's
        ``monkeypatch.setattr`` in tests, the rehearsal's own undoable one there."""
        import importlib
        import warnings

        unknown = set(parts) - set(PARTS)
        if unknown:
            raise ValueError(f"no such part of the fake: {sorted(unknown)}")
        if "registry" in parts:
            for module in REGISTRY_USERS:
                replace(importlib.import_module(module), "aiplatform", self.sdk())
        if "pipelines" in parts:
            pipelines.install(self, replace)
        if "training" in parts:
            with warnings.catch_warnings():  # the Google clients' notices about Python versions
                warnings.simplefilter("ignore")
                from tfx.extensions.google_cloud_ai_platform import training_clients
            from types import SimpleNamespace

            replace(training_clients, "gapic", SimpleNamespace(JobServiceClient=self.training))

    # ------------------------------------------------------------- requests

    def record(self, service: str, request: dict) -> Path:
        return record(self.root, service, request)

    def record_proto(self, request) -> None:
        """A generated client's request, recorded under its type's name."""
        if self.refuse_with is not None:
            raise self.refuse_with
        self.record(type(request).__name__, type(request).to_dict(request, preserving_proto_field_name=True))

    def requests(self, service: str = "*") -> list[dict]:
        """The requests recorded for ``service`` (e.g. "model-registry-upload"), oldest first."""
        return [json.loads(path.read_text(encoding="utf-8")) for path in recorded(self.root, service)]

    def sent(self, kind) -> list:
        """The generated clients' requests of type ``kind``, as that type."""
        return [kind(request) for request in self.requests(kind.__name__)]

    # ------------------------------------------------------- what it holds

    def add_pipeline_job(self, *history) -> None:
        """A pipeline job as the service will return it: each get returns the
        next of ``history`` (PipelineJob protos of one job), the last one for ever."""
        from google.cloud.aiplatform_v1.types import PipelineJob

        state = self.state.load()
        state["pipeline_jobs"][history[0].name] = [PipelineJob.to_json(job) for job in history]
        self.state.save(state)

    def versions(self, model_id: str) -> list[dict]:
        """A registry model's versions: ``version_id``, ``aliases``, ``labels``, ``artifact_uri``."""
        return self.state.load()["models"].get(model_id, {"versions": []})["versions"]

    def put_saved_model(self, uri: str) -> str:
        """Makes the gs:// folder ``uri`` hold a SavedModel as far as an upload
        checks (its saved_model.pb), as the Pusher leaves one; ``uri``."""
        folder = self.storage.local_path(uri)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "saved_model.pb").write_bytes(b"")
        return uri

    def alias_holder(self, model_id: str, alias: str) -> str | None:
        """The version id carrying ``alias``."""
        return next((v["version_id"] for v in self.versions(model_id) if alias in v["aliases"]), None)

    def traffic(self, endpoint: str) -> dict[str, int]:
        """An endpoint's traffic by registry version id, models with none left out."""
        [entry] = [e for e in self.state.load()["endpoints"] if e["display_name"] == endpoint]
        version_of = {d["id"]: d["version_id"] for d in entry["deployed"]}
        return {version_of[key]: value for key, value in entry["traffic_split"].items() if value}

    @staticmethod
    def surface_mismatches() -> list[str]:
        """Where this fake and the installed google-cloud-aiplatform disagree (see checks.py)."""
        fakes = (models.Model, models.ModelRegistry, endpoints.Endpoint)
        return checks.surface_mismatches(
            fakes + (pipelines.PipelineService, pipelines.ScheduleService, jobs.JobService)
        )


def describe(path: Path) -> str:
    """One line for a recorded request: what was asked, of which service."""
    request = json.loads(path.read_text(encoding="utf-8"))
    described = jobs.describe(path.name, request) or models.describe(path.name, request)
    return described or f"{path.name}: {', '.join(sorted(request))}"
