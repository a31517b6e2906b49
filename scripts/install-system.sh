#!/usr/bin/env bash
# Installs the Debian packages the tests and the demo need (idempotent, quick when done).
set -euo pipefail
need=()
# openssh-client: ssh-agent, ssh-keygen, ssh-add for the SSH forwarding tests; iproute2: `ss` for
# the connection-leak test and Engine 29's bridge; gcc, libc6-dev, pkg-config, file:
# scripts/build-docker29.sh (static runc with libseccomp); qemu-user-static: linux/arm64 RUN steps
# (scripts/enable-emulation.sh); xz-utils: the arm64 package index; shellcheck: `make lint` (and
# actionlint's checks of the workflows' run: scripts).
for pkg in docker.io docker-registry apache2-utils busybox-static debootstrap protobuf-compiler cmake jq zip unzip curl \
  openssh-client iproute2 gcc libc6-dev pkg-config file qemu-user-static xz-utils shellcheck; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "install-system: apt installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
