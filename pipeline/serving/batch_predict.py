"""``flowers-tfx batch-predict``'s side of the batch prediction job.

The job itself (reading, RunInference, the JSON Lines and the tally) is
``components/batch_inference/job.py``, which the pipeline's BatchInference
step runs too. Here is what belongs to the command: the model found in a
serving directory, the Beam options from the configuration (the
DirectRunner's worker processes, or Dataflow with the ``[vertex]`` section),
and a bad path as an error with exit status 2.
"""

from __future__ import annotations

import sys
from typing import TextIO

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from components.batch_inference import inputs, job
from components.records.image_budget import DEFAULT_MAX_IMAGE_PIXELS
from components.shared.classifier import DEFAULT_BATCH_SIZE
from pipeline import vertex_specs
from pipeline.config import Config, ConfigError
from pipeline.errors import FlowersError
from pipeline.serving.versions import find_saved_model

RUNNERS = ("DirectRunner", "DataflowRunner")


class InputError(FlowersError):
    """A glob that names nothing readable, or an output folder already used (exit status 2)."""


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


def batch_predict(
    model_path: str,
    input_glob: str,
    out_dir: str,
    args: list[str],
    top_k: int = 3,
    batch_size: int = DEFAULT_BATCH_SIZE,
    max_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    progress: TextIO = sys.stderr,
) -> job.Tally:
    """Classifies every image ``input_glob`` names with the model at ``model_path``
    (a version or serving folder), writing JSON Lines to ``out_dir``, as a
    Beam job with the options ``args``.

    Raises ServingDirError or InputError, naming the path, before any job starts.
    """
    model_dir = str(find_saved_model(model_path))
    pipeline = beam.Pipeline(options=PipelineOptions(args))
    try:
        return job.batch_predict(model_dir, input_glob, out_dir, pipeline, top_k, batch_size, max_pixels, progress)
    except inputs.InputError as error:
        raise InputError(str(error)) from None
