"""``flowers-tfx rehearse``: the spec users submit, run here as Vertex AI runs it.

The quick tests check the pieces (task order, the ExecutorInput, the gs://
mapping, resolver queries, the command's exit statuses). The end-to-end
test compiles the pipeline for Vertex AI (gs:// pipeline root, serving
directory and data) and rehearses it three times on tiny data: a first
push, a second run that reuses the cache and pushes nothing, and a third on
new shards that trains anew and is compared with the blessed model.
"""

import argparse
import json
from pathlib import Path

import pytest

from pipeline.cli.main import run_command
from pipeline.cli.rehearse_commands import add_rehearse_commands
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
    "data.source": f"gs://{BUCKET}/data/*.tfrec",
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
        "outputDefinitions": {"artifacts": {k: {"artifactType": {"instanceSchema": f"title: {t}\ntype: object\n"}}
                                            for k, t in outputs.items()}},
    }
    spec = {
        "pipelineSpec": {
            "pipelineInfo": {"name": "tiny"},
            "root": {"dag": {"tasks": {
                "B": {"componentRef": {"name": "B"}, "dependentTasks": ["A"],
                      "inputs": {"artifacts": {"examples": {"taskOutputArtifact": {
                          "producerTask": "A", "outputArtifactKey": "examples"}}},
                                 "parameters": {"p": {"runtimeValue": {"constantValue": {"stringValue": "/pipeline/schema/x"}}}}}},
                "A": {"componentRef": {"name": "A"}},
                "R": {"componentRef": {"name": "R"}},
            }}},
            "components": {
                "A": component("A_executor", {"examples": "tfx.Examples"}),
                "B": component("B_executor", {"model": "tfx.Model"}),
                "R": component("R_executor", {"model": "tfx.Model"}),
            },
            "deploymentSpec": {"executors": {
                "A_executor": {"container": {"command": ["python", "-m", "a"], "args": ["{{$}}"]}},
                "B_executor": {"container": {"command": ["python", "-m", "b"], "args": ["{{$}}"]}},
                "R_executor": {"resolver": {"outputArtifactQueries": {"model": {
                    "filter": 'schema_title="tfx.Model" AND state=LIVE'}}}},
            }},
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
    records.add_artifacts("Evaluator", {"blessing": {"artifacts": [
        {**blessing, "name": "r/1", "metadata": {"blessed": 1, "current_model_id": "r/0"}},
        {**blessing, "name": "r/2", "metadata": {"blessed": 0}},
    ]}})
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


@pytest.mark.e2e
@pytest.mark.slow
def test_the_compiled_spec_rehearses_three_times(tmp_path, capsys):
    from pipeline.config import load_config
    from pipeline.data.synth import write_synthetic_shards
    from pipeline.runners.kubeflow import compile_pipeline

    spec = compile_pipeline(load_config(overrides=VERTEX, environ={}), tmp_path / "pipeline.json")
    assert "gs://" in spec.read_text() and str(tmp_path) not in spec.read_text()
    root = tmp_path / "rehearsal"
    data = root / "gcs" / BUCKET / "data"
    write_synthetic_shards(str(data), 120, 2, 1, 64)

    # 1. Everything runs; one version is pushed, with its manifest.
    assert cli(["rehearse", str(spec), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "ImportExampleGen: ran" in out and "Pusher: ran" in out
    [version] = pushed_versions(root)
    manifest = json.loads((version / "assets.extra" / "push.json").read_text())
    # The task saw its ExecutorInput with gs:// mapped to the root (see storage.py).
    model_uri = Storage(root).to_gcs(manifest["model_uri"])
    assert model_uri.startswith(f"gs://{BUCKET}/root/rehearsal/")

    # 2. Nothing changed: the cache answers, the blessed model is found, nothing is pushed.
    assert cli(["rehearse", str(spec), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    for task in ("ImportExampleGen", "StatisticsGen", "Transform", "Trainer"):
        assert f"{task}: cached" in out
    assert "latest_blessed_model_resolver-model-resolver: resolved in" in out and "(1 artifact(s))" in out
    assert "already serving, not pushed again" in out
    assert pushed_versions(root) == [version]
    assert (version / "assets.extra" / "push.json").is_file()

    # 3. New shards: a new fingerprint, so training runs again, against the blessed model.
    write_synthetic_shards(str(root / "gcs" / BUCKET / "new"), 60, 1, 2, 64)
    new_shard = next((root / "gcs" / BUCKET / "new").glob("*.tfrec"))
    new_shard.rename(data / "flowers02-60.tfrec")
    assert cli(["rehearse", str(spec), "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "ImportExampleGen: ran" in out and "Trainer: ran" in out and "Evaluator: ran" in out
    evaluator_input = _executor_input_of(root, "Evaluator")
    assert evaluator_input["inputs"]["artifacts"]["baseline_model"]["artifacts"][0]["uri"] == model_uri


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
            "worker_pool_specs": [{
                "machine_spec": {"machine_type": "n1-standard-8", **machine},
                "replica_count": 1,
                "container_spec": {"image_uri": "image:1", "command": ["python", "-m", "tfx.scripts.run_executor"]},
            }],
        },
    }


def test_training_requests_are_checked_against_aiplatform_types():
    from pipeline.runners.rehearsal.stand_ins import RequestRefused, validate_custom_job

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
def test_a_rehearsal_whose_trainer_fails_still_notifies_from_the_exit_handler(tmp_path, capsys):
    import http.server
    import threading

    from pipeline.config import load_config
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
        write_synthetic_shards(str(root / "gcs" / BUCKET / "data"), 120, 2, 1, 64)
        assert cli(["rehearse", str(spec), "--root", str(root)]) == 1
    finally:
        server.shutdown()
        server.server_close()
    out = capsys.readouterr().out
    assert "error: task Trainer failed" in out and "RunNotifier: ran" in out
    [body] = received
    assert (body["state"], body["failed_component"]) == ("failed", "Trainer")
    assert body["text"].startswith("flowers run flowers-") and "FAILED in Trainer" in body["text"]
