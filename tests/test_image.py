"""The container image: how it is built, what is checked inside it, and the
compiled spec rehearsed inside it.

The quick tests check the pieces on this machine: the builders' command
lines, the Dockerfile's pins, the checks that run inside the image (on files
the tests make), and the digest a spec is compiled with. The tests marked
``image`` need a built image: they run when FLOWERS_TEST_IMAGE names one
(``scripts/image-ci.sh`` builds it and runs them, as CI does) and skip
otherwise. They run ``image check`` on it, and rehearse a spec compiled with
gs:// data, pipeline root and serving directory, Dataflow and Vertex AI
Training twice inside it: every task runs in a container, one version is
pushed.
"""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.image import checks
from pipeline.image.build import BuildRequest, build_ca_file, lock_sha256
from pipeline.image.builders import Builder, BuilderError, Mount, find_builder
from pipeline.vertex_specs import pinned_image

ROOT = Path(__file__).resolve().parents[1]
IMAGE = os.environ.get("FLOWERS_TEST_IMAGE", "")
needs_image = pytest.mark.skipif(
    not IMAGE, reason="no image to test: set FLOWERS_TEST_IMAGE=TAG (scripts/image-ci.sh builds one and does)"
)
DIGEST = "sha256:" + "0123456789abcdef" * 4


# ------------------------------------------------------------ the Dockerfile


def dockerfile_arg(path: Path, name: str) -> str:
    return re.search(rf"^ARG {name}=(\S+)", path.read_text(), re.MULTILINE).group(1)


def test_the_base_is_pinned_by_digest_and_uv_and_beam_match_the_lock():
    base = dockerfile_arg(ROOT / "Dockerfile", "BASE_IMAGE")
    assert re.fullmatch(r"python:3\.10-slim-bookworm@sha256:[0-9a-f]{64}", base)
    bootstrap_uv = re.search(r'^uv_version="(.+)"', (ROOT / "scripts/bootstrap.sh").read_text(), re.MULTILINE).group(1)
    assert dockerfile_arg(ROOT / "Dockerfile", "UV_VERSION") == bootstrap_uv
    assert dockerfile_arg(ROOT / "Dockerfile.tpu", "UV_VERSION") == bootstrap_uv
    lock = (ROOT / "uv.lock").read_text()
    beam = re.search(r'name = "apache-beam"\nversion = "(.+)"', lock).group(1)
    assert dockerfile_arg(ROOT / "Dockerfile", "BEAM_SDK_IMAGE") == f"apache/beam_python3.10_sdk:{beam}"


def test_the_build_context_keeps_the_lock_and_leaves_out_the_rest():
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "uv.lock" not in ignored and "tests" in ignored and ".venv" in ignored
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "uv sync --frozen --no-dev" in dockerfile and "uv build --wheel" in dockerfile
    assert (
        'ENTRYPOINT ["/opt/apache/beam/boot"]' in dockerfile and "RUN_PYTHON_SDK_IN_DEFAULT_ENVIRONMENT=1" in dockerfile
    )
    assert re.search(r"^USER flowers$", dockerfile, re.MULTILINE)
    # The CA bundle is only ever read where it is mounted; no ENV names it.
    assert not re.search(r"^ENV[^\n]*(SSL_CERT_FILE|PIP_CERT)", dockerfile, re.MULTILINE)


def test_the_gpu_variant_comes_from_the_lock():
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert 'gpu = ["tensorflow[and-cuda]==2.16.2"]' in pyproject
    assert 'name = "nvidia-cudnn-cu12"' in (ROOT / "uv.lock").read_text()


# -------------------------------------------------------------- the builders


def test_each_builder_is_asked_for_the_same_build():
    mounts = [
        Mount(Path("/etc/ca.pem"), "/run/build-ca.pem", read_only=True),
        Mount(Path("/c"), "/root/.cache/uv", overlay=True),
    ]
    args = {"VARIANT": "cpu"}
    buildah = Builder("buildah").build_command(Path("Dockerfile"), Path("."), "t:1", args, mounts)
    assert buildah[:5] == ["buildah", "--storage-driver", "overlay", "bud", "--isolation"]
    assert "--volume=/etc/ca.pem:/run/build-ca.pem:ro" in buildah and "--volume=/c:/root/.cache/uv:O" in buildah
    assert buildah[-5:] == ["--file", "Dockerfile", "--tag", "t:1", "."] and "VARIANT=cpu" in buildah
    docker = Builder("docker").build_command(Path("Dockerfile"), Path("."), "t:1", args, mounts)
    assert docker[:2] == ["docker", "build"] and not any(arg.startswith("--volume") for arg in docker)
    assert "--volume=/etc/ca.pem:/run/build-ca.pem:ro" in Builder("podman").build_command(
        Path("Dockerfile"), Path("."), "t:1", args, mounts
    )


def test_a_builder_that_is_not_there_is_named(monkeypatch):
    monkeypatch.setenv("FLOWERS_IMAGE_BUILDER", "kaniko")
    with pytest.raises(BuilderError, match="FLOWERS_IMAGE_BUILDER=kaniko: not one of docker, podman, buildah"):
        find_builder()
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("FLOWERS_IMAGE_BUILDER")
    with pytest.raises(BuilderError, match="no container builder: install docker"):
        find_builder()


def test_a_build_is_labelled_with_the_commit_and_the_lock(tmp_path, monkeypatch):
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    monkeypatch.setenv("PIP_CERT", str(ca))
    assert build_ca_file() == ca
    request = BuildRequest(base="localhost/standin/python:3.10-slim-bookworm", build_ca=ca)
    args = request.build_args()
    assert args["UV_LOCK_SHA256"] == hashlib.sha256((ROOT / "uv.lock").read_bytes()).hexdigest() == lock_sha256()
    assert args["BASE_IMAGE"] == "localhost/standin/python:3.10-slim-bookworm" and "BEAM_SDK_IMAGE" not in args
    assert re.fullmatch(r"([0-9a-f]{40}(-dirty)?|unknown)", args["REVISION"])
    assert [m.target for m in request.mounts(Builder("buildah"))][:1] == ["/run/build-ca.pem"]
    assert request.mounts(Builder("docker")) == []


# -------------------------------------------------- the checks inside the image


def pem(der: bytes) -> bytes:
    import base64

    body = base64.b64encode(der)
    lines = b"\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    return b"-----BEGIN CERTIFICATE-----\n" + lines + b"\n-----END CERTIFICATE-----\n"


def test_certificates_are_told_apart_by_fingerprint():
    bundle = pem(b"public ca") + b"junk\n" + pem(b"the proxy's ca")
    assert checks.certificate_fingerprints(bundle) == {
        hashlib.sha256(b"public ca").hexdigest(),
        hashlib.sha256(b"the proxy's ca").hexdigest(),
    }


def test_the_version_check_names_every_difference(tmp_path, monkeypatch):
    (tmp_path / "requirements.lock.txt").write_text(
        "absl-py==2.1.0\n    # via tfx\ntensorflow-tpu==2.16.2  # swapped in: the TPU build (Dockerfile.tpu)\n"
        "ghost==1.0 ; sys_platform == 'linux'\n"
    )
    (tmp_path / "uv.lock").write_text(
        '[[package]]\nname = "absl-py"\nversion = "2.1.0"\n[[package]]\nname = "ghost"\nversion = "1.0"\n'
    )
    monkeypatch.setattr(checks, "LOCKED_REQUIREMENTS", tmp_path / "requirements.lock.txt")
    monkeypatch.setattr(checks, "UV_LOCK", tmp_path / "uv.lock")
    assert checks.locked_versions() == (
        {"absl-py": "2.1.0", "tensorflow-tpu": "2.16.2", "ghost": "1.0"},
        {"tensorflow-tpu"},
    )

    class Dist:
        def __init__(self, name, version):
            self.metadata, self.version = {"Name": name}, version

    installed = [
        Dist("absl_py", "2.1.0"),
        Dist("tensorflow-tpu", "2.16.2"),
        Dist("extra", "0.1"),
        Dist("flowers-tfx", "0.1.0"),
    ]
    monkeypatch.setattr(checks.metadata, "distributions", lambda: installed)
    result = checks.check_versions(lock_sha256="0" * 64)
    assert not result.passed
    assert "has sha256" in result.detail and "extra==0.1 is installed but not in the lock" in result.detail
    assert "in the lock but not installed: ghost" in result.detail
    installed[2] = Dist("ghost", "1.0")
    result = checks.check_versions(
        lock_sha256=hashlib.sha256(
            b'[[package]]\nname = "absl-py"\nversion = "2.1.0"\n[[package]]\nname = "ghost"\nversion = "1.0"\n'
        ).hexdigest()
    )
    assert result.passed and "tensorflow-tpu swapped in on purpose" in result.detail


def test_the_writable_check_finds_what_the_user_may_change(tmp_path):
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "file").write_text("x")
    os.chmod(tmp_path / "locked" / "file", 0o444)
    os.chmod(tmp_path / "locked", 0o555)
    if os.geteuid() == 0:  # root may write anything: the check only means something for another user
        assert not checks.check_writable(str(tmp_path / "locked")).passed
    else:
        assert checks.check_writable(str(tmp_path / "locked")).passed
    os.chmod(tmp_path / "locked", 0o755)


def test_an_image_over_its_variants_size_budget_fails_the_check():
    from pipeline.image.verify import size_line

    assert size_line(int(3.63e9), "cpu") == (True, "PASS  size: 3.63 GB (within the cpu image's budget of 4.5 GB)")
    passed, line = size_line(int(6.97e9), "cpu")  # the venv's mode changed in a later layer: every file twice
    assert not passed and line.startswith("FAIL  size: 6.97 GB (over")
    assert size_line(int(6.97e9), "gpu")[0]


# ------------------------------------------------------------ pinning by digest


def test_a_spec_names_the_image_by_digest_when_given_one():
    assert (
        pinned_image("europe-west4-docker.pkg.dev/p/r/flowers-tfx:7", DIGEST)
        == f"europe-west4-docker.pkg.dev/p/r/flowers-tfx@{DIGEST}"
    )
    assert pinned_image("localhost:5000/flowers-tfx", DIGEST) == f"localhost:5000/flowers-tfx@{DIGEST}"
    assert pinned_image(f"r/flowers-tfx@sha256:{'f' * 64}", DIGEST) == f"r/flowers-tfx@{DIGEST}"
    from pipeline.config import ConfigError

    with pytest.raises(ConfigError, match="not an image digest"):
        pinned_image("r/x:1", "latest")


def test_cloud_build_builds_checks_pushes_then_compiles_with_the_pushed_digest():
    steps = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())["steps"]
    assert [step["id"] for step in steps] == ["build", "check", "push", "compile", "upload"]
    assert "-m pipeline.image.checks" in steps[1]["args"][-1]
    assert "RepoDigests" in steps[3]["args"][-1] and '--image-digest "$$digest"' in steps[3]["args"][-1]


# --------------------------------------------------------- with a built image


def run_cli(*args: str, timeout: float = 1200) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli.main", *args], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )


@pytest.mark.image
@pytest.mark.slow
@needs_image
def test_the_image_passes_its_checks():
    result = run_cli("image", "check", "--tag", IMAGE)
    assert result.returncode == 0, result.stdout + result.stderr
    for name in (
        "user",
        "project files",
        "versions",
        "imports",
        "beam boot",
        "writable",
        "build secrets",
        "training",
        "size",
    ):
        assert f"PASS  {name}:" in result.stdout
    assert "each at uv.lock's version" in result.stdout and "All checks passed" in result.stdout


@pytest.mark.image
@pytest.mark.e2e
@pytest.mark.slow
@needs_image
def test_the_compiled_spec_rehearses_twice_inside_the_image(tmp_path):
    from test_rehearsal import BUCKET, VERTEX

    from pipeline.config_loading import load_config
    from pipeline.data.synth import write_synthetic_shards
    from pipeline.runners.kubeflow import compile_pipeline

    settings = {
        **VERTEX,
        "data.spans": 1,
        "vertex.dataflow": True,
        "vertex.training": True,
        "vertex.serving_dir": f"gs://{BUCKET}/serving",
    }
    config = load_config(overrides=settings, environ={})
    from pipeline.vertex_specs import with_image_digest

    spec = compile_pipeline(with_image_digest(config, DIGEST), tmp_path / "pipeline.json")
    assert f"flowers-tfx@{DIGEST}" in spec.read_text()
    root = tmp_path / "rehearsal"
    write_synthetic_shards(str(root / "gcs" / BUCKET / "data" / "span-1"), 80, 2, 1, 64)

    first = run_cli("rehearse", str(spec), "--root", str(root), "--image", IMAGE)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"every task runs inside {IMAGE}" in first.stdout
    for task in ("ImportExampleGen", "StatisticsGen", "Transform", "Trainer", "Evaluator", "Pusher"):
        assert f"{task}: ran" in first.stdout
    assert "Vertex AI Training CustomJob" in first.stdout and "Dataflow options checked" in first.stdout
    logs = list((root / "runs").glob("*/Trainer.log"))
    assert logs and f"# in {IMAGE} as uid" in logs[0].read_text()
    serving = root / "gcs" / BUCKET / "serving"
    [version] = [p for p in serving.iterdir() if p.name.isdigit()]
    assert (version / "saved_model.pb").is_file() and (version / "assets.extra" / "push.json").is_file()
    # Written inside the container, by the image's user, not by this process.
    assert (version / "saved_model.pb").stat().st_uid != 0 or os.geteuid() != 0

    second = run_cli("rehearse", str(spec), "--root", str(root), "--image", IMAGE)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "Trainer: cached" in second.stdout and "already serving, not pushed again" in second.stdout
    assert [p for p in serving.iterdir() if p.name.isdigit()] == [version]
    assert not [p for p in serving.iterdir() if p.name.startswith(".staging")], "staging left in the serving folder"
    assert json.loads((version / "assets.extra" / "push.json").read_text())
