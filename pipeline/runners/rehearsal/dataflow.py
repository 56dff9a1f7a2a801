"""Dataflow options in a rehearsal: checked as Dataflow would, then run here.

A spec compiled with ``vertex.dataflow = true`` gives each Beam step
(ImportExampleGen, StatisticsGen, Transform, Evaluator) the DataflowRunner's
options after its other container arguments. The rehearsal checks them with
Beam's own option parser and validator (types, the project ID, gs:// paths,
worker counts, the worker image), without the validator's calls to Google
Cloud Storage, and then runs the step with the DirectRunner in its place:
the data steps run here as they would on Dataflow's workers.
"""

from __future__ import annotations

import contextlib
import io
import logging

from pipeline.runners.rehearsal.vertex_fake.checks import RequestRefused

DATAFLOW_RUNNER = "DataflowRunner"


def beam_args_of(args: list[str]) -> tuple[list[str], list[str]]:
    """``(other args, Beam args)``: the Beam arguments are the ``--name=value``
    flags after the executor's own (which come as ``--flag value`` pairs)."""
    for index, arg in enumerate(args):
        if arg.startswith("--runner="):
            return args[:index], args[index:]
    return args, []


def check(beam_args: list[str]) -> str:
    """A one-line description of the Dataflow job the options ask for, or
    RequestRefused naming the option that Dataflow would refuse."""
    from apache_beam.options import pipeline_options as options
    from apache_beam.options.pipeline_options_validator import PipelineOptionsValidator
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    parse_errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(parse_errors):
            parsed = options.PipelineOptions(beam_args)
            known = parsed.get_all_options(retain_unknown_options=False)
    except SystemExit:  # argparse's way to refuse a value
        raise RequestRefused(f"Dataflow options refused: {parse_errors.getvalue().strip().splitlines()[-1]}") from None
    given = {arg[2:].split("=", 1)[0] for arg in beam_args if arg.startswith("--")}
    unknown = sorted(name for name in given if name not in known)
    if unknown:
        raise RequestRefused(f"Dataflow options refused: unknown option(s) {', '.join('--' + n for n in unknown)}")
    validator = PipelineOptionsValidator(parsed, DataflowRunner())
    cloud = parsed.view_as(options.GoogleCloudOptions)
    workers = parsed.view_as(options.WorkerOptions)
    errors = (
        validator.validate_cloud_options(cloud)
        + validator.validate_gcs_path(cloud, "temp_location")
        + validator.validate_num_workers(workers)
        + validator.validate_sdk_container_image_options(workers)
        + validator.validate_worker_region_zone(workers)
    )
    if not cloud.region:
        errors.append("Missing required option: region.")
    if not workers.sdk_container_image:
        errors.append("Missing option: sdk_container_image (the workers would not have the project's code).")
    if errors:
        raise RequestRefused("Dataflow options refused: " + " ".join(e.strip() for e in errors))
    return (
        f"Dataflow options checked (project {cloud.project}, region {cloud.region}, "
        f"up to {workers.max_num_workers} x {workers.machine_type}, image {workers.sdk_container_image}); "
        "the Beam step ran with the DirectRunner"
    )


def localize(args: list[str]) -> tuple[list[str], str]:
    """The task's arguments with Dataflow's options checked and replaced by the
    DirectRunner, and what was done ('' when the step had no Dataflow options)."""
    others, beam_args = beam_args_of(args)
    if f"--runner={DATAFLOW_RUNNER}" not in beam_args:
        return args, ""
    note = check(beam_args)
    logging.info("%s", note)
    # The worker image stays: with it TFX knows the code is there and does
    # not build and stage a package of itself, which the DirectRunner needs not.
    image = next(arg for arg in beam_args if arg.startswith("--sdk_container_image="))
    return others + ["--runner=DirectRunner", image], note
