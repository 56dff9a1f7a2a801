"""Small helpers that several parts of the project share, each written once.

- :func:`utc_timestamp`: the one timestamp format of manifests and logs.
- :func:`tf_error_text`: a TensorFlow error message a person can read.
- :func:`exclusive_lock`: one process at a time on a folder (a run on its
  work directory, a promotion on its production directory).

Standard library only, so that anything may import it cheaply.
"""

from __future__ import annotations

import fcntl
import os
import re
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

UTC_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_timestamp(seconds: float | None = None) -> str:
    """``2026-12-01T20:57:32Z``: now, or ``seconds`` since the epoch, in UTC."""
    return time.strftime(UTC_FORMAT, time.gmtime(seconds))


# Lines of an error raised inside a graph (a loaded SavedModel's signature,
# a tf.function) that come before the reason and say nothing to a user.
_GRAPH_ERROR_NOISE = ("Graph execution error", "Detected at node", "<stack traces unavailable>", " ")


def tf_error_text(message: str) -> str:
    """TensorFlow's reason in one line: the first line that is not graph-execution
    noise, without its ``{{function_node ...}}`` prefix and ``[Op:...]`` suffix."""
    reasons = [line for line in message.splitlines() if line.strip() and not line.startswith(_GRAPH_ERROR_NOISE)]
    first_line = (reasons or message.strip().splitlines() or [""])[0]
    text = re.sub(r"\{\{.*?\}\}\s*", "", first_line)
    return re.sub(r"\s*\[Op:\w+\]", "", text).strip()


@contextmanager
def exclusive_lock(lock_path: Path, busy: Callable[[str], Exception]) -> Iterator[None]:
    """Holds an exclusive ``flock`` on ``lock_path`` (created if needed) while
    the block runs, with this process's id written in it.

    When another process holds it, raises ``busy(holder)`` at once, where
    ``holder`` says which process ("pid 1234") if it wrote itself down. The
    kernel drops the lock when its holder dies, so a crash never leaves a
    folder locked.
    """
    with open(lock_path, "a+") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            raise busy(lock_file.read().strip() or "another process") from None
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(f"pid {os.getpid()}")
        lock_file.flush()
        try:
            yield
        finally:
            lock_file.seek(0)
            lock_file.truncate()
            fcntl.flock(lock_file, fcntl.LOCK_UN)
