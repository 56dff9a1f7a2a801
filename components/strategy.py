"""Which tf.distribute strategy the Trainer runs under.

A TPU when one resolves (``TPU_NAME``, or a Vertex AI TPU VM), all GPUs
when there are several, and the default strategy (one device) otherwise.
"""

from __future__ import annotations

import logging
import os

import tensorflow as tf


def choose_strategy() -> tf.distribute.Strategy:
    if os.environ.get("TPU_NAME"):
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
        chosen = tf.distribute.TPUStrategy(resolver)
    elif len(tf.config.list_logical_devices("GPU")) > 1:
        chosen = tf.distribute.MirroredStrategy()
    else:
        chosen = tf.distribute.get_strategy()
    logging.info("Distribution strategy %s with %d replica(s)",
                 type(chosen).__name__, chosen.num_replicas_in_sync)
    return chosen
