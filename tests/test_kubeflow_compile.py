"""Compiling for Vertex AI Pipelines: offline, complete, and the same every time.

The compiled files are parsed with kfp's own protos (PipelineJob for .json,
PipelineSpec for .yaml) and checked for what Vertex AI will run: every
component of the DAG in the configured image, the Trainer's Vertex AI
Training job with the requested accelerator, Dataflow options when asked, the
promotion and batch inference steps when asked, and no path of the compiling machine.
"""

import json
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline import vertex_specs
from pipeline.cli.main import main
from pipeline.cli.vertex_commands import describe_compiled
from pipeline.config import ConfigError
from pipeline.config_loading import load_config
from pipeline.runners.kubeflow import compile_pipeline

REPO = Path(__file__).resolve().parents[1]
IMAGE = "us-central1-docker.pkg.dev/flowers-test/pipelines/flowers-tfx:1"
TPU_IMAGE = "us-central1-docker.pkg.dev/flowers-test/pipelines/flowers-tfx-tpu:1"
SERVICE_ACCOUNT = "pipelines@flowers-test.iam.gserviceaccount.com"
VERTEX = {
    "vertex.project": "flowers-test",
    "vertex.region": "europe-west4",
    "vertex.pipeline_root": "gs://flowers-test-bucket/root",
    "vertex.image": IMAGE,
    "data.source": "gs://flowers-public/tfrecords-jpeg-192x192-2/*.tfrec",
}
DAG_TASKS = {
    "ImportExampleGen",
    "StatisticsGen",
    "ImportSchemaGen",
    "ExampleValidator",
    "AnomaliesGate",
    "DriftGate",
    "Transform",
    "Trainer",
    "latest_blessed_model_resolver-model-resolver",
    "latest_blessed_model_resolver-model-blessing-resolver",
    "Evaluator",
    "Pusher",
}
BEAM_TASKS = ("ImportExampleGen", "StatisticsGen", "Transform", "Evaluator")
TRAINING_ARGS_KEY = "ai_platform_training_args"

GPU = {
    "vertex.training": True,
    "vertex.accelerator": "gpu",
    "vertex.gpu_type": "NVIDIA_TESLA_V100",
    "vertex.gpu_count": 2,
}
TPU = {"vertex.training": True, "vertex.accelerator": "tpu", "vertex.tpu_type": "TPU_V2", "vertex.tpu_image": TPU_IMAGE}
CLOUD_EVERYTHING = {
    **GPU,
    "vertex.dataflow": True,
    "vertex.dataflow_max_workers": 7,
    "vertex.service_account": SERVICE_ACCOUNT,
    "vertex.upload_model": True,
    "vertex.endpoint": "flowers-endpoint",
    "run.batch_inference_source": "gs://flowers-test-bucket/photos/*.jpg",
}


def vertex_config(**overrides):
    return load_config(overrides={**VERTEX, **overrides}, environ={})


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """Compiles each configuration once: name -> path of the spec."""
    folder = tmp_path_factory.mktemp("specs")
    variants = {
        "plain.json": {},
        "plain.yaml": {},
        "gpu.json": CLOUD_EVERYTHING,
        "tpu.json": TPU,
    }
    return {name: compile_pipeline(vertex_config(**settings), folder / name) for name, settings in variants.items()}


def pipeline_job(path: Path) -> pipeline_spec_pb2.PipelineJob:
    return json_format.Parse(path.read_text(), pipeline_spec_pb2.PipelineJob())


def as_dict(message) -> dict:
    return json_format.MessageToDict(message)


def executor(spec: dict, task: str) -> dict:
    label = spec["components"][spec["root"]["dag"]["tasks"][task]["componentRef"]["name"]]["executorLabel"]
    return spec["deploymentSpec"]["executors"][label]


def parameter(spec: dict, task: str, name: str) -> str:
    inputs = spec["root"]["dag"]["tasks"][task]["inputs"]["parameters"]
    return inputs[name]["runtimeValue"]["constantValue"]["stringValue"]


def test_json_is_a_pipeline_job_with_every_component_in_the_configured_image(compiled):
    job = pipeline_job(compiled["plain.json"])
    assert job.runtime_config.gcs_output_directory == VERTEX["vertex.pipeline_root"]
    assert job.display_name == "flowers"
    spec = as_dict(job.pipeline_spec)
    assert spec["pipelineInfo"]["name"] == "flowers"
    assert set(spec["root"]["dag"]["tasks"]) == DAG_TASKS
    containers = {
        task: executor(spec, task)["container"]
        for task in DAG_TASKS
        if "container" in executor(spec, task)  # the resolvers are Vertex AI's own queries
    }
    assert set(containers) == DAG_TASKS - {t for t in DAG_TASKS if t.startswith("latest_blessed")}
    for task, container in containers.items():
        assert container["image"] == IMAGE, task
        assert container["command"][-1] == "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"


def test_code_is_referenced_by_dotted_path_and_files_by_their_path_in_the_image(compiled):
    text = compiled["plain.json"].read_text()
    spec = json.loads(text)["pipelineSpec"]
    assert parameter(spec, "Trainer", "run_fn") == "components.trainer.training.run_fn"
    assert parameter(spec, "Transform", "preprocessing_fn") == "components.transform.preprocessing.preprocessing_fn"
    assert parameter(spec, "ImportSchemaGen", "schema_file") == vertex_specs.CONTAINER_SCHEMA_FILE
    assert str(REPO) not in text, "the spec names a path of the compiling machine"
    # The Dockerfile puts the project where the spec looks for it.
    dockerfile = (REPO / "Dockerfile").read_text()
    assert f"WORKDIR {vertex_specs.CONTAINER_PROJECT_DIR}" in dockerfile
    assert "COPY schema/ schema/" in dockerfile


def test_data_is_read_from_the_configured_bucket(compiled):
    spec = json.loads(compiled["plain.json"].read_text())["pipelineSpec"]
    assert parameter(spec, "ImportExampleGen", "input_base") == "gs://flowers-public/tfrecords-jpeg-192x192-2"
    assert "*.tfrec" in parameter(spec, "ImportExampleGen", "input_config")


def test_without_cloud_options_training_runs_in_the_pipeline_and_beam_locally(compiled):
    spec = json.loads(compiled["plain.json"].read_text())["pipelineSpec"]
    custom_config = json.loads(parameter(spec, "Trainer", "custom_config"))
    assert TRAINING_ARGS_KEY not in custom_config
    assert executor(spec, "Trainer")["container"]["args"][1] == "tfx.components.trainer.executor.GenericExecutor"
    for task in BEAM_TASKS:
        assert not any("DataflowRunner" in arg for arg in executor(spec, task)["container"]["args"])
    assert "ModelRegistryPusher" not in spec["root"]["dag"]["tasks"]
    assert "BatchInference" not in spec["root"]["dag"]["tasks"]  # run.batch_inference_source is empty


def test_the_trainer_asks_vertex_training_for_the_gpus(compiled):
    spec = json.loads(compiled["gpu.json"].read_text())["pipelineSpec"]
    assert executor(spec, "Trainer")["container"]["args"][1] == (
        "tfx.extensions.google_cloud_ai_platform.trainer.executor.GenericExecutor"
    )
    custom_config = json.loads(parameter(spec, "Trainer", "custom_config"))
    assert custom_config["ai_platform_enable_vertex"] is True
    assert custom_config["ai_platform_vertex_region"] == "europe-west4"
    job = custom_config[TRAINING_ARGS_KEY]
    assert job["project"] == "flowers-test"
    assert job["job_spec"]["service_account"] == SERVICE_ACCOUNT
    (pool,) = job["job_spec"]["worker_pool_specs"]
    assert pool["machine_spec"] == {
        "machine_type": "n1-standard-8",
        "accelerator_type": "NVIDIA_TESLA_V100",
        "accelerator_count": 2,
    }
    assert pool["replica_count"] == 1
    assert pool["container_spec"] == {"image_uri": IMAGE}
    # run_fn still finds its own settings.
    assert custom_config["model"]["name"] == "convnet"
    assert custom_config["labels"] == ["daisy", "dandelion", "roses", "sunflowers", "tulips"]


def test_the_trainer_asks_for_a_tpu_vm_in_the_tpu_image(compiled):
    spec = json.loads(compiled["tpu.json"].read_text())["pipelineSpec"]
    (pool,) = json.loads(parameter(spec, "Trainer", "custom_config"))[TRAINING_ARGS_KEY]["job_spec"][
        "worker_pool_specs"
    ]
    assert pool["machine_spec"] == {"machine_type": "cloud-tpu", "accelerator_type": "TPU_V2", "accelerator_count": 8}
    assert pool["container_spec"] == {"image_uri": TPU_IMAGE}
    # The component that starts the job runs in the ordinary image.
    assert executor(spec, "Trainer")["container"]["image"] == IMAGE


def test_beam_steps_go_to_dataflow_in_the_same_image(compiled):
    spec = json.loads(compiled["gpu.json"].read_text())["pipelineSpec"]
    for task in (*BEAM_TASKS, "BatchInference"):  # the last one when run.batch_inference_source is set
        args = executor(spec, task)["container"]["args"]
        for expected in (
            "--runner=DataflowRunner",
            "--project=flowers-test",
            "--region=europe-west4",
            "--temp_location=gs://flowers-test-bucket/root/tmp",
            "--machine_type=n1-standard-4",
            "--max_num_workers=7",
            f"--sdk_container_image={IMAGE}",
            f"--service_account_email={SERVICE_ACCOUNT}",
        ):
            assert expected in args, (task, expected)
        assert not any(arg.startswith("--direct_") for arg in args), task


def test_promotion_uploads_what_the_pusher_pushed(compiled):
    spec = json.loads(compiled["gpu.json"].read_text())["pipelineSpec"]
    task = spec["root"]["dag"]["tasks"]["ModelRegistryPusher"]
    source = task["inputs"]["artifacts"]["pushed_model"]["taskOutputArtifact"]
    assert source == {"producerTask": "Pusher", "outputArtifactKey": "pushed_model"}
    assert executor(spec, "ModelRegistryPusher")["container"]["image"] == IMAGE
    expected = {
        "project": "flowers-test",
        "region": "europe-west4",
        "model_id": "flowers",
        "endpoint": "flowers-endpoint",
        "serving_image": "us-docker.pkg.dev/vertex-ai/prediction/tf2-cpu.2-16:latest",
        "service_account": SERVICE_ACCOUNT,
    }
    for name, value in expected.items():
        assert parameter(spec, "ModelRegistryPusher", name) == value
    # The filesystem push goes to the bucket, next to the pipeline root.
    destination = json.loads(parameter(spec, "Pusher", "push_destination"))
    assert destination["filesystem"]["base_directory"] == "gs://flowers-test-bucket/root/serving"


def test_batch_inference_runs_on_what_the_pusher_pushed_with_the_beam_steps_options(compiled):
    spec = json.loads(compiled["gpu.json"].read_text())["pipelineSpec"]
    task = spec["root"]["dag"]["tasks"]["BatchInference"]
    source = task["inputs"]["artifacts"]["pushed_model"]["taskOutputArtifact"]
    assert source == {"producerTask": "Pusher", "outputArtifactKey": "pushed_model"}
    assert parameter(spec, "BatchInference", "input_glob") == "gs://flowers-test-bucket/photos/*.jpg"
    container = executor(spec, "BatchInference")["container"]
    assert container["image"] == IMAGE
    assert "components.batch_inference.executor.Executor" in container["args"]
    # Its Beam job goes to Dataflow with the other Beam steps: see the test above.
    described = describe_compiled(vertex_config(**CLOUD_EVERYTHING), compiled["gpu.json"])
    assert "inference   BatchInference over gs://flowers-test-bucket/photos/*.jpg after each push" in described
    assert "BatchInference" not in describe_compiled(vertex_config(), compiled["plain.json"])


def test_yaml_is_the_pipeline_spec(compiled):
    text = compiled["plain.yaml"].read_text()
    spec = json_format.ParseDict(yaml.safe_load(text), pipeline_spec_pb2.PipelineSpec())
    assert set(spec.root.dag.tasks) == DAG_TASKS
    expected = as_dict(pipeline_job(compiled["plain.json"]).pipeline_spec)
    assert as_dict(spec) == expected


@pytest.mark.parametrize("name", ["plain.json", "plain.yaml", "gpu.json"])
def test_compiling_twice_gives_the_same_bytes(compiled, name, tmp_path):
    settings = CLOUD_EVERYTHING if name.startswith("gpu") else {}
    again = compile_pipeline(vertex_config(**settings), tmp_path / name)
    assert again.read_bytes() == compiled[name].read_bytes()


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"vertex.project": ""}, "vertex.project is required"),
        ({"vertex.pipeline_root": "/tmp/root"}, "vertex.pipeline_root must be a gs:// path"),
        ({"vertex.image": ""}, "vertex.image is required"),
        ({"data.source": ""}, "data.source is required on Vertex AI"),
        ({"data.source": "data/*.tfrec"}, "data.source must be a gs:// path"),
        ({"vertex.serving_dir": "serving"}, "vertex.serving_dir must be a gs:// path"),
        ({"vertex.accelerator": "gpu"}, "needs vertex.training = true"),
        ({"vertex.training": True, "vertex.accelerator": "tpu"}, "vertex.tpu_image is required"),
        ({"vertex.endpoint": "e"}, "vertex.upload_model is false"),
        ({"run.pipeline_name": "Flowers_Pipeline"}, "run.pipeline_name"),
        ({"run.batch_inference_source": "photos/*.jpg"}, "run.batch_inference_source must be a gs:// path"),
    ],
)
def test_a_configuration_that_cannot_run_on_vertex_names_the_key(settings, message):
    with pytest.raises(ConfigError, match=message):
        vertex_specs.validate(vertex_config(**settings))


def test_compile_command(tmp_path, capsys):
    out = tmp_path / "pipeline.json"
    args = ["compile", "--out", str(out)] + [f"--set={key}={value}" for key, value in {**VERTEX, **TPU}.items()]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert f"Wrote {out}" in printed
    assert "Vertex AI Training on cloud-tpu with 8 x TPU_V2" in printed
    assert set(as_dict(pipeline_job(out).pipeline_spec)["root"]["dag"]["tasks"]) == DAG_TASKS


def test_compile_command_refuses_a_local_data_source(tmp_path, capsys):
    args = ["compile", "--out", str(tmp_path / "p.json")] + [f"--set={k}={v}" for k, v in VERTEX.items()]
    assert main(args + ["--set", "data.source="]) == 2
    assert "data.source is required on Vertex AI" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()


def test_compile_command_wants_json_or_yaml(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["compile", "--out", "pipeline.txt"])
    assert exit_info.value.code == 2
    assert "must end in .json, .yaml or .yml" in capsys.readouterr().err
