"""What every ``flowers-tfx`` command shares: argument types and the
configuration options. (Errors and exit statuses: ``pipeline/errors.py``.)

``--config FILE`` and ``--set KEY=VALUE`` (plus a command's own shortcuts such
as ``--data`` or ``--epochs``) build the run's configuration in layers; see
``pipeline/config_loading.py``.
"""

from __future__ import annotations

import argparse

from pipeline.config import Config
from pipeline.config_loading import load_config, parse_assignment


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


# Shortcut options of some commands, and the key each one sets.
SHORTCUTS = {
    "data": "data.source",
    "work_dir": "run.work_dir",
    "model": "model.name",
    "epochs": "model.epochs",
}


def add_config_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE", help="configuration file (.toml, .yaml or .yml)")
    parser.add_argument(
        "--set",
        dest="assignments",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one setting, e.g. --set model.epochs=3 (repeatable)",
    )


def config_from_args(args: argparse.Namespace) -> Config:
    """Defaults, file, environment, then --set and the shortcut options."""
    overrides = dict(parse_assignment(text) for text in args.assignments)
    for option, key in SHORTCUTS.items():
        value = getattr(args, option, None)
        if value is not None:
            overrides[key] = value
    return load_config(args.config, overrides)
