#!/usr/bin/env bash
# Generates the Python SDK from schema.json with the Pulumi CLI the set-up built.
#   gen-sdk.sh OUT_DIR                  write the SDK to OUT_DIR (replacing it)
#   gen-sdk.sh OUT_DIR --compare DIR    also fail when DIR differs from what was generated
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
out="$1"
compare="${3:-}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
pulumi package gen-sdk "$root/schema.json" --language python -o "$tmp" >/dev/null
rm -rf "$out"
mkdir -p "$(dirname "$out")"
mv "$tmp/python" "$out"
if [ -n "$compare" ]; then
  if ! diff -r -x __pycache__ -x '*.egg-info' -x build "$out" "$root/$compare" >/dev/null 2>&1 && \
     ! diff -r -x __pycache__ -x '*.egg-info' -x build "$out" "$compare" >/dev/null 2>&1; then
    diff -r -x __pycache__ -x '*.egg-info' -x build "$out" "$root/$compare" | head -40 || true
    echo "sdk-check: $compare is stale: run 'make sdk' and commit the result" >&2
    exit 1
  fi
  echo "sdk-check: $compare matches schema.json"
fi
