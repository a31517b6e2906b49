#!/usr/bin/env bash
# Runs the demo: `pulumi up` on examples/ with a local file backend, building into the local registry.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
state="$here/.pulumi-state"
mkdir -p "$state"
export PULUMI_BACKEND_URL="file://$state" PULUMI_CONFIG_PASSPHRASE="${PULUMI_CONFIG_PASSPHRASE:-}"
cd "$here"
pulumi stack select demo 2>/dev/null || pulumi stack init demo
pulumi up --yes --skip-preview
pulumi stack output
