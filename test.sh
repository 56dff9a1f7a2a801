#!/usr/bin/env bash
# The tests: unit tests and end-to-end pipeline runs on small data. Tests
# that need ../shared/data skip (with the reason) when it is absent.
# pytest options can follow, e.g. ./test.sh -k config
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$root/scripts/bootstrap.sh"
cd "$root"
exec "$root/.venv/bin/python" -m pytest "$@"
