#!/usr/bin/env bash
# One entry point for a usable machine: system packages, Python venv, Pulumi CLI + Python host,
# test services, local base images. Every step is idempotent; on a set-up machine the whole run
# takes a few seconds. `make test` and `make demo` call this first.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

total_start=$SECONDS
for step in install-system setup-python build-pulumi start-services make-base-images; do
  start=$SECONDS
  "$here/$step.sh" || { echo "setup: ERROR: scripts/$step.sh failed (see above)" >&2; exit 1; }
  echo "setup: $step done in $((SECONDS - start))s"
done
echo "setup: all done in $((SECONDS - total_start))s; use it with: source scripts/env.sh"
