"""The pushed model inside Beam's RunInference: a ModelHandler over its serving signature.

RunInference loads the model once per worker process (``load_model``),
groups the images into batches (``batch_elements_kwargs``) and hands each
batch to ``run_inference``, which is ``predict``'s own batch entry,
:func:`components.shared.classifier.classify_batch`: the same signature on the
same encoded bytes, so a line of ``batch-predict`` (and of the pipeline's
BatchInference step) says what ``predict`` says for that image. Elements are ``(key, encoded image)``; the answers are
``ImagePrediction`` or, for an image the graph rejects, ``ImageFailure``
with the reason the full screening gives (the images come here screened
from their headers only; a batch the graph rejects is screened in full).
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

from apache_beam.ml.inference.base import ModelHandler

from components.records.image_budget import DEFAULT_MAX_IMAGE_PIXELS
from components.shared.classifier import DEFAULT_BATCH_SIZE, ImageClassifier, classify_batch, screen_image


class ServingSignatureHandler(ModelHandler):
    def __init__(
        self,
        model_dir: str,
        top_k: int = 3,
        batch_size: int = DEFAULT_BATCH_SIZE,
        max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    ):
        super().__init__()
        self.model_dir, self.top_k, self.batch_size = model_dir, top_k, batch_size
        self.screen = functools.partial(screen_image, max_pixels=max_pixels)

    def load_model(self) -> ImageClassifier:
        return ImageClassifier(self.model_dir)

    def run_inference(self, batch: Sequence[tuple[str, bytes]], model: ImageClassifier, inference_args=None) -> list:
        return classify_batch(model, list(batch), self.top_k, self.screen)

    def get_num_bytes(self, batch: Sequence[tuple[str, bytes]]) -> int:
        return sum(len(data) for _, data in batch)

    def batch_elements_kwargs(self) -> dict[str, Any]:
        # Full batches, as predict sends them: BatchElements would otherwise
        # start at one image and grow, and a bundle ends with a smaller one anyway.
        return {"min_batch_size": self.batch_size, "max_batch_size": self.batch_size}

    def get_metrics_namespace(self) -> str:
        return "BatchPredict"
