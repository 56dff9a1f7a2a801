"""A task's ExecutorInput, built the way Vertex AI's launcher builds it.

An ExecutorInput (kfp's ``pipeline_spec.ExecutorInput``, JSON) holds the
task's input artifacts (each with its URI, type and the metadata that its
producer wrote into its output file), its parameters as the spec gives them,
a URI for each output artifact and the path of the output file the task
writes. Output URIs follow Vertex AI's layout,
``<pipeline root>/<project number>/<job>/<task>_<task id>/<output>``, so the
code under test sees the paths it sees on Vertex (a rehearsal's "project
number" is ``rehearsal``).
"""

from __future__ import annotations

import json
import re

from pipeline.runners.rehearsal.spec import Task

PROJECT_NUMBER = "rehearsal"
_TITLE = re.compile(r"^title:\s*(\S+)", re.MULTILINE)


def schema_title(artifact_type: dict) -> str:
    """``tfx.Model`` from an artifactType (schemaTitle, or the title of its instanceSchema)."""
    if "schemaTitle" in artifact_type:
        return artifact_type["schemaTitle"]
    match = _TITLE.search(artifact_type.get("instanceSchema", ""))
    return match.group(1) if match else "system.Artifact"


def task_dir(pipeline_root: str, job_id: str, task: Task, task_id: str) -> str:
    return f"{pipeline_root}/{PROJECT_NUMBER}/{job_id}/{task.name}_{task_id}"


def parameters(task: Task, final_status: dict | None = None) -> tuple[dict, dict]:
    """The task's constant parameters: (new-style ``parameterValues``, old-style ``parameters``).

    TFX writes ``runtimeValue.constantValue`` (a typed Value, the older form)
    and newer compilers ``runtimeValue.constant`` (a protobuf Value); the
    executor reads both, so each goes where the launcher puts it. An exit
    handler's ``taskFinalStatus`` parameter is the run's final status (a JSON
    ``PipelineTaskFinalStatus``), as Vertex AI gives it.
    """
    values, typed = {}, {}
    final_status_key = None
    for key, spec in task.task.get("inputs", {}).get("parameters", {}).items():
        runtime = spec.get("runtimeValue")
        if "taskFinalStatus" in spec:
            final_status_key = key
            continue
        if runtime is None:
            raise ValueError(
                f"task {task.name}: parameter {key} is not a constant ({sorted(spec)}); "
                "the rehearsal answers constants only"
            )
        if "constant" in runtime:
            values[key] = runtime["constant"]
        else:
            typed[key] = runtime["constantValue"]
    if final_status_key and final_status is not None:
        # In the style of the task's other parameters: TFX's executor reads one style or the other.
        if typed:
            typed[final_status_key] = {"stringValue": json.dumps(final_status)}
        else:
            values[final_status_key] = json.dumps(final_status)
    return values, typed


def output_artifacts(task: Task, directory: str, new_name) -> dict:
    """A fresh URI (and name) for each output artifact the component declares."""
    outputs = {}
    for key, spec in task.component.get("outputDefinitions", {}).get("artifacts", {}).items():
        outputs[key] = {
            "artifacts": [
                {
                    "name": new_name(),
                    "type": spec["artifactType"],
                    "uri": f"{directory}/{key}",
                    "metadata": {},
                }
            ]
        }
    return outputs


def input_artifacts(task: Task, produced: dict[str, dict]) -> dict:
    """Each input artifact as its producer's output file gave it."""
    inputs = {}
    for key, spec in task.task.get("inputs", {}).get("artifacts", {}).items():
        source = spec.get("taskOutputArtifact")
        if source is None:
            raise ValueError(f"task {task.name}: input {key} is not another task's output")
        artifacts = produced[source["producerTask"]].get(source["outputArtifactKey"], {"artifacts": []})
        if artifacts["artifacts"]:
            inputs[key] = artifacts
    return inputs


def build(
    task: Task,
    pipeline_root: str,
    job_id: str,
    task_id: str,
    produced: dict,
    new_name,
    final_status: dict | None = None,
) -> dict:
    """The ExecutorInput of ``task``, as a JSON-ready dict."""
    directory = task_dir(pipeline_root, job_id, task, task_id)
    values, typed = parameters(task, final_status)
    outputs = {
        "artifacts": output_artifacts(task, directory, new_name),
        "outputFile": f"{directory}/executor_output.json",
    }
    for key in task.component.get("outputDefinitions", {}).get("parameters", {}):
        outputs.setdefault("parameters", {})[key] = {"outputFile": f"{directory}/{key}"}
    inputs = {"artifacts": input_artifacts(task, produced)}
    if values:
        inputs["parameterValues"] = values
    if typed:
        inputs["parameters"] = typed
    return {"inputs": inputs, "outputs": outputs}
