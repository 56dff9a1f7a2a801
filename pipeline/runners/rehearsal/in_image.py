"""Tasks run inside the pipeline's image (``rehearse --image TAG``), as Vertex AI runs them.

Each task, and its driver step, gets a new container of the image: the
spec's own command and arguments, as the image's user, in the image's
``/pipeline``, with nothing of this checkout mounted. What stands in for
Google Cloud is mounted instead: the rehearsal root at its own path, so that
``gs://BUCKET/PATH`` is ``ROOT/gcs/BUCKET/PATH`` inside as outside, and the
task's log and the stand-ins' records are written there.

The spec's command runs behind ``task_main``, which first puts the Vertex
AI stand-ins in place in the task's process (the Training job service, the
Model Registry); a Vertex AI Training job's command then runs inside the
Trainer task's container, that is in the same image. The root is handed
to the image's user, as a bucket is writable by the job's service account.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.image.builders import Builder, Mount, find_builder
from pipeline.runners.rehearsal.launcher import CommandFailed, module_of

TASK_MAIN = "pipeline.runners.rehearsal.task_main"


@dataclass
class ImageTasks:
    image: str
    root: Path
    builder: Builder = field(default_factory=find_builder)
    uid: int = -1
    gid: int = -1

    def __post_init__(self):
        self.facts = self.builder.facts(self.image)  # BuilderError when there is no such image
        ids = self.builder.output_of(self.image, ["sh", "-c", "id -u; id -g"]).split()
        self.uid, self.gid = int(ids[0]), int(ids[1])

    def describe(self) -> str:
        return (
            f"every task runs inside {self.image} ({self.facts.image_id[:12]}, {self.builder.name}) as uid {self.uid}"
        )

    def hand_over_root(self) -> None:
        """Makes everything under the root writable by the image's user."""
        for folder, subfolders, files in os.walk(self.root):
            for name in [folder, *(os.path.join(folder, n) for n in subfolders + files)]:
                if os.path.islink(name):
                    continue
                if os.geteuid() == 0:
                    os.chown(name, self.uid, self.gid)
                else:
                    os.chmod(name, os.stat(name).st_mode | 0o666 | (0o111 if os.path.isdir(name) else 0))

    def run(self, command: list[str], args: list[str], log_file: Path) -> None:
        """The spec's ``python -m MODULE ARGS`` in a new container; CommandFailed naming the log."""
        module = module_of(command)
        log_file.parent.mkdir(parents=True, exist_ok=True)
        log_file.touch()
        self.hand_over_root()
        inside = [command[0], "-m", TASK_MAIN, str(self.root), str(log_file), module, *command[3:], *args]
        with log_file.open("a", encoding="utf-8") as log:
            log.write(f"# in {self.image} as uid {self.uid}: {command[0]} -m {module} ...\n")
            log.flush()
            status = self.builder.run(
                self.image, inside, mounts=(Mount(self.root, str(self.root)),), stdout=log, stderr=subprocess.STDOUT
            ).returncode
        if status != 0:
            raise CommandFailed(
                f"{command[0]} -m {module} exited with status {status} inside {self.image}; see {log_file}"
            )
