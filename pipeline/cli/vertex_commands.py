"""The Vertex AI commands of ``flowers-tfx``: compile, submit, schedule.

    flowers-tfx compile --out pipeline.json          Kubeflow v2 spec, offline
    flowers-tfx submit [--spec pipeline.json]         one run on Vertex AI Pipelines
    flowers-tfx schedule create --cron "0 3 * * 1"    runs on a schedule
    flowers-tfx schedule list | delete

The main CLI mounts them with ``add_vertex_commands(subparsers)``. TFX and the
Vertex AI SDK are imported only when a command runs, so ``--help`` is quick.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from pipeline import vertex_specs
from pipeline.cli.options import add_config_options, config_from_args, positive_int
from pipeline.vertex_specs import check_spec_path

SETTINGS_NOTE = """\
Google Cloud settings come from the [vertex] section of the configuration
(--config FILE, or --set vertex.KEY=VALUE): project, region, pipeline_root
(gs://), image, service_account; data.source must be a gs:// glob.
"""

COMPILE_EPILOG = f"""\
The spec runs the same DAG as 'flowers-tfx run', in the container image
vertex.image; components find their code there by dotted path, so compiling
needs no credentials and uploads nothing. The configuration decides:
  vertex.dataflow = true       Beam steps on Dataflow (same image as SDK image)
  vertex.training = true       Trainer on Vertex AI Training; vertex.accelerator
                               = gpu (gpu_type, gpu_count) or tpu (tpu_type,
                               tpu_image: 8 TPU cores on a cloud-tpu machine)
  vertex.upload_model = true   blessed models also go to the Model Registry,
                               and to vertex.endpoint when it is set

{SETTINGS_NOTE}
.json holds the PipelineJob (spec and pipeline root); .yaml the PipelineSpec
alone. Compiling the same configuration twice gives the same bytes.

example:
  flowers-tfx compile --config vertex.toml --out pipeline.json
"""

SUBMIT_EPILOG = f"""\
Without --spec the pipeline is compiled from the configuration first, so the
run always matches it; --spec submits a file compiled earlier instead.
The command returns once Vertex AI has accepted the run and prints where to
follow it in the Google Cloud console.

{SETTINGS_NOTE}
exit status: 0 submitted, 1 Vertex AI refused the request, 2 bad
configuration, spec file or credentials.

examples:
  flowers-tfx submit --config vertex.toml
  flowers-tfx submit --config vertex.toml --spec pipeline.json
"""

SCHEDULE_EPILOG = f"""\
A schedule is known by its display name (--name, default: run.pipeline_name).
Creating a schedule whose name is taken is refused; --replace deletes the old
schedule and creates the new one (the way to schedule a newly compiled spec).

{SETTINGS_NOTE}
examples:
  flowers-tfx schedule create --config vertex.toml --cron "0 3 * * 1"
  flowers-tfx schedule create --config vertex.toml --cron "TZ=Europe/Paris 0 3 * * *" --replace
  flowers-tfx schedule list --config vertex.toml
  flowers-tfx schedule delete --config vertex.toml --name flowers
"""


def _spec_file(text: str) -> str:
    if text.startswith("https://"):  # e.g. a template in Artifact Registry: no file suffix
        return text
    try:
        return check_spec_path(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _config(args: argparse.Namespace, compiling: bool = False):
    """The configuration, checked for Vertex AI before the slow imports start."""

    config = config_from_args(args)
    if compiling:
        vertex_specs.validate(config)
    else:
        vertex_specs.require_cloud_settings(config.vertex)
    return config


def describe_compiled(config, spec: Path) -> str:
    """What the compiled spec will do on Vertex AI, in a few lines."""
    vertex = config.vertex
    if vertex.dataflow:
        beam = f"Dataflow ({vertex.dataflow_machine_type}, up to {vertex.dataflow_max_workers} workers)"
    else:
        beam = "DirectRunner, inside each component's container"
    trainer = "inside its component's container"
    if vertex.training:
        machine = vertex_specs.worker_pool_specs(vertex)[0]["machine_spec"]
        trainer = f"Vertex AI Training on {machine['machine_type']}"
        if "accelerator_type" in machine:
            trainer += f" with {machine['accelerator_count']} x {machine['accelerator_type']}"
    promotion = f"filesystem push to {vertex_specs.serving_dir(config)}"
    if vertex.upload_model:
        promotion += f", then Model Registry model '{config.run.pipeline_name}'"
        if vertex.endpoint:
            promotion += f" deployed to endpoint '{vertex.endpoint}'"
    inference = ""
    if config.run.batch_inference_source:
        inference = f"  inference   BatchInference over {config.run.batch_inference_source} after each push\n"
    return (
        f"Wrote {spec}: pipeline '{config.run.pipeline_name}' for Vertex AI Pipelines\n"
        f"  image       {vertex.image}\n"
        f"  data        {config.data.source}\n"
        f"  beam steps  {beam}\n"
        f"  trainer     {trainer}\n"
        f"  promotion   {promotion}\n"
        f"{inference}"
    )


def command_compile(args: argparse.Namespace) -> int:
    config = _config(args, compiling=True)
    if args.image_digest:
        config = vertex_specs.with_image_digest(config, args.image_digest)
    from pipeline.runners.kubeflow import compile_pipeline  # slow: TFX, TensorFlow

    spec = compile_pipeline(config, args.out)
    print(describe_compiled(config, spec), end="")
    if "@sha256:" not in config.vertex.image:
        print("Note: the image is named by its tag; --image-digest sha256:... pins what scheduled runs execute.")
    print(f"Next: flowers-tfx submit --spec {args.out} (with the same configuration)")
    return 0


def _with_spec(args: argparse.Namespace, config, use) -> int:
    """Calls ``use(spec_path)`` with --spec, or with a spec compiled now from ``config``."""
    if args.spec:
        return use(args.spec)
    from pipeline.runners.kubeflow import compile_pipeline  # heavy: TFX, TensorFlow

    print("Compiling the pipeline from the configuration ...", flush=True)
    with tempfile.TemporaryDirectory(prefix="flowers-tfx-") as folder:
        return use(str(compile_pipeline(config, Path(folder) / "pipeline.json")))


def command_submit(args: argparse.Namespace) -> int:
    config = _config(args, compiling=not args.spec)
    from pipeline.runners import vertex  # slow: the Vertex AI SDK

    def submit(spec: str) -> int:
        job = vertex.submit(config, spec)
        print(f"Submitted {job.resource_name}")
        print(f"Follow it at {vertex.console_url(config, job)}")
        return 0

    return _with_spec(args, config, submit)


def command_schedule_create(args: argparse.Namespace) -> int:
    config = _config(args, compiling=not args.spec)
    from pipeline.runners import vertex  # slow: the Vertex AI SDK

    name = args.name or config.run.pipeline_name
    vertex.check_cron(args.cron)  # before a compile that takes a while

    def create(spec: str) -> int:
        schedule = vertex.create_schedule(
            config, spec, args.cron, name, max_concurrent_runs=args.max_concurrent_runs, replace=args.replace
        )
        print(f"Scheduled '{name}' ({args.cron}): {schedule.resource_name}")
        print(f"Schedules and their runs: {vertex.console_url(config)}")
        return 0

    return _with_spec(args, config, create)


def _time(timestamp) -> str:
    return timestamp.strftime("%Y-%m-%d %H:%M UTC") if timestamp else "-"


def command_schedule_list(args: argparse.Namespace) -> int:
    config = _config(args)
    from pipeline.runners import vertex  # slow: the Vertex AI SDK

    schedules = vertex.list_schedules(config)
    if not schedules:
        print(f"No schedules in project {config.vertex.project}, region {config.vertex.region}.")
        return 0
    rows = [("NAME", "STATE", "CRON", "MAX RUNS AT ONCE", "NEXT RUN", "RESOURCE")]
    for schedule in schedules:
        proto = schedule.gca_resource
        rows.append(
            (
                proto.display_name,
                proto.state.name,
                proto.cron,
                str(proto.max_concurrent_run_count),
                _time(proto.next_run_time),
                proto.name,
            )
        )
    from pipeline.reporting.table import format_table

    print(format_table(rows))
    return 0


def command_schedule_delete(args: argparse.Namespace) -> int:
    config = _config(args)
    from pipeline.runners import vertex  # slow: the Vertex AI SDK

    for name in vertex.delete_schedules(config, args.name or config.run.pipeline_name):
        print(f"Deleted {name}")
    return 0


def add_vertex_commands(subparsers) -> None:
    """Adds ``compile``, ``submit`` and ``schedule`` to the main CLI's subparsers."""

    raw = argparse.RawDescriptionHelpFormatter

    compile_ = subparsers.add_parser(
        "compile",
        help="compile the pipeline into a Kubeflow v2 spec for Vertex AI (offline)",
        description="Compile the pipeline into a Kubeflow v2 spec for Vertex AI Pipelines.",
        epilog=COMPILE_EPILOG,
        formatter_class=raw,
    )
    compile_.add_argument(
        "--out",
        type=_spec_file,
        default="pipeline.json",
        metavar="FILE",
        help="where to write the spec: .json (default pipeline.json) or .yaml",
    )
    compile_.add_argument(
        "--image-digest",
        metavar="sha256:HEX",
        help="name vertex.image by this digest (REPOSITORY@sha256:...), as pushed; a moved tag then changes nothing",
    )
    add_config_options(compile_)
    compile_.set_defaults(func=command_compile)

    submit = subparsers.add_parser(
        "submit",
        help="start one run of the pipeline on Vertex AI Pipelines",
        description="Start one run of the pipeline on Vertex AI Pipelines.",
        epilog=SUBMIT_EPILOG,
        formatter_class=raw,
    )
    _add_spec_option(submit)
    add_config_options(submit)
    submit.set_defaults(func=command_submit)

    schedule = subparsers.add_parser(
        "schedule",
        help="run the pipeline on Vertex AI on a cron schedule",
        description="Create, list and delete schedules that run the pipeline on Vertex AI Pipelines.",
        epilog=SCHEDULE_EPILOG,
        formatter_class=raw,
    )
    schedule_commands = schedule.add_subparsers(dest="schedule_command", metavar="COMMAND", required=True)

    create = schedule_commands.add_parser(
        "create",
        help="schedule runs on a cron (one schedule per name)",
        description="Schedule runs of the pipeline on a cron; a name already taken is refused unless --replace.",
        epilog=SCHEDULE_EPILOG,
        formatter_class=raw,
    )
    create.add_argument(
        "--cron",
        required=True,
        help="when to run: five cron fields, e.g. '0 3 * * 1' (UTC) or 'TZ=Europe/Paris 0 3 * * *'",
    )
    create.add_argument("--name", help="the schedule's display name (default: run.pipeline_name)")
    create.add_argument(
        "--max-concurrent-runs",
        type=positive_int,
        default=1,
        metavar="N",
        help="runs of this schedule that may go on at once (default 1)",
    )
    create.add_argument("--replace", action="store_true", help="delete a schedule of the same name first")
    _add_spec_option(create)
    add_config_options(create)
    create.set_defaults(func=command_schedule_create)

    list_ = schedule_commands.add_parser(
        "list",
        help="list the schedules in the project and region",
        description="List the pipeline schedules in vertex.project and vertex.region.",
    )
    add_config_options(list_)
    list_.set_defaults(func=command_schedule_list)

    delete = schedule_commands.add_parser(
        "delete",
        help="delete a schedule by name",
        description="Delete the schedule with this display name (runs already started go on).",
    )
    delete.add_argument("--name", help="the schedule's display name (default: run.pipeline_name)")
    add_config_options(delete)
    delete.set_defaults(func=command_schedule_delete)


def _add_spec_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--spec",
        type=_spec_file,
        metavar="FILE",
        help="a spec from 'flowers-tfx compile' (local, gs:// or https); default: compile now from the configuration",
    )
