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

import tensorflow as tf

import schema
from components.records.image_budget import DEFAULT_MAX_IMAGE_PIXELS, header_problem
from components.shared.common import tf_error_text
from components.trainer import signatures
from pipeline.serving.versions import find_saved_model

DEFAULT_BATCH_SIZE = 32


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
    model_dir: Path
    predictions: list[ImagePrediction] = field(default_factory=list)
    failures: list[ImageFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


class ImageClassifier:
    """A SavedModel's ``serving_default`` signature, loaded once."""

    def __init__(self, model_dir: Path):
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


def read_image(path: Path, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> bytes:
    """The file's bytes, checked to decode the way the serving graph decodes them.

    Raises ValueError with the reason when the file cannot be read or decoded,
    or when its header declares more than ``max_pixels`` pixels (checked
    first: such a file is never decoded).
    """
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(error.strerror or str(error)) from None
    if not data:
        raise ValueError("empty file")
    problem = header_problem(data, max_pixels)
    if problem:
        raise ValueError(problem)
    try:
        tf.io.decode_image(data, channels=3, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as error:
        raise ValueError(f"not a decodable image ({tf_error_text(error.message)})") from None
    return data


# Lines TensorFlow puts before the reason when a loaded graph fails: a
# preamble and, when it has them, the Python stack of the op's definition.
def _to_prediction(file: str, outputs: dict, row: int, labels: list[str], top_k: int) -> ImagePrediction:
    probabilities = outputs[signatures.PROBABILITIES][row]
    best = sorted(range(len(probabilities)), key=lambda i: -probabilities[i])[:top_k]
    return ImagePrediction(
        file=file,
        predictions=[ClassScore(labels[i], float(probabilities[i])) for i in best],
        class_id=int(outputs[signatures.CLASS_ID][row]),
        class_name=outputs[signatures.CLASS_NAME][row].decode(),
    )


def _classify_batch(
    classifier: ImageClassifier, batch: list[tuple[str, bytes]], top_k: int, report: PredictionReport
) -> None:
    """Classifies one batch; if the graph rejects it, each image alone, so one bad
    file (that passed the decode check) costs only itself."""
    try:
        outputs = classifier.classify([data for _, data in batch])
    except tf.errors.InvalidArgumentError as error:
        if len(batch) == 1:
            report.failures.append(ImageFailure(batch[0][0], f"the model rejected it ({tf_error_text(error.message)})"))
            return
        for item in batch:
            _classify_batch(classifier, [item], top_k, report)
        return
    for row, (file, _) in enumerate(batch):
        report.predictions.append(_to_prediction(file, outputs, row, classifier.labels, top_k))


def predict_files(
    model_path: Path,
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
        _classify_batch(classifier, readable[start : start + batch_size], top_k, report)
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
