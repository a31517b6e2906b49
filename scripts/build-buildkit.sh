#!/usr/bin/env bash
# Builds BuildKit's buildkitd and buildctl (github.com/moby/buildkit, scripts/buildkit wrapper
# module with go.mod + go.sum committed) into $IMAGEBUILD_BUILDKIT_DIR =
# $IMAGEBUILD_TOOLS_DIR/buildkit-<version>/, for the standalone builder the `builder` tests use
# (scripts/start-buildkitd.sh). Tags and static linking as BuildKit's own Dockerfile builds
# buildkitd (`osusergo netgo static_build seccomp`, CGO off; the OCI worker runs the set-up's runc).
# Downloads go only through the Go module proxy (GOPROXY without `direct`).
#
# Cached: a stamp over the inputs makes a second run take well under a second.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"

ver="$IMAGEBUILD_BUILDKIT_VERSION"
out="$IMAGEBUILD_BUILDKIT_DIR"
mod="$here/buildkit"
stamp="$out/.imagebuild-build-stamp"

die() { echo "build-buildkit: ERROR: $*" >&2; exit 1; }

command -v go >/dev/null || die "no 'go' on PATH (Go >= 1.26.8 is needed to build BuildKit $ver)"
# One build at a time: set-up may already be building it in the background; a second caller waits.
mkdir -p "$IMAGEBUILD_TOOLS_DIR"
exec 9>"$IMAGEBUILD_TOOLS_DIR/.build-buildkit.lock"
flock -n 9 || { echo "build-buildkit: waiting for another build of BuildKit (set-up's background log: $IMAGEBUILD_STATE_DIR/setup-tools.log)"; flock 9; }
go_version="$(go env GOVERSION)"
inputs_hash="$( (echo "$ver $go_version"; cat "$mod/go.mod" "$mod/go.sum" "$mod/tools.go" "$0") \
  | sha256sum | cut -d' ' -f1)"

built() {
  "$out/buildkitd" --version 2>/dev/null | grep -q " $ver " && "$out/buildctl" --version 2>/dev/null | grep -q " $ver "
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs_hash" ] && built; then
  echo "build-buildkit: BuildKit $ver already built in $out"
  exit 0
fi
grep -q "^require github.com/moby/buildkit $ver\$" "$mod/go.mod" \
  || die "$mod/go.mod does not require github.com/moby/buildkit $ver (this script and the wrapper module disagree)"

tmp="$out.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT

# Only the module proxy: `direct` would fetch from VCS hosts on the internet.
export GOPROXY="${IMAGEBUILD_GOPROXY:-https://proxy.golang.org}"
export GOFLAGS="-mod=readonly -trimpath ${GOFLAGS:-}"
export GOTOOLCHAIN=local
started=$SECONDS
echo "build-buildkit: building BuildKit $ver with $go_version (cold: a few minutes on 2 cores; warm Go caches: seconds)"
bk="-X github.com/moby/buildkit/version"
ldflags="-s -w $bk.Version=$ver $bk.Revision=$ver $bk.Package=github.com/moby/buildkit -extldflags -static"
for cmd in buildkitd buildctl; do
  (cd "$mod" && CGO_ENABLED=0 go build -tags "osusergo netgo static_build seccomp" -ldflags "$ldflags" \
    -o "$tmp/$cmd" "github.com/moby/buildkit/cmd/$cmd") \
    || die "go build of github.com/moby/buildkit/cmd/$cmd failed (see the compiler output above)"
  got="$("$tmp/$cmd" --version)"
  echo "$got" | grep -q " $ver " || die "built $cmd reports '$got', expected $ver"
done

rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$inputs_hash" >"$stamp"
echo "build-buildkit: BuildKit $ver ready in $out ($((SECONDS - started))s)"
