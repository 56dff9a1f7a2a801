"""A tiny model with the exported model's serving contract, made in a second.

``predict`` and ``batch-predict`` only need a SavedModel whose
``serving_default`` takes encoded images under ``image_bytes`` and returns
``probabilities``, ``class_id`` and ``class_name`` (see
components/trainer/signatures.py). Training one with the pipeline takes
minutes; this one decodes with the same graph (``preprocessing.decode_images``,
pixel budget included) and classifies with a few untrained but fixed
weights, so its answers are deterministic and differ between images.
"""

from __future__ import annotations

from pathlib import Path

from components.shared import tf_environment

tf_environment.configure()  # before TensorFlow loads, whoever imports this first

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

import schema  # noqa: E402
from components.trainer import models, signatures  # noqa: E402
from components.transform import preprocessing  # noqa: E402


class TinyServingModule(tf.Module):
    def __init__(self, image_size: int, seed: int, model_name: str = ""):
        super().__init__()
        self.image_size = image_size
        keras.utils.set_random_seed(seed)
        if model_name:  # one of the model zoo's, untrained: its cost, not its answers
            self.model = models.build_model(model_name, image_size, len(schema.LABELS), weights="none")
            self.labels = tf.constant(list(schema.LABELS))
            return
        self.model = keras.Sequential(
            [
                keras.layers.Input([image_size, image_size, 3]),
                keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
                keras.layers.GlobalAveragePooling2D(),
                # Large weights: untrained, the answers still differ between images.
                keras.layers.Dense(
                    len(schema.LABELS), activation="softmax", kernel_initializer=keras.initializers.RandomNormal(0, 20)
                ),
            ]
        )
        self.labels = tf.constant(list(schema.LABELS))

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=signatures.SERVING_INPUT)])
    def serve(self, image_bytes):
        images = preprocessing.decode_images(image_bytes, self.image_size)
        probabilities = self.model(images, training=False)
        class_id = tf.argmax(probabilities, axis=-1)
        return {
            signatures.PROBABILITIES: probabilities,
            signatures.CLASS_ID: class_id,
            signatures.CLASS_NAME: tf.gather(self.labels, class_id),
        }


def export_tiny_model(export_dir: Path | str, image_size: int = 32, seed: int = 7, model_name: str = "") -> str:
    """Writes the tiny model to ``export_dir`` (a version folder) and returns it;
    with ``model_name``, that model of the zoo (untrained) instead of the tiny one."""
    module = TinyServingModule(image_size, seed, model_name)
    tf.saved_model.save(module, str(export_dir), signatures={"serving_default": module.serve})
    return str(export_dir)
