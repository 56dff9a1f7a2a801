#!/usr/bin/env bash
# The tests: unit tests and end-to-end pipeline runs on small data. Tests
# that need ../shared/data skip (with the reason) when it is absent.
# pytest options can follow, e.g. ./test.sh -k config
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$root/scripts/bootstrap.sh"
cd "$root"
# Three worker processes by default (pytest-xdist; a module's tests stay in one
# worker, so its fixtures are made once). Two left a third of 2 cores idle
# (Python-bound orchestration, subprocess start-up, waits); three keep both
# busy. Files go to the workers longest first (tests/conftest.py orders them;
# --no-loadscope-reorder keeps that order instead of xdist's, by test count).
# TEST_WORKERS=0 runs everything in this process.
workers="${TEST_WORKERS:-3}"
if [ "$workers" = "0" ]; then
  exec "$root/.venv/bin/python" -m pytest "$@"
fi
exec "$root/.venv/bin/python" -m pytest -n "$workers" --dist loadscope --no-loadscope-reorder "$@"
