"""The ``runs`` command of ``flowers-tfx``: how the pipeline's runs ended.

    flowers-tfx runs list [--work-dir DIR]       every run: state, time, accuracy, pushed version
    flowers-tfx runs show RUN                    one run: components, verdict, the failing component's error
    flowers-tfx runs wait RUN [--timeout S]      block until it ends; the exit status says how

Local runs come from the work directory; with a configuration whose
``vertex.project`` is set (``--config vertex.toml``), the runs are Vertex AI
Pipelines jobs of the pipeline's display name instead.
"""

from __future__ import annotations

import argparse
import json

from pipeline.cli.options import add_config_options, config_from_args
from pipeline.errors import EXIT_OK

RUNS_EPILOG = """\
With --config naming vertex.project, the runs are the Vertex AI Pipelines
jobs of run.pipeline_name (RUN: a job ID from 'runs list').

RUN is a folder name under <work_dir>/runs/ (as 'runs list' shows it), or
'latest'. States: pushed, not_blessed, unchanged (the blessed model was
already serving), failed, running, abandoned (a run that was killed).

'runs wait' exit status: 0 the run succeeded (pushed, or unchanged), 1 it
failed or was abandoned, 3 it finished without pushing because the model was
not blessed, 2 bad arguments or no such run.
"""


def _work_dir(args: argparse.Namespace):
    return config_from_args(args).work_dir


def _vertex_config(args: argparse.Namespace):
    """The configuration when it names a Google Cloud project (runs on Vertex AI), else None."""
    config = config_from_args(args)
    return config if config.vertex.project else None


def _seconds(job) -> str:
    resource = job.gca_resource
    if resource.start_time and resource.end_time:
        return f"{(resource.end_time - resource.start_time).total_seconds():.0f}"
    return "-"


def _vertex_list(config) -> int:
    from pipeline.runners import vertex  # the Vertex AI SDK

    jobs = vertex.list_runs(config)
    if not jobs:
        print(
            f"No runs of '{config.run.pipeline_name}' in project {config.vertex.project}, region {config.vertex.region}"
        )
        return EXIT_OK
    rows = [("RUN", "STATE", "CREATED", "SECONDS")]
    for job in jobs:
        created = job.gca_resource.create_time
        rows.append(
            (job.name, vertex.run_state(job), created.strftime("%Y-%m-%dT%H:%M:%SZ") if created else "-", _seconds(job))
        )
    from pipeline.reporting.table import format_table

    print(format_table(rows))
    return EXIT_OK


def _vertex_describe(job) -> str:
    from pipeline.runners import vertex

    lines = [f"run {job.name}: {vertex.run_state(job)}", f"  resource  {job.resource_name}"]
    tasks = job.gca_resource.job_detail.task_details
    if tasks:
        lines.append("  tasks")
        lines.extend(f"    {task.task_name:<32}{task.state.name.lower()}" for task in tasks)
    lines.extend(f"  failed in {task}: {message}" for task, message in vertex.failed_tasks(job))
    if job.gca_resource.error.message:
        lines.append(f"  error     {job.gca_resource.error.message}")
    return "\n".join(lines)


def command_runs_list(args: argparse.Namespace) -> int:
    from pipeline.reporting.runs import format_runs, list_runs

    vertex_config = _vertex_config(args)
    if vertex_config is not None:
        return _vertex_list(vertex_config)
    records = list_runs(_work_dir(args))
    if args.json:
        print(
            json.dumps(
                [
                    {"run_id": r.run_id, "state": r.state, "outcome": r.outcome.to_dict() if r.outcome else None}
                    for r in records
                ],
                indent=2,
            )
        )
    elif not records:
        print(f"No runs in {_work_dir(args)}")
    else:
        print(format_runs(records))
    return 0


def command_runs_show(args: argparse.Namespace) -> int:
    from pipeline.reporting.runs import find_run, format_run

    vertex_config = _vertex_config(args)
    if vertex_config is not None:
        from pipeline.runners import vertex

        print(_vertex_describe(vertex.get_run(vertex_config, args.run)))
        return EXIT_OK
    record = find_run(_work_dir(args), args.run)
    if args.json:
        print(
            json.dumps(
                {
                    "run_id": record.run_id,
                    "state": record.state,
                    "outcome": record.outcome.to_dict() if record.outcome else None,
                },
                indent=2,
            )
        )
    else:
        print(format_run(record))
    return 0


def command_runs_wait(args: argparse.Namespace) -> int:
    from pipeline.reporting.runs import exit_status, format_run, wait_for

    vertex_config = _vertex_config(args)
    if vertex_config is not None:
        from pipeline.runners import vertex

        job = vertex.wait_run(
            vertex_config,
            args.run,
            args.timeout,
            poll_seconds=args.poll,
            on_progress=lambda line: print(f"  {line}", flush=True),
        )
        print(_vertex_describe(job))
        return exit_status(vertex.run_state(job))
    record = wait_for(_work_dir(args), args.run, args.timeout, on_progress=lambda line: print(f"  {line}", flush=True))
    print(format_run(record))
    return exit_status(record.state)


def add_runs_commands(subparsers) -> None:
    """Adds ``runs`` (list, show, wait) to the main CLI's subparsers."""
    raw = argparse.RawDescriptionHelpFormatter
    runs = subparsers.add_parser(
        "runs",
        help="how the pipeline's runs ended: list, show, wait",
        description="List the runs of a work directory, show one, or wait for one to end.",
        epilog=RUNS_EPILOG,
        formatter_class=raw,
    )
    commands = runs.add_subparsers(dest="runs_command", metavar="COMMAND", required=True)

    def common(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--work-dir", metavar="DIR", help="the pipeline's work directory (default ./flowers-work)")
        add_config_options(parser)

    list_ = commands.add_parser("list", help="every run with its state", epilog=RUNS_EPILOG, formatter_class=raw)
    common(list_)
    list_.add_argument("--json", action="store_true", help="print JSON instead of a table")
    list_.set_defaults(func=command_runs_list)

    show = commands.add_parser("show", help="one run in detail", epilog=RUNS_EPILOG, formatter_class=raw)
    show.add_argument("run", metavar="RUN", help="a run id from 'runs list', or 'latest'")
    common(show)
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(func=command_runs_show)

    wait = commands.add_parser("wait", help="block until a run ends", epilog=RUNS_EPILOG, formatter_class=raw)
    wait.add_argument("run", metavar="RUN", help="a run id from 'runs list', or 'latest'")
    wait.add_argument("--timeout", type=float, metavar="SECONDS", help="give up after this long (exit 2)")
    wait.add_argument(
        "--poll",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="Vertex AI: seconds between two looks at the run (default 30)",
    )
    common(wait)
    wait.set_defaults(func=command_runs_wait)
