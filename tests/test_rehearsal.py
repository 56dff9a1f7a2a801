"""``flowers-tfx rehearse``: the spec users submit, run here as Vertex AI runs it.

The quick tests check the pieces (task order, the ExecutorInput, the gs://
mapping, resolver queries, the command's exit statuses, the stand-ins'
checks). The end-to-end test compiles the production pipeline for Vertex AI
(gs:// pipeline root, serving directory and data in spans, a two-span
window, the per-class gate, Dataflow, TPU training, the Model Registry and
an endpoint) and rehearses a schedule on tiny data: a first push and
upload; a second run that reuses the cache and pushes nothing; span 2
arrives and the rehearsal is killed during training; run again, the Trainer
resumes from its checkpoint and is compared with the blessed model.
"""

import argparse
import json
import re
from pathlib import Path

import pytest

from pipeline.cli.rehearse_commands import add_rehearse_commands
from pipeline.errors import run_command
from pipeline.runners.rehearsal import executor_input
from pipeline.runners.rehearsal.records import Records
from pipeline.runners.rehearsal.spec import load_spec
from pipeline.runners.rehearsal.storage import CHECKOUT, Storage

BUCKET = "flowers-rehearsal"
VERTEX = {
    "vertex.project": "flowers-test",
    "vertex.region": "europe-west4",
    "vertex.pipeline_root": f"gs://{BUCKET}/root",
    "vertex.image": "europe-west4-docker.pkg.dev/flowers-test/pipelines/flowers-tfx:1",
    # Spans, a two-span window, and the per-class gate: what a weekly schedule runs.
    "data.source": f"gs://{BUCKET}/data/span-{{SPAN}}/*.tfrec",
    "data.spans": 2,
    "gate.max_class_accuracy_drop": 0.999,
    # Tiny and quick: the point is the orchestration, not the model.
    "model.name": "dense",
    "model.epochs": 1,
    "model.batch_size": 8,
    "model.image_size": 32,
    "gate.min_accuracy": 0.0,
    "gate.max_accuracy_drop": 1.0,
}


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="flowers-tfx")
    add_rehearse_commands(parser.add_subparsers(dest="command", required=True))
    return run_command(parser.parse_args(argv))


def small_spec(tmp_path: Path) -> Path:
    """A hand-written spec with the shapes TFX compiles: a resolver, a driver step, dependencies."""
    component = lambda label, outputs: {  # noqa: E731
        "executorLabel": label,
        "outputDefinitions": {
            "artifacts": {
                k: {"artifactType": {"instanceSchema": f"title: {t}\ntype: object\n"}} for k, t in outputs.items()
            }
        },
    }
    spec = {
        "pipelineSpec": {
            "pipelineInfo": {"name": "tiny"},
            "root": {
                "dag": {
                    "tasks": {
                        "B": {
                            "componentRef": {"name": "B"},
                            "dependentTasks": ["A"],
                            "inputs": {
                                "artifacts": {
                                    "examples": {
                                        "taskOutputArtifact": {"producerTask": "A", "outputArtifactKey": "examples"}
                                    }
                                },
                                "parameters": {
                                    "p": {"runtimeValue": {"constantValue": {"stringValue": "/pipeline/schema/x"}}}
                                },
                            },
                        },
                        "A": {"componentRef": {"name": "A"}},
                        "R": {"componentRef": {"name": "R"}},
                    }
                }
            },
            "components": {
                "A": component("A_executor", {"examples": "tfx.Examples"}),
                "B": component("B_executor", {"model": "tfx.Model"}),
                "R": component("R_executor", {"model": "tfx.Model"}),
            },
            "deploymentSpec": {
                "executors": {
                    "A_executor": {"container": {"command": ["python", "-m", "a"], "args": ["{{$}}"]}},
                    "B_executor": {"container": {"command": ["python", "-m", "b"], "args": ["{{$}}"]}},
                    "R_executor": {
                        "resolver": {
                            "outputArtifactQueries": {"model": {"filter": 'schema_title="tfx.Model" AND state=LIVE'}}
                        }
                    },
                }
            },
        },
        "runtimeConfig": {"gcsOutputDirectory": "gs://bucket/root"},
    }
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(spec))
    return path


# ------------------------------------------------------------------ the pieces


def test_tasks_come_after_the_tasks_they_need(tmp_path):
    spec = load_spec(small_spec(tmp_path))
    assert spec.pipeline_root == "gs://bucket/root"
    assert [task.name for task in spec.tasks()] == ["A", "R", "B"]
    assert [task.is_resolver for task in spec.tasks()] == [False, True, False]


def test_the_executor_input_has_inputs_parameters_and_vertex_output_uris(tmp_path):
    spec = load_spec(small_spec(tmp_path))
    task = spec.tasks()[2]
    produced = {"A": {"examples": {"artifacts": [{"name": "a/1", "uri": "gs://bucket/x", "metadata": {"span": 0}}]}}}
    names = iter(["n/1"])
    built = executor_input.build(task, spec.pipeline_root, "job-1", "42", produced, lambda: next(names))
    assert built["inputs"]["artifacts"]["examples"]["artifacts"][0]["metadata"] == {"span": 0}
    assert built["inputs"]["parameters"]["p"] == {"stringValue": "/pipeline/schema/x"}
    [model] = built["outputs"]["artifacts"]["model"]["artifacts"]
    assert model["uri"] == "gs://bucket/root/rehearsal/job-1/B_42/model" and model["name"] == "n/1"
    assert built["outputs"]["outputFile"] == "gs://bucket/root/rehearsal/job-1/B_42/executor_output.json"


def test_gs_is_under_the_root_and_pipeline_is_this_checkout(tmp_path):
    storage = Storage(tmp_path)
    text = json.dumps({"uri": "gs://b/p", "schema": "/pipeline/schema/schema.pbtxt", "other": "/pipelines/x"})
    local = json.loads(storage.to_local(text))
    assert local == {"uri": f"{tmp_path}/gcs/b/p", "schema": f"{CHECKOUT}/schema/schema.pbtxt", "other": "/pipelines/x"}
    assert storage.to_gcs(local["uri"]) == "gs://b/p"


def test_resolver_queries_answer_with_the_latest_match(tmp_path):
    records = Records(tmp_path)
    blessing = {"type": {"instanceSchema": "title: tfx.ModelBlessing\n"}, "uri": "gs://b/1"}
    records.add_artifacts(
        "Evaluator",
        {
            "blessing": {
                "artifacts": [
                    {**blessing, "name": "r/1", "metadata": {"blessed": 1, "current_model_id": "r/0"}},
                    {**blessing, "name": "r/2", "metadata": {"blessed": 0}},
                ]
            }
        },
    )
    query = 'schema_title="tfx.ModelBlessing" AND state=LIVE AND metadata.blessed.number_value=1'
    assert [a["name"] for a in records.query(query)] == ["r/1"]
    assert records.query('schema_title="tfx.Model" AND state=LIVE') == []


def test_a_missing_spec_or_a_file_as_root_is_exit_status_2(tmp_path, capsys):
    assert cli(["rehearse", str(tmp_path / "none.json"), "--root", str(tmp_path)]) == 2
    assert "none.json: no such spec file" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert cli(["rehearse", str(small_spec(tmp_path)), "--root", str(tmp_path / "file")]) == 2
    assert "not a directory (--root)" in capsys.readouterr().err


def test_a_failing_task_is_exit_status_1_naming_it(tmp_path, capsys):
    # The module "a" does not exist: the task fails, the rehearsal says which.
    assert cli(["rehearse", str(small_spec(tmp_path)), "--root", str(tmp_path / "r")]) == 1
    out = capsys.readouterr().out
    assert "error: task A failed: python -m a exited with status 1; see " in out


# ------------------------------------------------------------------- end to end


def pushed_versions(root: Path) -> list[Path]:
    serving = root / "gcs" / BUCKET / "root" / "serving"
    return sorted(p for p in serving.iterdir() if p.name.isdigit()) if serving.is_dir() else []


def recorded(root: Path, service: str) -> list[Path]:
    return sorted((root / "requests").glob(f"*-{service}.json"))


# The production spec of a weekly schedule: Dataflow for the Beam steps, the
# Trainer as a Vertex AI Training job on a TPU, the Model Registry and an
# endpoint; enough epochs that a rehearsal can be killed between two of them.
PRODUCTION = {
    **VERTEX,
    "vertex.dataflow": True,
    "vertex.training": True,
    "vertex.accelerator": "tpu",
    "vertex.tpu_image": "europe-west4-docker.pkg.dev/flowers-test/pipelines/flowers-tfx-tpu:1",
    "vertex.upload_model": True,
    "vertex.endpoint": "flowers",
    "model.epochs": 6,  # enough for a rehearsal killed after the first checkpoint to resume in the middle
}


def rehearse_until_a_checkpoint(spec: Path, root: Path, checkpoints: Path, timeout: float = 300) -> None:
    """``flowers-tfx rehearse`` in its own process, killed as soon as the
    Trainer has checkpointed an epoch (as a preempted or cancelled run ends)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli.main", "rehearse", str(spec), "--root", str(root)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while not any(checkpoints.rglob("checkpoint")):
            assert process.poll() is None, "the rehearsal ended before the Trainer checkpointed"
            assert time.monotonic() < deadline, "no checkpoint within the time limit"
            time.sleep(0.05)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


@pytest.mark.e2e
@pytest.mark.slow
def test_the_production_spec_rehearses_a_schedule(tmp_path, capsys):
    from pipeline.config_loading import load_config
    from pipeline.data.synth import write_synthetic_shards
    from pipeline.runners.kubeflow import compile_pipeline

    spec = compile_pipeline(load_config(overrides=PRODUCTION, environ={}), tmp_path / "pipeline.json")
    assert "gs://" in spec.read_text() and str(tmp_path) not in spec.read_text()
    root = tmp_path / "rehearsal"
    data = root / "gcs" / BUCKET / "data"
    write_synthetic_shards(str(data / "span-1"), 120, 2, 1, 64)

    # 1. Everything runs; one version is pushed, with its manifest, and uploaded once.
    assert cli(["rehearse", str(spec), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "ImportExampleGen: ran" in out and "Pusher: ran" in out and "ModelRegistryPusher: ran" in out
    for task in ("ImportExampleGen", "StatisticsGen", "Transform", "Evaluator"):
        assert f"{task}: ran" in out and "Dataflow options checked (project flowers-test, region europe-west4" in out
    assert "Vertex AI Training CustomJob" in out and "cloud-tpu + 8 TPU_V3" in out
    assert "Model Registry upload of gs://" in out and "with 100% of the traffic" in out
    # It ends with the summary `flowers-tfx run` prints, read from the tasks' artifacts.
    summary = out[out.index("Rehearsal finished") :]
    assert "Examples" in summary and "span 1" in summary and "Records screened: 120" in summary
    assert "Evaluation on" in summary and "BLESSED: accuracy" in summary and "Pushed to" in summary
    [version] = pushed_versions(root)
    manifest = json.loads((version / "assets.extra" / "push.json").read_text())
    # The task saw its ExecutorInput with gs:// mapped to the root (see storage.py).
    model_uri = Storage(root).to_gcs(manifest["model_uri"])
    assert model_uri.startswith(f"gs://{BUCKET}/root/rehearsal/")
    assert [span["span"] for span in manifest["data"]["spans"]] == [1]
    assert len(recorded(root, "model-registry-upload")) == 1

    # 2. Nothing changed: the cache answers, the blessed model is found, nothing
    # is pushed, uploaded or deployed.
    assert cli(["rehearse", str(spec), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    for task in ("ImportExampleGen", "StatisticsGen", "Transform", "Trainer"):
        assert f"{task}: cached" in out
    assert "latest_blessed_model_resolver-model-resolver: resolved in" in out and "(1 artifact(s))" in out
    assert "already serving, not pushed again" in out and "requests to Vertex AI: none" in out
    assert pushed_versions(root) == [version]
    assert (version / "assets.extra" / "push.json").is_file()
    assert len(recorded(root, "model-registry-upload")) == 1

    # 3. Span 2 arrives; the rehearsal is killed while the Trainer is between epochs.
    write_synthetic_shards(str(data / "span-2"), 60, 1, 2, 64)
    checkpoints = root / "gcs" / BUCKET / "root" / "Trainer" / "checkpoints"
    rehearse_until_a_checkpoint(spec, root, checkpoints)

    # 4. Run again: the data steps come from the cache, the Trainer resumes
    # from its last checkpoint, and the candidate is compared with the blessed model.
    assert cli(["rehearse", str(spec), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "ImportExampleGen: cached" in out and "Trainer: ran" in out and "Evaluator: ran" in out
    trainer_log = sorted((root / "runs").glob("*/Trainer.log"), key=lambda p: p.stat().st_mtime)[-1].read_text()
    total = PRODUCTION["model.epochs"]
    epochs = [int(n) for n in re.findall(rf"Epoch (\d+)/{total}", trainer_log)]
    assert epochs and epochs[0] > 1 and epochs[-1] == total, epochs  # resumed, not started over
    evaluator_input = _executor_input_of(root, "Evaluator")
    assert evaluator_input["inputs"]["artifacts"]["baseline_model"]["artifacts"][0]["uri"] == model_uri
    examples_uri = evaluator_input["inputs"]["artifacts"]["examples"]["artifacts"][0]["uri"]
    lineage = json.loads((Storage(root).local_path(examples_uri) / "data_lineage.json").read_text())
    assert [(span["span"], span["examples"]) for span in lineage["spans"]] == [(1, 120), (2, 60)]
    assert lineage["splits"]["train"]["examples"] + lineage["splits"]["eval"]["examples"] == 180


def _executor_input_of(root: Path, task: str) -> dict:
    """The ExecutorInput the latest run of ``task`` was given."""
    given = sorted((root / "runs").glob(f"*/{task}.executor_input.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(given[-1].read_text(encoding="utf-8"))


# -------------------------------------------------------- the Vertex Training stand-in


def training_job(**machine):
    return {
        "display_name": "tfx_1",
        "job_spec": {
            "service_account": "sa@flowers-test.iam.gserviceaccount.com",
            "worker_pool_specs": [
                {
                    "machine_spec": {"machine_type": "n1-standard-8", **machine},
                    "replica_count": 1,
                    "container_spec": {"image_uri": "image:1", "command": ["python", "-m", "tfx.scripts.run_executor"]},
                }
            ],
        },
    }


def test_training_requests_are_checked_against_aiplatform_types():
    from pipeline.runners.rehearsal.vertex_fake.jobs import RequestRefused, validate_custom_job

    assert validate_custom_job(training_job(accelerator_type="NVIDIA_TESLA_T4", accelerator_count=1))
    tpu = training_job(accelerator_type="TPU_V2", accelerator_count=8)
    tpu["job_spec"]["worker_pool_specs"][0]["machine_spec"]["machine_type"] = "cloud-tpu"
    assert validate_custom_job(tpu)
    with pytest.raises(RequestRefused, match="CustomJob refused"):
        validate_custom_job(training_job(accelerator_type="NVIDIA_TESLA_T99"))
    with pytest.raises(RequestRefused, match="accelerator_count without accelerator_type"):
        validate_custom_job(training_job(accelerator_count=2))
    bad_account = training_job()
    bad_account["job_spec"]["service_account"] = "me"
    with pytest.raises(RequestRefused, match="not a service account"):
        validate_custom_job(bad_account)


@pytest.mark.e2e
@pytest.mark.slow
def test_a_rehearsal_that_fails_still_notifies_from_the_exit_handler(tmp_path, capsys):
    import http.server
    import threading

    from pipeline.config_loading import load_config
    from pipeline.data.synth import write_synthetic_shards
    from pipeline.runners.kubeflow import compile_pipeline

    received = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        settings = {**VERTEX, "model.batch_size": 4096, "notify.webhook": f"http://127.0.0.1:{server.server_port}/hook"}
        spec = compile_pipeline(load_config(overrides=settings, environ={}), tmp_path / "pipeline.json")
        root = tmp_path / "rehearsal"
        write_synthetic_shards(str(root / "gcs" / BUCKET / "data" / "span-1"), 120, 2, 1, 64)
        assert cli(["rehearse", str(spec), "--root", str(root)]) == 1
    finally:
        server.shutdown()
        server.server_close()
    out = capsys.readouterr().out
    assert "error: task DriftGate failed" in out and "RunNotifier: ran" in out
    [body] = received
    assert (body["state"], body["failed_component"]) == ("failed", "DriftGate")
    assert body["text"].startswith("flowers run flowers-") and "FAILED in DriftGate" in body["text"]


# -------------------------------------------------------- Dataflow and the Model Registry stand-ins

DATAFLOW_ARGS = [
    "--runner=DataflowRunner",
    "--project=flowers-test",
    "--region=europe-west4",
    "--temp_location=gs://flowers-rehearsal/root/tmp",
    "--machine_type=n1-standard-4",
    "--max_num_workers=4",
    "--sdk_container_image=europe-west4-docker.pkg.dev/flowers-test/pipelines/flowers-tfx:1",
    "--sdk_location=container",
    "--experiments=use_runner_v2",
]


def test_dataflow_options_are_checked_then_the_direct_runner_takes_over():
    from pipeline.runners.rehearsal import dataflow

    executor_args = [
        "--executor_class_path",
        "tfx.components.statistics_gen.executor.Executor",
        "--json_serialized_invocation_args",
        "{}",
    ]
    args, note = dataflow.localize(executor_args + DATAFLOW_ARGS)
    assert args == executor_args + ["--runner=DirectRunner", DATAFLOW_ARGS[6]]
    assert note.startswith(
        "Dataflow options checked (project flowers-test, region europe-west4, up to 4 x n1-standard-4"
    )
    assert dataflow.localize(executor_args) == (executor_args, "")


@pytest.mark.parametrize(
    "change, refused",
    [
        ("--project=Flowers Test", "Invalid Project ID"),
        ("--temp_location=/tmp/dataflow", "temp_location"),
        ("--max_num_workers=many", "invalid int value"),
        ("--max_num_wrkers=4", "unknown option(s) --max_num_wrkers"),
    ],
)
def test_dataflow_options_that_dataflow_would_refuse_are_named(change, refused):
    from pipeline.runners.rehearsal import dataflow
    from pipeline.runners.rehearsal.vertex_fake import RequestRefused

    name = change.split("=")[0]
    args = [arg for arg in DATAFLOW_ARGS if not arg.startswith(name + "=")] + [change]
    with pytest.raises(RequestRefused, match=re.escape(refused)):
        dataflow.check(args)


def test_the_registry_stand_in_checks_uploads_keeps_versions_and_splits_traffic(tmp_path):
    from google.api_core import exceptions as google_exceptions

    from components.model_registry_pusher import component as pusher
    from pipeline.runners.rehearsal.vertex_fake import RequestRefused, VertexFake

    fake = VertexFake(tmp_path)
    for version in ("1", "2"):
        fake.put_saved_model(f"gs://{BUCKET}/serving/{version}")
    target = pusher.RegistryTarget(
        "flowers-test", "europe-west4", "flowers", "image:1", endpoint="flowers", traffic_percent=10
    )
    with pytest.MonkeyPatch.context() as patch:
        fake.install(patch.setattr, ("registry",))
        with pytest.raises(RequestRefused, match="holds no saved_model.pb"):
            pusher.upload_version(f"gs://{BUCKET}/serving/3", "3", target)
        first = pusher.upload_version(f"gs://{BUCKET}/serving/1", "1", target)
        assert first.versioned_resource_name == "projects/flowers-test/locations/europe-west4/models/flowers@1"
        assert pusher.upload_version(f"gs://{BUCKET}/serving/1", "1", target).version_id == "1"  # found by alias
        pusher.deploy(first, target)
        second = pusher.upload_version(f"gs://{BUCKET}/serving/2", "2", target)
        pusher.deploy(second, target)
        with pytest.raises(google_exceptions.NotFound):
            fake.Model(model_name="flowers@serving-9", project="flowers-test", location="europe-west4")
    # The state is a file under the root, where the next rehearsal finds it.
    again = VertexFake(tmp_path)
    assert [v["version_id"] for v in again.versions("flowers")] == ["1", "2"]
    assert again.traffic("flowers") == {"1": 90, "2": 10}
    assert len(list((tmp_path / "requests").glob("*-model-registry-upload.json"))) == 2
