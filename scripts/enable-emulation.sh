#!/usr/bin/env bash
# Lets this machine run linux/arm64 binaries (RUN steps of `platform: linux/arm64` builds) under
# QEMU: mounts binfmt_misc and registers Debian's qemu-user-static handler for aarch64 from
# /usr/lib/binfmt.d (flags POF: F opens the interpreter now, so it works inside containers'
# mount namespaces too). Idempotent; machine-wide, as `docker run --privileged tonistiigi/binfmt`
# would be elsewhere.
set -euo pipefail
die() { echo "enable-emulation: ERROR: $*" >&2; exit 1; }

binfmt=/proc/sys/fs/binfmt_misc
conf=/usr/lib/binfmt.d/qemu-aarch64.conf
[ -f "$conf" ] || die "$conf missing: run scripts/install-system.sh (qemu-user-static)"
if [ ! -e "$binfmt/register" ]; then
  grep -qw binfmt_misc /proc/filesystems || die "the kernel has no binfmt_misc: linux/arm64 builds cannot run RUN steps here"
  mount -t binfmt_misc binfmt_misc "$binfmt" || die "could not mount binfmt_misc on $binfmt (needs root)"
fi
[ "$(cat "$binfmt/status")" = enabled ] || echo 1 >"$binfmt/status"
if [ -e "$binfmt/qemu-aarch64" ]; then
  echo "enable-emulation: qemu-aarch64 already registered ($(sed -n 's/^interpreter //p' "$binfmt/qemu-aarch64"))"
else
  tr -d '\n' <"$conf" >"$binfmt/register" || die "could not register $conf with binfmt_misc"
  echo "enable-emulation: registered qemu-aarch64 with binfmt_misc"
fi
# scripts/make-base-images.sh proves it: the arm64 busybox it unpacks must say aarch64.
