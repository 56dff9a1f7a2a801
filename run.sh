#!/usr/bin/env bash
# The main job: the whole local pipeline, on the embedded synthetic data set
# unless --data is given. Any `flowers-tfx run` option can follow, e.g.
#   ./run.sh --data 'shards/*.tfrec' --epochs 20
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
"$root/scripts/bootstrap.sh"
exec "$root/.venv/bin/flowers-tfx" run "$@"
