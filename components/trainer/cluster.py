"""The machines of a multi-worker training job, and which one this process is.

Vertex AI Training starts every replica of every worker pool with the same
command and tells each where it stands in two environment variables:

- ``TF_CONFIG``, TensorFlow's own shape:
  ``{"cluster": {"chief": ["host:port"], "worker": [...]}, "task": {"type": "worker", "index": 0}}``;
- ``CLUSTER_SPEC``, Vertex AI's, with the pools by position:
  ``{"cluster": {"workerpool0": [...], "workerpool1": [...]}, "task": {"type": "workerpool1", "index": 0},
  "environment": "cloud"}``. Pool 0 is the primary replica (TensorFlow's chief),
  pool 1 the workers, pool 2 parameter servers, pool 3 an evaluator; a job
  with the primary alone may name it ``chief`` already.

``TF_CONFIG`` is read when it is there; otherwise ``CLUSTER_SPEC`` is
translated. A job of one machine is no cluster (``None``).

Only the chief writes the Trainer's outputs. The other workers still run
every save the chief runs (under MultiWorkerMirroredStrategy a save may
take part in collective operations), into a temporary folder that is
removed afterwards; then they wait for the chief's export, which TFX
checks on every replica once ``run_fn`` returns.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import shutil
import tempfile
import time
from typing import Mapping, Optional

import tensorflow as tf

# absl, as training.py: its INFO lines reach a Vertex AI job's log (the root logger's do not)
from absl import logging

# Vertex AI's worker pools by position, as TensorFlow names their tasks.
POOL_ROLES = {"workerpool0": "chief", "workerpool1": "worker", "workerpool2": "ps", "workerpool3": "evaluator"}
# AI Platform Training's older name of the chief.
LEGACY_ROLES = {"master": "chief"}
# The tasks that train (parameter servers and evaluators do not).
TRAINING_ROLES = ("chief", "worker")
# How long a worker waits for the chief's export after training.
CHIEF_EXPORT_TIMEOUT_SECONDS = 600


class ClusterError(ValueError):
    """A cluster description this Trainer cannot run under."""


@dataclasses.dataclass(frozen=True)
class Cluster:
    """Every task's address by role, and this process's task."""

    spec: dict  # role -> ["host:port", ...]
    task_type: str
    task_index: int

    @property
    def workers(self) -> int:
        """How many machines train (the chief and the workers)."""
        return sum(len(self.spec.get(role, [])) for role in TRAINING_ROLES)

    @property
    def is_chief(self) -> bool:
        if "chief" in self.spec:
            return self.task_type == "chief"
        return self.task_type == "worker" and self.task_index == 0

    def tf_config(self) -> dict:
        return {"cluster": self.spec, "task": {"type": self.task_type, "index": self.task_index}}

    def resolver(self) -> tf.distribute.cluster_resolver.ClusterResolver:
        return tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec(self.spec), task_type=self.task_type, task_id=self.task_index, rpc_layer="grpc"
        )


def _parse(text: str, variable: str) -> dict:
    try:
        description = json.loads(text)
    except json.JSONDecodeError as error:
        raise ClusterError(f"{variable} is not JSON ({error}): {text[:200]!r}") from None
    if not isinstance(description, dict):
        raise ClusterError(f"{variable} is not a JSON object: {text[:200]!r}")
    return description


def from_description(description: dict, variable: str = "TF_CONFIG") -> Optional[Cluster]:
    """A TF_CONFIG or CLUSTER_SPEC object as a Cluster, roles in TensorFlow's names;
    None when it describes one machine (or no cluster at all)."""
    roles = {**POOL_ROLES, **LEGACY_ROLES}
    cluster = description.get("cluster") or {}
    task = description.get("task") or {}
    spec: dict = {}
    for name, addresses in cluster.items():
        if isinstance(addresses, str):
            addresses = [addresses]
        if addresses:
            spec.setdefault(roles.get(name, name), []).extend(addresses)
    result = Cluster(spec, roles.get(task.get("type", ""), task.get("type", "")), int(task.get("index", 0)))
    if result.workers <= 1:
        return None
    if result.task_type not in spec or not 0 <= result.task_index < len(spec[result.task_type]):
        raise ClusterError(f"{variable}: task {task} is not one of the cluster's tasks {sorted(cluster)}")
    if len(spec.get("chief", [])) > 1:
        raise ClusterError(f"{variable}: a cluster has one chief, not {len(spec['chief'])}")
    return result


def from_environment(environ: Mapping[str, str] = os.environ) -> Optional[Cluster]:
    """The cluster this process is part of: from TF_CONFIG, else from CLUSTER_SPEC."""
    for variable in ("TF_CONFIG", "CLUSTER_SPEC"):
        if environ.get(variable, "").strip():
            return from_description(_parse(environ[variable], variable), variable)
    return None


def outputs_of_this_worker(fn_args, cluster: Optional[Cluster]):
    """``fn_args`` on the chief (or alone); for another worker, a copy whose
    model and model_run folders are a temporary folder of its own."""
    if cluster is None or cluster.is_chief:
        return fn_args
    scratch = tempfile.mkdtemp(prefix=f"trainer-{cluster.task_type}{cluster.task_index}-")
    worker_args = copy.copy(fn_args)
    worker_args.serving_model_dir = os.path.join(scratch, "model")
    worker_args.model_run_dir = os.path.join(scratch, "model_run")
    logging.info(
        "Worker %s %d of %d: the chief writes the outputs, this worker writes into %s",
        cluster.task_type,
        cluster.task_index,
        cluster.workers,
        scratch,
    )
    return worker_args


def finish_worker(
    fn_args, worker_args, timeout_seconds: float = CHIEF_EXPORT_TIMEOUT_SECONDS, poll_seconds: float = 1.0
) -> None:
    """On a worker that is not the chief: removes its temporary outputs and
    waits for the chief's exported model (TimeoutError when it never comes)."""
    if worker_args is fn_args:
        return
    shutil.rmtree(os.path.dirname(worker_args.serving_model_dir), ignore_errors=True)
    exported = os.path.join(fn_args.serving_model_dir, "saved_model.pb")
    deadline = time.monotonic() + timeout_seconds
    while not tf.io.gfile.exists(exported):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the chief wrote no model to {fn_args.serving_model_dir} in {timeout_seconds:.0f} s")
        time.sleep(poll_seconds)


def sharded(dataset: tf.data.Dataset, files: int, workers: int, evaluation: bool) -> tf.data.Dataset:
    """``dataset`` split between the workers: by files for training when
    each worker can have files of its own (none reads another's), by batches
    otherwise. Evaluation is always split by batches: of unevenly filled
    files one worker would get more batches than another, and the collective
    operations of the evaluation would wait for the others forever."""
    by_files = not evaluation and files >= workers
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.FILE if by_files else tf.data.experimental.AutoShardPolicy.DATA
    )
    return dataset.with_options(options)


def wait_for_every_worker(distribution: tf.distribute.Strategy, job: Optional[Cluster]) -> None:
    """Returns once every worker of the job has come this far: one all-reduce
    that completes only when all take part. Before the chief removes the
    shared checkpoint folder, so that no worker is still writing into it."""
    if job is None:
        return
    distribution.reduce(tf.distribute.ReduceOp.SUM, distribution.run(lambda: tf.constant(1.0)), axis=None)
