#!/usr/bin/env bash
# Builds the Pulumi CLI and a Python language host from Go modules (release binaries cannot be
# downloaded here) into $IMAGEBUILD_PULUMI_DIR = $IMAGEBUILD_TOOLS_DIR/pulumi-v<version>/:
#   pulumi                        github.com/pulumi/pulumi/pkg/v3/cmd/pulumi at v<version>
#   pulumi-language-python        scripts/pulumi-cli/python-host: our stand-in for Pulumi's host,
#                                 built on sdk/v3 + pkg/v3 at the same release (see below)
#   pulumi-language-python-exec   the executor script shipped in sdk/v3 at v<version>
# The wrapper module scripts/pulumi-cli (go.mod + go.sum committed) pins every dependency and
# repeats the non-local replace directives of pkg/v3 and sdk/v3.
#
# Why a stand-in host: Pulumi publishes its Python host only as the untagged module
# github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3, and the Go module proxy
# reachable here refuses it at every version tried (release pseudo-versions included). The
# newest release that still carried the host inside sdk/v3 is v3.68.0 (2023), with no pkg/v3 at
# a matching release served, and it lacks GeneratePackage (so no `pulumi package gen-sdk`).
#
# Cached: a stamp over the inputs makes a second run take well under a second.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"

ver="$IMAGEBUILD_PULUMI_VERSION"
out="$IMAGEBUILD_PULUMI_DIR"
mod="$here/pulumi-cli"
stamp="$out/.imagebuild-build-stamp"

die() { echo "build-pulumi: ERROR: $*" >&2; exit 1; }

command -v go >/dev/null || die "no 'go' on PATH (Go >= 1.26 is needed to build the Pulumi CLI)"
# One build of the Pulumi CLI at a time: set-up may already be building it in the background
# (scripts/setup.sh --engine20-first); a second caller waits, then finds it built.
mkdir -p "$IMAGEBUILD_TOOLS_DIR"
exec 9>"$IMAGEBUILD_TOOLS_DIR/.build-pulumi.lock"
flock -n 9 || { echo "build-pulumi: waiting for another build of the Pulumi CLI (set-up's background log: $IMAGEBUILD_STATE_DIR/setup-tools.log)"; flock 9; }
go_version="$(go env GOVERSION)"
inputs_hash="$( (echo "$ver $go_version"; cat "$mod/go.mod" "$mod/go.sum" "$mod/tools.go" "$mod/python-host/main.go" "$0") \
  | sha256sum | cut -d' ' -f1)"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs_hash" ] \
   && [ -x "$out/pulumi" ] && [ -x "$out/pulumi-language-python" ] && [ -x "$out/pulumi-language-python-exec" ] \
   && [ "$("$out/pulumi" version 2>/dev/null)" = "v$ver" ]; then
  echo "build-pulumi: pulumi v$ver already built in $out"
  exit 0
fi

grep -q "github.com/pulumi/pulumi/pkg/v3 v$ver\$" "$mod/go.mod" \
  || die "$mod/go.mod does not require pkg/v3 v$ver (IMAGEBUILD_PULUMI_VERSION and go.mod disagree)"

tmp="$out.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp"
trap 'rm -rf "$tmp"' EXIT

ldflags="-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=v$ver"
cd "$mod"
export GOFLAGS="-mod=readonly ${GOFLAGS:-}"

echo "build-pulumi: building pulumi v$ver with $go_version (cold: ~5 min on 2 cores; Go caches make rebuilds fast)"
go build -trimpath -ldflags "$ldflags" -o "$tmp/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi \
  || die "go build of github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@v$ver failed (see above)"

echo "build-pulumi: building pulumi-language-python (imagebuild stand-in, sdk/v3 + pkg/v3 v$ver)"
go build -trimpath -ldflags "$ldflags" -o "$tmp/pulumi-language-python" ./python-host \
  || die "go build of scripts/pulumi-cli/python-host failed (see above)"

sdk_dir="$(go list -m -f '{{.Dir}}' github.com/pulumi/pulumi/sdk/v3)"
[ -f "$sdk_dir/python/cmd/pulumi-language-python-exec" ] \
  || die "pulumi-language-python-exec not found in $sdk_dir/python/cmd/"
echo "build-pulumi: copying pulumi-language-python-exec from sdk/v3@v$ver"
cp "$sdk_dir/python/cmd/pulumi-language-python-exec" "$tmp/"
chmod 0755 "$tmp/pulumi-language-python-exec"

got="$("$tmp/pulumi" version)"
[ "$got" = "v$ver" ] || die "built pulumi reports version '$got', expected v$ver"

rm -rf "$out"
mv "$tmp" "$out"
trap - EXIT
echo "$inputs_hash" >"$stamp"
echo "build-pulumi: pulumi $got ready in $out"

"$here/check-pulumi.sh"
