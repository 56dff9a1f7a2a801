"""Classify image files with a pushed model, as TF Serving would.

The images go through the SavedModel's ``serving_default`` signature as
encoded bytes, so the answer is exactly what a server returns for the same
files: the same transform graph, the same model. The model is loaded once;
the images are sent in batches. A file that cannot be read or decoded is
reported with its reason and the others are still classified, and so is a
file whose header declares more pixels than the budget
(``data.max_image_pixels``): it is never decoded. The exported model checks
the budget it was trained with too, for clients that send bytes directly.

    report = predict_files(Path("flowers-work/serving"), [Path("rose.jpg")], top_k=3)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import tensorflow as tf

import schema
from components.records.image_budget import DEFAULT_MAX_IMAGE_PIXELS, header_problem
from components.shared.common import tf_error_text
from components.trainer import signatures
from pipeline.serving.versions import find_saved_model

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


@dataclass
class PredictionReport:
    model_dir: Path | str
    predictions: list[ImagePrediction] = field(default_factory=list)
    failures: list[ImageFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


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


def read_image(path: Path, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> bytes:
    """The file's bytes, screened (:func:`screen_image`); ValueError with the reason if not."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(error.strerror or str(error)) from None
    return screen_image(data, max_pixels)


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


def predict_files(
    model_path: Path | str,
    files: list[Path],
    top_k: int = 3,
    batch_size: int = DEFAULT_BATCH_SIZE,
    classifier: ImageClassifier | None = None,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
) -> PredictionReport:
    """Classifies ``files`` with the model at ``model_path`` (a version folder, or a
    serving folder whose highest version is used).

    Predictions keep the order of ``files``; unreadable files are listed in
    ``failures``. Raises ServingDirError when ``model_path`` holds no model.
    ``classifier`` reuses a model already loaded (``model_path`` is then not read).
    Files over ``max_pixels`` pixels are failures, never decoded.
    """
    if top_k < 1:
        raise ValueError(f"top-k must be at least 1, got {top_k}")
    model_dir = classifier.model_dir if classifier else find_saved_model(model_path)
    classifier = classifier or ImageClassifier(model_dir)
    report = PredictionReport(model_dir=model_dir)
    readable: list[tuple[str, bytes]] = []
    for path in files:
        try:
            readable.append((str(path), read_image(path, max_pixels)))
        except ValueError as error:
            report.failures.append(ImageFailure(str(path), str(error)))
    for start in range(0, len(readable), batch_size):
        for answer in classify_batch(classifier, readable[start : start + batch_size], top_k):
            (report.failures if isinstance(answer, ImageFailure) else report.predictions).append(answer)
    order = {str(path): index for index, path in enumerate(files)}
    report.predictions.sort(key=lambda p: order[p.file])
    return report


def format_predictions(report: PredictionReport) -> str:
    """A table: each file, then its top classes with probabilities."""
    if not report.predictions:
        return "no image was classified"
    width = max(len(p.file) for p in report.predictions)
    lines = []
    for prediction in report.predictions:
        scores = "  ".join(f"{s.class_name} {s.probability:.3f}" for s in prediction.predictions)
        lines.append(f"{prediction.file:<{width}}  {scores}")
    return "\n".join(lines)
