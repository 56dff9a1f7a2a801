"""The versions the Pusher wrote into a serving directory, read back.

A serving directory holds one numbered folder per version, each a SavedModel
(``saved_model.pb``) with a push manifest, ``assets.extra/push.json``, which
names the model artifact and the blessing it came from (see
``components/pusher_executor.py``). TF Serving loads only the folders whose
names are numbers, so hidden folders (staging, history) may sit beside them.

This module reads that layout with plain file operations: ``predict``,
``models list`` and ``models promote`` use it without loading TFX.
"""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.errors import FlowersError

# Must match components.pusher.PUSH_MANIFEST (a test checks it); not
# imported from there because that module loads TFX.
MANIFEST_PATH = Path("assets.extra") / "push.json"
SAVED_MODEL_FILE = "saved_model.pb"
# The files TFX's Evaluator writes into its blessing artifact's folder.
BLESSED_FILE = "BLESSED"
NOT_BLESSED_FILE = "NOT_BLESSED"


class ServingDirError(FlowersError, ValueError):
    """A path that is not the model, version or serving directory it should be."""


def version_dirs(serving_dir: Path) -> dict[int, Path]:
    """``{version: folder}`` of the numbered folders TF Serving would load, ascending."""
    if not serving_dir.is_dir():
        return {}
    found = {int(child.name): child for child in serving_dir.iterdir() if child.name.isdigit() and child.is_dir()}
    return dict(sorted(found.items()))


def is_saved_model(folder: Path) -> bool:
    return (folder / SAVED_MODEL_FILE).is_file()


def find_saved_model(path: Path) -> Path:
    """The SavedModel at ``path``: the folder itself, or the highest version in it.

    Raises ServingDirError naming the path when it is neither.
    """
    if not path.exists():
        raise ServingDirError(f"{path}: no such directory")
    if not path.is_dir():
        raise ServingDirError(f"{path}: not a directory (give a model version or serving directory)")
    if is_saved_model(path):
        return path
    versions = version_dirs(path)
    if not versions:
        raise ServingDirError(
            f"{path}: neither a SavedModel (no {SAVED_MODEL_FILE}) nor a serving directory of numbered versions"
        )
    version, folder = list(versions.items())[-1]
    if not is_saved_model(folder):
        raise ServingDirError(f"{folder}: version {version} has no {SAVED_MODEL_FILE}")
    return folder


def read_manifest(version_dir: Path) -> dict | None:
    """The push manifest of a version, or None when it has none.

    Raises ServingDirError when the manifest exists but is not a JSON object.
    """
    path = version_dir / MANIFEST_PATH
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise ServingDirError(f"{path}: unreadable push manifest ({error})") from None
    if not isinstance(manifest, dict):
        raise ServingDirError(f"{path}: the push manifest is not a JSON object")
    return manifest


def blessing_on_disk(blessing_uri: str | None) -> bool | None:
    """What the Evaluator wrote into its blessing folder: True (BLESSED), False
    (NOT_BLESSED), or None when the folder or both files are missing."""
    if not blessing_uri:
        return None
    folder = Path(blessing_uri)
    if (folder / BLESSED_FILE).is_file():
        return True
    if (folder / NOT_BLESSED_FILE).is_file():
        return False
    return None
