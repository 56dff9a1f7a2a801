"""A compiled Kubeflow v2 spec, as the rehearsal reads it.

``flowers-tfx compile`` writes either the whole PipelineJob (``.json``: the
PipelineSpec plus its runtime config, the pipeline root) or the PipelineSpec
alone (``.yaml``, the pipeline root given at submit time). Both are parsed
into plain dicts; the tasks are the root DAG's, ordered so that each comes
after the tasks it depends on (its ``dependentTasks`` and the producers of
its input artifacts), as Vertex schedules them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.config import ConfigError


@dataclass
class Task:
    """One task of the root DAG, with its component and its executor."""

    name: str
    task: dict  # root.dag.tasks[name]
    component: dict  # components[componentRef.name]
    executor: dict  # deploymentSpec.executors[component.executorLabel]

    @property
    def is_resolver(self) -> bool:
        return "resolver" in self.executor

    @property
    def is_exit_handler(self) -> bool:
        """An exit handler: Vertex runs it after all the others, failed ones included."""
        return self.task.get("triggerPolicy", {}).get("strategy") == "ALL_UPSTREAM_TASKS_COMPLETED"

    @property
    def container(self) -> dict:
        return self.executor.get("container", {})

    def upstream(self) -> set[str]:
        producers = {
            spec["taskOutputArtifact"]["producerTask"]
            for spec in self.task.get("inputs", {}).get("artifacts", {}).values()
            if "taskOutputArtifact" in spec
        }
        return producers | set(self.task.get("dependentTasks", []))


@dataclass
class Spec:
    path: Path
    pipeline_spec: dict
    pipeline_root: str

    @property
    def name(self) -> str:
        return self.pipeline_spec.get("pipelineInfo", {}).get("name", "pipeline")

    def tasks(self) -> list[Task]:
        """Every task of the root DAG, each after the ones it needs."""
        executors = self.pipeline_spec["deploymentSpec"]["executors"]
        by_name: dict[str, Task] = {}
        # A task whose component is itself a DAG (TFX puts the whole pipeline in
        # one, "tfx-dag", when it has an exit handler) stands for all its tasks.
        members: dict[str, set[str]] = {}

        def collect(tasks: dict) -> set[str]:
            names = set()
            for name, task in tasks.items():
                component = self.pipeline_spec["components"][task["componentRef"]["name"]]
                if "dag" in component:
                    members[name] = collect(component["dag"]["tasks"])
                    names |= members[name]
                else:
                    by_name[name] = Task(name, task, component, executors[component["executorLabel"]])
                    names.add(name)
            return names

        collect(self.pipeline_spec["root"]["dag"]["tasks"])

        def needs(task: Task) -> set[str]:
            return set().union(*[members.get(name, {name}) for name in task.upstream()])

        ordered, done = [], set()
        while len(ordered) < len(by_name):
            # Alphabetical among the ready ones, so the order is the same every time.
            ready = sorted(n for n, t in by_name.items() if n not in done and needs(t) <= done)
            if not ready:
                stuck = sorted(set(by_name) - done)
                raise ConfigError(f"{self.path}: the tasks {', '.join(stuck)} depend on each other in a cycle")
            for name in ready:
                ordered.append(by_name[name])
                done.add(name)
        return ordered


def load_spec(path: str | Path, pipeline_root: str | None = None) -> Spec:
    """Reads a ``.json`` PipelineJob or a ``.yaml`` PipelineSpec.

    ``pipeline_root`` overrides the spec's (a ``.yaml`` spec has none of its
    own unless compiled with a default). Raises ConfigError naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such spec file")
    text = path.read_text(encoding="utf-8")
    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as error:
        raise ConfigError(f"{path}: not a readable Kubeflow spec ({error})") from None
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: not a Kubeflow spec")
    pipeline_spec = document.get("pipelineSpec", document)
    if "root" not in pipeline_spec or "deploymentSpec" not in pipeline_spec:
        raise ConfigError(f"{path}: not a Kubeflow v2 pipeline spec (no root DAG or deployment spec)")
    root = (
        pipeline_root
        or document.get("runtimeConfig", {}).get("gcsOutputDirectory")
        or pipeline_spec.get("defaultPipelineRoot")
    )
    if not root:
        raise ConfigError(f"{path}: the spec names no pipeline root; give one with --pipeline-root")
    return Spec(path=path, pipeline_spec=pipeline_spec, pipeline_root=root.rstrip("/"))
