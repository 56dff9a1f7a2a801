"""Container builders behind one interface: docker, podman or buildah.

Which one: ``FLOWERS_IMAGE_BUILDER`` when set, else docker when its daemon
answers, else podman, else buildah. buildah needs no daemon and builds and
runs images as root, which is how CI does it here; it runs with chroot
isolation (its default isolation needs cgroup features that a machine
inside a container may lack) and the overlay storage driver.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pipeline.errors import EXIT_PROBLEMS, FlowersError

BUILDER_VARIABLE = "FLOWERS_IMAGE_BUILDER"
BUILDER_NAMES = ("docker", "podman", "buildah")


class BuilderError(FlowersError):
    """No builder, or no such image (exit status 2)."""


class BuildFailed(BuilderError):
    """The builder ran and failed (exit status 1)."""

    exit_status = EXIT_PROBLEMS


@dataclass(frozen=True)
class Mount:
    """A host path seen inside a build step or a container."""

    source: Path
    target: str
    read_only: bool = False
    # Writes inside are thrown away when the step ends (podman and buildah).
    overlay: bool = False

    def volume(self) -> str:
        option = ":O" if self.overlay else (":ro" if self.read_only else "")
        return f"{self.source}:{self.target}{option}"


@dataclass
class ImageFacts:
    """What a builder knows of a local image."""

    reference: str
    image_id: str
    digest: str  # the manifest's digest when the builder knows one, else ""
    size_bytes: int
    labels: dict = field(default_factory=dict)
    user: str = ""


def _answers(argv: list[str]) -> bool:
    try:
        return subprocess.run(argv, capture_output=True, timeout=20).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def find_builder(name: str | None = None) -> "Builder":
    """The builder named (argument or FLOWERS_IMAGE_BUILDER), or the first one this machine can use."""
    name = name or os.environ.get(BUILDER_VARIABLE) or ""
    if name:
        if name not in BUILDER_NAMES:
            raise BuilderError(f"{BUILDER_VARIABLE}={name}: not one of {', '.join(BUILDER_NAMES)}")
        if not shutil.which(name):
            raise BuilderError(f"{name}: not installed on this machine")
        return Builder(name)
    if shutil.which("docker") and _answers(["docker", "info"]):
        return Builder("docker")
    for candidate in ("podman", "buildah"):
        if shutil.which(candidate):
            return Builder(candidate)
    hint = " (docker is installed but its daemon does not answer)" if shutil.which("docker") else ""
    raise BuilderError(
        "no container builder: install docker (with its daemon), podman or buildah "
        f"(on Debian: apt-get install buildah){hint}"
    )


@dataclass(frozen=True)
class Builder:
    name: str  # docker, podman or buildah

    @property
    def argv(self) -> list[str]:
        return [self.name, "--storage-driver", "overlay"] if self.name == "buildah" else [self.name]

    @property
    def takes_build_mounts(self) -> bool:
        """docker build has no -v; podman and buildah mount host paths into RUN steps."""
        return self.name != "docker"

    # ------------------------------------------------------------------ build

    def build_command(
        self, dockerfile: Path, context: Path, tag: str, build_args: dict[str, str], mounts: list[Mount]
    ) -> list[str]:
        command = self.argv + (["bud", "--isolation", "chroot"] if self.name == "buildah" else ["build"])
        if self.name == "docker":
            command += ["--progress", "plain"]
        else:
            command += ["--layers", "--network", "host"] + [f"--volume={m.volume()}" for m in mounts]
        for key, value in build_args.items():
            command += ["--build-arg", f"{key}={value}"]
        return command + ["--file", str(dockerfile), "--tag", tag, str(context)]

    def build(
        self,
        dockerfile: Path,
        context: Path,
        tag: str,
        build_args: dict[str, str],
        mounts: list[Mount],
        on_line: Callable[[str], None],
    ) -> None:
        """Builds ``tag``, giving each line of the builder's output to ``on_line``."""
        command = self.build_command(dockerfile, context, tag, build_args, mounts)
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
        assert process.stdout is not None
        for line in process.stdout:
            on_line(line.rstrip("\n"))
        if process.wait() != 0:
            raise BuildFailed(f"{self.name} could not build {tag} from {dockerfile} (exit status {process.returncode})")

    # ---------------------------------------------------------------- inspect

    def facts(self, reference: str) -> ImageFacts:
        """Size, digest and labels of a local image; BuilderError when there is none."""
        if self.name == "buildah":
            found = self._json(["inspect", "--type", "image", reference], reference)
            config = found.get("OCIv1", {}).get("config", {})
            # Its layers as stored here, uncompressed: what the image takes on a disk.
            layers = json.loads(found.get("Manifest") or "{}").get("layers", [])
            return ImageFacts(
                reference,
                found.get("FromImageID", ""),
                found.get("FromImageDigest", ""),
                sum(layer.get("size", 0) for layer in layers),
                config.get("Labels") or {},
                config.get("User", ""),
            )
        [found] = self._json(["image", "inspect", reference], reference)
        digests = found.get("RepoDigests") or []
        config = found.get("Config") or {}
        return ImageFacts(
            reference,
            found.get("Id", ""),
            digests[0].split("@", 1)[1] if digests else "",
            int(found.get("Size", 0)),
            config.get("Labels") or {},
            config.get("User", ""),
        )

    def _json(self, args: list[str], reference: str):
        result = subprocess.run(self.argv + args, capture_output=True, text=True)
        if result.returncode != 0:
            raise BuilderError(f"{reference}: no such image for {self.name} ({result.stderr.strip() or 'not found'})")
        return json.loads(result.stdout)

    # -------------------------------------------------------------------- run

    def run(
        self,
        reference: str,
        command: list[str],
        *,
        user: str | None = None,
        mounts: tuple[Mount, ...] = (),
        env: dict[str, str] | None = None,
        workdir: str | None = None,
        stdout=None,
        stderr=None,
        timeout: float | None = None,
        text: bool = True,
    ) -> subprocess.CompletedProcess:
        """Runs ``command`` in a new container of the image (its entrypoint
        replaced), with the host's network, and removes the container."""
        env = env or {}
        if self.name == "buildah":
            return self._buildah_run(reference, command, user, mounts, env, workdir, stdout, stderr, timeout, text)
        argv = self.argv + ["run", "--rm", "--network", "host", "--entrypoint", command[0]]
        argv += [f"--volume={m.volume()}" for m in mounts] + [f"--env={k}={v}" for k, v in env.items()]
        argv += (["--user", user] if user else []) + (["--workdir", workdir] if workdir else [])
        return subprocess.run(
            argv + [reference, *command[1:]], stdout=stdout, stderr=stderr, timeout=timeout, text=text
        )

    def _buildah_run(self, reference, command, user, mounts, env, workdir, stdout, stderr, timeout, text):
        created = subprocess.run(
            self.argv + ["from", "--pull=never", "--quiet", reference], capture_output=True, text=True
        )
        if created.returncode != 0:
            raise BuilderError(f"{reference}: buildah cannot start a container of it ({created.stderr.strip()})")
        container = created.stdout.strip().splitlines()[-1]
        try:
            argv = self.argv + ["run", "--isolation", "chroot", "--network", "host"]
            argv += [f"--volume={m.volume()}" for m in mounts] + [f"--env={k}={v}" for k, v in env.items()]
            argv += (["--user", user] if user else []) + (["--workingdir", workdir] if workdir else [])
            return subprocess.run(
                argv + [container, "--", *command], stdout=stdout, stderr=stderr, timeout=timeout, text=text
            )
        finally:
            subprocess.run(self.argv + ["rm", container], capture_output=True)

    def output_of(self, reference: str, command: list[str], **options) -> str:
        """What ``command`` prints in the image; BuilderError naming it when it fails."""
        result = self.run(reference, command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **options)
        if result.returncode != 0:
            raise BuilderError(f"{reference}: {' '.join(command)} failed in the image: {result.stderr.strip()[-2000:]}")
        return result.stdout
