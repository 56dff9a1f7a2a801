"""``flowers-tfx batch-predict``: a pushed model over many images, as a Beam job.

    list the glob here -> read and screen each image (batch_inputs)
      -> RunInference over the serving signature (batch_model)
      -> one JSON line per input -> DIR/predictions-SSSSS-of-NNNNN.jsonl
                                 -> the tally -> DIR/tally.json

The listing happens before the job so that a bad path fails at once, naming
it. Locally the job runs on Beam's DirectRunner (worker processes when
``workers`` > 1); with the ``[vertex]`` configuration's Dataflow options
(:func:`beam_args`) the same job runs on Dataflow in the project's image.

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
from apache_beam.options.pipeline_options import PipelineOptions

import schema
from components.records.image_budget import DEFAULT_MAX_IMAGE_PIXELS
from pipeline import vertex_specs
from pipeline.config import Config, ConfigError
from pipeline.serving.batch_inputs import InputError, ReadImages, list_inputs
from pipeline.serving.batch_model import ServingSignatureHandler
from pipeline.serving.predict import DEFAULT_BATCH_SIZE, ImageFailure, ImagePrediction
from pipeline.serving.versions import find_saved_model

PREDICTIONS_PREFIX, PREDICTIONS_SUFFIX = "predictions", ".jsonl"
TALLY_FILE = "tally.json"
RUNNERS = ("DirectRunner", "DataflowRunner")


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


def beam_args(config: Config, runner: str = "DirectRunner", workers: int = 1) -> list[str]:
    """Beam options for ``runner``: the DirectRunner with ``workers`` worker
    processes (one runs in this process: no second TensorFlow to start), or
    Dataflow with the ``[vertex]`` section's project, region, temporary
    location and image (the workers' SDK container)."""
    if runner == "DataflowRunner":
        vertex_specs.require_cloud_settings(config.vertex)
        if not config.vertex.image:
            raise ConfigError("vertex.image is required for Dataflow: the image its workers run (see the README)")
        return vertex_specs.dataflow_beam_args(config.vertex)
    if runner != "DirectRunner":
        raise ConfigError(f"runner {runner!r}: choose one of {', '.join(RUNNERS)}")
    mode = "multi_processing" if workers > 1 else "in_memory"
    return ["--runner=DirectRunner", f"--direct_num_workers={workers}", f"--direct_running_mode={mode}"]


def check_remote(paths: dict[str, str]) -> None:
    """Dataflow's workers see object stores only: InputError naming a local path."""
    for what, path in paths.items():
        if "://" not in str(path):
            raise InputError(f"{path}: {what} must be on an object store (gs://...) for Dataflow's workers")


def _prepare_out_dir(out_dir: str) -> None:
    if tf.io.gfile.exists(out_dir) and not tf.io.gfile.isdir(out_dir):
        raise InputError(f"{out_dir}: not a directory")
    used = tf.io.gfile.glob(_join(out_dir, f"{PREDICTIONS_PREFIX}-*{PREDICTIONS_SUFFIX}"))
    if used:
        raise InputError(f"{out_dir}: already holds predictions ({os.path.basename(used[0])}); choose an empty folder")
    tf.io.gfile.makedirs(out_dir)


def batch_predict(
    model_path: str,
    input_glob: str,
    out_dir: str,
    args: list[str],
    top_k: int = 3,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    progress: TextIO = sys.stderr,
) -> Tally:
    """Classifies every image ``input_glob`` names with the model at ``model_path``
    (a version or serving folder), writing JSON Lines to ``out_dir``.

    Raises ServingDirError or InputError, naming the path, before any job starts.
    """
    if top_k < 1:
        raise ValueError(f"top-k must be at least 1, got {top_k}")
    model_dir = str(find_saved_model(model_path))
    inputs = list_inputs(input_glob)
    _prepare_out_dir(out_dir)
    version = model_version(model_dir)
    print(f"Reading {inputs.description} ({input_glob}) with model version {version}", file=progress, flush=True)

    started = time.perf_counter()
    with beam.Pipeline(options=PipelineOptions(args)) as pipeline:
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
