"""The Trainer on several machines: the cluster a job describes, and two
worker processes training one model together.

Vertex AI Training runs every replica with the same command and the same
output folders; ``run_fn`` must train under MultiWorkerMirroredStrategy,
let only the chief export, and leave no worker's files behind. Here two
processes on 127.0.0.1 stand for the two machines (TensorFlow's collective
operations run over gRPC on loopback), with the CLUSTER_SPEC Vertex AI
would give them.
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tensorflow as tf
from test_trainer import data, fn_args  # noqa: F401  (data is the fixture of tiny shards and a transform graph)

from components.trainer import cluster as clusters
from components.trainer import strategy, training
from pipeline.data.synth import synthetic_jpeg

PROJECT_DIR = Path(__file__).resolve().parents[1]
# Each worker process may take this long (imports, joining the cluster, training, export).
WORKER_TIMEOUT_SECONDS = 240

# One Trainer process: run_fn with the fn_args TFX would give it, as JSON.
WORKER_SCRIPT = (
    "import json, logging, sys\n"
    "from types import SimpleNamespace\n"
    "logging.basicConfig(level=logging.INFO)\n"
    "from absl import logging as absl_logging\n"
    "absl_logging.set_verbosity(absl_logging.INFO)\n"
    "from components.trainer import training\n"
    "training.run_fn(SimpleNamespace(**json.loads(sys.argv[1])))\n"
)


def vertex_cluster_spec(addresses: list[str], pool: str, index: int) -> str:
    """CLUSTER_SPEC as Vertex AI sets it: pool 0 holds the chief, pool 1 the other workers."""
    return json.dumps(
        {
            "cluster": {"workerpool0": addresses[:1], "workerpool1": addresses[1:]},
            "environment": "cloud",
            "task": {"type": pool, "index": index, "trial": ""},
            "job": '{"python_module": "", "package_uris": []}',
        }
    )


# ------------------------------------------------------------------ reading the cluster


def test_vertex_cluster_spec_becomes_tensorflow_roles():
    spec = vertex_cluster_spec(["10.0.0.1:2222", "10.0.0.2:2222", "10.0.0.3:2222"], "workerpool1", 1)
    job = clusters.from_environment({"CLUSTER_SPEC": spec})
    assert job.spec == {"chief": ["10.0.0.1:2222"], "worker": ["10.0.0.2:2222", "10.0.0.3:2222"]}
    assert (job.task_type, job.task_index, job.workers, job.is_chief) == ("worker", 1, 3, False)
    chief = clusters.from_environment({"CLUSTER_SPEC": vertex_cluster_spec(["a:1", "b:2"], "workerpool0", 0)})
    assert chief.is_chief and chief.tf_config()["task"] == {"type": "chief", "index": 0}


def test_tf_config_wins_over_cluster_spec_and_worker_zero_is_chief_without_a_chief():
    tf_config = json.dumps({"cluster": {"worker": ["a:1", "b:2"]}, "task": {"type": "worker", "index": 0}})
    job = clusters.from_environment(
        {"TF_CONFIG": tf_config, "CLUSTER_SPEC": vertex_cluster_spec(["c:3", "d:4"], "workerpool1", 0)}
    )
    assert job.spec == {"worker": ["a:1", "b:2"]} and job.is_chief
    resolver = job.resolver()
    assert resolver.cluster_spec().as_dict() == {"worker": ["a:1", "b:2"]}
    assert (resolver.task_type, resolver.task_id) == ("worker", 0)


def test_one_machine_is_no_cluster():
    assert clusters.from_environment({}) is None
    # Vertex AI names a lone primary replica "chief"; parameter servers and evaluators do not train.
    alone = {"cluster": {"chief": ["a:1"], "evaluator": ["e:1"]}, "task": {"type": "chief", "index": 0}}
    assert clusters.from_environment({"CLUSTER_SPEC": json.dumps(alone)}) is None


@pytest.mark.parametrize(
    "text, message",
    [
        ("{not json", "not JSON"),
        (
            '{"cluster": {"workerpool0": ["a:1"], "workerpool1": ["b:1"]}, '
            '"task": {"type": "workerpool1", "index": 3}}',
            "is not one of the cluster's tasks",
        ),
    ],
)
def test_a_broken_cluster_description_is_refused_naming_the_variable(text, message):
    with pytest.raises(clusters.ClusterError, match=message) as error:
        clusters.from_environment({"CLUSTER_SPEC": text})
    assert "CLUSTER_SPEC" in str(error.value)


def test_auto_strategy_goes_multi_worker_only_in_a_cluster(monkeypatch):
    from types import SimpleNamespace

    built = []
    fake = SimpleNamespace(num_replicas_in_sync=2)
    monkeypatch.setattr(tf.distribute, "MultiWorkerMirroredStrategy", lambda **kwargs: built.append(kwargs) or fake)
    job = clusters.from_environment({"CLUSTER_SPEC": vertex_cluster_spec(["a:1", "b:2"], "workerpool1", 0)})
    no_tpu = lambda: None  # noqa: E731
    assert strategy.choose_strategy("auto", no_tpu, lambda: 0, lambda: job) is fake
    assert built[0]["cluster_resolver"].task_type == "worker"
    monkeypatch.undo()
    alone = strategy.choose_strategy("auto", no_tpu, lambda: 0, lambda: None)
    assert not isinstance(alone, tf.distribute.MultiWorkerMirroredStrategy)


def test_only_the_chief_keeps_its_outputs(tmp_path):
    from types import SimpleNamespace

    args = SimpleNamespace(
        serving_model_dir=str(tmp_path / "model"), model_run_dir=str(tmp_path / "run"), train_files=["x"]
    )
    chief = clusters.from_environment({"CLUSTER_SPEC": vertex_cluster_spec(["a:1", "b:2"], "workerpool0", 0)})
    assert clusters.outputs_of_this_worker(args, chief) is args
    assert clusters.outputs_of_this_worker(args, None) is args
    worker = clusters.from_environment({"CLUSTER_SPEC": vertex_cluster_spec(["a:1", "b:2"], "workerpool1", 0)})
    own = clusters.outputs_of_this_worker(args, worker)
    assert own.train_files == ["x"] and str(tmp_path) not in own.serving_model_dir + own.model_run_dir
    os.makedirs(own.serving_model_dir)
    with pytest.raises(TimeoutError, match="the chief wrote no model"):
        clusters.finish_worker(args, own, timeout_seconds=0.2, poll_seconds=0.05)
    assert not os.path.exists(os.path.dirname(own.serving_model_dir))  # removed even so


def test_training_is_split_by_files_when_each_worker_has_some_and_evaluation_always_by_batches():
    policy = tf.data.experimental.AutoShardPolicy
    dataset = tf.data.Dataset.range(4)

    def chosen(files, workers, evaluation):
        return clusters.sharded(dataset, files, workers, evaluation).options().experimental_distribute.auto_shard_policy

    assert chosen(files=4, workers=2, evaluation=False) == policy.FILE
    assert chosen(files=1, workers=2, evaluation=False) == policy.DATA  # FILE would fail: too few files
    assert chosen(files=4, workers=2, evaluation=True) == policy.DATA


# ------------------------------------------------------------ the job Vertex AI is asked for

VERTEX = {
    "vertex.project": "flowers-test",
    "vertex.region": "europe-west4",
    "vertex.pipeline_root": "gs://flowers-test-bucket/root",
    "vertex.image": "us-central1-docker.pkg.dev/flowers-test/pipelines/flowers-tfx:1",
    "data.source": "gs://flowers-public/tfrecords-jpeg-192x192-2/*.tfrec",
    "vertex.training": True,
    "vertex.accelerator": "gpu",
    "vertex.gpu_count": 2,
}


def vertex_config(**overrides):
    from pipeline.config_loading import load_config

    return load_config(overrides={**VERTEX, **overrides}, environ={})


def test_one_replica_is_one_pool_and_several_are_a_chief_and_a_pool_of_workers():
    from pipeline import vertex_specs

    (alone,) = vertex_specs.worker_pool_specs(vertex_config().vertex)
    assert alone["replica_count"] == 1
    chief, workers = vertex_specs.worker_pool_specs(vertex_config(**{"vertex.training_replicas": 4}).vertex)
    assert (chief["replica_count"], workers["replica_count"]) == (1, 3)
    assert (
        chief["machine_spec"]
        == workers["machine_spec"]
        == {
            "machine_type": "n1-standard-8",
            "accelerator_type": "NVIDIA_TESLA_T4",
            "accelerator_count": 2,
        }
    )
    assert chief["container_spec"] == workers["container_spec"] == {"image_uri": VERTEX["vertex.image"]}


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"vertex.training": False, "vertex.accelerator": "none"}, "needs vertex.training = true"),
        ({"vertex.accelerator": "tpu", "vertex.tpu_image": "tpu:1"}, "must be 1 with vertex.accelerator = tpu"),
    ],
)
def test_several_training_machines_need_vertex_training_and_no_tpu(settings, message):
    from pipeline import vertex_specs
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        vertex_specs.validate(vertex_config(**{"vertex.training_replicas": 2, **settings}))
    with pytest.raises(ConfigError, match="vertex.training_replicas"):
        vertex_config(**{"vertex.training_replicas": 0})


def test_the_compiled_spec_asks_for_both_pools_and_vertex_accepts_the_job(tmp_path):
    """The job as TFX submits it (its command in every pool), checked with
    google-cloud-aiplatform's own CustomJob type."""
    from tfx.extensions.google_cloud_ai_platform import training_clients

    from pipeline.runners.kubeflow import compile_pipeline
    from pipeline.runners.rehearsal.vertex_fake.jobs import validate_custom_job

    path = compile_pipeline(vertex_config(**{"vertex.training_replicas": 3}), tmp_path / "pipeline.json")
    spec = json.loads(path.read_text())["pipelineSpec"]
    parameters = spec["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]
    custom_config = json.loads(parameters["custom_config"]["runtimeValue"]["constantValue"]["stringValue"])
    job = custom_config["ai_platform_training_args"]
    pools = job["job_spec"]["worker_pool_specs"]
    assert [pool["replica_count"] for pool in pools] == [1, 2]
    client = training_clients.VertexJobClient.__new__(training_clients.VertexJobClient)  # no Google client
    request = client.create_training_job({}, {}, {}, "tfx.components.trainer.executor.GenericExecutor", job, None, None)
    submitted = validate_custom_job(request)
    commands = [list(pool.container_spec.command) for pool in submitted.job_spec.worker_pool_specs]
    assert len(commands) == 2 and commands[0] == commands[1] and commands[0]


# ------------------------------------------------------------ two machines, one model


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


@pytest.mark.slow  # two TensorFlow processes train a model together
def test_two_workers_train_one_model_and_only_the_chief_exports_it(data, tmp_path):  # noqa: F811
    args = fn_args(data, 11, epochs=2, seed=3, cache_mb=0, lr_schedule="constant")
    addresses = [f"127.0.0.1:{port}" for port in free_ports(2)]
    scratch = tmp_path / "tmp"  # the workers' temporary folders, to see that none is left
    scratch.mkdir()
    processes = []
    try:
        for pool in ("workerpool0", "workerpool1"):
            env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "CLUSTER_SPEC")}
            env.update(CLUSTER_SPEC=vertex_cluster_spec(addresses, pool, 0), TMPDIR=str(scratch), PYTHONUNBUFFERED="1")
            log = open(tmp_path / f"{pool}.log", "w")
            processes.append(
                (
                    pool,
                    log,
                    subprocess.Popen(
                        [sys.executable, "-c", WORKER_SCRIPT, json.dumps(vars(args))],
                        cwd=PROJECT_DIR,
                        env=env,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                    ),
                )
            )
        deadline = time.monotonic() + WORKER_TIMEOUT_SECONDS
        for _pool, _log, process in processes:
            process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for _pool, _log, process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    logs = {pool: (tmp_path / f"{pool}.log").read_text() for pool, _, _ in processes}
    for pool, _, process in processes:
        assert process.returncode == 0, f"{pool} failed:\n{logs[pool][-4000:]}"
        # MultiWorkerMirroredStrategy is TensorFlow's CollectiveAllReduceStrategy.
        assert "CollectiveAllReduceStrategy with 2 replica(s)" in logs[pool]
    assert "Worker chief 0 of a cluster of 2 machines" in logs["workerpool0"]
    assert "the chief writes the outputs" in logs["workerpool1"]
    # One model trained in step: the same curves on both, at twice one replica's rate (0.001, held constant).
    epochs = {pool: re.findall(r"Epoch \d+/2: .*", text) for pool, text in logs.items()}
    assert len(epochs["workerpool0"]) == 2 and epochs["workerpool0"] == epochs["workerpool1"]
    assert all(line.endswith("lr 0.002") for line in epochs["workerpool0"])

    # One model, the chief's, where TFX looks for it; no worker's copy, no checkpoints left.
    model_root = data / "Trainer" / "model"
    assert sorted(p.name for p in model_root.iterdir()) == ["11"]
    assert (Path(args.serving_model_dir) / "saved_model.pb").exists()
    assert [p.name for p in scratch.iterdir() if p.name.startswith("trainer-")] == []
    assert not tf.io.gfile.exists(training.backup_dir(args, args.custom_config["model"]))
    history = json.loads((Path(args.model_run_dir) / "history.json").read_text())
    assert len(history["epochs"]["loss"]) == 2

    model = tf.saved_model.load(args.serving_model_dir)
    jpegs = [synthetic_jpeg(5, i, i % 5, 60) for i in range(3)]
    outputs = model.signatures["serving_default"](image_bytes=tf.constant(jpegs))
    assert outputs["probabilities"].shape == (3, 5)
    assert set(outputs) == {"probabilities", "class_id", "class_name"}
