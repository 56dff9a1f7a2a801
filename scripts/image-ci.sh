#!/usr/bin/env bash
# CI's image stage, after the test suite: builds the container image on this
# machine and tests it from the inside.
#   1. installs buildah and mmdebstrap when missing (Debian, as root);
#   2. builds the STAND-IN bases (scripts/standin-images.sh): no container
#      registry is reachable here, so python:3.10-slim and Beam's SDK image
#      cannot be pulled;
#   3. builds the image from the Dockerfile on them (flowers-tfx image build);
#   4. runs the tests marked `image` against it: `flowers-tfx image check`,
#      and a compiled spec (gs:// data, root and serving directory, Dataflow,
#      Vertex AI Training) rehearsed twice inside the image.
# Usage: scripts/image-ci.sh   (FLOWERS_CI_IMAGE names the tag to build)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tag="${FLOWERS_CI_IMAGE:-localhost/flowers-tfx:ci}"
started=$(date +%s)
stage() { echo "== $1 ($(( $(date +%s) - started )) s)" >&2; }

"$root/scripts/bootstrap.sh"
missing=()
for tool in buildah mmdebstrap; do command -v "$tool" >/dev/null || missing+=("$tool"); done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then
    echo "error: ${missing[*]} missing, and only root can install them (apt-get install ${missing[*]})" >&2
    exit 2
  fi
  stage "installing ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
fi

stage "stand-in base images"
"$root/scripts/standin-images.sh"
beam="$(grep -A1 '^name = "apache-beam"$' "$root/uv.lock" | sed -n 's/^version = "\(.*\)"$/\1/p')"

stage "building $tag"
"$root/.venv/bin/flowers-tfx" image build --tag "$tag" --builder buildah \
  --base localhost/standin/python:3.10-slim-bookworm --beam-sdk-image "localhost/standin/beam_python3.10_sdk:$beam"

stage "testing inside $tag"
FLOWERS_TEST_IMAGE="$tag" TEST_WORKERS=0 "$root/test.sh" -m image -rs "$@"
# Layers of earlier builds that no tag names any more.
buildah --storage-driver overlay rmi --prune >/dev/null 2>&1 || true
stage "done"
