#!/usr/bin/env bash
# One entry point for a usable machine: system packages, Python venv, Pulumi CLI + Python host,
# Docker Engine 29 (second test daemon), docker buildx (for the CodeBuild double's opted-in builds),
# actionlint (make lint), wheelhouses (offline installs of the SDK wheel and the example's pins),
# test services, local base images on both daemons. Every step is idempotent; on a set-up machine the
# whole run takes a few seconds. `make test` and `make demo` call this first.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"

# step LABEL SCRIPT [ARGS...]: runs scripts/SCRIPT.sh, timed; stops setup on the first failure.
step() {
  local label="$1" script="$2" start=$SECONDS; shift 2
  "$here/$script.sh" "$@" || { echo "setup: ERROR: scripts/$script.sh $* failed (see above)" >&2; exit 1; }
  echo "setup: $label done in $((SECONDS - start))s"
}

total_start=$SECONDS
step install-system install-system
step setup-python setup-python
step build-pulumi build-pulumi
step build-docker29 build-docker29
step build-buildx build-buildx
step build-actionlint build-actionlint
step wheelhouses wheelhouses
step enable-emulation enable-emulation
step start-services start-services
step make-base-images make-base-images
step "make-base-images (Engine 29)" make-base-images --host "$IMAGEBUILD_TEST_DOCKER29_HOST"
echo "setup: all done in $((SECONDS - total_start))s; use it with: source scripts/env.sh"
