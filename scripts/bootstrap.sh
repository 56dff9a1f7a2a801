#!/usr/bin/env bash
# Makes the project's environment (.venv) from the lock file, installing uv
# first when the machine has none. Safe to run again: it only syncs.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
uv_version="0.13.9"
tools="$root/.tools"

find_uv() {
  if command -v uv >/dev/null 2>&1; then
    command -v uv
  elif [ -x "$tools/uv/bin/uv" ]; then
    echo "$tools/uv/bin/uv"
  fi
}

uv="$(find_uv)"
if [ -z "$uv" ]; then
  python="$(command -v python3 || command -v python || true)"
  if [ -z "$python" ]; then
    echo "error: no python3 on PATH to install uv with; install Python 3 first" >&2
    exit 1
  fi
  echo "Installing uv $uv_version into $tools/uv ..." >&2
  "$python" -m venv "$tools/uv"
  "$tools/uv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$uv_version"
  uv="$tools/uv/bin/uv"
fi

# The installed packages' bytecode is compiled once per lock file. Without
# it, wherever Python may not write its caches (PYTHONDONTWRITEBYTECODE=1, as
# on CI machines and in containers, or a read-only environment), every
# process compiles TensorFlow's, TFX's and Beam's sources again when it
# imports them: 13 of the 19 s of CPU that a run spent importing. Compiling
# adds about 25 s on 2 cores; the stamp (in .venv, so a new environment
# compiles again) says for which uv.lock it was done.
stamp="$root/.venv/.bytecode-compiled-for"
lock="$(sha256sum "$root/uv.lock" | cut -d' ' -f1)"
compile=()
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$lock" ]; then
  echo "Compiling the environment's Python files to bytecode (once per uv.lock) ..." >&2
  compile=(--compile-bytecode)
fi
# --frozen: install exactly what uv.lock says (Python 3.10, the TFX 1.16 stack).
"$uv" sync --frozen --project "$root" --quiet "${compile[@]}" >&2
if [ "${#compile[@]}" -gt 0 ]; then
  echo "$lock" >"$stamp"
fi
