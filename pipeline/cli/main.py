"""The ``flowers-tfx`` command line.

    flowers-tfx run                      the whole pipeline, locally
    flowers-tfx config show              the configuration a run would use
    flowers-tfx data synth|convert|inspect   make, convert and check shards

Heavy libraries (TensorFlow, TFX, Beam) are imported only when a command
runs, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import sys
import warnings

# TensorFlow's environment was set when the package was imported
# (components/shared/tf_environment.py).
# Google client libraries warn about versions on every import.
warnings.filterwarnings("ignore", category=FutureWarning, module=r"google\..*")
warnings.filterwarnings("ignore", message="You are using a non-supported Python version", category=FutureWarning)

from pipeline.cli.batch_commands import add_batch_commands  # noqa: E402
from pipeline.cli.data_commands import add_data_commands  # noqa: E402
from pipeline.cli.image_commands import add_image_commands  # noqa: E402
from pipeline.cli.model_commands import add_model_commands  # noqa: E402
from pipeline.cli.options import add_config_options, config_from_args  # noqa: E402
from pipeline.cli.predict_commands import add_predict_command  # noqa: E402
from pipeline.cli.rehearse_commands import add_rehearse_commands  # noqa: E402
from pipeline.cli.runs_commands import add_runs_commands  # noqa: E402
from pipeline.cli.vertex_commands import add_vertex_commands  # noqa: E402
from pipeline.config import valid_keys  # noqa: E402
from pipeline.config_loading import to_toml, with_recipe  # noqa: E402
from pipeline.errors import EXIT_STATUSES, run_command  # noqa: E402

DESCRIPTION = """\
Train, gate and push a flower-photo classifier with a TFX pipeline.

The pipeline reads TFRecord shards in the format of the 'Keras on TPU'
codelabs, checks them against a curated schema, preprocesses the images in
the TensorFlow graph (Transform), trains a Keras model (Trainer), compares it
with the last blessed model (Evaluator) and pushes it to a serving directory
only when it is good enough (Pusher)."""

EPILOG = (
    """\
examples:
  flowers-tfx run                                  # synthetic data, default model
  flowers-tfx run --data 'photos/*.tfrec' --epochs 10
  flowers-tfx run --config my.toml --set gate.min_accuracy=0.8
  flowers-tfx data synth --out shards --images 500 --shards 4 --seed 1
  flowers-tfx config show --config my.toml
  flowers-tfx predict --model flowers-work/serving rose.jpg tulip.jpg
  flowers-tfx batch-predict --model flowers-work/serving --input 'photos/*.jpg' --out predictions
  flowers-tfx models list --work-dir flowers-work
  flowers-tfx models promote VERSION --to /srv/models/flowers   # and models rollback
  flowers-tfx compile --config vertex.toml --out pipeline.json   # for Vertex AI
  flowers-tfx submit --config vertex.toml
  flowers-tfx schedule create --config vertex.toml --cron "0 3 * * 1"
  flowers-tfx image build --tag IMAGE && flowers-tfx image check --tag IMAGE

configuration: defaults < --config FILE (TOML or YAML) < environment
FLOWERS_TFX__SECTION__KEY=value < --set section.key=value and the shortcuts.

"""
    + EXIT_STATUSES
)

RUN_EPILOG = """\
Everything the run writes goes under the work directory:
  data/          the synthetic data set (when --data is not given)
  metadata.sqlite  ML Metadata: executions, artifacts, lineage
  pipeline/      each component's artifacts
  serving/<version>/  blessed models, as TF Serving reads them
  runs/<run id>/ pipeline.log, config.toml, summary.txt, report.md and plots

Running again with nothing changed reuses every step from the TFX cache;
new data or settings train anew, and the new model is compared with the
last blessed one before it may be pushed.

exit status: 0 finished and pushed (or the blessed model was already
serving), 1 a component failed, 2 bad arguments, configuration or data,
3 finished but the model was not blessed (nothing pushed), 130 interrupted.
"""


def command_run(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    from pipeline.reporting.runs import run_exit_status
    from pipeline.runners.local import run_local  # heavy: TFX, TensorFlow, Beam

    return run_exit_status(run_local(config))


def command_config_show(args: argparse.Namespace) -> int:
    config = config_from_args(args)
    print(to_toml(with_recipe(config) if args.resolved else config), end="")
    return 0


def command_config_keys(args: argparse.Namespace) -> int:
    print("\n".join(valid_keys()))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="flowers-tfx",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="run the whole pipeline locally (LocalDagRunner, Beam DirectRunner)",
        description="Run the whole TFX pipeline on this machine and print a summary.",
        epilog=RUN_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--data", metavar="GLOB", help="shards to read, e.g. 'data/*.tfrec' or gs://...; default: synthetic"
    )
    run.add_argument("--work-dir", metavar="DIR", help="where the run writes everything (default ./flowers-work)")
    run.add_argument("--model", metavar="NAME", help="model to train (same as --set model.name=NAME)")
    run.add_argument("--epochs", metavar="N", help="training epochs (same as --set model.epochs=N)")
    add_config_options(run)
    run.set_defaults(func=command_run)

    config = commands.add_parser("config", help="show the configuration or its keys")
    config_commands = config.add_subparsers(dest="config_command", metavar="COMMAND", required=True)
    show = config_commands.add_parser(
        "show",
        help="print the effective configuration as TOML",
        description="Print the configuration a run would use, as TOML that --config reads back.",
    )
    show.add_argument(
        "--resolved",
        action="store_true",
        help="replace each 'auto' model setting by the value the model's recipe gives it",
    )
    add_config_options(show)
    show.set_defaults(func=command_config_show)
    keys = config_commands.add_parser("keys", help="list every configuration key")
    keys.set_defaults(func=command_config_keys)

    add_data_commands(commands)
    add_predict_command(commands)
    add_model_commands(commands)
    add_batch_commands(commands)
    add_runs_commands(commands)
    add_vertex_commands(commands)
    add_rehearse_commands(commands)
    add_image_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser().parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
