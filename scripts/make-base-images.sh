#!/usr/bin/env bash
# Makes the local base images the tests and demo build FROM, without pulling anything:
#   imagebuild-base/busybox:latest  busybox-static (from apt) with a symlink per applet
#   imagebuild-base/python:3.11     Debian bookworm minbase (debootstrap) with python3, pip, venv
#   imagebuild-base/busybox-arm64:latest  Debian's arm64 busybox-static, config linux/arm64
#   imagebuild-base/python-arm64:3.11     the Python rootfs for arm64 (debootstrap under QEMU)
# An image that already exists with the same recipe (label imagebuild.base.recipe) is skipped;
# a changed recipe in this file re-makes it. The bookworm rootfs tarball is cached under
# $IMAGEBUILD_TOOLS_DIR/base-images so re-importing it (e.g. after a docker reset) is quick.
#
# The daemon is $DOCKER_HOST (default: Engine 20.10's /var/run/docker.sock), or `--host URL`;
# scripts/setup.sh runs this once per test daemon (Engine 20.10, then Engine 29).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"
docker=/usr/bin/docker

die() { echo "make-base-images: ERROR: $*" >&2; exit 1; }

case "${1:-}" in
  --host) [ -n "${2:-}" ] || die "--host needs a daemon address (e.g. $IMAGEBUILD_TEST_DOCKER29_HOST)"; export DOCKER_HOST="$2" ;;
  "") ;;
  *) die "unknown argument '$1' (usage: make-base-images.sh [--host unix:///path/to/docker.sock])" ;;
esac
daemon="${DOCKER_HOST:-unix:///var/run/docker.sock}"
timeout 10 "$docker" info >/dev/null 2>&1 || die "no Docker daemon answers at $daemon: run scripts/start-services.sh first"
echo "make-base-images: daemon $daemon (Docker $("$docker" version --format '{{.Server.Version}}'))"
# image_current IMAGE RECIPE: true when IMAGE exists and was made from RECIPE.
image_current() {
  [ "$("$docker" image inspect -f '{{index .Config.Labels "imagebuild.base.recipe"}}' "$1" 2>/dev/null)" = "$2" ]
}

cache="$IMAGEBUILD_TOOLS_DIR/base-images"
mkdir -p "$cache"
work="$(mktemp -d "${TMPDIR:-/tmp}/imagebuild-base.XXXXXX")"
cleanup() {
  # debootstrap may leave /proc etc. mounted inside the rootfs on failure.
  for fs in "$work"/rootfs-*; do
    for m in proc sys dev/pts dev; do umount -l "$fs/$m" 2>/dev/null || true; done
  done
  rm -rf "$work"
}
trap cleanup EXIT

# busybox_rootfs BINARY DIR: a minimal root filesystem in DIR around a static busybox, with one
# symlink per applet at the path busybox itself reports (BINARY must run here, natively or
# under QEMU).
busybox_rootfs() {
  local bin="$1" fs="$2" applet
  mkdir -p "$fs"/{bin,sbin,usr/bin,usr/sbin,etc,root,tmp,proc,sys,dev,var/tmp}
  chmod 1777 "$fs/tmp" "$fs/var/tmp"
  cp "$bin" "$fs/bin/busybox"
  while read -r applet; do
    [ "$applet" = bin/busybox ] && continue
    mkdir -p "$fs/$(dirname "$applet")"
    ln -sf /bin/busybox "$fs/$applet"
  done < <("$bin" --list-full)
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$fs/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$fs/etc/group"
}

# ---------------------------------------------------------------- busybox
bb_changes=('ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' 'CMD ["sh"]')
bb_recipe="$( (dpkg-query -W -f='${Version}' busybox-static 2>/dev/null; printf '%s\n' "${bb_changes[@]}") | sha256sum | cut -c1-16)"
if image_current "$IMAGEBUILD_BASE_BUSYBOX" "$bb_recipe"; then
  echo "make-base-images: $IMAGEBUILD_BASE_BUSYBOX already exists"
else
  [ -x /bin/busybox ] || die "/bin/busybox missing: run scripts/install-system.sh (busybox-static)"
  file -b /bin/busybox 2>/dev/null | grep -q 'statically linked' \
    || ldd /bin/busybox 2>&1 | grep -q 'not a dynamic' \
    || die "/bin/busybox is not the static build (install busybox-static, not busybox)"
  echo "make-base-images: building $IMAGEBUILD_BASE_BUSYBOX from busybox-static"
  fs="$work/busybox"
  busybox_rootfs /bin/busybox "$fs"
  args=()
  for c in "${bb_changes[@]}" "LABEL imagebuild.base.recipe=$bb_recipe"; do args+=(--change "$c"); done
  tar --numeric-owner --owner=0 --group=0 -C "$fs" -cf - . | "$docker" import "${args[@]}" \
    --message "imagebuild: busybox-static $(dpkg-query -W -f='${Version}' busybox-static)" \
    - "$IMAGEBUILD_BASE_BUSYBOX" >/dev/null
  "$docker" run --rm "$IMAGEBUILD_BASE_BUSYBOX" sh -c 'echo hello | grep -q hello' \
    || die "$IMAGEBUILD_BASE_BUSYBOX was imported but cannot run a shell"
  echo "make-base-images: $IMAGEBUILD_BASE_BUSYBOX ready"
fi

# ---------------------------------------------------------------- python (debootstrap)
suite=bookworm
packages="python3,python3-pip,python3-venv,python3-setuptools,python3-wheel,python-is-python3,ca-certificates"
# The cache key changes when the package list changes, so an edit here rebuilds the rootfs.
key="$(echo "$suite $packages" | sha256sum | cut -c1-12)"
tarball="$cache/python-$suite-minbase-$key.tar.gz"

# debian_mirror: the Debian archive the machine's apt already uses (deb822 or one-line format).
debian_mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$suite" '
      /^$/ { if (uri != "" && hit) { print uri; exit } uri = ""; hit = 0 }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) hit = 1 }
      END { if (uri != "" && hit) print uri }' "$f"
  done | { grep -v security || true; } | head -n1
  grep -hE "^deb\s+(\[[^]]*\]\s+)?\S+\s+$suite\s" /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
    | sed -E 's/^deb\s+(\[[^]]*\]\s+)?//' | awk '{print $1}' | { grep -v security || true; } | head -n1
  return 0
}

# python_rootfs ARCH TARBALL: Debian $suite minbase with $packages for ARCH (debootstrap; a
# foreign ARCH configures its packages under QEMU), cached as TARBALL.
python_rootfs() {
  local arch="$1" tarball="$2" mirror fs log
  if [ -f "$tarball" ]; then
    echo "make-base-images: using cached $arch rootfs $tarball"
  else
    command -v debootstrap >/dev/null || die "debootstrap missing: run scripts/install-system.sh"
    mirror="$(debian_mirror | head -n1 || true)"
    [ -n "$mirror" ] || die "found no Debian $suite mirror in /etc/apt/sources.list*"
    fs="$work/rootfs-$arch"
    log="$work/debootstrap-$arch.log"
    echo "make-base-images: debootstrap $suite $arch minbase + $packages from $mirror (a few minutes; arm64 runs under QEMU: ~7)"
    if ! debootstrap --arch="$arch" --variant=minbase --include="$packages" "$suite" "$fs" "$mirror" >"$log" 2>&1; then
      tail -n 30 "$log" >&2
      [ -f "$fs/debootstrap/debootstrap.log" ] && tail -n 30 "$fs/debootstrap/debootstrap.log" >&2
      die "debootstrap failed (mirror $mirror)"
    fi
    for m in proc sys dev/pts dev; do umount -l "$fs/$m" 2>/dev/null || true; done
    # Keep the image small and free of this machine's state.
    rm -rf "$fs"/var/cache/apt/archives/*.deb "$fs"/var/lib/apt/lists/* "$fs"/tmp/* "$fs"/var/tmp/* \
      "$fs"/var/log/*.log "$fs"/debootstrap
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$mirror" "$suite" "$suite" >"$fs/etc/apt/sources.list.d/debian.sources"
    rm -f "$fs/etc/apt/sources.list"
    echo "make-base-images: caching the $arch rootfs at $tarball"
    tar --numeric-owner -C "$fs" -czf "$tarball.tmp" .
    mv "$tarball.tmp" "$tarball"
  fi
}

# PIP_NO_BUILD_ISOLATION=off turns build isolation off, so a local sdist builds with the image's own
# setuptools/wheel instead of fetching them from an index (none is reachable from builds here).
py_changes=(
  'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'
  'ENV LANG=C.UTF-8'
  'ENV PIP_BREAK_SYSTEM_PACKAGES=1'
  'ENV PIP_DISABLE_PIP_VERSION_CHECK=1'
  'ENV PIP_ROOT_USER_ACTION=ignore'
  'ENV PIP_NO_INPUT=1'
  'ENV PIP_NO_BUILD_ISOLATION=off'
  'CMD ["python3"]'
)
py_recipe="$( (basename "$tarball"; printf '%s\n' "${py_changes[@]}") | sha256sum | cut -c1-16)"
if image_current "$IMAGEBUILD_BASE_PYTHON" "$py_recipe"; then
  echo "make-base-images: $IMAGEBUILD_BASE_PYTHON already exists"
else
  python_rootfs amd64 "$tarball"
  echo "make-base-images: importing $IMAGEBUILD_BASE_PYTHON"
  args=()
  for c in "${py_changes[@]}" "LABEL imagebuild.base.recipe=$py_recipe"; do args+=(--change "$c"); done
  "$docker" import "${args[@]}" \
    --message "imagebuild: debootstrap $suite minbase + $packages" \
    "$tarball" "$IMAGEBUILD_BASE_PYTHON" >/dev/null
  "$docker" run --rm "$IMAGEBUILD_BASE_PYTHON" sh -c 'python3 --version && python3 -m pip --version >/dev/null' \
    || die "$IMAGEBUILD_BASE_PYTHON was imported but python3/pip do not run in it"
  echo "make-base-images: $IMAGEBUILD_BASE_PYTHON ready ($("$docker" run --rm "$IMAGEBUILD_BASE_PYTHON" python3 --version))"
fi

# ---------------------------------------------------------------- linux/arm64 images
# For real foreign-platform builds (RUN runs under QEMU: scripts/enable-emulation.sh). Both are
# built by BuildKit FROM scratch with --platform linux/arm64, so their image config says
# `architecture: arm64` on both engines (`docker import --platform` does not on Engine 20.10).

# arm64_image IMAGE RECIPE CONTEXT SOURCE CHANGES...: builds IMAGE from scratch for linux/arm64
# with the Dockerfile line SOURCE (reading CONTEXT) and the CHANGES lines, then proves that a
# RUN step in it runs as aarch64.
arm64_image() {
  local image="$1" recipe="$2" ctx="$3" src="$4" df="$work/arm64.Dockerfile" got; shift 4
  { echo "FROM scratch"; echo "$src"; printf '%s\n' "$@"; echo "LABEL imagebuild.base.recipe=$recipe"; } >"$df"
  DOCKER_BUILDKIT=1 "$docker" build -q --platform linux/arm64 -f "$df" -t "$image" "$ctx" >/dev/null \
    || die "could not build $image for linux/arm64"
  got="$("$docker" image inspect -f '{{.Os}}/{{.Architecture}}' "$image")"
  [ "$got" = linux/arm64 ] || die "$image says $got, not linux/arm64"
  got="$("$docker" run --rm --platform linux/arm64 "$image" uname -m)" \
    || die "$image cannot run under QEMU (is qemu-aarch64 registered? scripts/enable-emulation.sh)"
  [ "$got" = aarch64 ] || die "$image ran as $got, not aarch64"
  echo "make-base-images: $image ready (linux/arm64, RUN is aarch64 under QEMU)"
}

# busybox-static for arm64, straight from the Debian archive's arm64 index (no dpkg
# architecture is added to this machine); the .deb is cached and checked against the index.
arm64_busybox_deb() {
  local mirror index stanza file sum deb
  mirror="$(debian_mirror | head -n1 || true)"
  [ -n "$mirror" ] || die "found no Debian $suite mirror in /etc/apt/sources.list*"
  index="$(curl -fsS "$mirror/dists/$suite/main/binary-arm64/Packages.xz" | xz -d)" \
    || die "could not read the arm64 package index from $mirror"
  stanza="$(awk '/^Package: busybox-static$/{p=1} p&&/^$/{exit} p' <<<"$index")"
  file="$(sed -n 's/^Filename: //p' <<<"$stanza")"
  sum="$(sed -n 's/^SHA256: //p' <<<"$stanza")"
  [ -n "$file" ] && [ -n "$sum" ] || die "busybox-static is not in $mirror's arm64 index"
  deb="$cache/$(basename "$file")"
  if [ ! -f "$deb" ]; then
    curl -fsS -o "$deb.tmp" "$mirror/$file" || die "could not download $mirror/$file"
    mv "$deb.tmp" "$deb"
  fi
  echo "$sum  $deb" | sha256sum -c --quiet - >&2 || { rm -f "$deb"; die "$deb does not match the index's SHA-256"; }
  echo "$deb"
}

bb64_recipe="$( (echo arm64; printf '%s\n' "${bb_changes[@]}") | sha256sum | cut -c1-16)"
if image_current "$IMAGEBUILD_BASE_BUSYBOX_ARM64" "$bb64_recipe"; then
  echo "make-base-images: $IMAGEBUILD_BASE_BUSYBOX_ARM64 already exists"
else
  deb="$(arm64_busybox_deb)"
  dpkg-deb -x "$deb" "$work/bb64-deb"
  bin="$work/bb64-deb/bin/busybox"
  [ "$("$bin" uname -m 2>/dev/null)" = aarch64 ] \
    || die "the arm64 busybox does not run here: qemu-aarch64 is not registered (scripts/enable-emulation.sh)"
  busybox_rootfs "$bin" "$work/bb64"
  arm64_image "$IMAGEBUILD_BASE_BUSYBOX_ARM64" "$bb64_recipe" "$work/bb64" "COPY . /" "${bb_changes[@]}"
fi

tarball64="$cache/python-$suite-minbase-arm64-$key.tar.gz"
py64_recipe="$( (basename "$tarball64"; printf '%s\n' "${py_changes[@]}") | sha256sum | cut -c1-16)"
if image_current "$IMAGEBUILD_BASE_PYTHON_ARM64" "$py64_recipe"; then
  echo "make-base-images: $IMAGEBUILD_BASE_PYTHON_ARM64 already exists"
else
  python_rootfs arm64 "$tarball64"
  mkdir -p "$work/py64"
  ln "$tarball64" "$work/py64/rootfs.tar.gz" 2>/dev/null || cp "$tarball64" "$work/py64/rootfs.tar.gz"
  arm64_image "$IMAGEBUILD_BASE_PYTHON_ARM64" "$py64_recipe" "$work/py64" "ADD rootfs.tar.gz /" "${py_changes[@]}"
  got="$("$docker" run --rm --platform linux/arm64 "$IMAGEBUILD_BASE_PYTHON_ARM64" python3 -c 'import platform; print(platform.machine())')" \
    || die "$IMAGEBUILD_BASE_PYTHON_ARM64 was built but python3 does not run in it"
  [ "$got" = aarch64 ] || die "python3 in $IMAGEBUILD_BASE_PYTHON_ARM64 runs as $got, not aarch64"
fi
