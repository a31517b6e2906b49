#!/usr/bin/env bash
# Builds Docker Engine 29 (what most users run) from Go modules, for the second test daemon that
# scripts/start-services.sh runs next to Debian's Engine 20.10, into
# $IMAGEBUILD_DOCKER29_DIR = $IMAGEBUILD_TOOLS_DIR/docker29-<version>/:
#   dockerd, docker-proxy          github.com/moby/moby/v2 (scripts/docker29/moby)
#   containerd,                    github.com/containerd/containerd/v2 (scripts/docker29/containerd)
#   containerd-shim-runc-v2
#   runc                           github.com/opencontainers/runc, with seccomp (scripts/docker29/runc)
# Each project gets its own wrapper module (go.mod + go.sum committed) so every binary is built
# with exactly the dependency versions of its own upstream go.mod, as upstream builds them; one
# shared module would let MVS raise runc's or moby's dependencies to each other's versions.
# Build tags, static linking and version ldflags follow each project's own Makefile/hack/make.sh
# (moby's Dockerfile builds runc without libpathrs, as here).
#
# runc links libseccomp statically: the headers and libseccomp.a come from `apt-get download
# libseccomp-dev` unpacked with `dpkg-deb -x` into a sysroot under $IMAGEBUILD_TOOLS_DIR
# (docker29-sysroot/, ~2 MB; nothing is installed on the machine).
# Downloads go only through the Go module proxy (GOPROXY without `direct`) and apt.
#
# Cached: a stamp over the inputs makes a second run take well under a second.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"

ver="$IMAGEBUILD_DOCKER29_VERSION"
out="$IMAGEBUILD_DOCKER29_DIR"
mods="$here/docker29"
stamp="$out/.imagebuild-build-stamp"
moby_ver=v2.0.0-beta.24
containerd_ver=v2.3.5
runc_ver=v1.5.1
bins=(dockerd docker-proxy containerd containerd-shim-runc-v2 runc)

die() { echo "build-docker29: ERROR: $*" >&2; exit 1; }

command -v go >/dev/null || die "no 'go' on PATH (Go >= 1.26.3 is needed to build Docker Engine 29)"
# One build of Docker Engine 29 at a time: set-up may already be building it in the background
# (scripts/setup.sh --engine20-first); a second caller waits, then finds it built.
mkdir -p "$IMAGEBUILD_TOOLS_DIR"
exec 9>"$IMAGEBUILD_TOOLS_DIR/.build-docker29.lock"
flock -n 9 || { echo "build-docker29: waiting for another build of Docker Engine 29 (set-up's background log: $IMAGEBUILD_STATE_DIR/setup-tools.log)"; flock 9; }
go_version="$(go env GOVERSION)"
inputs_hash="$( (echo "$ver $moby_ver $containerd_ver $runc_ver $go_version"
  for m in moby containerd runc; do cat "$mods/$m/go.mod" "$mods/$m/go.sum" "$mods/$m/tools.go"; done
  cat "$0") | sha256sum | cut -d' ' -f1)"

# all_built: every binary is there and dockerd reports the expected version.
all_built() {
  local b
  for b in "${bins[@]}"; do [ -x "$out/$b" ] || return 1; done
  "$out/dockerd" --version 2>/dev/null | grep -q "^Docker version $ver,"
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$inputs_hash" ] && all_built; then
  echo "build-docker29: Docker Engine $ver already built in $out"
  exit 0
fi

# require MODULE_DIR MODULE VERSION: the wrapper module pins what this script says it builds.
require() {
  grep -q "^require $2 $3\$" "$1/go.mod" || grep -qP "^\t$2 $3\$" "$1/go.mod" \
    || die "$1/go.mod does not require $2 $3 (this script and the wrapper module disagree)"
}
require "$mods/moby" github.com/moby/moby/v2 "$moby_ver"
require "$mods/containerd" github.com/containerd/containerd/v2 "$containerd_ver"
require "$mods/runc" github.com/opencontainers/runc "$runc_ver"

tmp="$out.tmp.$$"
rm -rf "$tmp"
mkdir -p "$tmp/bin"
trap 'rm -rf "$tmp"' EXIT

# Only the module proxy: `direct` would fetch from VCS hosts on the internet.
export GOPROXY="${IMAGEBUILD_GOPROXY:-https://proxy.golang.org}"
export GOFLAGS="-mod=readonly -trimpath ${GOFLAGS:-}"
export GOTOOLCHAIN=local
started=$SECONDS

# build NAME MODULE_DIR PACKAGE CGO TAGS LDFLAGS [EXTRA GO FLAGS...]: one binary into $tmp/bin.
build() {
  local name="$1" dir="$2" pkg="$3" cgo="$4" tags="$5" ldflags="$6" t0=$SECONDS; shift 6
  echo "build-docker29: building $name ($pkg)"
  (cd "$dir" && CGO_ENABLED="$cgo" go build "$@" -tags "$tags" -ldflags "$ldflags" -o "$tmp/bin/$name" "$pkg") \
    || die "go build of $name ($pkg) failed (see the compiler output above)"
  echo "build-docker29: $name built in $((SECONDS - t0))s"
}

echo "build-docker29: building Docker Engine $ver with $go_version (cold: 10-20 min on 2 shared cores; with warm Go caches ~30 s)"

# ---------------------------------------------------------------- moby (hack/make.sh, binary-*)
moby_x="-X github.com/moby/moby/v2/dockerversion"
moby_ld="-w -s $moby_x.Version=$ver $moby_x.GitCommit=$moby_ver $moby_x.BuildTime=$(date -u +%Y-%m-%dT%H:%M:%SZ)"
moby_ld+=" $moby_x.PlatformName=imagebuild-test-engine"
moby_tags="netgo osusergo static_build nri_no_wasm"
build dockerd "$mods/moby" github.com/moby/moby/v2/cmd/dockerd 1 "$moby_tags" "$moby_ld -extldflags -static"
build docker-proxy "$mods/moby" github.com/moby/moby/v2/cmd/docker-proxy 0 "$moby_tags" "$moby_ld"

# ---------------------------------------------------------------- containerd (Makefile, STATIC=1)
ctd_x="-X github.com/containerd/containerd/v2/version"
ctd_ld="-s -w $ctd_x.Version=$containerd_ver $ctd_x.Revision=$containerd_ver $ctd_x.Package=github.com/containerd/containerd/v2"
ctd_tags="urfave_cli_no_docs osusergo netgo static_build"
build containerd "$mods/containerd" github.com/containerd/containerd/v2/cmd/containerd 0 "$ctd_tags" "$ctd_ld -extldflags -static"
build containerd-shim-runc-v2 "$mods/containerd" github.com/containerd/containerd/v2/cmd/containerd-shim-runc-v2 0 \
  "$ctd_tags no_grpc" "$ctd_ld -extldflags -static"

# ---------------------------------------------------------------- runc (Makefile `static`, -libpathrs)
command -v gcc >/dev/null || die "gcc missing (runc needs cgo): apt-get install gcc libc6-dev"
command -v pkg-config >/dev/null || die "pkg-config missing (runc finds libseccomp with it): apt-get install pkg-config"
multiarch="$(gcc -print-multiarch)"
[ -f "/usr/lib/$multiarch/libc.a" ] || die "/usr/lib/$multiarch/libc.a missing (static runc needs libc6-dev)"
echo "build-docker29: fetching libseccomp-dev with apt-get download (static libseccomp for runc)"
(cd "$tmp" && apt-get download -q libseccomp-dev >"$tmp/apt.log" 2>&1) \
  || { cat "$tmp/apt.log" >&2; die "apt-get download libseccomp-dev failed (try apt-get update)"; }
deb="$(ls "$tmp"/libseccomp-dev_*.deb)"
seccomp_deb_version="$(dpkg-deb -f "$deb" Version)"
# The sysroot stays, at a path naming the package version: Go's build cache keeps the -L path
# that pkg-config gave when the cgo package was first compiled, but does not hash pkg-config's
# output, so a throw-away path would break the next link, and a changed library must come with a
# new path (it is also passed in CGO_CFLAGS/CGO_LDFLAGS below, which Go does hash).
sysroots="$IMAGEBUILD_TOOLS_DIR/docker29-sysroot"
sysroot="$sysroots/libseccomp-dev_${seccomp_deb_version//[^A-Za-z0-9.+~-]/_}"
seccomp_lib="$sysroot/usr/lib/$multiarch"
if [ ! -f "$seccomp_lib/libseccomp.a" ]; then
  rm -rf "$sysroots"
  mkdir -p "$sysroot.tmp"
  dpkg-deb -x "$deb" "$sysroot.tmp" || die "dpkg-deb -x $deb failed"
  mv "$sysroot.tmp" "$sysroot"
fi
[ -f "$seccomp_lib/libseccomp.a" ] && [ -f "$sysroot/usr/include/seccomp.h" ] \
  || die "$deb has no libseccomp.a / seccomp.h for $multiarch"
# pkg-config reads libseccomp.pc from the sysroot and prefixes its -I/-L paths with it.
export PKG_CONFIG_LIBDIR="$seccomp_lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$sysroot"
pkg-config --exists libseccomp || die "pkg-config cannot find libseccomp in $seccomp_lib/pkgconfig"
CGO_CFLAGS="-O2 -g -I$sysroot/usr/include" CGO_LDFLAGS="-O2 -g -L$seccomp_lib" \
  build runc "$mods/runc" github.com/opencontainers/runc 1 "seccomp urfave_cli_no_docs netgo osusergo" \
  "-X main.extraVersion=+imagebuild -linkmode external -extldflags -static-pie" -buildmode=pie
unset PKG_CONFIG_LIBDIR PKG_CONFIG_SYSROOT_DIR

# ---------------------------------------------------------------- checks
got="$("$tmp/bin/dockerd" --version)"
echo "$got" | grep -q "^Docker version $ver," || die "built dockerd reports '$got', expected Docker version $ver"
"$tmp/bin/containerd" --version | grep -qF " $containerd_ver " \
  || die "built containerd reports '$("$tmp/bin/containerd" --version)', expected $containerd_ver"
runc_info="$("$tmp/bin/runc" --version)"
echo "$runc_info" | grep -q "^runc version ${runc_ver#v}" || die "built runc reports '$runc_info', expected ${runc_ver#v}"
echo "$runc_info" | grep -q "^libseccomp: " || die "built runc has no libseccomp (seccomp tag or static link failed): $runc_info"
for b in "${bins[@]}"; do
  file -b "$tmp/bin/$b" | grep -qE "statically linked|static-pie linked" || die "$b is not statically linked: $(file -b "$tmp/bin/$b")"
done
printf 'docker %s (moby %s)\ncontainerd %s\nrunc %s\nlibseccomp-dev %s (static)\ngo %s\n' \
  "$ver" "$moby_ver" "$containerd_ver" "$runc_ver" "$seccomp_deb_version" "$go_version" >"$tmp/bin/VERSIONS"

rm -rf "$out"
mv "$tmp/bin" "$out"
rm -rf "$tmp"
trap - EXIT
echo "$inputs_hash" >"$stamp"
echo "build-docker29: Docker Engine $ver ready in $out ($((SECONDS - started))s; $(du -sh "$out" | cut -f1))"
