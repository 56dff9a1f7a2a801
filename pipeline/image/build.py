"""``flowers-tfx image build``: the repository's Dockerfile, built here.

What a build is given besides the Dockerfile's defaults:
- labels: the commit (``REVISION``), the repository (``SOURCE``) and
  uv.lock's sha256, which ``image check`` compares with the lock inside;
- with podman or buildah, the machine's CA bundle (the file pip's
  configuration names) mounted read-only for the download steps, for a
  machine behind a TLS-inspecting proxy, and the host's uv cache mounted as
  an overlay (its writes are thrown away) to save the downloads.
"""

from __future__ import annotations

import configparser
import hashlib
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

from pipeline.image.builders import Builder, ImageFacts, Mount

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TAG = "localhost/flowers-tfx:latest"
VARIANTS = ("cpu", "gpu")
# Where the Dockerfile's download steps look for a CA bundle (ARG BUILD_CA).
BUILD_CA_TARGET = "/run/build-ca.pem"
PIP_CONFIG_FILES = ("/etc/pip.conf", "/etc/xdg/pip/pip.conf", "~/.config/pip/pip.conf", "~/.pip/pip.conf")
# What `image build` reports of an image: Python and the stack's versions.
VERSIONS_SCRIPT = (
    "import json, platform; from importlib import metadata as m; "
    "print(json.dumps({'Python': platform.python_version(), **{name: m.version(name) for name in "
    "('tfx', 'tensorflow', 'apache-beam', 'tensorflow-transform', 'kfp', 'flowers-tfx')}}))"
)
_STEP = re.compile(r"^(\[\d+/\d+\] )?STEP \d+/\d+|^#\d+ \[|^(COMMIT|Successfully|Error|error)")


def build_ca_file() -> Path | None:
    """The CA bundle pip is told to trust here (PIP_CERT, pip's configuration, or SSL_CERT_FILE), if any."""
    if os.environ.get("PIP_CERT"):
        return Path(os.environ["PIP_CERT"])
    for name in PIP_CONFIG_FILES:
        path = Path(name).expanduser()
        parser = configparser.ConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError):
            continue
        if parser.has_option("global", "cert"):
            return Path(parser.get("global", "cert"))
    if os.environ.get("SSL_CERT_FILE"):
        return Path(os.environ["SSL_CERT_FILE"])
    return None


def uv_cache_dir() -> Path | None:
    folder = Path(os.environ.get("UV_CACHE_DIR") or Path.home() / ".cache" / "uv")
    return folder if folder.is_dir() else None


def lock_sha256(root: Path = ROOT) -> str:
    return hashlib.sha256((root / "uv.lock").read_bytes()).hexdigest()


def _git(root: Path, *args: str) -> str:
    try:
        result = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


@dataclass
class BuildRequest:
    tag: str = DEFAULT_TAG
    variant: str = "cpu"
    base: str | None = None  # None: the Dockerfile's pinned python:3.10-slim-bookworm
    beam_sdk_image: str | None = None  # None: the Dockerfile's apache/beam_python3.10_sdk
    build_ca: Path | None = None

    def build_args(self, root: Path = ROOT) -> dict[str, str]:
        revision = _git(root, "rev-parse", "HEAD") or "unknown"
        if revision != "unknown" and _git(root, "status", "--porcelain", "--untracked-files=no"):
            revision += "-dirty"
        args = {
            "VARIANT": self.variant,
            "REVISION": revision,
            "UV_LOCK_SHA256": lock_sha256(root),
            "SOURCE": _git(root, "remote", "get-url", "origin") or "unknown",
        }
        if self.base:
            args["BASE_IMAGE"] = self.base
        if self.beam_sdk_image:
            args["BEAM_SDK_IMAGE"] = self.beam_sdk_image
        return args

    def mounts(self, builder: Builder) -> list[Mount]:
        if not builder.takes_build_mounts:
            return []
        mounts = []
        if self.build_ca and self.build_ca.is_file():
            mounts.append(Mount(self.build_ca.resolve(), BUILD_CA_TARGET, read_only=True))
        cache = uv_cache_dir()
        if cache:
            mounts.append(Mount(cache, "/root/.cache/uv", overlay=True))
        return mounts


def build_image(builder: Builder, request: BuildRequest, out: TextIO, log_file: Path) -> ImageFacts:
    """Builds the image, printing each step to ``out`` and everything to ``log_file``."""
    started = time.monotonic()
    log_file.parent.mkdir(parents=True, exist_ok=True)
    print(f"Building {request.tag} ({request.variant}) with {builder.name}; full log: {log_file}", file=out)
    if request.base:
        print(f"  base: {request.base}", file=out)
    if request.beam_sdk_image:
        print(f"  Beam SDK image: {request.beam_sdk_image}", file=out)
    mounts = request.mounts(builder)
    for mount in mounts:
        print(f"  mounted for the build steps only: {mount.source} -> {mount.target}", file=out)
    with log_file.open("w", encoding="utf-8") as log:

        def on_line(line: str) -> None:
            log.write(line + "\n")
            if _STEP.search(line):
                print(f"  [{time.monotonic() - started:5.0f} s] {line[:160]}", file=out, flush=True)

        try:
            builder.build(ROOT / "Dockerfile", ROOT, request.tag, request.build_args(), mounts, on_line)
        except Exception:
            log.flush()
            tail = log_file.read_text(encoding="utf-8", errors="replace").splitlines()[-25:]
            print("\n".join(f"  | {line}" for line in tail), file=out)
            raise
    return builder.facts(request.tag)


def image_versions(builder: Builder, tag: str) -> dict[str, str]:
    return json.loads(builder.output_of(tag, ["python", "-c", VERSIONS_SCRIPT]).strip().splitlines()[-1])


def describe(facts: ImageFacts, versions: dict[str, str]) -> str:
    labels = facts.labels
    lines = [
        f"image   {facts.reference}",
        f"id      {facts.image_id}",
        f"digest  {facts.digest or '(known once pushed)'}",
        f"size    {facts.size_bytes / 1e9:.2f} GB",
        "holds   " + ", ".join(f"{name} {version}" for name, version in versions.items()),
        f"base    {labels.get('org.opencontainers.image.base.name', '?')}",
        f"beam    {labels.get('dev.flowers-tfx.beam-sdk-image', '?')}",
        f"commit  {labels.get('org.opencontainers.image.revision', '?')}",
    ]
    stand_ins = [
        name
        for name in (
            labels.get("org.opencontainers.image.base.name", ""),
            labels.get("dev.flowers-tfx.beam-sdk-image", ""),
        )
        if "/standin/" in name
    ]
    if stand_ins:
        lines.append(f"NOTE    built on STAND-IN image(s) {', '.join(stand_ins)}: for this machine only, never to push")
    return "\n".join(lines)
