"""Writes that survive a crash: a copy is whole and flushed before a rename
publishes it, and a small file is replaced in one rename.

Promotion (``pipeline/serving/promotion.py``) builds on these; each is kept
tiny so that the tests can interrupt one step (``copy_version_files``).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def copy_version_files(source: Path, destination: Path) -> None:
    """Copies a version folder (the one slow step; tests interrupt it)."""
    shutil.copytree(source, destination, copy_function=shutil.copy2)


def fsync_dir(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def fsync_tree(folder: Path) -> None:
    """Flushes every file and folder of a copy, so a rename never publishes data still in the cache."""
    for root, _, files in os.walk(folder):
        for name in files:
            with open(os.path.join(root, name), "rb") as handle:
                os.fsync(handle.fileno())
        fsync_dir(Path(root))


def write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.rename(temporary, path)
    fsync_dir(path.parent)


def tree_listing(folder: Path) -> dict[str, int]:
    """``{relative path: size}`` of every file, to check that a copy is whole."""
    return {str(path.relative_to(folder)): path.stat().st_size for path in folder.rglob("*") if path.is_file()}


def copy_into_staging(source: Path, staging: Path) -> None:
    """A complete, flushed copy of ``source`` at ``staging``; on any failure
    (an interrupt included) the partial copy is removed."""
    try:
        copy_version_files(source, staging)
        if tree_listing(staging) != tree_listing(source):
            raise OSError(f"the copy in {staging} differs from {source}")
        fsync_tree(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def append_line(path: Path, line: str) -> None:
    """Appends one line to a log and flushes it to disk before returning."""
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(line + "\n")
        handle.flush()
        os.fsync(handle.fileno())
