"""What the pipeline asks of Google Cloud, built from the ``[vertex]`` configuration.

Plain data only (no TFX imports), so each piece can be read and tested alone:

- :func:`validate`: the configuration can run on Vertex AI, or a
  :class:`~pipeline.config.ConfigError` naming the key that is wrong;
- :func:`training_job`: the Vertex AI CustomJob the Trainer starts (machine,
  GPU or TPU, container image, how many machines);
- :func:`dataflow_beam_args`: Apache Beam options that put the Beam steps on
  Dataflow, in the pipeline's own image;
- :func:`model_registry_target`: where the promotion step uploads and deploys.

``pipeline/dag.py`` wires these into the TFX components.
"""

from __future__ import annotations

import dataclasses
import re

from pipeline.config import Config, ConfigError, VertexConfig
from pipeline.errors import FlowersError

# Where the Dockerfile puts the project inside the image. The compiled spec
# names files by their path in the container, not on the compiling machine.
CONTAINER_PROJECT_DIR = "/pipeline"
CONTAINER_SCHEMA_FILE = f"{CONTAINER_PROJECT_DIR}/schema/schema.pbtxt"

# Vertex AI TPU VMs for training: one host with 8 TPU cores (v2-8 or v3-8).
TPU_MACHINE_TYPE = "cloud-tpu"
TPU_CORES = 8

# Kubeflow pipeline names, and with them Vertex AI model IDs, allow only these.
PIPELINE_NAME_PATTERN = re.compile(r"[a-z][a-z0-9-]{0,62}")

# A compiled spec is a PipelineJob (.json) or a PipelineSpec (.yaml).
SPEC_SUFFIXES = (".json", ".yaml", ".yml")


def check_spec_path(path) -> str:
    """``path`` as a string, if it names a .json or .yaml spec; ValueError otherwise."""
    path = str(path)
    if not path.endswith(SPEC_SUFFIXES):
        raise ValueError(f"{path}: a pipeline spec file must end in .json, .yaml or .yml")
    return path


class VertexError(FlowersError):
    """Something to fix before Vertex AI can be used (not a configuration key:
    credentials, a spec file, a schedule); the message says what."""


def _gcs_path(key: str, value: str) -> None:
    if not value.startswith("gs://") or len(value.rstrip("/")) <= len("gs://"):
        raise ConfigError(f"{key} must be a gs:// path on Vertex AI, not {value!r}")


def require_cloud_settings(vertex: VertexConfig) -> None:
    """The settings every Vertex AI call needs: project, region, pipeline root."""
    if not vertex.project:
        raise ConfigError(
            "vertex.project is required for Vertex AI: set it in the [vertex] section "
            "or with --set vertex.project=MY_PROJECT"
        )
    if not vertex.region:
        raise ConfigError("vertex.region is required for Vertex AI, e.g. us-central1")
    _gcs_path("vertex.pipeline_root", vertex.pipeline_root)


def validate(config: Config) -> None:
    """Everything compiling for Vertex AI needs, checked before anything is built."""
    vertex = config.vertex
    require_cloud_settings(vertex)
    if not vertex.image:
        raise ConfigError(
            "vertex.image is required: the container image with this project (see 'Container image' in the README)"
        )
    if not PIPELINE_NAME_PATTERN.fullmatch(config.run.pipeline_name):
        raise ConfigError(
            f"run.pipeline_name {config.run.pipeline_name!r} cannot be used on Vertex AI: "
            "use lowercase letters, digits and hyphens, starting with a letter (at most 63)"
        )
    if not config.data.source:
        raise ConfigError(
            "data.source is required on Vertex AI: a gs:// glob of the shards, e.g. "
            "gs://flowers-public/tfrecords-jpeg-192x192-2/*.tfrec (the synthetic data "
            "set is made on this machine and cannot be read from the cloud)"
        )
    _gcs_path("data.source", config.data.source)
    if config.run.batch_inference_source:
        _gcs_path("run.batch_inference_source", config.run.batch_inference_source)
    for key in ("serving_dir", "dataflow_temp_location"):
        if getattr(vertex, key):
            _gcs_path(f"vertex.{key}", getattr(vertex, key))
    if vertex.accelerator != "none" and not vertex.training:
        raise ConfigError(
            f"vertex.accelerator = {vertex.accelerator} needs vertex.training = true: "
            "accelerators are used by the Trainer on Vertex AI Training"
        )
    if vertex.accelerator == "tpu" and not vertex.tpu_image:
        raise ConfigError(
            "vertex.tpu_image is required when vertex.accelerator = tpu: an image with "
            "TensorFlow for TPU VMs (see Dockerfile.tpu and the README)"
        )
    if vertex.training_replicas > 1 and not vertex.training:
        raise ConfigError(
            f"vertex.training_replicas = {vertex.training_replicas} needs vertex.training = true: "
            "several machines train together on Vertex AI Training only"
        )
    if vertex.training_replicas > 1 and vertex.accelerator == "tpu":
        raise ConfigError(
            "vertex.training_replicas must be 1 with vertex.accelerator = tpu: a TPU VM's 8 cores "
            "train under TPUStrategy on one host; use GPUs or CPUs for several machines"
        )
    if vertex.endpoint and not vertex.upload_model:
        raise ConfigError(
            "vertex.endpoint is set but vertex.upload_model is false; set "
            "vertex.upload_model = true to deploy blessed models to the endpoint"
        )


def _join(base: str, name: str) -> str:
    return f"{base.rstrip('/')}/{name}"


def serving_dir(config: Config) -> str:
    """Where the Pusher writes blessed models on Vertex AI."""
    return config.vertex.serving_dir or _join(config.vertex.pipeline_root, "serving")


def worker_pool_specs(vertex: VertexConfig) -> list[dict]:
    """The training machines: CPU only, with GPUs, or a TPU VM with 8 cores.

    A TPU needs TensorFlow built for TPU VMs, hence its own image. With
    ``training_replicas`` = N > 1, pool 0 holds the chief (Vertex AI's
    primary replica, exactly one) and pool 1 the N - 1 other workers, on the
    same machine in the same image: MultiWorkerMirroredStrategy trains the
    same model on each (``components/trainer/cluster.py`` reads the cluster).
    """
    if vertex.accelerator == "tpu":
        machine = {
            "machine_type": TPU_MACHINE_TYPE,
            "accelerator_type": vertex.tpu_type,
            "accelerator_count": TPU_CORES,
        }
        image = vertex.tpu_image
    elif vertex.accelerator == "gpu":
        machine = {
            "machine_type": vertex.training_machine_type,
            "accelerator_type": vertex.gpu_type,
            "accelerator_count": vertex.gpu_count,
        }
        image = vertex.image
    else:
        machine = {"machine_type": vertex.training_machine_type}
        image = vertex.image
    # TFX sets the containers' command (its run_executor) itself, in every pool.
    pools = [{"machine_spec": machine, "replica_count": 1, "container_spec": {"image_uri": image}}]
    if vertex.training_replicas > 1:
        pools.append(
            {
                "machine_spec": dict(machine),
                "replica_count": vertex.training_replicas - 1,
                "container_spec": {"image_uri": image},
            }
        )
    return pools


def training_job(vertex: VertexConfig) -> dict:
    """The Trainer's Vertex AI CustomJob, as TFX's cloud Trainer takes it
    (``TRAINING_ARGS_KEY``): the project and the job spec."""
    job_spec: dict = {"worker_pool_specs": worker_pool_specs(vertex)}
    if vertex.service_account:
        job_spec["service_account"] = vertex.service_account
    return {"project": vertex.project, "job_spec": job_spec}


def dataflow_temp_location(vertex: VertexConfig) -> str:
    return vertex.dataflow_temp_location or _join(vertex.pipeline_root, "tmp")


def dataflow_beam_args(vertex: VertexConfig) -> list[str]:
    """Beam options that run a component's Beam job on Dataflow.

    The workers use the pipeline's image (``sdk_container_image``): it holds
    the same TFX, TensorFlow and project code as the component that starts
    the job, and the Beam SDK is taken from it rather than staged.
    """
    args = [
        "--runner=DataflowRunner",
        f"--project={vertex.project}",
        f"--region={vertex.region}",
        f"--temp_location={dataflow_temp_location(vertex)}",
        f"--machine_type={vertex.dataflow_machine_type}",
        f"--max_num_workers={vertex.dataflow_max_workers}",
        f"--sdk_container_image={vertex.image}",
        "--sdk_location=container",
        "--experiments=use_runner_v2",
    ]
    if vertex.service_account:
        args.append(f"--service_account_email={vertex.service_account}")
    return args


def model_registry_target(config: Config) -> dict:
    """Parameters of the promotion step (``components.model_registry_pusher.component``).

    Versions go to one registry model whose ID is the pipeline's name.
    """
    vertex = config.vertex
    return {
        "project": vertex.project,
        "region": vertex.region,
        "model_id": config.run.pipeline_name,
        "serving_image": vertex.serving_image,
        "endpoint": vertex.endpoint,
        "machine_type": vertex.serving_machine_type,
        "service_account": vertex.service_account,
        "traffic_percent": vertex.canary_percent,
    }


IMAGE_DIGEST_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")


def pinned_image(image: str, digest: str) -> str:
    """``REPOSITORY@DIGEST`` for ``image`` (its tag, or an older digest, dropped):
    a moved tag cannot change what a spec that names a digest runs."""
    if not IMAGE_DIGEST_PATTERN.fullmatch(digest):
        raise ConfigError(f"--image-digest {digest!r}: not an image digest (sha256: and 64 hexadecimal digits)")
    repository = image.split("@", 1)[0]
    name_start = repository.rfind("/") + 1
    if ":" in repository[name_start:]:  # a tag, not a registry's port
        repository = repository[: name_start + repository[name_start:].index(":")]
    return f"{repository}@{digest}"


def with_image_digest(config: Config, digest: str) -> Config:
    """The configuration with vertex.image named by ``digest``."""
    return dataclasses.replace(
        config, vertex=dataclasses.replace(config.vertex, image=pinned_image(config.vertex.image, digest))
    )
