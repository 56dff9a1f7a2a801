"""Small helpers that several parts of the project share, each written once.

- :func:`utc_timestamp`: the one timestamp format of manifests and logs.
- :func:`tf_error_text`: a TensorFlow error message a person can read.
- :func:`exclusive_lock`: one process at a time on a folder (a run on its
  work directory), with a record of its holder that readers check without
  taking the lock (:func:`read_holder`, :func:`holder_state`).

Standard library only, so that anything may import it cheaply.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
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


# ------------------------------------------------------------------ lock holders
# A lock (or claim) file records who holds it: process id, host and when it
# started, so that a reader can tell a live holder from one that was killed
# without ever taking the lock itself.

HOLDER_LIVE, HOLDER_GONE, HOLDER_UNKNOWN = "live", "gone", "unknown"


def _process_start(pid: int) -> int | None:
    """The start of process ``pid`` in clock ticks since boot (Linux), which
    tells a process from a later one given the same id; None elsewhere."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def holder_record() -> dict:
    """This process as the holder of a lock or claim."""
    now = time.time()
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": now,
        "started_at": utc_timestamp(now),
        "process_start": _process_start(os.getpid()),
    }


def read_holder(text: str) -> dict | None:
    """The holder a lock file names (also the older ``pid 1234``), or None."""
    text = (text or "").strip()
    try:
        record = json.loads(text)
    except ValueError:
        match = re.fullmatch(r"pid (\d+)", text)
        return {"pid": int(match.group(1))} if match else None
    return record if isinstance(record, dict) and isinstance(record.get("pid"), int) else None


def holder_state(record: dict | None) -> str:
    """``live`` (its process runs), ``gone`` (it was killed: a stale record)
    or ``unknown`` (it is on another host, whose processes are not seen here)."""
    if record is None:
        return HOLDER_GONE
    if record.get("host") not in (None, socket.gethostname()):
        return HOLDER_UNKNOWN
    pid = record["pid"]
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return HOLDER_GONE
    except PermissionError:
        pass  # another user's process: it exists
    recorded, current = record.get("process_start"), _process_start(pid)
    if recorded is not None and current is not None and recorded != current:
        return HOLDER_GONE  # the id now belongs to another process
    return HOLDER_LIVE


def describe_holder(record: dict | None) -> str:
    """``pid 1234 on host since 2026-12-05T13:00:00Z``."""
    if record is None:
        return "another process"
    where = f" on {record['host']}" if record.get("host") else ""
    since = f" since {record['started_at']}" if record.get("started_at") else ""
    return f"pid {record['pid']}{where}{since}"


@contextmanager
def exclusive_lock(lock_path: Path, busy: Callable[[str], Exception]) -> Iterator[None]:
    """Holds an exclusive ``flock`` on ``lock_path`` (created if needed) while
    the block runs, with this process's :func:`holder_record` written in it.

    When another process holds it, raises ``busy(holder)`` at once, where
    ``holder`` says which process ("pid 1234 on host since ...") if it wrote
    itself down. The kernel drops the lock when its holder dies, so a crash
    never leaves a folder locked; its record stays, and :func:`holder_state`
    tells readers that it is stale. Readers read the file, never lock it.
    """
    with open(lock_path, "a+") as lock_file:
        try:
            fcntl.flock(lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock_file.seek(0)
            text = lock_file.read()
            holder = read_holder(text)
            raise busy(describe_holder(holder) if holder else text.strip() or "another process") from None
        lock_file.seek(0)
        lock_file.truncate()
        lock_file.write(json.dumps(holder_record()))
        lock_file.flush()
        try:
            yield
        finally:
            lock_file.seek(0)
            lock_file.truncate()
            fcntl.flock(lock_file, fcntl.LOCK_UN)
