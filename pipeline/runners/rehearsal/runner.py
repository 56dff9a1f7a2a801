"""The rehearsal's loop: each task of a spec, in order, as Vertex AI runs it.

For each task: a resolver is answered from the records of earlier
rehearsals; any other task gets its ExecutorInput, runs its driver step when
it has one (ImportExampleGen's ``preCacheCheck``, which computes the span and
fingerprint of the input files), is taken from the cache when its inputs,
parameters and image are unchanged, and otherwise runs its container
command. Its output file gives the artifacts that the tasks after it get.
"""

from __future__ import annotations

import json
import re
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pipeline.config import ConfigError
from pipeline.runners.rehearsal import dataflow, executor_input, launcher, stand_ins, vertex_fake
from pipeline.runners.rehearsal import summary as rehearsal_summary
from pipeline.runners.rehearsal.records import Records
from pipeline.runners.rehearsal.spec import Spec, Task, load_spec
from pipeline.runners.rehearsal.storage import IMAGE_PROJECT, Storage
from pipeline.runners.rehearsal.vertex_fake import recorded_requests

if TYPE_CHECKING:
    from pipeline.runners.rehearsal.in_image import ImageTasks

EXIT_OK, EXIT_TASK_FAILED = 0, 1
_INPUT_METADATA = re.compile(r"\{\{\$\.inputs\.artifacts\['([^']+)'\]\.metadata\['([^']+)'\]\}\}")


class RehearsalError(ConfigError):
    """A spec or root the rehearsal cannot run (exit status 2)."""


@dataclass
class TaskResult:
    name: str
    status: str  # ran, cached, resolved, failed
    seconds: float
    outputs: dict = field(default_factory=dict)
    message: str = ""


@dataclass
class Rehearsal:
    spec: Spec
    storage: Storage
    records: Records
    isolated: bool = False
    # Set: every task runs in a container of the image (in_image.ImageTasks).
    image: "ImageTasks | None" = None
    out: TextIO | None = None  # None: sys.stdout as it is when the rehearsal starts
    job_id: str = ""
    produced: dict[str, dict] = field(default_factory=dict)
    # Each task's ExecutorInput "inputs" (artifacts and parameters), for the summary.
    inputs: dict[str, dict] = field(default_factory=dict)
    results: list[TaskResult] = field(default_factory=list)
    # What exit handlers are given: the run's PipelineTaskFinalStatus, once the other tasks ended.
    final_status: dict | None = None

    def __post_init__(self):
        self.out = self.out or sys.stdout
        if not self.job_id:
            stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime())
            self.job_id = f"{self.spec.name}-{stamp}-{uuid.uuid4().hex[:6]}"

    @property
    def log_dir(self) -> Path:
        return self.storage.root / "runs" / self.job_id

    # ---------------------------------------------------------------- one task

    def resolve(self, task: Task) -> dict:
        """A resolver task: each output is the latest recorded artifact matching its query."""
        inputs = executor_input.input_artifacts(task, self.produced)
        outputs = {}
        for key, query in task.executor["resolver"]["outputArtifactQueries"].items():

            def placeholder(match: re.Match) -> str:
                artifacts = inputs.get(match.group(1), {"artifacts": []})["artifacts"]
                return str(artifacts[0].get("metadata", {}).get(match.group(2), "")) if artifacts else ""

            filter_text = _INPUT_METADATA.sub(placeholder, query["filter"])
            outputs[key] = {"artifacts": self.records.query(filter_text)}
        return outputs

    def _launch(self, command: list[str], args: list[str], log_file: Path) -> None:
        if self.image is not None:
            self.image.run(command, args, log_file)
        else:
            launcher.run_command(command, args, log_file, self.isolated, self.storage.root)

    def _args(self, container_args: list[str], local_input: str) -> list[str]:
        return [local_input if arg == "{{$}}" else self.storage.to_local(arg) for arg in container_args]

    def _read_output(self, built: dict) -> dict:
        """The output artifacts a task's output file lists, over the ones it was given."""
        outputs = json.loads(json.dumps(built["outputs"]["artifacts"]))
        output_file = self.storage.local_path(built["outputs"]["outputFile"])
        if output_file.is_file():
            written = json.loads(self.storage.to_gcs(output_file.read_text(encoding="utf-8")))
            for key, entry in written.get("artifacts", {}).items():
                for given, artifact in zip(
                    outputs.get(key, {}).get("artifacts", []), entry.get("artifacts", []), strict=False
                ):
                    given.update({k: v for k, v in artifact.items() if k != "name" or v})
        return outputs

    def run_task(self, task: Task) -> TaskResult:
        started = time.monotonic()
        if task.is_resolver:
            outputs = self.resolve(task)
            count = sum(len(entry["artifacts"]) for entry in outputs.values())
            return TaskResult(task.name, "resolved", time.monotonic() - started, outputs, f"{count} artifact(s)")
        task_id = uuid.uuid4().hex[:8]
        built = executor_input.build(
            task,
            self.spec.pipeline_root,
            self.job_id,
            task_id,
            self.produced,
            self.records.next_name,
            self.final_status,
        )
        self.inputs[task.name] = built["inputs"]
        container = task.container
        log_file = self.log_dir / f"{task.name}.log"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        driver = container.get("lifecycle", {}).get("preCacheCheck")
        if driver:
            # The driver writes the output file; its parameters (span, fingerprint,
            # resolved patterns) join the task's, and so its cache key.
            local = self.storage.to_local(json.dumps(built))
            self._launch(driver["command"], self._args(driver.get("args", []), local), log_file)
            output_file = self.storage.local_path(built["outputs"]["outputFile"])
            written = json.loads(self.storage.to_gcs(output_file.read_text(encoding="utf-8")))
            built["inputs"].setdefault("parameterValues", {}).update(written.get("parameterValues", {}))
        key = self.records.cache_key(task.executor, built)
        if task.task.get("cachingOptions", {}).get("enableCache"):
            cached = self.records.cached(key)
            if cached is not None and self._outputs_exist(cached):
                return TaskResult(task.name, "cached", time.monotonic() - started, cached)
        # What the task was given, as Vertex AI would name it, for whoever debugs it.
        (self.log_dir / f"{task.name}.executor_input.json").write_text(json.dumps(built, indent=2), encoding="utf-8")
        local = self.storage.to_local(json.dumps(built))
        if not self.isolated and self.image is None:  # otherwise the task's process installs them (task_main)
            # (a training job's log goes with its task's)
            stand_ins.install(self.storage.root, log_file, json.dumps(container))
        # Dataflow's options are checked as the spec gives them (gs:// paths), then replaced.
        container_args, note = dataflow.localize(container.get("args", []))
        args = self._args(container_args, local)
        self._launch(container["command"], args, log_file)
        outputs = self._read_output(built)
        self.records.add_task(key, task.name, outputs)
        return TaskResult(task.name, "ran", time.monotonic() - started, outputs, note)

    def _outputs_exist(self, outputs: dict) -> bool:
        return all(
            self.storage.local_path(artifact["uri"]).exists()
            for entry in outputs.values()
            for artifact in entry["artifacts"]
        )

    # -------------------------------------------------------------- all tasks

    def run(self) -> int:
        tasks = self.spec.tasks()
        requests_before = set(recorded_requests.recorded(self.storage.root))
        print(f"Rehearsing {self.spec.path} ({len(tasks)} tasks) as job {self.job_id}", file=self.out)
        print(f"  gs:// is {self.storage.gcs}/, logs in {self.log_dir}/", file=self.out)
        if self.image is not None:
            print(f"  {self.image.describe()}", file=self.out)
        exit_handlers = [task for task in tasks if task.is_exit_handler]
        failed = None
        for number, task in enumerate(tasks, 1):
            if task.is_exit_handler:
                continue
            result = self._run_numbered(task, number, len(tasks))
            if result.status == "failed":
                print(f"error: task {task.name} failed: {result.message}", file=self.out)
                failed = task.name
                break
            self.produced[task.name] = result.outputs
        # Exit handlers run last, whatever happened, and learn how the run ended.
        self.final_status = self._final_status(failed)
        for task in exit_handlers:
            result = self._run_numbered(task, tasks.index(task) + 1, len(tasks))
            if result.status == "failed":
                print(f"error: exit handler {task.name} failed: {result.message}", file=self.out)
        if failed:
            return EXIT_TASK_FAILED
        self.print_summary()
        self.print_requests(requests_before)
        return EXIT_OK

    def _run_numbered(self, task: Task, number: int, total: int) -> TaskResult:
        print(f"[{number}/{total}] {task.name} ...", file=self.out, flush=True)
        try:
            result = self.run_task(task)
        except (launcher.CommandFailed, ValueError, OSError) as error:
            result = TaskResult(task.name, "failed", 0.0, message=str(error))
        self.results.append(result)
        detail = f" ({result.message})" if result.message else ""
        print(
            f"[{number}/{total}] {task.name}: {result.status} in {result.seconds:.1f} s{detail}",
            file=self.out,
            flush=True,
        )
        return result

    def _final_status(self, failed: str | None) -> dict:
        """A PipelineTaskFinalStatus as Vertex AI words it (JSON field names)."""
        status = {
            "state": "FAILED" if failed else "SUCCEEDED",
            "pipelineJobResourceName": (
                f"projects/{executor_input.PROJECT_NUMBER}/locations/local/pipelineJobs/{self.job_id}"
            ),
            "pipelineJobName": self.job_id,
        }
        if failed:
            status["error"] = {
                "code": 9,
                "message": f"The DAG failed because some tasks failed. The failed tasks are: [{failed}].",
            }
        return status

    def print_requests(self, before: set) -> None:
        """Each request the fake Vertex AI answered for Vertex AI during this rehearsal."""
        new = [path for path in recorded_requests.recorded(self.storage.root) if path not in before]
        print(f"  requests to Vertex AI: {len(new) or 'none'}", file=self.out)
        for path in new:
            print(f"    {vertex_fake.describe(path)}", file=self.out)
        if new:
            print(f"    (in full: {recorded_requests.requests_dir(self.storage.root)}/)", file=self.out)

    def print_summary(self) -> None:
        counts = {}
        for result in self.results:
            counts[result.status] = counts.get(result.status, 0) + 1
        print("", file=self.out)
        print(
            "Rehearsal finished: " + ", ".join(f"{n} {status}" for status, n in sorted(counts.items())), file=self.out
        )
        for entry in self.produced.get("Pusher", {}).values():
            for artifact in entry["artifacts"]:
                metadata = artifact.get("metadata", {})
                if metadata.get("pushed"):
                    again = " (already serving, not pushed again)" if metadata.get("already_serving") else ""
                    print(f"  pushed: {metadata.get('pushed_destination')}{again}", file=self.out)
                else:
                    print("  pushed: nothing (not blessed)", file=self.out)
        print("", file=self.out)
        print(rehearsal_summary.summary_text(self.produced, self.inputs, self.results, self.storage), file=self.out)


def rehearse(
    spec_path: str | Path,
    root: str | Path,
    isolated: bool = False,
    out: TextIO | None = None,
    pipeline_root: str | None = None,
    image: str | None = None,
    builder: str | None = None,
) -> int:
    """Runs the spec under ``root``; 0 when every task finished, 1 when one failed.

    Raises ConfigError (exit status 2) for a spec or root it cannot use."""
    root = Path(root).expanduser().absolute()
    if root.exists() and not root.is_dir():
        raise RehearsalError(f"{root}: not a directory (--root)")
    spec = load_spec(spec_path, pipeline_root)
    if not spec.pipeline_root.startswith("gs://"):
        raise RehearsalError(f"{spec.path}: the pipeline root {spec.pipeline_root} is not a gs:// URL")
    root.mkdir(parents=True, exist_ok=True)
    storage, in_image = Storage(root), None
    if image:
        from pipeline.image.builders import find_builder
        from pipeline.runners.rehearsal.in_image import ImageTasks

        in_image = ImageTasks(image, root, find_builder(builder))
        storage = Storage(root, project=Path(IMAGE_PROJECT))
    rehearsal = Rehearsal(spec=spec, storage=storage, records=Records(root), isolated=isolated, image=in_image, out=out)
    return rehearsal.run()
