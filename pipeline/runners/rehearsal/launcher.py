"""Runs one container command of a spec with this environment's Python.

A task's container runs ``python -m MODULE ARGS`` (TFX's
``kubeflow_v2_run_executor``, or the ImportExampleGen driver). By default
the module runs in this process (``runpy``, as ``python -m`` would), so the
TensorFlow/TFX imports are paid once for the whole rehearsal; its log goes to
the task's log file. ``isolated=True`` starts a new Python process per
command, as Vertex AI starts a container per task.
"""

from __future__ import annotations

import logging
import os
import runpy
import subprocess
import sys
from pathlib import Path

from pipeline.runners.rehearsal.storage import CHECKOUT


class CommandFailed(Exception):
    """A task's command exited with a status other than 0."""


def module_of(command: list[str]) -> str:
    """``MODULE`` of ``python -m MODULE``; anything else is not something this image runs."""
    if len(command) >= 3 and Path(command[0]).name.startswith("python") and command[1] == "-m":
        return command[2]
    raise CommandFailed(f"container command {command!r} is not 'python -m MODULE'; the rehearsal runs those only")


def run_command(command: list[str], args: list[str], log_file: Path, isolated: bool, root: Path | None = None) -> None:
    """Runs ``command + args``; raises CommandFailed (naming the log) when it fails.

    With ``isolated``, the new process starts in ``task_main``, which puts the
    Vertex AI stand-ins (recording under ``root``) in place first.
    """
    module = module_of(command)
    extra = command[3:] + args
    log_file.parent.mkdir(parents=True, exist_ok=True)
    if isolated:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(CHECKOUT), os.environ.get("PYTHONPATH")])))
        with log_file.open("a", encoding="utf-8") as log:
            status = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pipeline.runners.rehearsal.task_main",
                    str(root),
                    str(log_file),
                    module,
                    *extra,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=CHECKOUT,
            ).returncode
    else:
        status = _run_in_process(module, extra, log_file)
    if status != 0:
        raise CommandFailed(f"python -m {module} exited with status {status}; see {log_file}")


def _run_in_process(module: str, args: list[str], log_file: Path) -> int:
    """``python -m module args`` in this process, its logging into ``log_file``.

    TensorFlow's C++ code writes to file descriptor 2 directly, so the
    descriptors 1 and 2 themselves point at the log while the task runs.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved_fds = os.dup(1), os.dup(2)
    log_fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    try:
        return _run_module(module, args, log_file)
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved_fds[0], 1)
        os.dup2(saved_fds[1], 2)
        for fd in (*saved_fds, log_fd):
            os.close(fd)


def _run_module(module: str, args: list[str], log_file: Path) -> int:
    root = logging.getLogger()
    saved_handlers, saved_level, saved_argv = root.handlers[:], root.level, sys.argv
    handler = logging.FileHandler(log_file, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.handlers = [handler]
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    except SystemExit as exit_:
        code = exit_.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    except Exception:  # noqa: BLE001 - a failing task is reported, not raised through the launcher
        logging.exception("the task failed")
        return 1
    finally:
        handler.close()
        root.handlers, sys.argv = saved_handlers, saved_argv
        root.setLevel(saved_level)
