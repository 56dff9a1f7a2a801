"""A pushed model's ``serving_default`` signature, called on encoded images.

The one batch entry that ``flowers-tfx predict`` (pipeline/serving/predict.py),
``batch-predict`` and the pipeline's BatchInference step
(components/batch_inference/) share: the images go through the signature as
encoded bytes, exactly as TF Serving gets them, so each answers what a
server answers. :func:`screen_image` keeps an image the graph would fail on
(empty, damaged header, over the pixel budget, not decodable) away from a
batch; :func:`classify_batch` sends a batch in one call and, when the graph
still rejects it, finds the images at fault and answers for the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import tensorflow as tf

import schema
from components.records.image_budget import DEFAULT_MAX_IMAGE_PIXELS, header_problem
from components.shared.common import tf_error_text
from components.trainer import signatures

DEFAULT_BATCH_SIZE = 32
_JPEG = b"\xff\xd8\xff"  # the leading bytes decode_image takes for a JPEG


@dataclass
class ClassScore:
    class_name: str
    probability: float


@dataclass
class ImagePrediction:
    """The model's answer for one file: its top classes and its top class."""

    file: str
    predictions: list[ClassScore]
    class_id: int
    class_name: str

    def to_dict(self) -> dict:
        return {
            "file": self.file,
            "predictions": [{"class": s.class_name, "probability": s.probability} for s in self.predictions],
            "class_id": self.class_id,
            "class_name": self.class_name,
        }


@dataclass
class ImageFailure:
    """A file that was not classified, and why."""

    file: str
    reason: str


class ImageClassifier:
    """A SavedModel's ``serving_default`` signature, loaded once."""

    def __init__(self, model_dir: Path | str):
        self.model_dir = model_dir
        self._loaded = tf.saved_model.load(str(model_dir))  # keeps the signature's variables alive
        self._serve = self._loaded.signatures["serving_default"]
        # The labels are a constant inside the graph, not exported on their own;
        # the model was trained on schema/labels.txt in this order.
        self.labels = list(schema.LABELS)

    def classify(self, encoded_images: list[bytes]) -> dict:
        """Outputs of the signature for a batch of encoded images, as numpy arrays."""
        outputs = self._serve(**{signatures.SERVING_INPUT: tf.constant(encoded_images, dtype=tf.string)})
        return {name: tensor.numpy() for name, tensor in outputs.items()}


def screen_image(data: bytes, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, decode: bool = True) -> bytes:
    """``data`` when it decodes the way the serving graph decodes it.

    Raises ValueError with the reason when it is empty, its header declares
    more than ``max_pixels`` pixels or is damaged (checked first: such an
    image is never decoded), or, with ``decode``, it does not decode.
    Screening keeps bad images away from the model, whose graph would fail
    the whole batch (and print TensorFlow's "Local rendezvous is aborting").
    """
    if not data:
        raise ValueError("empty file")
    problem = header_problem(data, max_pixels)
    if problem:
        raise ValueError(problem)
    if not decode:
        return data
    try:
        if data.startswith(_JPEG):
            # libjpeg still reads every byte at 1/8 scale, so a damaged or cut
            # JPEG fails as it would in full, at a fraction of the cost.
            tf.io.decode_jpeg(data, channels=3, ratio=8)
        else:
            tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as error:
        raise ValueError(f"not a decodable image ({tf_error_text(error.message)})") from None
    return data


def _to_prediction(file: str, outputs: dict, row: int, labels: list[str], top_k: int) -> ImagePrediction:
    probabilities = outputs[signatures.PROBABILITIES][row]
    best = sorted(range(len(probabilities)), key=lambda i: -probabilities[i])[:top_k]
    return ImagePrediction(
        file=file,
        predictions=[ClassScore(labels[i], float(probabilities[i])) for i in best],
        class_id=int(outputs[signatures.CLASS_ID][row]),
        class_name=outputs[signatures.CLASS_NAME][row].decode(),
    )


def classify_batch(
    classifier: ImageClassifier,
    batch: list[tuple[str, bytes]],
    top_k: int,
    screen: Callable[[bytes], bytes] | None = None,
) -> list[ImagePrediction | ImageFailure]:
    """One answer per ``(name, encoded image)`` of ``batch``, in its order: the
    one batch entry that ``predict`` and ``batch-predict`` share.

    One model call for the batch. If the graph rejects it, ``screen`` (when
    given: a :func:`screen_image` that decodes) names the images that do not
    decode, and the others go on; then each image alone, so one bad image
    costs only itself. Screening only a rejected batch spares the decode of
    every image that the model decodes anyway.
    """
    try:
        outputs = classifier.classify([data for _, data in batch])
    except tf.errors.InvalidArgumentError as error:
        if screen is not None:
            return _screened(classifier, batch, top_k, screen)
        if len(batch) == 1:
            reason = f"the model rejected it ({tf_error_text(error.message)})"
            return [ImageFailure(batch[0][0], reason)]
        return [answer for item in batch for answer in classify_batch(classifier, [item], top_k)]
    return [_to_prediction(name, outputs, row, classifier.labels, top_k) for row, (name, _) in enumerate(batch)]


def _screened(classifier, batch, top_k, screen) -> list[ImagePrediction | ImageFailure]:
    """A rejected batch again: the images ``screen`` refuses get its reason, the others one more model call."""
    answers: dict[int, ImagePrediction | ImageFailure] = {}
    passed = []
    for index, (name, data) in enumerate(batch):
        try:
            passed.append((index, (name, screen(data))))
        except ValueError as error:
            answers[index] = ImageFailure(name, str(error))
    classified = classify_batch(classifier, [item for _, item in passed], top_k) if passed else []
    answers.update((index, answer) for (index, _), answer in zip(passed, classified, strict=True))
    return [answers[index] for index in range(len(batch))]
