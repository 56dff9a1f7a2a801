"""The ``models`` commands of ``flowers-tfx`` (``predict``: predict_commands.py).

    flowers-tfx models list                           pushed versions, metrics, lineage
    flowers-tfx models show VERSION [--json]          a version's model card
    flowers-tfx models promote VERSION --to DIR       copy a blessed version into production
    flowers-tfx models rollback --to DIR              restore the version before

The main CLI mounts them with ``add_model_commands(subparsers)`` and runs
``args.func(args)``, which returns the exit status. TensorFlow and ML Metadata
are imported only when a command needs them, so ``--help`` answers at once.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from components.shared import serving_layout
from pipeline.cli.options import add_config_options, config_from_args
from pipeline.errors import EXIT_OK, FlowersError

MODELS_EPILOG = """\
A serving directory (run.serving_dir, default <work_dir>/serving) receives
every blessed model the pipeline pushes. A production directory (--to DIR),
which TF Serving watches, holds exactly one version: the current one.

examples:
  flowers-tfx models list --work-dir flowers-work
  flowers-tfx models promote 1732200000 --to /srv/models/flowers
  flowers-tfx models rollback --to /srv/models/flowers
"""

LIST_EPILOG = """\
For each version: when it was pushed, the Evaluator's accuracy (overall and
per class) and verdict, the training data (the Examples artifact and the
files ImportExampleGen read), the pipeline run and the model artifact, all
from ML Metadata (<work_dir>/metadata.sqlite). Without the store (a serving
directory copied elsewhere) the versions are listed from their push
manifests, and the metrics are marked unknown.

examples:
  flowers-tfx models list --work-dir flowers-work
  flowers-tfx models list --config my.toml --json
  flowers-tfx models list --serving-dir /mnt/copy/serving
"""

PROMOTE_EPILOG = """\
Only a version the Evaluator blessed is promoted: its push manifest must name
a blessing folder that says BLESSED, and ML Metadata (when present) must
agree. The version is copied into a hidden staging folder in DIR, then
renamed into place; the version it replaces moves to DIR/.previous/, from
where 'models rollback' restores it. TF Serving watching DIR never sees an
empty or half-copied version. Every promotion and rollback is appended to
DIR/promotions.jsonl. An operation cut short (a crash, a kill) is finished
by the next promote or rollback.

exit status: 0 promoted (or already the current version: nothing to do),
1 refused (busy), 2 bad arguments or paths, 3 refused because the version is
not blessed (or its blessing cannot be shown).

examples:
  flowers-tfx models promote 1732200000 --to /srv/models/flowers --work-dir flowers-work
  flowers-tfx models promote 1732200000 --to /srv/models/flowers --serving-dir /data/serving
"""

ROLLBACK_EPILOG = """\
Renames the version that the current one replaced (the newest entry of
DIR/.previous/) back into DIR, then moves the current version to
DIR/.rolled-back/. Renames only: the restored files are the same bytes as
before. Rolling back again restores the version before that.

exit status: 0 rolled back, 1 refused (nothing to restore, busy), 2 bad paths.

example:
  flowers-tfx models rollback --to /srv/models/flowers
"""


def _version(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"a version is a number such as 1732200000, got {text!r}")
    return int(text)


def _locations(args: argparse.Namespace) -> tuple[Path | str, Path]:
    """The serving directory and the ML Metadata store the configuration names.

    A serving directory on an object store (``gs://...``) stays a string:
    ``Path`` would turn ``gs://b`` into ``gs:/b``.
    """

    config = config_from_args(args)
    given = args.serving_dir or config.run.serving_dir
    if given and serving_layout.is_remote(given):
        return given, config.metadata_path
    serving_dir = Path(args.serving_dir).expanduser().absolute() if args.serving_dir else config.serving_dir
    return serving_dir, config.metadata_path


# --------------------------------------------------------------------------- commands


def _endpoint_command(args: argparse.Namespace, action) -> int:
    """``--endpoint NAME``: the same command on a Vertex AI endpoint (pipeline/serving/endpoint.py)."""
    from pipeline.serving import endpoint  # the Vertex AI SDK

    print(action(endpoint, config_from_args(args)))
    return EXIT_OK


def command_models_list(args: argparse.Namespace) -> int:
    from pipeline.serving.served_models import format_served_models, list_served_models

    if args.endpoint:
        return _endpoint_command(
            args, lambda ep, config: ep.format_versions(ep.list_versions(config, args.endpoint), args.endpoint)
        )
    serving_dir, metadata_path = _locations(args)
    if not serving_layout.is_dir(str(serving_dir)):
        raise FlowersError(f"{serving_dir}: no such serving directory (set --work-dir, --config or --serving-dir)")
    models = list_served_models(serving_dir, metadata_path)
    if args.json:
        print(json.dumps([m.to_dict() for m in models], indent=2))
    else:
        print(format_served_models(models, serving_dir))
    return EXIT_OK


def command_models_show(args: argparse.Namespace) -> int:
    from pipeline.serving.served_models import read_card

    serving_dir, _ = _locations(args)
    text = read_card(str(serving_dir), args.version, as_json=args.json)
    print(text, end="" if text.endswith("\n") else "\n")
    return EXIT_OK


def _report_recovery(target: Path) -> None:
    from pipeline.serving import promotion

    for sentence in promotion.recover(target):
        print(f"{target}: {sentence}")


def command_models_promote(args: argparse.Namespace) -> int:
    from pipeline.serving import promotion

    if args.endpoint:
        return _endpoint_command(
            args, lambda ep, config: ep.promote(config, args.endpoint, str(args.version), args.traffic)
        )
    if args.traffic != 100:
        raise FlowersError("--traffic applies to --endpoint only: a production directory serves one version")
    serving_dir, metadata_path = _locations(args)
    promotion.refuse_remote(serving_dir, args.to)
    target = Path(args.to).expanduser()
    _report_recovery(target)
    try:
        outcome = promotion.promote(serving_dir, args.version, target, metadata_path)
    except promotion.AlreadyCurrent as nothing_to_do:
        print(nothing_to_do)
        return EXIT_OK
    print(f"Promoted version {outcome.version} to {outcome.target}")
    if outcome.replaced is not None:
        print(f"  version {outcome.replaced} is kept in {outcome.kept_at} ('models rollback' restores it)")
    return EXIT_OK


def command_models_rollback(args: argparse.Namespace) -> int:
    from pipeline.serving import promotion

    if args.endpoint:
        return _endpoint_command(args, lambda ep, config: ep.rollback(config, args.endpoint))
    promotion.refuse_remote(args.to)
    target = Path(args.to).expanduser()
    _report_recovery(target)
    outcome = promotion.rollback(target)
    print(f"Rolled {outcome.target} back to version {outcome.version}")
    if outcome.replaced is not None:
        print(f"  version {outcome.replaced} moved to {outcome.kept_at}")
    return EXIT_OK


# --------------------------------------------------------------------------- parser


def _add_location_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work-dir", metavar="DIR", help="the pipeline's work directory (default ./flowers-work)")
    parser.add_argument(
        "--serving-dir", metavar="DIR", help="where the pipeline pushed its models (default: run.serving_dir)"
    )
    add_config_options(parser)


def add_model_commands(subparsers) -> None:
    """Adds ``models`` (list, show, promote, rollback) to the main CLI's subparsers."""
    raw = argparse.RawDescriptionHelpFormatter

    models = subparsers.add_parser(
        "models",
        help="list pushed models; promote one into production, or roll back",
        description="List the models the pipeline pushed; promote a blessed one into a production "
        "directory, or roll back.",
        epilog=MODELS_EPILOG,
        formatter_class=raw,
    )
    commands = models.add_subparsers(dest="models_command", metavar="COMMAND", required=True)

    list_ = commands.add_parser(
        "list",
        help="every pushed version with its metrics, blessing, training data and run",
        description="List every version in the serving directory with what ML Metadata knows about it.",
        epilog=LIST_EPILOG,
        formatter_class=raw,
    )
    _add_location_options(list_)
    list_.add_argument("--json", action="store_true", help="print JSON instead of text")
    list_.add_argument(
        "--endpoint",
        metavar="NAME",
        help="list the Model Registry versions and their traffic on this Vertex AI endpoint instead",
    )
    list_.set_defaults(func=command_models_list)

    show = commands.add_parser(
        "show",
        help="a version's model card",
        description="Print a version's model card (assets.extra/model_card.md): model and recipe, training "
        "data, accuracy against the previous blessed model, the gate, input contract, intended use, limits.",
        formatter_class=raw,
    )
    show.add_argument("version", type=_version, metavar="VERSION", help="a version number from 'models list'")
    show.add_argument("--json", action="store_true", help="print the card's JSON (model_card.json) instead")
    _add_location_options(show)
    show.set_defaults(func=command_models_show)

    promote = commands.add_parser(
        "promote",
        help="copy a blessed version into a production directory, atomically",
        description="Make a blessed, pushed version the one version of a production directory.",
        epilog=PROMOTE_EPILOG,
        formatter_class=raw,
    )
    promote.add_argument("version", type=_version, metavar="VERSION", help="a version number from 'models list'")
    where = promote.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", metavar="DIR", help="the production directory TF Serving watches")
    where.add_argument(
        "--endpoint", metavar="NAME", help="a Vertex AI endpoint: VERSION is the serving version (or registry version)"
    )
    promote.add_argument(
        "--traffic",
        type=int,
        default=100,
        metavar="P",
        help="--endpoint: the share of traffic the version gets (default 100; the version before keeps the rest)",
    )
    _add_location_options(promote)
    promote.set_defaults(func=command_models_promote)

    rollback = commands.add_parser(
        "rollback",
        help="restore the version the current one replaced",
        description="Restore the version of a production directory that the current one replaced.",
        epilog=ROLLBACK_EPILOG,
        formatter_class=raw,
    )
    where = rollback.add_mutually_exclusive_group(required=True)
    where.add_argument("--to", metavar="DIR", help="the production directory TF Serving watches")
    where.add_argument(
        "--endpoint", metavar="NAME", help="a Vertex AI endpoint: all traffic back to the version before"
    )
    _add_location_options(rollback)
    rollback.set_defaults(func=command_models_rollback)
