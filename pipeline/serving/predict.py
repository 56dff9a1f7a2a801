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

The model call itself (the signature, the screening, the batch entry) is
``components/shared/classifier.py``, which ``batch-predict`` and the
pipeline's BatchInference step share.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from components.records.image_budget import DEFAULT_MAX_IMAGE_PIXELS
from components.shared.classifier import (
    DEFAULT_BATCH_SIZE,
    ImageClassifier,
    ImageFailure,
    ImagePrediction,
    classify_batch,
    screen_image,
)
from pipeline.serving.versions import find_saved_model


@dataclass
class PredictionReport:
    model_dir: Path | str
    predictions: list[ImagePrediction] = field(default_factory=list)
    failures: list[ImageFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures


def read_image(path: Path, max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> bytes:
    """The file's bytes, screened (:func:`screen_image`); ValueError with the reason if not."""
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ValueError(error.strerror or str(error)) from None
    return screen_image(data, max_pixels)


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
