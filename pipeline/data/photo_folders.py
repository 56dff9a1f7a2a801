"""The photo folder ``data convert`` reads (one subfolder per class, named as
in ``schema.LABELS``), listed and planned into shards before the Beam job
(``convert.py``) starts.

Without TensorFlow or Beam, so that a wrong folder is named at once: local
folders are read with ``os``, object stores (``gs://``) with TensorFlow's
filesystem, imported only for them.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass

from pipeline.data.shards import DataError
from schema import LABELS

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")


def _gfile():
    import tensorflow as tf  # only for object stores; see the module docstring

    return tf.io.gfile


def _isdir(path: str) -> bool:
    return _gfile().isdir(path) if "://" in path else os.path.isdir(path)


def _listdir(path: str) -> list[str]:
    return _gfile().listdir(path) if "://" in path else os.listdir(path)


@dataclass(frozen=True)
class PlannedImage:
    """A photo to convert: where it is, its class, and where its record will go."""

    path: str
    class_id: int
    shard: int
    order_key: str


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def list_source_images(source_dir: str) -> tuple[list[tuple[str, int]], list[tuple[str, str]]]:
    """Find the photos under ``source_dir/CLASS/``.

    Returns ``(photos, rejected)``: photos as (path, class_id) and files in
    class folders that are not photos as (path, reason). Hidden entries and
    files directly in ``source_dir`` (a LICENSE.txt, say) are ignored. Raises
    DataError for a missing folder, an unknown class folder or no class folder.
    """
    if not _isdir(source_dir):
        raise DataError(f"source folder {source_dir} does not exist or is not a folder")
    valid = ", ".join(LABELS)
    photos: list[tuple[str, int]] = []
    rejected: list[tuple[str, str]] = []
    class_folders = 0
    for entry in sorted(_listdir(source_dir)):
        name = entry.rstrip("/")
        folder = os.path.join(source_dir, name)
        if _is_hidden(name) or not _isdir(folder):
            continue
        if name not in LABELS:
            raise DataError(f"unknown class folder {name!r} in {source_dir}; valid class folders are: {valid}")
        class_folders += 1
        for file_entry in sorted(_listdir(folder)):
            file_name = file_entry.rstrip("/")
            path = os.path.join(folder, file_name)
            if _is_hidden(file_name):
                continue
            if _isdir(path):
                rejected.append((path, "is a folder; class folders are not searched recursively"))
            elif os.path.splitext(file_name)[1].lower() not in IMAGE_EXTENSIONS:
                rejected.append((path, "not a photo: expected a .jpg, .jpeg or .png file"))
            else:
                photos.append((path, LABELS.index(name)))
    if class_folders == 0:
        raise DataError(f"no class folders in {source_dir}; expected subfolders named: {valid}")
    return photos, rejected


def plan_shards(photos: list[tuple[str, int]], shards: int) -> list[PlannedImage]:
    """Give every photo a shard, round-robin in a stable pseudo-random order.

    The order comes from a hash of ``class/file name``, so it mixes classes
    within every shard, does not depend on where the folder lives, and is the
    same on every run. Shard sizes differ by at most one, less the photos
    that turn out to be unreadable (rare, and they are reported).
    """
    keyed = []
    for path, class_id in photos:
        relative = f"{LABELS[class_id]}/{os.path.basename(path)}"
        keyed.append((hashlib.sha256(relative.encode("utf-8")).hexdigest(), path, class_id))
    keyed.sort()
    used = max(1, min(shards, len(keyed)))
    return [PlannedImage(path, class_id, i % used, key) for i, (key, path, class_id) in enumerate(keyed)]
