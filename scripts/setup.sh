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

# `--engine20-first` (make test): set up only what the Engine 20.10 suites need and build the Go
# tools (buildx first, then the Pulumi CLI; Engine 29, then actionlint) in the background, so their
# ~30 min of cold compiling overlaps the first test suites. A later plain run waits for them (each
# build script holds a lock while it builds) and does the rest.
mode=all
case "${1:-}" in
  --engine20-first) mode=engine20-first ;;
  "") ;;
  *) echo "setup: ERROR: unknown argument '$1' (usage: setup.sh [--engine20-first])" >&2; exit 1 ;;
esac

# start_tool_builds: the five Go builds as two chains in the background, logged to one file.
# BuildKit goes last on the buildx chain: buildx is built on BuildKit's packages, so its Go cache
# makes BuildKit's build short, and only the late builder suites wait for it.
start_tool_builds() {
  local log="$IMAGEBUILD_STATE_DIR/setup-tools.log"
  mkdir -p "$IMAGEBUILD_STATE_DIR"
  # shellcheck disable=SC2016
  setsid nohup bash -c '
    ( "$0/build-buildx.sh" && "$0/build-pulumi.sh" && "$0/build-buildkit.sh" ) & a=$!
    ( "$0/build-docker29.sh" && "$0/build-actionlint.sh" ) & b=$!
    wait "$a"; ra=$?; wait "$b"; rb=$?
    echo "setup-tools: finished (buildx+pulumi+buildkit rc=$ra, docker29+actionlint rc=$rb)"' "$here" >"$log" 2>&1 </dev/null &
  echo "setup: building buildx, the Pulumi CLI, BuildKit, Engine 29 and actionlint in the background (log $log)"
  # The chains take their first locks at once; a foreground build started later waits on them.
  sleep 1
}

total_start=$SECONDS
step install-system install-system
step setup-python setup-python
if [ "$mode" = engine20-first ]; then
  start_tool_builds
  step wheelhouses wheelhouses
  step enable-emulation enable-emulation
  step "start-services (Engine 20.10)" start-services --engine20-only
  step make-base-images make-base-images
  echo "setup: Engine 20.10 part done in $((SECONDS - total_start))s; scripts/setup.sh does the rest"
  exit 0
fi
step build-pulumi build-pulumi
step build-docker29 build-docker29
step build-buildx build-buildx
step build-actionlint build-actionlint
step build-buildkit build-buildkit
step wheelhouses wheelhouses
step enable-emulation enable-emulation
step start-services start-services
step make-base-images make-base-images
step "make-base-images (Engine 29)" make-base-images --host "$IMAGEBUILD_TEST_DOCKER29_HOST"
step start-buildkitd start-buildkitd
echo "setup: all done in $((SECONDS - total_start))s; use it with: source scripts/env.sh"
