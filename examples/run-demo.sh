#!/usr/bin/env bash
# Runs a demo: `pulumi up` of an example project with a local file backend, building into the local
# registry. `run-demo.sh` runs examples/monorepo (a shared base image and handlers built FROM it by
# digest; `make demo`); `run-demo.sh .` runs the three-handler program in examples/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
project="$(cd "$here/${1:-monorepo}" && pwd)"
[ -f "$project/Pulumi.yaml" ] || { echo "run-demo: ERROR: no Pulumi.yaml in $project" >&2; exit 1; }
if [ -f "$project/app/requirements.txt" ]; then
  # The base image installs its pinned requirements from app/wheels/ (no index is reachable here).
  wheels="${IMAGEBUILD_EXAMPLE_WHEELHOUSE:?source scripts/env.sh first}"
  compgen -G "$wheels/*.whl" >/dev/null \
    || { echo "run-demo: ERROR: no wheels in $wheels: run scripts/wheelhouses.sh (set-up)" >&2; exit 1; }
  rm -rf "$project/app/wheels"
  mkdir -p "$project/app/wheels"
  cp "$wheels"/*.whl "$project/app/wheels/"
fi
state="$project/.pulumi-state"
mkdir -p "$state"
export PULUMI_BACKEND_URL="file://$state" PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-}"
cd "$project"
pulumi stack select demo 2>/dev/null || pulumi stack init demo
pulumi up --yes --skip-preview
pulumi stack output
