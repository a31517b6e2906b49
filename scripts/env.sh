# shellcheck shell=bash
# Environment for imagebuild's tests, demo and tooling. Source it: `source scripts/env.sh`.
# No `set -euo pipefail` here on purpose: this file runs inside the caller's shell, and those
# options would outlive it (an interactive shell would exit on the first failing command).

_imagebuild_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export IMAGEBUILD_ROOT="$_imagebuild_root"

# Tools built or cached by scripts/setup.sh live outside the repo so a fresh clone reuses them.
export IMAGEBUILD_TOOLS_DIR="${IMAGEBUILD_TOOLS_DIR:-$HOME/.cache/imagebuild-tools}"
# Service state (registry storage, daemon logs, pid files), also outside the repo.
export IMAGEBUILD_STATE_DIR="${IMAGEBUILD_STATE_DIR:-$HOME/.cache/imagebuild-state}"

export IMAGEBUILD_PULUMI_VERSION="3.274.1"
export IMAGEBUILD_PULUMI_DIR="$IMAGEBUILD_TOOLS_DIR/pulumi-v$IMAGEBUILD_PULUMI_VERSION"
export IMAGEBUILD_VENV="$_imagebuild_root/.venv"
# Docker Engine 29 (moby v2.0.0-beta.24), built by scripts/build-docker29.sh, run as a second daemon.
export IMAGEBUILD_DOCKER29_VERSION="29.8.0"
export IMAGEBUILD_DOCKER29_DIR="$IMAGEBUILD_TOOLS_DIR/docker29-$IMAGEBUILD_DOCKER29_VERSION"
# docker buildx, built by scripts/build-buildx.sh; only the CodeBuild double's opted-in builds use it.
export IMAGEBUILD_BUILDX_VERSION="v0.38.2"
export IMAGEBUILD_BUILDX_DIR="$IMAGEBUILD_TOOLS_DIR/buildx-$IMAGEBUILD_BUILDX_VERSION"
# BuildKit (buildkitd, buildctl), built by scripts/build-buildkit.sh; the standalone builder of the
# `builder_buildkit*` suites and the e2e builder test (scripts/start-buildkitd.sh starts it).
export IMAGEBUILD_BUILDKIT_VERSION="v0.31.1"
export IMAGEBUILD_BUILDKIT_DIR="$IMAGEBUILD_TOOLS_DIR/buildkit-$IMAGEBUILD_BUILDKIT_VERSION"
# actionlint (GitHub Actions workflow linter), built by scripts/build-actionlint.sh; `make lint` runs it.
export IMAGEBUILD_ACTIONLINT_VERSION="v1.7.12"
export IMAGEBUILD_ACTIONLINT_DIR="$IMAGEBUILD_TOOLS_DIR/actionlint-$IMAGEBUILD_ACTIONLINT_VERSION"
# Wheels fetched once by scripts/wheelhouses.sh: the SDK's run-time dependencies (a fresh venv
# installs the SDK wheel offline in the plugin-download e2e test) and examples/monorepo's pins.
export IMAGEBUILD_SDK_WHEELHOUSE="$IMAGEBUILD_TOOLS_DIR/sdk-wheelhouse"
export IMAGEBUILD_EXAMPLE_WHEELHOUSE="$IMAGEBUILD_TOOLS_DIR/example-wheelhouse"

case ":$PATH:" in
  *":$IMAGEBUILD_PULUMI_DIR:"*) ;;
  *) PATH="$IMAGEBUILD_PULUMI_DIR:$PATH" ;;
esac
case ":$PATH:" in
  *":$IMAGEBUILD_VENV/bin:"*) ;;
  *) PATH="$IMAGEBUILD_VENV/bin:$PATH" ;;
esac
export PATH

# Pulumi must never try to reach the internet from here.
export PULUMI_SKIP_UPDATE_CHECK=true
export PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION=true

# Debian's docker client (20.10) does BuildKit builds without buildx; /usr/local/bin/docker does not.
export IMAGEBUILD_DOCKER=/usr/bin/docker

# Test services started by scripts/start-services.sh (fixed, test-only credentials).
export IMAGEBUILD_TEST_REGISTRY="127.0.0.1:5000"
export IMAGEBUILD_TEST_REGISTRY_USER="imagebuild"
export IMAGEBUILD_TEST_REGISTRY_PASSWORD="imagebuild-test-password"
export IMAGEBUILD_TEST_MOTO_ENDPOINT="http://127.0.0.1:5050"
export IMAGEBUILD_TEST_CODEBUILD_ENDPOINT="http://127.0.0.1:5060"
# The second daemon (Engine 29, containerd image store); the default one stays Engine 20.10.
# `make rust-test-engine29` runs the local engine suites with DOCKER_HOST set to it.
export IMAGEBUILD_TEST_DOCKER29_HOST="unix:///var/run/imagebuild-docker29.sock"
# The standalone BuildKit daemon: plain on its unix socket, mTLS on loopback TCP (certificates
# made by scripts/start-buildkitd.sh; the "wrong" client certificate is signed by another CA).
export IMAGEBUILD_TEST_BUILDKIT_HOST="unix:///var/run/imagebuild-buildkitd.sock"
export IMAGEBUILD_TEST_BUILDKIT_TCP="tcp://127.0.0.1:5070"
export IMAGEBUILD_TEST_BUILDKIT_CA="$IMAGEBUILD_STATE_DIR/buildkit-certs/ca.pem"
export IMAGEBUILD_TEST_BUILDKIT_CERT="$IMAGEBUILD_STATE_DIR/buildkit-certs/client.pem"
export IMAGEBUILD_TEST_BUILDKIT_KEY="$IMAGEBUILD_STATE_DIR/buildkit-certs/client-key.pem"
export IMAGEBUILD_TEST_BUILDKIT_WRONG_CERT="$IMAGEBUILD_STATE_DIR/buildkit-certs/wrong-client.pem"
export IMAGEBUILD_TEST_BUILDKIT_WRONG_KEY="$IMAGEBUILD_STATE_DIR/buildkit-certs/wrong-client-key.pem"
export IMAGEBUILD_TEST_BUILDCTL="$IMAGEBUILD_BUILDKIT_DIR/buildctl"

# Base images made locally by scripts/make-base-images.sh (nothing can be pulled); a BuildKit
# daemon sees no Docker daemon's images, so the busybox and Python ones are also in the registry.
export IMAGEBUILD_BASE_BUSYBOX_REGISTRY="$IMAGEBUILD_TEST_REGISTRY/imagebuild-base/busybox:latest"
export IMAGEBUILD_BASE_PYTHON_REGISTRY="$IMAGEBUILD_TEST_REGISTRY/imagebuild-base/python:3.11"
export IMAGEBUILD_BASE_BUSYBOX="imagebuild-base/busybox:latest"
# The same busybox for linux/arm64 (Debian's arm64 busybox-static; RUN runs under QEMU).
export IMAGEBUILD_BASE_BUSYBOX_ARM64="imagebuild-base/busybox-arm64:latest"
export IMAGEBUILD_BASE_PYTHON="imagebuild-base/python:3.11"
# The same Python rootfs for linux/arm64 (debootstrap --arch arm64 under QEMU).
export IMAGEBUILD_BASE_PYTHON_ARM64="imagebuild-base/python-arm64:3.11"

unset _imagebuild_root
