"""Where the paths a spec names are on this machine.

On Vertex AI a task sees Cloud Storage (``gs://BUCKET/PATH``) and the image's
copy of the project (``/pipeline``). Here ``gs://BUCKET/PATH`` is the folder
``ROOT/gcs/BUCKET/PATH`` and ``/pipeline`` is this checkout.

Why the task's ExecutorInput is translated rather than gs:// redirected in
the filesystem layer: the tasks reach storage through three separate
stacks, TFX's fileio, TensorFlow's C++ GCS filesystem (``tf.io.gfile``,
``tf.data``, SavedModel) and Beam's GCS IO (TFDV, TFT, TFMA). Only the first
can be given a new filesystem from Python; TensorFlow's takes compiled
plugins only and talks to the real service, which is not reachable offline.
So the spec file is left as it is and each task is given its ExecutorInput
(and arguments) with those two prefixes replaced, nothing else; outputs
read back from a task are translated the other way, so what the rehearsal
records and prints names the same gs:// URIs that Vertex AI would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[3]
IMAGE_PROJECT = "/pipeline"
# /pipeline as a path of its own (not /pipelines, nor a/pipeline/b), quoted or not.
_IMAGE_PATH = re.compile(r'(?<![\w./-])/pipeline(?=/|"|\\|$)')


@dataclass(frozen=True)
class Storage:
    root: Path  # --root
    # Where the image's /pipeline is: this checkout, or /pipeline itself when
    # the tasks run inside the image (rehearse --image).
    project: Path = CHECKOUT

    @property
    def gcs(self) -> Path:
        return self.root / "gcs"

    def to_local(self, text: str) -> str:
        """Every gs:// URL and /pipeline path of ``text`` as its local path."""
        text = text.replace("gs://", f"{self.gcs}/")
        return _IMAGE_PATH.sub(str(self.project), text)

    def to_gcs(self, text: str) -> str:
        """The reverse of ``to_local`` for storage paths: what Vertex AI would name."""
        return text.replace(f"{self.gcs}/", "gs://")

    def local_path(self, url: str) -> Path:
        return Path(self.to_local(url))
