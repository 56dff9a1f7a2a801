"""The layout of a serving directory, shared by the Pusher and the tools that read it.

A serving directory holds one numbered folder per version, each a SavedModel
(``saved_model.pb``) with a push manifest, ``assets.extra/push.json``, naming
the model artifact and the blessing it came from, and a model card
(``assets.extra/model_card.md``, ``.json``, ``confusion_matrix.png``). TF Serving loads only the
folders whose names are numbers, so hidden folders (staging, history) may sit
beside them.

The Pusher writes this layout (``components/pusher/``) and ``predict``,
``models list`` and ``models promote`` read it (``pipeline/serving/``), so
it is described once, here. Paths are plain strings because a serving
directory may be on an object store (``gs://``): those go through
TensorFlow's filesystem (``tf.io.gfile``), imported only then, so that local
commands do not pay for loading TensorFlow. This module does not import TFX.
"""

from __future__ import annotations

import json
import os
import posixpath

MANIFEST_PATH = posixpath.join("assets.extra", "push.json")
# The model card the Pusher writes beside the manifest (components/pusher/model_card.py).
CARD_MD = posixpath.join("assets.extra", "model_card.md")
CARD_JSON = posixpath.join("assets.extra", "model_card.json")
CARD_PNG = posixpath.join("assets.extra", "confusion_matrix.png")
SAVED_MODEL_FILE = "saved_model.pb"


class ManifestError(ValueError):
    """A push manifest that exists but cannot be read as a JSON object."""


def is_remote(path: str) -> bool:
    """True for a URL such as ``gs://bucket/dir`` (or ``file://``): no atomic rename there."""
    return "://" in str(path)


def join(base: str, *parts: str) -> str:
    """``base/part/...``; for URLs always with ``/``."""
    base = str(base)
    return posixpath.join(base, *parts) if is_remote(base) else os.path.join(base, *parts)


def _gfile():
    import tensorflow as tf  # only for object stores; see the module docstring

    return tf.io.gfile


def is_dir(path: str) -> bool:
    return _gfile().isdir(str(path)) if is_remote(path) else os.path.isdir(path)


def is_file(path: str) -> bool:
    if is_remote(path):
        gfile = _gfile()
        return gfile.exists(str(path)) and not gfile.isdir(str(path))
    return os.path.isfile(path)


def read_text(path: str) -> str:
    if is_remote(path):
        with _gfile().GFile(str(path), "r") as f:
            return f.read()
    with open(path, encoding="utf-8") as f:
        return f.read()


def version_dirs(serving_dir: str) -> dict[int, str]:
    """``{version: folder}`` of the numbered folders TF Serving would load, ascending."""
    serving_dir = str(serving_dir)
    if not is_dir(serving_dir):
        return {}
    # gfile lists sub-folders of an object store with a trailing "/".
    names = _gfile().listdir(serving_dir) if is_remote(serving_dir) else os.listdir(serving_dir)
    found = {}
    for name in (name.rstrip("/") for name in names):
        folder = join(serving_dir, name)
        if name.isdigit() and is_dir(folder):
            found[int(name)] = folder
    return dict(sorted(found.items()))


def read_manifest(version_dir: str) -> dict | None:
    """The push manifest of a version, or None when it has none.

    Raises ManifestError naming the file when it exists but is not a JSON object.
    """
    path = join(version_dir, MANIFEST_PATH)
    if not is_file(path):
        return None
    try:
        manifest = json.loads(read_text(path))
    except (OSError, ValueError) as error:
        raise ManifestError(f"{path}: unreadable push manifest ({error})") from None
    if not isinstance(manifest, dict):
        raise ManifestError(f"{path}: the push manifest is not a JSON object")
    return manifest
