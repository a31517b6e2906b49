#!/usr/bin/env bash
# Builds docker buildx (github.com/docker/buildx, scripts/buildx wrapper module with go.mod + go.sum
# committed) into $IMAGEBUILD_BUILDX_DIR = $IMAGEBUILD_TOOLS_DIR/buildx-<version>/docker-buildx.
#
# Only the CodeBuild test double uses it, and only for builds that opt in (a project environment
# variable IMAGEBUILD_DOUBLE_BUILDX=1; see tests/codebuild_double/README.md): it is never put on
# PATH or in a docker CLI plugin directory, so nothing else on the machine changes behaviour.
# Named contexts in FastContainerImage's buildspec need it (`docker buildx build --build-context`).
# Downloads go only through the Go module proxy (GOPROXY without `direct`).
#
# Cached: a stamp over the inputs makes a second run take well under a second.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"

ver="$IMAGEBUILD_BUILDX_VERSION"
out="$IMAGEBUILD_BUILDX_DIR"
mod="$here/buildx"
stamp="$out/.imagebuild-build-stamp"

die() { echo "build-buildx: ERROR: $*" >&2; exit 1; }

command -v go >/dev/null || die "no 'go' on PATH (Go >= 1.26.8 is needed to build buildx $ver)"
# One build of buildx at a time: set-up may already be building it in the background
# (scripts/setup.sh --engine20-first); a second caller waits, then finds it built.
mkdir -p "$IMAGEBUILD_TOOLS_DIR"
exec 9>"$IMAGEBUILD_TOOLS_DIR/.build-buildx.lock"
flock -n 9 || { echo "build-buildx: waiting for another build of buildx (set-up's background log: $IMAGEBUILD_STATE_DIR/setup-tools.log)"; flock 9; }
go_version="$(go env GOVERSION)"
inputs_hash="$( (echo "$ver $go_version"; cat "$mod/go.mod" "$mod/go.sum" "$mod/tools.go" "$0") \
  | sha256sum | cut -d' ' -f1)"

built() { "$out/docker-buildx" version 2>/dev/null | grep -q " $ver "; }
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs_hash" ] && built; then
  echo "build-buildx: buildx $ver already built in $out"
  exit 0
fi
grep -q "^require github.com/docker/buildx $ver\$" "$mod/go.mod" \
  || die "$mod/go.mod does not require github.com/docker/buildx $ver (this script and the wrapper module disagree)"

tmp="$out.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT

# Only the module proxy: `direct` would fetch from VCS hosts on the internet.
export GOPROXY="${IMAGEBUILD_GOPROXY:-https://proxy.golang.org}"
export GOFLAGS="-mod=readonly -trimpath ${GOFLAGS:-}"
export GOTOOLCHAIN=local
started=$SECONDS
echo "build-buildx: building buildx $ver with $go_version (cold: a few minutes on 2 cores; warm Go caches: seconds)"
# ldflags as buildx's own hack/build: version, revision and package name.
bx="-X github.com/docker/buildx/version"
(cd "$mod" && CGO_ENABLED=0 go build -ldflags "-s -w $bx.Version=$ver $bx.Revision=$ver $bx.Package=github.com/docker/buildx" \
  -o "$tmp/docker-buildx" github.com/docker/buildx/cmd/buildx) \
  || die "go build of github.com/docker/buildx/cmd/buildx failed (see the compiler output above)"
got="$("$tmp/docker-buildx" version)"
echo "$got" | grep -q " $ver " || die "built buildx reports '$got', expected $ver"

rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$inputs_hash" >"$stamp"
echo "build-buildx: buildx $ver ready in $out ($((SECONDS - started))s)"
