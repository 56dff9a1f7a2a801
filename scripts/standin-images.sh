#!/usr/bin/env bash
# Builds STAND-INS for the two images the Dockerfile starts from, on a machine
# that cannot pull them (no container registry reachable, only Debian's and
# Python's package archives). They exist so the real Dockerfile can be built
# and checked here; nothing uses them unless `flowers-tfx image build` is
# given their names with --base / --beam-sdk-image.
#
#   localhost/standin/python:3.10-slim-bookworm
#       stands in for python:3.10-slim-bookworm: Debian bookworm (mmdebstrap,
#       minbase) with the shared libraries CPython needs, and this machine's
#       own CPython 3.10 copied to /usr/local (as the official image keeps it).
#   localhost/standin/beam_python3.10_sdk:2.59.0
#       stands in for apache/beam_python3.10_sdk:2.59.0, of which the
#       Dockerfile copies only /opt/apache/beam: here /opt/apache/beam/boot is
#       a shell script, marked as a stand-in, that starts Beam's Python SDK
#       worker the way the real (Go) boot program does once it has its flags.
#
# Needs root, buildah and mmdebstrap (apt-get install buildah mmdebstrap).
# Usage: scripts/standin-images.sh [--force]   (skips images that exist)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python_version="${STANDIN_PYTHON_VERSION:-3.10}"
python_image="localhost/standin/python:${python_version}-slim-bookworm"
beam_version="$(grep -A1 '^name = "apache-beam"$' "$root/uv.lock" | sed -n 's/^version = "\(.*\)"$/\1/p')"
beam_image="localhost/standin/beam_python${python_version}_sdk:${beam_version}"
buildah=(buildah --storage-driver overlay)
force=0
[ "${1:-}" = "--force" ] && force=1

exists() { "${buildah[@]}" inspect --type image "$1" >/dev/null 2>&1; }

for tool in buildah mmdebstrap; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not installed (apt-get install buildah mmdebstrap)" >&2; exit 2; }
done

# This machine's CPython (pyenv's prefix, or any prefix holding bin/pythonX.Y).
python_bin="$(command -v "python${python_version}" || true)"
if [ -z "$python_bin" ] && command -v pyenv >/dev/null; then
  python_bin="$(pyenv root)/versions/$(pyenv versions --bare | grep -m1 "^${python_version}\.")/bin/python${python_version}"
fi
[ -x "$python_bin" ] || { echo "error: no python${python_version} on this machine to copy into the stand-in base" >&2; exit 2; }
python_prefix="$("$python_bin" -c 'import sys; print(sys.base_prefix)')"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

if [ "$force" = 1 ] || ! exists "$python_image"; then
  echo "Building $python_image (Debian bookworm + CPython from $python_prefix) ..." >&2
  # The shared libraries python:3.10-slim carries for the standard library.
  packages=ca-certificates,libssl3,libffi8,libsqlite3-0,zlib1g,libbz2-1.0,liblzma5,libreadline8,libncursesw6,libgdbm6,libuuid1,libexpat1,tzdata,netbase
  mmdebstrap --quiet --variant=minbase --include="$packages" bookworm "$work/rootfs" >&2
  cp -a "$python_prefix/." "$work/rootfs/usr/local/"
  site="$work/rootfs/usr/local/lib/python${python_version}/site-packages"
  # This machine's pip trusts this machine's own CA (its certifi file, and a
  # .pth that appends the CA at start-up): the stand-in gets Debian's bundle.
  rm -f "$site"/_sandboxing_*.pth
  for certifi in "$site"/pip/_vendor/certifi/cacert.pem; do
    [ -f "$certifi" ] && cp "$work/rootfs/etc/ssl/certs/ca-certificates.crt" "$certifi"
  done
  find "$work/rootfs/usr/local" -name __pycache__ -prune -exec rm -rf {} +
  for name in python3 python; do
    [ -e "$work/rootfs/usr/local/bin/$name" ] || ln -s "python${python_version}" "$work/rootfs/usr/local/bin/$name"
  done
  chroot "$work/rootfs" /sbin/ldconfig
  chroot "$work/rootfs" /usr/local/bin/python3 -c 'import ssl, sqlite3, ctypes, lzma, bz2, zlib, readline, uuid'
  ctr="$("${buildah[@]}" from scratch)"
  tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
  "${buildah[@]}" add "$ctr" "$work/rootfs.tar" / >/dev/null
  "${buildah[@]}" config \
    --env PATH=/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env LANG=C.UTF-8 --env PYTHON_VERSION="$("$python_bin" -c 'import platform; print(platform.python_version())')" \
    --cmd python3 \
    --label org.opencontainers.image.title="STAND-IN for python:${python_version}-slim-bookworm" \
    --label org.opencontainers.image.description="Made locally by scripts/standin-images.sh (mmdebstrap + this machine's CPython); not the official image" \
    "$ctr"
  "${buildah[@]}" commit --quiet --rm "$ctr" "$python_image" >/dev/null
else
  echo "$python_image exists (--force to rebuild)" >&2
fi

if [ "$force" = 1 ] || ! exists "$beam_image"; then
  echo "Building $beam_image (a stand-in boot script) ..." >&2
  mkdir -p "$work/beam/opt/apache/beam"
  cat > "$work/beam/opt/apache/beam/boot" <<'BOOT'
#!/bin/sh
# STAND-IN for Apache Beam's SDK worker boot program (a Go binary in the real
# apache/beam_pythonX.Y_sdk image), made by scripts/standin-images.sh. Like
# the real one it takes the runner's --id and --*_endpoint flags, describes
# the endpoints to the worker in the environment and starts Beam's Python SDK
# worker; unlike it, it asks the provision service for nothing (no pipeline
# options, no staged artifacts) and installs nothing.
echo "beam boot: STAND-IN (not Apache Beam's boot program)" >&2
id=""; control=""; logging=""
for arg in "$@"; do
  case "$arg" in
    --id=*) id="${arg#--id=}" ;;
    --control_endpoint=*) control="${arg#--control_endpoint=}" ;;
    --logging_endpoint=*) logging="${arg#--logging_endpoint=}" ;;
  esac
done
if [ -z "$control" ]; then
  echo "usage: boot --id=ID --control_endpoint=HOST:PORT --logging_endpoint=HOST:PORT" >&2
  exit 2
fi
export WORKER_ID="$id"
export CONTROL_API_SERVICE_DESCRIPTOR="url: \"$control\""
export LOGGING_API_SERVICE_DESCRIPTOR="url: \"${logging:-$control}\""
export PIPELINE_OPTIONS="${PIPELINE_OPTIONS:-{\}}"
exec python -m apache_beam.runners.worker.sdk_worker_main
BOOT
  chmod 0755 "$work/beam/opt/apache/beam/boot"
  echo "This folder is a STAND-IN for the apache/beam SDK image's /opt/apache/beam, made by scripts/standin-images.sh." \
    > "$work/beam/opt/apache/beam/STAND-IN"
  ctr="$("${buildah[@]}" from scratch)"
  tar -C "$work/beam" -cf "$work/beam.tar" .
  "${buildah[@]}" add "$ctr" "$work/beam.tar" / >/dev/null
  "${buildah[@]}" config \
    --label org.opencontainers.image.title="STAND-IN for apache/beam_python${python_version}_sdk:${beam_version}" \
    --entrypoint '["/opt/apache/beam/boot"]' "$ctr"
  "${buildah[@]}" commit --quiet --rm "$ctr" "$beam_image" >/dev/null
else
  echo "$beam_image exists (--force to rebuild)" >&2
fi

"${buildah[@]}" images --format '{{.Name}}:{{.Tag}} {{.Size}}' | grep '^localhost/standin/' >&2
