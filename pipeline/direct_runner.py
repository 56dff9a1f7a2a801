"""Beam options for local runs on Beam's DirectRunner.

Given any Beam option, every TFX Beam step packages TFX itself as an sdist
(``--extra_package``) for remote workers, unless an option already says
where the workers' code comes from. The DirectRunner never ships it: its
worker processes (``--direct_running_mode=multi_processing``) are this
interpreter, started as ``python -m apache_beam.runners.worker.sdk_worker_main``,
and Beam gives them no staged files. The package cost a second per step and
left 40 MB in /tmp that nothing removed. An empty requirements file says,
truthfully, that the workers need nothing more, and TFX then skips it.
"""

from __future__ import annotations

import os

DIRECT_RUNNERS = ("", "DirectRunner", "direct", "SwitchingDirectRunner", "BundleBasedDirectRunner")
# The options with which TFX considers the workers' dependencies given.
DEPENDENCY_OPTIONS = (
    "--extra_package",
    "--extra_packages",
    "--setup_file",
    "--requirements_file",
    "--sdk_container_image",
    "--worker_harness_container_image",
)
NOTHING_TO_INSTALL = f"--requirements_file={os.devnull}"


def _option_value(args: list[str], name: str) -> str | None:
    for index, arg in enumerate(args):
        if arg == name:
            return args[index + 1] if index + 1 < len(args) else ""
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def runs_on_direct_runner(args: list[str]) -> bool:
    runner = _option_value(args, "--runner") or ""
    return runner.rsplit(".", 1)[-1] in DIRECT_RUNNERS


def local_beam_args(args: list[str]) -> list[str]:
    """``args``, plus the empty requirements file when they run the
    DirectRunner and name no dependencies (no args: nothing, TFX packages
    nothing then either)."""
    args = list(args)
    if not args or not runs_on_direct_runner(args):
        return args
    if any(_option_value(args, name) is not None for name in DEPENDENCY_OPTIONS):
        return args
    return args + [NOTHING_TO_INSTALL]
