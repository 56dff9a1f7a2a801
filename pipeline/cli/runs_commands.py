"""The ``runs`` command of ``flowers-tfx``: how the runs of a work directory ended.

    flowers-tfx runs list [--work-dir DIR]       every run: state, time, accuracy, pushed version
    flowers-tfx runs show RUN                    one run: components, verdict, the failing component's error
    flowers-tfx runs wait RUN [--timeout S]      block until it ends; the exit status says how
"""

from __future__ import annotations

import argparse
import json

from pipeline.cli.options import add_config_options, config_from_args

RUNS_EPILOG = """\
RUN is a folder name under <work_dir>/runs/ (as 'runs list' shows it), or
'latest'. States: pushed, not_blessed, unchanged (the blessed model was
already serving), failed, running, abandoned (a run that was killed).

'runs wait' exit status: 0 the run succeeded (pushed, or unchanged), 1 it
failed or was abandoned, 3 it finished without pushing because the model was
not blessed, 2 bad arguments or no such run.
"""


def _work_dir(args: argparse.Namespace):
    return config_from_args(args).work_dir


def command_runs_list(args: argparse.Namespace) -> int:
    from pipeline.reporting.runs import format_runs, list_runs

    records = list_runs(_work_dir(args))
    if args.json:
        print(json.dumps([{"run_id": r.run_id, "state": r.state,
                           "outcome": r.outcome.to_dict() if r.outcome else None} for r in records], indent=2))
    elif not records:
        print(f"No runs in {_work_dir(args)}")
    else:
        print(format_runs(records))
    return 0


def command_runs_show(args: argparse.Namespace) -> int:
    from pipeline.reporting.runs import find_run, format_run

    record = find_run(_work_dir(args), args.run)
    if args.json:
        print(json.dumps({"run_id": record.run_id, "state": record.state,
                          "outcome": record.outcome.to_dict() if record.outcome else None}, indent=2))
    else:
        print(format_run(record))
    return 0


def command_runs_wait(args: argparse.Namespace) -> int:
    from pipeline.reporting.runs import exit_status, format_run, wait_for

    record = wait_for(_work_dir(args), args.run, args.timeout, on_progress=lambda line: print(f"  {line}", flush=True))
    print(format_run(record))
    return exit_status(record.state)


def add_runs_commands(subparsers) -> None:
    """Adds ``runs`` (list, show, wait) to the main CLI's subparsers."""
    raw = argparse.RawDescriptionHelpFormatter
    runs = subparsers.add_parser(
        "runs", help="how the pipeline's runs ended: list, show, wait",
        description="List the runs of a work directory, show one, or wait for one to end.",
        epilog=RUNS_EPILOG, formatter_class=raw,
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
    common(wait)
    wait.set_defaults(func=command_runs_wait)
