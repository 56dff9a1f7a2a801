"""``flowers-tfx image build|check``: the pipeline's container image.

The main CLI mounts them with ``add_image_commands(subparsers)``. Both talk
to a container builder (``pipeline/image/builders.py``); nothing here loads
TensorFlow.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

from pipeline.image import build as image_build
from pipeline.image.builders import BUILDER_NAMES, BUILDER_VARIABLE, find_builder

BUILD_EPILOG = f"""\
Builds the repository's Dockerfile with docker (when its daemon answers),
podman or buildah, whichever this machine has ({BUILDER_VARIABLE}=NAME picks
one). The image holds exactly uv.lock's packages, the project, and Beam's SDK
worker boot; it ends with its size, digest and versions. With podman or
buildah the machine's CA bundle (the file pip's configuration names, or
--build-ca) is mounted read-only for the download steps, never copied in.

On a machine that cannot pull python:3.10-slim-bookworm or Beam's SDK image,
scripts/standin-images.sh makes stand-ins; name them to use them:
  flowers-tfx image build --base localhost/standin/python:3.10-slim-bookworm \\
      --beam-sdk-image localhost/standin/beam_python3.10_sdk:2.59.0

exit status: 0 built, 1 the build failed (its last lines are shown), 2 no
builder or bad arguments.
"""

CHECK_EPILOG = """\
Runs, inside the image and as its user: every installed distribution at
uv.lock's version (none missing, none extra), the project imports,
/pipeline/schema/schema.pbtxt is there, Beam's boot is there and executable
(a stand-in is named), the user is not root, nothing outside its home and the
scratch folders is writable by it, no CA certificate of this machine's own or
credential file was left in, and one training step on a tiny batch. Then,
from outside, its size against the variant's budget (cpu 4.5 GB, gpu 10 GB).

exit status: 0 every check passed, N that many checks failed, 2 no such image.
"""


def _log_file(kind: str) -> Path:
    return Path(tempfile.gettempdir()) / f"flowers-tfx-image-{kind}-{time.strftime('%Y%m%d-%H%M%S')}.log"


def command_image_build(args: argparse.Namespace) -> int:
    builder = find_builder(args.builder)
    request = image_build.BuildRequest(
        tag=args.tag,
        variant=args.variant,
        base=args.base,
        beam_sdk_image=args.beam_sdk_image,
        build_ca=Path(args.build_ca) if args.build_ca else image_build.build_ca_file(),
    )
    started = time.monotonic()
    facts = image_build.build_image(builder, request, sys.stdout, _log_file("build"))
    print(f"Built in {time.monotonic() - started:.0f} s.")
    print(image_build.describe(facts, image_build.image_versions(builder, args.tag)))
    return 0


def command_image_check(args: argparse.Namespace) -> int:
    from pipeline.image.verify import check_image

    builder = find_builder(args.builder)
    bundle = Path(args.build_ca) if args.build_ca else image_build.build_ca_file()
    return check_image(builder, args.tag, bundle, sys.stdout, _log_file("check"))


def add_image_commands(subparsers) -> None:
    """Adds ``image build`` and ``image check`` to the main CLI's subparsers."""
    raw = argparse.RawDescriptionHelpFormatter
    image = subparsers.add_parser("image", help="build and check the pipeline's container image")
    commands = image.add_subparsers(dest="image_command", metavar="COMMAND", required=True)

    build = commands.add_parser(
        "build",
        help="build the image from the Dockerfile and uv.lock",
        description="Build the pipeline's container image.",
        epilog=BUILD_EPILOG,
        formatter_class=raw,
    )
    build.add_argument(
        "--variant",
        choices=image_build.VARIANTS,
        default="cpu",
        help="cpu, or gpu (adds TensorFlow's CUDA libraries from the lock's gpu extra)",
    )
    build.add_argument(
        "--base", metavar="IMAGE", help="the Python base (default: the Dockerfile's pinned python:3.10-slim-bookworm)"
    )
    build.add_argument(
        "--beam-sdk-image",
        metavar="IMAGE",
        help="where /opt/apache/beam comes from (default: apache/beam_python3.10_sdk at the locked Beam)",
    )
    build.set_defaults(func=command_image_build)

    check = commands.add_parser(
        "check",
        help="check a built image from the inside, as its user",
        description="Check the pipeline's container image from the inside.",
        epilog=CHECK_EPILOG,
        formatter_class=raw,
    )
    check.set_defaults(func=command_image_check)

    for command in (build, check):
        command.add_argument(
            "--tag",
            default=image_build.DEFAULT_TAG,
            metavar="T",
            help=f"the image's name (default {image_build.DEFAULT_TAG})",
        )
        command.add_argument(
            "--builder",
            choices=BUILDER_NAMES,
            help=f"docker, podman or buildah (default: {BUILDER_VARIABLE}, or the first found)",
        )
        command.add_argument(
            "--build-ca", metavar="FILE", help="this machine's CA bundle (default: the file pip's configuration names)"
        )
