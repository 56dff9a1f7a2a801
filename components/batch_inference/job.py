"""The batch prediction job: a model version over many images, as a Beam job.

    list the glob here -> read and screen each image (inputs.py)
      -> RunInference over the serving signature (model_handler.py)
      -> one JSON line per input -> DIR/predictions-SSSSS-of-NNNNN.jsonl
                                 -> the tally -> DIR/tally.json

``flowers-tfx batch-predict`` (pipeline/serving/batch_predict.py builds its
Beam options) and the pipeline's BatchInference step (executor.py, with the
pipeline's Beam options) both run :func:`batch_predict`. The listing happens
before the job so that a bad path fails at once, naming it. The same job
runs on Beam's DirectRunner or on Dataflow in the project's image.

A line of a classified image::

    {"file": "...", "class": "roses", "score": 0.91,
     "top_k": [{"class": "roses", "score": 0.91}, ...], "model_version": "1732200000"}

and of a refused one (unreadable, undecodable, over the pixel budget, or
rejected by the model): ``{"file": "...", "reason": "...", "model_version": ...}``.
"""

from __future__ import annotations

import json
import os
import posixpath
import sys
import time
from dataclasses import dataclass, field
from typing import TextIO

import apache_beam as beam
import tensorflow as tf
from apache_beam.ml.inference.base import RunInference

import schema
from components.batch_inference.inputs import InputError, ReadImages, list_inputs
from components.batch_inference.model_handler import ServingSignatureHandler
from components.records.image_budget import DEFAULT_MAX_IMAGE_PIXELS
from components.shared.classifier import DEFAULT_BATCH_SIZE, ImageFailure, ImagePrediction

PREDICTIONS_PREFIX, PREDICTIONS_SUFFIX = "predictions", ".jsonl"
TALLY_FILE = "tally.json"


@dataclass
class Tally:
    """What a job did: images read, classified per class, refused, and how fast."""

    images: int = 0
    per_class: dict[str, int] = field(default_factory=dict)
    refused: int = 0
    seconds: float = 0.0
    model_dir: str = ""
    out_dir: str = ""

    @property
    def images_per_s(self) -> float:
        return self.images / self.seconds if self.seconds else 0.0

    def format(self) -> str:
        classified = self.images - self.refused
        lines = [
            f"Classified {classified} of {self.images} image(s) in {self.seconds:.1f} s "
            f"({self.images_per_s:.1f} images/s) with {self.model_dir}",
            "  " + ", ".join(f"{name} {self.per_class.get(name, 0)}" for name in schema.LABELS),
        ]
        if self.refused:
            lines.append(f'  refused {self.refused}: their lines carry a "reason" instead of a class')
        lines.append(f"Predictions: {_join(self.out_dir, PREDICTIONS_PREFIX)}-*{PREDICTIONS_SUFFIX}")
        return "\n".join(lines)


def _join(folder: str, name: str) -> str:
    return posixpath.join(folder, name) if "://" in folder else os.path.join(folder, name)


def _beam_path(path: str) -> str:
    """``path`` as Beam's file systems name it: they know gs:// and plain local
    paths, but not the ``file://`` URLs TensorFlow takes."""
    return path[len("file://") :] if path.startswith("file://") else path


def model_version(model_dir: str) -> str:
    """The version folder's name (``1732200000``), or the folder's name for a bare SavedModel."""
    return posixpath.basename(str(model_dir).rstrip("/"))


def to_line(answer: ImagePrediction | ImageFailure, version: str) -> dict:
    if isinstance(answer, ImageFailure):
        return {"file": answer.file, "reason": answer.reason, "model_version": version}
    return {
        "file": answer.file,
        "class": answer.class_name,
        "score": answer.predictions[0].probability,
        "top_k": [{"class": s.class_name, "score": s.probability} for s in answer.predictions],
        "model_version": version,
    }


class CountLines(beam.CombineFn):
    """The tally of the lines: ``{"images", "per_class", "refused"}``."""

    def create_accumulator(self):
        return {"images": 0, "per_class": {}, "refused": 0}

    def add_input(self, tally, line):
        tally["images"] += 1
        if "class" in line:
            tally["per_class"][line["class"]] = tally["per_class"].get(line["class"], 0) + 1
        else:
            tally["refused"] += 1
        return tally

    def merge_accumulators(self, tallies):
        merged = self.create_accumulator()
        for tally in tallies:
            merged["images"] += tally["images"]
            merged["refused"] += tally["refused"]
            for name, count in tally["per_class"].items():
                merged["per_class"][name] = merged["per_class"].get(name, 0) + count
        return merged

    def extract_output(self, tally):
        return tally


class ShowProgress(beam.DoFn):
    """Prints how many lines this worker process has written, every EVERY lines.

    Beam's local runner runs the job stage by stage, so the lines come in
    bursts once the model stage runs, not one by one."""

    EVERY = 500

    def setup(self):
        self.count = 0

    def process(self, line):
        self.count += 1
        if self.count % self.EVERY == 0:
            # Straight to file descriptor 2: a Beam worker process replaces sys.stderr.
            os.write(2, f"  worker {os.getpid()}: {self.count} images done\n".encode())
        yield line


def _prepare_out_dir(out_dir: str) -> None:
    if tf.io.gfile.exists(out_dir) and not tf.io.gfile.isdir(out_dir):
        raise InputError(f"{out_dir}: not a directory")
    used = tf.io.gfile.glob(_join(out_dir, f"{PREDICTIONS_PREFIX}-*{PREDICTIONS_SUFFIX}"))
    if used:
        raise InputError(f"{out_dir}: already holds predictions ({os.path.basename(used[0])}); choose an empty folder")
    tf.io.gfile.makedirs(out_dir)


def batch_predict(
    model_dir: str,
    input_glob: str,
    out_dir: str,
    pipeline: beam.Pipeline,
    top_k: int = 3,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    progress: TextIO = sys.stderr,
) -> Tally:
    """Classifies every image ``input_glob`` names with the SavedModel in
    ``model_dir`` (a version folder), writing JSON Lines to ``out_dir``; runs
    the job on ``pipeline`` (a ``beam.Pipeline`` with the options wanted).

    Raises InputError, naming the path, before the job starts.
    """
    if top_k < 1:
        raise ValueError(f"top-k must be at least 1, got {top_k}")
    inputs = list_inputs(input_glob)
    _prepare_out_dir(out_dir)
    version = model_version(model_dir)
    print(f"Reading {inputs.description} ({input_glob}) with model version {version}", file=progress, flush=True)

    started = time.perf_counter()
    with pipeline:
        read = (
            pipeline
            | "ListInputs" >> beam.Create(inputs.paths)
            | "SpreadInputs" >> beam.Reshuffle()
            | "ReadAndScreen"
            >> beam.ParDo(ReadImages(inputs.records, max_pixels)).with_outputs(ReadImages.REFUSED, main="images")
        )
        # A shard's records stay on the worker that read it: shards are the
        # unit of parallelism (spreading the records measured slower locally).
        answers = read["images"] | "Classify" >> RunInference(
            ServingSignatureHandler(model_dir, top_k, batch_size, max_pixels)
        )
        refused = read[ReadImages.REFUSED] | "Refusals" >> beam.MapTuple(ImageFailure)
        lines = (
            (answers, refused)
            | "AllAnswers" >> beam.Flatten()
            | "ToLines" >> beam.Map(to_line, version)
            | "Progress" >> beam.ParDo(ShowProgress())
        )
        (
            lines
            | "ToJson" >> beam.Map(json.dumps)
            | "WriteLines"
            >> beam.io.WriteToText(_beam_path(_join(out_dir, PREDICTIONS_PREFIX)), file_name_suffix=PREDICTIONS_SUFFIX)
        )
        (
            lines
            | "Tally" >> beam.CombineGlobally(CountLines())
            | "TallyJson" >> beam.Map(json.dumps)
            | "WriteTally" >> beam.io.WriteToText(_beam_path(_join(out_dir, TALLY_FILE)), shard_name_template="")
        )
    seconds = time.perf_counter() - started
    with tf.io.gfile.GFile(_join(out_dir, TALLY_FILE)) as file:
        counted = json.loads(file.read())
    return Tally(seconds=seconds, model_dir=model_dir, out_dir=out_dir, **counted)
