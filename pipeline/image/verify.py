"""``flowers-tfx image check``: the checks of ``checks.py``, run inside the image.

The host adds what only it knows: uv.lock's hash from the image's label, and
the fingerprints of this machine's own CA certificates, so the image can be
searched for them. "Own" means in the machine's bundle but not in Debian's
Mozilla set (``/usr/share/ca-certificates/mozilla``), as a TLS-inspecting
proxy's CA is; without that folder, every certificate of the bundle that the
image's own bundle does not hold.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TextIO

from pipeline.image.builders import Builder
from pipeline.image.checks import certificate_fingerprints

MOZILLA_CERTIFICATES = Path("/usr/share/ca-certificates/mozilla")
IMAGE_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
LOCK_LABEL = "dev.flowers-tfx.uv-lock.sha256"
VARIANT_LABEL = "dev.flowers-tfx.variant"
# What each variant may weigh (uncompressed layers). Every Dataflow worker
# pulls the image; TFX's own is over 11 GB. The CPU image is about 3.6 GB: a
# mode change of /opt/venv in a later layer once doubled it unnoticed.
SIZE_BUDGET_GB = {"cpu": 4.5, "gpu": 10.0}


def own_certificates(bundle: Path | None, builder: Builder, tag: str) -> set[str]:
    """Fingerprints of the certificates this machine trusts beyond the public set."""
    if bundle is None or not bundle.is_file():
        return set()
    mine = certificate_fingerprints(bundle.read_bytes())
    if MOZILLA_CERTIFICATES.is_dir():
        public = set()
        for path in MOZILLA_CERTIFICATES.glob("*.crt"):
            public |= certificate_fingerprints(path.read_bytes())
    else:
        public = certificate_fingerprints(builder.output_of(tag, ["cat", IMAGE_BUNDLE]).encode())
    return mine - public


def size_line(size_bytes: int, variant: str) -> tuple[bool, str]:
    """The size check, as a PASS or FAIL line like the in-image checks print."""
    budget = SIZE_BUDGET_GB.get(variant, SIZE_BUDGET_GB["cpu"])
    passed = size_bytes <= budget * 1e9
    return passed, (
        f"{'PASS' if passed else 'FAIL'}  size: {size_bytes / 1e9:.2f} GB "
        f"({'within' if passed else 'over'} the {variant or 'cpu'} image's budget of {budget} GB)"
    )


def check_image(builder: Builder, tag: str, bundle: Path | None, out: TextIO, log_file: Path) -> int:
    """Runs the checks in a container of ``tag`` as the image's user; the number that failed."""
    facts = builder.facts(tag)
    command = ["python", "-W", "ignore", "-m", "pipeline.image.checks"]
    lock = facts.labels.get(LOCK_LABEL, "")
    if lock and lock != "unknown":
        command += ["--lock-sha256", lock]
    foreign = own_certificates(bundle, builder, tag)
    for fingerprint in sorted(foreign):
        command += ["--foreign-cert", fingerprint]
    print(
        f"Checking {tag} ({facts.image_id[:12]}) inside the image as {facts.user or 'its default user'}; "
        f"log: {log_file}",
        file=out,
        flush=True,
    )
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with log_file.open("w", encoding="utf-8") as log:
        # TensorFlow's environment is the image's own (its ENV).
        result = builder.run(tag, command, workdir="/", stdout=subprocess.PIPE, stderr=log)
    print(result.stdout, end="", file=out)
    size_ok, line = size_line(facts.size_bytes, facts.labels.get(VARIANT_LABEL, "cpu"))
    print(line, file=out)
    failed = result.returncode + (0 if size_ok else 1)
    if failed == 0:
        print(f"All checks passed; the image takes {facts.size_bytes / 1e9:.2f} GB.", file=out)
    else:
        print(f"{failed} check(s) failed (exit status {failed}); the image's own messages are in {log_file}", file=out)
    return failed
