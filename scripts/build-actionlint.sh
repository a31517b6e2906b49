#!/usr/bin/env bash
# Builds actionlint (github.com/rhysd/actionlint, the GitHub Actions workflow linter) from the Go
# module proxy into $IMAGEBUILD_ACTIONLINT_DIR = $IMAGEBUILD_TOOLS_DIR/actionlint-<version>/.
# `make lint` runs it on .github/workflows/. Downloads go only through the Go module proxy (GOPROXY
# without `direct`); the module's go.sum entries are checked against the checksum database.
#
# Cached: a stamp over the inputs makes a second run take well under a second.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"

ver="$IMAGEBUILD_ACTIONLINT_VERSION"
out="$IMAGEBUILD_ACTIONLINT_DIR"
stamp="$out/.imagebuild-build-stamp"

die() { echo "build-actionlint: ERROR: $*" >&2; exit 1; }

command -v go >/dev/null || die "no 'go' on PATH (Go is needed to build actionlint $ver)"
# One build of actionlint at a time: set-up may already be building it in the background
# (scripts/setup.sh --engine20-first); a second caller waits, then finds it built.
mkdir -p "$IMAGEBUILD_TOOLS_DIR"
exec 9>"$IMAGEBUILD_TOOLS_DIR/.build-actionlint.lock"
flock -n 9 || { echo "build-actionlint: waiting for another build of actionlint (set-up's background log: $IMAGEBUILD_STATE_DIR/setup-tools.log)"; flock 9; }
go_version="$(go env GOVERSION)"
inputs_hash="$( (echo "$ver $go_version"; cat "$0") | sha256sum | cut -d' ' -f1)"

built() { "$out/actionlint" -version 2>/dev/null | head -1 | grep -qx "$ver"; }
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs_hash" ] && built; then
  echo "build-actionlint: actionlint $ver already built in $out"
  exit 0
fi

tmp="$out.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT

export GOPROXY="${IMAGEBUILD_GOPROXY:-https://proxy.golang.org}"
export GOFLAGS="-trimpath"
export GOTOOLCHAIN=local
export CGO_ENABLED=0
started=$SECONDS
echo "build-actionlint: go install github.com/rhysd/actionlint/cmd/actionlint@$ver with $go_version"
# The version is stamped as actionlint's own release builds do (it otherwise reports the module version).
GOBIN="$tmp" go install -ldflags "-s -w -X github.com/rhysd/actionlint.version=$ver" \
  "github.com/rhysd/actionlint/cmd/actionlint@$ver" \
  || die "go install of actionlint $ver failed (is the Go module proxy reachable?)"
got="$("$tmp/actionlint" -version | head -1)"
[ "$got" = "$ver" ] || die "built actionlint reports '$got', expected $ver"

rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$inputs_hash" >"$stamp"
echo "build-actionlint: actionlint $ver ready in $out ($((SECONDS - started))s)"
