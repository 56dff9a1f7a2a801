"""The versions the Pusher wrote into a serving directory, read back.

A serving directory holds one numbered folder per version, each a SavedModel
(``saved_model.pb``) with a push manifest, ``assets.extra/push.json``, which
names the model artifact and the blessing it came from. The layout itself is
described once, in ``components/shared/serving_layout.py``, which the Pusher writes
with; this module gives it to ``predict``, ``models list`` and ``models
promote`` as they want it: local folders as ``Path`` objects, object-store
folders (``gs://...``) as strings (a ``Path`` would turn ``gs://`` into
``gs:/``), and problems as ServingDirError. It does not load TFX.
"""

from __future__ import annotations

from pathlib import Path

from components.shared import serving_layout
from pipeline.errors import FlowersError

MANIFEST_PATH = Path(serving_layout.MANIFEST_PATH)
SAVED_MODEL_FILE = serving_layout.SAVED_MODEL_FILE
# The files TFX's Evaluator writes into its blessing artifact's folder.
BLESSED_FILE = "BLESSED"
NOT_BLESSED_FILE = "NOT_BLESSED"


class ServingDirError(FlowersError, ValueError):
    """A path that is not the model, version or serving directory it should be."""


def _location(path: str) -> Path | str:
    """A folder as the callers use it: a Path when local, the URL string when remote."""
    return path if serving_layout.is_remote(path) else Path(path)


def version_dirs(serving_dir: Path | str) -> dict[int, Path | str]:
    """``{version: folder}`` of the numbered folders TF Serving would load, ascending."""
    return {version: _location(folder) for version, folder in serving_layout.version_dirs(str(serving_dir)).items()}


def is_saved_model(folder: Path | str) -> bool:
    return serving_layout.is_file(serving_layout.join(str(folder), SAVED_MODEL_FILE))


def find_saved_model(path: Path | str) -> Path | str:
    """The SavedModel at ``path``: the folder itself, or the highest version in it.

    ``path`` may be an object-store URL (``gs://...``), which comes back as a
    string, so that a batch job on Dataflow can name a model its workers read.
    Raises ServingDirError naming the path when it is neither.
    """
    path = _location(str(path))
    if not serving_layout.is_dir(str(path)):
        if serving_layout.is_remote(str(path)) or not Path(path).exists():
            raise ServingDirError(f"{path}: no such directory")
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


def read_manifest(version_dir: Path | str) -> dict | None:
    """The push manifest of a version, or None when it has none.

    Raises ServingDirError when the manifest exists but is not a JSON object.
    """
    try:
        return serving_layout.read_manifest(str(version_dir))
    except serving_layout.ManifestError as error:
        raise ServingDirError(str(error)) from None


def blessing_on_disk(blessing_uri: str | None) -> bool | None:
    """What the Evaluator wrote into its blessing folder: True (BLESSED), False
    (NOT_BLESSED), or None when the folder or both files are missing."""
    if not blessing_uri:
        return None
    if serving_layout.is_file(serving_layout.join(blessing_uri, BLESSED_FILE)):
        return True
    if serving_layout.is_file(serving_layout.join(blessing_uri, NOT_BLESSED_FILE)):
        return False
    return None
