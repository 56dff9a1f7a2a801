"""Which tf.distribute strategy the Trainer runs under, and its precision.

``auto`` picks a TPU when one resolves (``TPU_NAME``, or the local TPU of a
Vertex AI / Cloud TPU VM), every worker of a multi-machine job when the job
describes a cluster (``TF_CONFIG`` or Vertex AI's ``CLUSTER_SPEC``, see
``cluster.py``; all the GPUs of each machine take part), all GPUs when there
are several, and the default strategy (one device: a GPU or the CPU)
otherwise. Configuration can force a choice. The same model code then runs
unchanged on all of them.
"""

from __future__ import annotations

import os
from typing import Callable, Optional

import tensorflow as tf
import tf_keras as keras

# absl, as training.py: its INFO lines reach a Vertex AI job's log (the root logger's do not)
from absl import logging

from components.trainer import cluster as clusters
from components.trainer.choices import STRATEGIES, check


def _resolve_tpu() -> Optional[tf.distribute.cluster_resolver.TPUClusterResolver]:
    """A resolver for the TPU this process can use, or None when there is none."""
    name = os.environ.get("TPU_NAME")
    on_tpu_vm = os.path.exists("/dev/accel0") or bool(os.environ.get("TPU_ACCELERATOR_TYPE"))
    if not name and not on_tpu_vm:
        return None
    try:
        return tf.distribute.cluster_resolver.TPUClusterResolver(tpu=name or "local")
    except (ValueError, RuntimeError) as error:
        logging.warning("No TPU resolved (%s); not using a TPU", error)
        return None


def choose_strategy(
    preference: str = "auto",
    resolve_tpu: Callable[[], object] = _resolve_tpu,
    gpu_count: Callable[[], int] = lambda: len(tf.config.list_logical_devices("GPU")),
    find_cluster: Callable[[], Optional[clusters.Cluster]] = clusters.from_environment,
) -> tf.distribute.Strategy:
    """The strategy for ``preference``; ``resolve_tpu``, ``gpu_count`` and
    ``find_cluster`` are parameters so that tests can pretend a TPU, GPUs or
    other machines are there."""
    check("strategy", preference, STRATEGIES)
    chosen = None
    if preference in ("auto", "tpu"):
        resolver = resolve_tpu()
        if resolver is not None:
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            chosen = tf.distribute.TPUStrategy(resolver)
        elif preference == "tpu":
            raise RuntimeError("model.strategy is 'tpu' but no TPU resolved (set TPU_NAME, or run on a TPU VM)")
    job = find_cluster() if chosen is None else None
    if job is not None and preference == "auto":
        # Every worker's variables stay in sync by all-reduce over gRPC.
        chosen = tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=job.resolver())
        logging.info("Worker %s %d of a cluster of %d machines", job.task_type, job.task_index, job.workers)
    elif job is not None:
        logging.warning(
            "model.strategy is %r in a job of %d machines: each trains alone and only the chief's model is kept",
            preference,
            job.workers,
        )
    if chosen is None and (preference == "mirrored" or (preference == "auto" and gpu_count() > 1)):
        chosen = tf.distribute.MirroredStrategy()
    if chosen is None:
        chosen = tf.distribute.get_strategy()
    logging.info("Distribution strategy: %s with %d replica(s)", type(chosen).__name__, chosen.num_replicas_in_sync)
    return chosen


def is_tpu(strategy: tf.distribute.Strategy) -> bool:
    return isinstance(strategy, (tf.distribute.TPUStrategy, tf.distribute.experimental.TPUStrategy))


def set_precision(preference: str, strategy: tf.distribute.Strategy) -> str:
    """Sets Keras' global dtype policy: bfloat16 on TPU when ``auto``.

    The models keep their softmax in float32 whatever the policy.
    """
    policy = {"auto": "mixed_bfloat16" if is_tpu(strategy) else "float32", "off": "float32"}.get(preference, preference)
    keras.mixed_precision.set_global_policy(policy)
    logging.info("Precision policy: %s", policy)
    return policy
