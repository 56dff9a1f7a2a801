"""The exported model's serving signatures.

``serving_default`` takes a batch of encoded images (JPEG or PNG, any size)
under the input ``image_bytes``; the ``_bytes`` suffix is what lets TF
Serving's REST API accept ``{"b64": ...}`` values. ``from_examples`` takes
serialized tf.Examples in the raw record format, for the Evaluator. Both run
the transform graph that training used, then the model, and return class
probabilities, the top class id and its name. The label vocabulary is a
constant inside the graph, so the model needs no side file.

The pixel budget (``data.max_image_pixels``) comes with the transform graph:
``preprocessing.decode_images`` reads every image's size from its header and
fails the request with InvalidArgumentError ("... over the budget of N
pixels ...") before decoding anything, so TF Serving and Vertex AI
prediction answer a decompression bomb with an error (HTTP 400) instead of
running out of memory. The budget is the one Transform was given, i.e. the
one the training data was screened with; reading it from the transform
output rather than from the Trainer's own settings means the two can never
disagree.
"""

from __future__ import annotations

import os

import tensorflow as tf
import tensorflow_transform as tft
import tf_keras as keras
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

# tf_keras' switch for what model.save(save_traces=False) does; no public API
# reaches it from tf.saved_model.save.
from tf_keras.src.saving.legacy.saved_model.utils import keras_option_scope

from components.records import features

SERVING_INPUT = "image_bytes"
EXAMPLES_SIGNATURE = "from_examples"
EXAMPLES_INPUT = "examples"
PROBABILITIES = "probabilities"
CLASS_ID = "class_id"
CLASS_NAME = "class_name"
# TF Serving replays these requests when it loads a version, so the first
# real request does not pay for graph initialization.
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")


class ServingModule(tf.Module):
    """Holds the Keras model, the transform layer and the labels for export."""

    def __init__(self, model: keras.Model, tf_transform_output: tft.TFTransformOutput, labels):
        super().__init__()
        self.model = model
        self.transform_layer = tf_transform_output.transform_features_layer()
        self.labels = tf.constant(list(labels), dtype=tf.string)

    def _classify(self, encoded_images: tf.Tensor) -> dict[str, tf.Tensor]:
        raw = {features.IMAGE: tf.reshape(encoded_images, [-1, 1])}
        images = self.transform_layer(raw)[features.IMAGE]
        probabilities = self.model(images, training=False)
        class_id = tf.argmax(probabilities, axis=-1)
        return {
            PROBABILITIES: probabilities,
            CLASS_ID: class_id,
            CLASS_NAME: tf.gather(self.labels, class_id),
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=SERVING_INPUT)])
    def serve_image_bytes(self, image_bytes):
        return self._classify(image_bytes)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=EXAMPLES_INPUT)])
    def serve_examples(self, examples):
        parsed = tf.io.parse_example(examples, {features.IMAGE: tf.io.FixedLenFeature([1], tf.string)})
        return self._classify(parsed[features.IMAGE])


def write_warmup_requests(export_dir: str, encoded_images: list[bytes]) -> str:
    """Writes one PredictionLog per image, as TF Serving's warmup file wants."""
    path = os.path.join(export_dir, WARMUP_FILE)
    tf.io.gfile.makedirs(os.path.dirname(path))
    with tf.io.TFRecordWriter(path) as writer:
        for encoded in encoded_images:
            request = predict_pb2.PredictRequest()
            request.model_spec.signature_name = "serving_default"
            request.inputs[SERVING_INPUT].CopyFrom(tf.make_tensor_proto([encoded], dtype=tf.string))
            log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
            writer.write(log.SerializeToString())
    return path


def export_serving_model(
    model: keras.Model,
    tf_transform_output: tft.TFTransformOutput,
    labels,
    export_dir: str,
    warmup_images: list[bytes] = (),
) -> None:
    """Writes a SavedModel with both signatures to ``export_dir``, and
    warmup requests made of ``warmup_images`` (real encoded photos)."""
    module = ServingModule(model, tf_transform_output, labels)
    # save_traces=False: Keras would otherwise trace every layer's call for
    # keras.models.load_model to revive them: over half the CPU time of an
    # export (28-37 s against 12 s for a 32-pixel MobileNetV2). Everything
    # loads the export with tf.saved_model.load and calls its signatures,
    # which are saved either way.
    with keras_option_scope(save_traces=False, in_tf_saved_model_scope=False):
        tf.saved_model.save(
            module,
            export_dir,
            signatures={
                "serving_default": module.serve_image_bytes,
                EXAMPLES_SIGNATURE: module.serve_examples,
            },
        )
    if warmup_images:
        write_warmup_requests(export_dir, list(warmup_images))
