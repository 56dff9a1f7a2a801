"""One ``flowers-tfx run`` as a user runs it, timed from its progress lines.

The end-to-end, storage and scale benchmarks each run the pipeline this way:
``prepare`` makes the default data set once, ``run_pipeline`` runs the
command in a clean environment and reads when each component started and
ended.
"""

from __future__ import annotations

import dataclasses
import io
import os
import re
import sys
import time
from pathlib import Path

from bench import common

QUICK_SETTINGS = {"data.synthetic_images": 300, "data.synthetic_shards": 4, "model.epochs": 2}
# A progress line of `flowers-tfx run`: "  Trainer    done    118.6 s".
_PROGRESS = re.compile(r"^  (?P<name>\S.*?)\s+(?P<how>done|from cache|skipped)\s+(?P<seconds>[\d.]+) s$")


def clean_environment() -> dict:
    """This environment without FLOWERS_TFX__ settings, so the run uses the defaults."""
    from pipeline.config import ENV_PREFIX

    return {key: value for key, value in os.environ.items() if not key.startswith(ENV_PREFIX)}


def flowers_tfx() -> list[str]:
    """The installed command next to this interpreter, else the module."""
    script = Path(sys.executable).with_name("flowers-tfx")
    return [str(script)] if script.exists() else [sys.executable, "-m", "pipeline.cli.main"]


def prepare(work_dir: Path, quick: bool):
    """The default data set in ``work_dir`` (generated once): the run's
    overrides and configuration, the glob of the shards and the seconds
    generating them took."""
    from pipeline.config_loading import load_config
    from pipeline.data import source as data_source

    overrides = {"run.work_dir": str(work_dir), **(QUICK_SETTINGS if quick else {})}
    config = load_config(overrides=overrides, environ={})
    started = time.perf_counter()
    location = data_source.prepare(config, io.StringIO())
    return overrides, config, f"{location.base}/{location.pattern}", time.perf_counter() - started


@dataclasses.dataclass
class PipelineRun:
    command: common.CommandResult
    work_dir: Path
    # (component, how, seconds), from the progress lines.
    components: list[tuple[str, str, float]]
    # Seconds from the start to the first component's start, and to the end of the last.
    first_component: float
    finished: float


def run_pipeline(overrides: dict) -> PipelineRun:
    """``flowers-tfx run`` with these settings, as a user runs it."""
    args = flowers_tfx() + ["run"]
    for key, value in overrides.items():
        args += ["--set", f"{key}={value}"]
    command = common.run_command(args, env=clean_environment())
    if command.status != 0:
        raise RuntimeError(f"flowers-tfx run failed (exit status {command.status}):\n{command.output[-4000:]}")
    components = [
        (match["name"], match["how"], float(match["seconds"]))
        for match in (_PROGRESS.match(line) for _, line in command.lines)
        if match
    ]
    first = next(at for at, line in command.lines if line.endswith("running ..."))
    finished = next(at for at, line in command.lines if line.startswith("Pipeline finished"))
    return PipelineRun(command, Path(overrides["run.work_dir"]), components, first, finished)
