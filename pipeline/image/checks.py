"""The checks that run inside the image, as its user.

    python -m pipeline.image.checks [--lock-sha256 HEX] [--foreign-cert SHA256 ...]

``flowers-tfx image check`` runs this module in a container of the image and
passes what only the host knows: the lock's hash from the image's label, and
the fingerprints of the build machine's own CA certificates (those that are
not in its Mozilla set). Each check prints one line, PASS or FAIL with the
reason; the exit status is the number of failed checks (at most 100).
Nothing here needs TensorFlow but the last check, a one-step training.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import re
import stat
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

PROJECT = Path("/pipeline")
SCHEMA = PROJECT / "schema" / "schema.pbtxt"
LOCKED_REQUIREMENTS = PROJECT / "requirements.lock.txt"
UV_LOCK = PROJECT / "uv.lock"
BEAM_BOOT = Path("/opt/apache/beam/boot")
BEAM_STAND_IN_MARK = BEAM_BOOT.parent / "STAND-IN"
PROJECT_DISTRIBUTION = "flowers-tfx"
# Where a user may write: scratch folders every Debian image has (sticky,
# world-writable) and the user's home.
SCRATCH = ("/tmp", "/var/tmp", "/run/lock", "/dev/shm")
# Not files of the image: the kernel's and the container runtime's.
NOT_THE_IMAGE = ("/proc", "/sys", "/dev")
# Variables that would point a client at a build machine's CA or credentials.
LEAKY_VARIABLES = (
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "PIP_CERT",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "UV_INDEX_URL",
    "PIP_INDEX_URL",
)
CERT_SUFFIXES = (".pem", ".crt", ".cer")
CREDENTIAL_FILES = (
    ".config/gcloud",
    ".docker/config.json",
    ".netrc",
    ".pypirc",
    ".git-credentials",
    ".config/pip/pip.conf",
    ".config/uv/uv.toml",
)
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----\s+([A-Za-z0-9+/=\s]+?)-----END CERTIFICATE-----")


@dataclass
class Result:
    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"{'PASS' if self.passed else 'FAIL'}  {self.name}: {self.detail}"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


# How a derived image (Dockerfile.tpu) marks a package it put in place of the lock's.
SWAPPED_IN = "# swapped in:"


def locked_versions() -> tuple[dict[str, str], set[str]]:
    """``{name: version}`` the lock gives for this environment (uv export at
    build time), and the names a derived image swapped in on purpose."""
    versions, swapped = {}, set()
    for line in LOCKED_REQUIREMENTS.read_text(encoding="utf-8").splitlines():
        requirement = line.split(";", 1)[0].split("#", 1)[0].strip()
        if "==" in requirement:
            name, version = requirement.split("==", 1)
            name = canonical(name.split("[", 1)[0])
            versions[name] = version.strip()
            if SWAPPED_IN in line:
                swapped.add(name)
    return versions, swapped


def uv_lock_versions() -> dict[str, set[str]]:
    import tomli

    lock = tomli.loads(UV_LOCK.read_text(encoding="utf-8"))
    found: dict[str, set[str]] = {}
    for package in lock.get("package", []):
        found.setdefault(canonical(package["name"]), set()).add(package.get("version", ""))
    return found


def check_versions(lock_sha256: str | None) -> Result:
    """Every installed distribution is the lock's, at the lock's version, and none is missing."""
    problems = []
    if lock_sha256:
        actual = hashlib.sha256(UV_LOCK.read_bytes()).hexdigest()
        if actual != lock_sha256:
            problems.append(f"{UV_LOCK} has sha256 {actual[:12]}..., the image's label says {lock_sha256[:12]}...")
    wanted, swapped = locked_versions()
    in_lock = uv_lock_versions()
    for name, version in wanted.items():
        if name not in swapped and version not in in_lock.get(name, set()):
            problems.append(f"{LOCKED_REQUIREMENTS.name} names {name}=={version}, which uv.lock does not hold")
    installed = {canonical(d.metadata["Name"]): d.version for d in metadata.distributions()}
    project = installed.pop(PROJECT_DISTRIBUTION, None)
    if project is None:
        problems.append(f"the project ({PROJECT_DISTRIBUTION}) is not installed")
    for name, version in sorted(installed.items()):
        if name not in wanted:
            problems.append(f"{name}=={version} is installed but not in the lock")
        elif wanted[name] != version:
            problems.append(f"{name}=={version} is installed, the lock says {wanted[name]}")
    missing = sorted(set(wanted) - set(installed))
    if missing:
        problems.append(f"in the lock but not installed: {', '.join(missing)}")
    if problems:
        return Result("versions", False, "; ".join(problems))
    also = f" ({', '.join(sorted(swapped))} swapped in on purpose)" if swapped else ""
    return Result("versions", True, f"{len(installed)} distributions, each at uv.lock's version{also}, and the project")


def check_imports() -> Result:
    """The project imports from the installed package, as a task's process would."""
    import importlib

    names = (
        "pipeline.dag",
        "components.trainer.training",
        "components.model_registry_pusher.component",
        "components.run_notifier.component",
        "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor",
    )
    try:
        for name in names:
            importlib.import_module(name)
    except Exception as error:  # noqa: BLE001 - any import failure is this check's finding
        return Result("imports", False, f"{name}: {type(error).__name__}: {error}")
    import pipeline

    where = Path(pipeline.__file__).parent
    return Result("imports", True, f"{', '.join(names[:4])} and TFX's Vertex executor, from {where}")


def check_files() -> Result:
    problems = [f"{path} is missing" for path in (SCHEMA, UV_LOCK, LOCKED_REQUIREMENTS) if not path.is_file()]
    return Result("project files", not problems, "; ".join(problems) or f"{SCHEMA}, {UV_LOCK}")


def check_beam_boot() -> Result:
    if not BEAM_BOOT.is_file():
        return Result("beam boot", False, f"{BEAM_BOOT} is missing (Dataflow starts it as the SDK harness)")
    if not os.access(BEAM_BOOT, os.X_OK):
        return Result("beam boot", False, f"{BEAM_BOOT} is not executable")
    if BEAM_STAND_IN_MARK.exists():
        return Result(
            "beam boot",
            True,
            f"{BEAM_BOOT} is there and executable, and it is a STAND-IN "
            "(scripts/standin-images.sh), not Apache Beam's boot program",
        )
    return Result("beam boot", True, f"{BEAM_BOOT} is there and executable")


def check_user() -> Result:
    if os.getuid() == 0:
        return Result("user", False, "the image runs as root")
    import pwd

    entry = pwd.getpwuid(os.getuid())
    return Result("user", True, f"{entry.pw_name} (uid {entry.pw_uid}), home {entry.pw_dir}")


def _allowed(path: str, home: str) -> bool:
    return any(path == place or path.startswith(place + "/") for place in (*SCRATCH, home))


def check_writable(top: str = "/") -> Result:
    """Nothing outside the home and the scratch folders is writable by this user."""
    home = os.path.expanduser("~")
    writable, seen = [], 0
    for folder, subfolders, files in os.walk(top):
        subfolders[:] = [
            name
            for name in subfolders
            if os.path.join(folder, name) not in NOT_THE_IMAGE and not _allowed(os.path.join(folder, name), home)
        ]
        for name in [*subfolders, *files, ""]:
            path = os.path.join(folder, name) if name else folder
            seen += 1
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                continue
            if not stat.S_ISLNK(mode) and os.access(path, os.W_OK):
                writable.append(path)
    if writable:
        shown = ", ".join(writable[:5]) + (f" and {len(writable) - 5} more" if len(writable) > 5 else "")
        return Result("writable", False, f"writable by this user: {shown}")
    return Result("writable", True, f"{seen} paths, none writable outside {home} and {', '.join(SCRATCH)}")


def certificate_fingerprints(data: bytes) -> set[str]:
    """sha256 of each PEM certificate's DER bytes in ``data``."""
    found = set()
    for match in _PEM.finditer(data):
        try:
            found.add(hashlib.sha256(base64.b64decode(b"".join(match.group(1).split()))).hexdigest())
        except ValueError:
            continue
    return found


def _certificate_files(top: str = "/"):
    for folder, subfolders, files in os.walk(top):
        subfolders[:] = [n for n in subfolders if os.path.join(folder, n) not in NOT_THE_IMAGE]
        for name in files:
            if name.endswith(CERT_SUFFIXES) or name.endswith(".pth") or folder.startswith("/etc/ssl"):
                yield os.path.join(folder, name)


def check_no_build_secrets(foreign: set[str]) -> Result:
    """No build machine's CA certificate or credential file is left, and no variable names one."""
    problems = [f"the image sets {name}" for name in LEAKY_VARIABLES if os.environ.get(name)]
    home = Path(os.path.expanduser("~"))
    problems += [f"{home / name} exists" for name in CREDENTIAL_FILES if (home / name).exists()]
    scanned = 0
    for path in _certificate_files():
        try:
            with open(path, "rb") as file:
                data = file.read(4 << 20)
        except OSError:
            continue
        scanned += 1
        if foreign & certificate_fingerprints(data):
            problems.append(f"{path} holds the build machine's own CA certificate")
        elif path.endswith(".pth") and b"ssl/certs" in data:
            problems.append(f"{path} points Python at a certificate file at start-up")
    if problems:
        return Result("build secrets", False, "; ".join(problems))
    told = f"none of the build machine's {len(foreign)} CA certificate(s)" if foreign else "no CA was given to look for"
    return Result("build secrets", True, f"{scanned} certificate and .pth files: {told}; no credential files")


def check_training() -> Result:
    """One training step of the project's smallest convnet on a tiny batch."""
    try:
        import numpy as np

        from components.trainer.models import build_model

        model = build_model("convnet", image_size=32, num_classes=5, weights="")
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        images = np.random.default_rng(0).normal(size=(4, 32, 32, 3)).astype("float32")
        history = model.fit(images, np.arange(4) % 5, batch_size=4, epochs=1, verbose=0)
        loss = history.history["loss"][0]
    except Exception as error:  # noqa: BLE001 - any failure is this check's finding
        return Result("training", False, f"{type(error).__name__}: {error}")
    import tensorflow as tf

    if not np.isfinite(loss):
        return Result("training", False, f"the loss after one step is {loss}")
    return Result("training", True, f"one step of convnet at 32 px, loss {loss:.3f}, TensorFlow {tf.__version__}")


def run_checks(lock_sha256: str | None, foreign: set[str]) -> list[Result]:
    checks = [
        check_user,
        check_files,
        lambda: check_versions(lock_sha256),
        check_imports,
        check_beam_boot,
        check_writable,
        lambda: check_no_build_secrets(foreign),
        check_training,
    ]
    results = []
    for check in checks:
        result = check()
        print(result.line(), flush=True)
        results.append(result)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.image.checks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock-sha256", help="uv.lock's sha256 as the image's label gives it")
    parser.add_argument(
        "--foreign-cert",
        action="append",
        default=[],
        metavar="SHA256",
        help="fingerprint of a build machine's own CA certificate, which must not be in the image",
    )
    args = parser.parse_args(argv)
    failed = [result for result in run_checks(args.lock_sha256, set(args.foreign_cert)) if not result.passed]
    return min(len(failed), 100)


if __name__ == "__main__":
    sys.exit(main())
