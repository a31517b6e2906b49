#!/usr/bin/env bash
# Downloads, once at set-up time, the wheels that later runs install with no index reachable:
#   $IMAGEBUILD_SDK_WHEELHOUSE      the SDK's run-time dependencies (scripts/requirements-sdk.txt,
#                                   constrained to the versions in .venv): the plugin-download e2e
#                                   test installs the SDK wheel into a fresh venv from it
#   $IMAGEBUILD_EXAMPLE_WHEELHOUSE  the pinned requirements of examples/monorepo (pure-Python
#                                   wheels), which its base image installs in place of PyPI
# Idempotent: a stamp per wheelhouse records its inputs; a matching stamp skips pip.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"
pip="$IMAGEBUILD_VENV/bin/pip"

die() { echo "wheelhouses: ERROR: $*" >&2; exit 1; }

[ -x "$pip" ] || die "no $pip: run scripts/setup-python.sh first"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# fill DIR INPUTS_HASH PIP_DOWNLOAD_ARGS...: pip download into DIR unless its stamp says INPUTS_HASH.
fill() {
  local dir="$1" want="$2"; shift 2
  if [ -f "$dir/.imagebuild-stamp" ] && [ "$(cat "$dir/.imagebuild-stamp")" = "$want" ]; then
    echo "wheelhouses: $dir up to date"
    return
  fi
  mkdir -p "$dir"
  echo "wheelhouses: pip downloading into $dir"
  "$pip" download -q --disable-pip-version-check --only-binary=:all: -d "$dir" "$@" \
    || die "pip download into $dir failed (is PyPI reachable?)"
  echo "$want" >"$dir/.imagebuild-stamp"
  echo "wheelhouses: $(find "$dir" -name '*.whl' | wc -l) wheels in $dir"
}

sdk_reqs="$here/requirements-sdk.txt"
"$pip" freeze --disable-pip-version-check | grep -v '^-e ' | grep -iv '^pulumi.imagebuild' >"$tmp/constraints"
fill "$IMAGEBUILD_SDK_WHEELHOUSE" "$(cat "$sdk_reqs" "$tmp/constraints" | sha256sum | cut -d' ' -f1)" \
  -r "$sdk_reqs" -c "$tmp/constraints"

example_reqs="$here/../examples/monorepo/app/requirements.txt"
fill "$IMAGEBUILD_EXAMPLE_WHEELHOUSE" "$(sha256sum "$example_reqs" | cut -d' ' -f1)" \
  --no-deps --platform any --python-version 3.11 --implementation py -r "$example_reqs"
