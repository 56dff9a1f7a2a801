"""``flowers-tfx`` commands in child processes that start with the heavy imports done.

A ``flowers-tfx run`` process spends about 6 s of CPU importing TensorFlow,
TFX and Beam before it reads its arguments (15 to 20 s where their bytecode
was not compiled). The fault-injection test starts 15 of them (2 that push
together, 13 that it kills). Here each command runs in a
process forked from one that imported those libraries once (multiprocessing's
forkserver, with its preload list). The child is still a process of its own:
its own interpreter state, output and exit status; ``pipeline.cli.main.main``
runs in it as ``python -m pipeline.cli.main`` runs it, and SIGKILL kills it
alone. The forkserver only imports; it never runs TensorFlow, so it has no
TensorFlow threads for a fork to break.

Two differences from ``python -m``: the child takes the caller's
environment and the given ``cwd`` when it starts (the forkserver's own were
fixed when it started), and atexit handlers do not run (multiprocessing
children leave with ``os._exit``), which no test here depends on: a run
closes its files before ``main`` returns.
"""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
from pathlib import Path

# What a `flowers-tfx run` imports before and while it runs its components.
PRELOAD = [
    "pipeline.cli.main",
    "pipeline.runners.local",
    "tensorflow_data_validation",
    "tensorflow_transform",
    "tensorflow_model_analysis",
]

_context = None


def _forkserver():
    """The forkserver context, which imports PRELOAD when it first starts a child."""
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def _run_command(args: list[str], output, cwd: str, environ: dict) -> None:
    """In the child: stdout and stderr to ``output``'s pipe, then the command line."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(environ)
    for fd in (1, 2):
        os.dup2(output.fileno(), fd)
    output.close()
    sys.stdout = open(1, "w", buffering=1, closefd=False)
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    from pipeline.cli.main import main

    sys.exit(main(args))


class WarmCli:
    """A ``flowers-tfx`` command in a warm child process, read and stopped like
    ``subprocess.Popen(..., stdout=PIPE, stderr=STDOUT, text=True)``."""

    def __init__(self, args: list[str], cwd: str | Path):
        context = _forkserver()
        reader, writer = context.Pipe(duplex=False)
        self._process = context.Process(target=_run_command, args=(args, writer, str(cwd), dict(os.environ)))
        self._process.start()
        writer.close()  # the child holds the only writing end: its exit ends the output
        self.stdout = os.fdopen(os.dup(reader.fileno()), encoding="utf-8", errors="replace")
        reader.close()
        self.pid = self._process.pid

    @property
    def returncode(self) -> int | None:
        """The exit status, or minus the signal that ended it; None while it runs."""
        return self._process.exitcode

    def poll(self) -> int | None:
        return self._process.exitcode

    def send_signal(self, signal_number: int) -> None:
        if self._process.exitcode is None:
            os.kill(self.pid, signal_number)

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        if self._process.exitcode is None:
            raise subprocess.TimeoutExpired(f"flowers-tfx (pid {self.pid})", timeout)
        return self._process.exitcode

    def communicate(self, timeout: float | None = None) -> tuple[str, None]:
        """All the output (read to the end, when the child has exited), after which it waits."""
        text = self.stdout.read()
        self.stdout.close()
        self.wait(timeout)
        return text, None
