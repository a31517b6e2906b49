#!/usr/bin/env bash
# Starts the standalone BuildKit daemon the `builder` tests use, if it is not already answering:
# buildkitd (scripts/build-buildkit.sh) on the host as root (privileged containers cannot start
# on these machines), OCI worker with the set-up's runc 1.5.1 (Debian's 1.1.5 cannot start its
# containers), host network, its own state directory; plain on $IMAGEBUILD_TEST_BUILDKIT_HOST and
# mTLS on $IMAGEBUILD_TEST_BUILDKIT_TCP. Also, once: the certificates (a CA, a server certificate
# for 127.0.0.1, a client certificate, and a client certificate of another CA), and the busybox
# and Python base images pushed to the test registry (a BuildKit daemon sees no Docker images).
# Needs the registry and Engine 20.10 of scripts/start-services.sh. Each step is checked; a
# failure prints the reason and the tail of the log.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"
state="$IMAGEBUILD_STATE_DIR"
mkdir -p "$state"
die() { echo "start-buildkitd: ERROR: $*" >&2; exit 1; }
# shellcheck source=service-lib.sh
source "$here/service-lib.sh"

bin="$IMAGEBUILD_BUILDKIT_DIR"
runc_dir="$IMAGEBUILD_DOCKER29_DIR"
[ -x "$bin/buildkitd" ] && [ -x "$bin/buildctl" ] || die "buildkitd/buildctl missing in $bin: run scripts/build-buildkit.sh"
[ -x "$runc_dir/runc" ] || die "runc missing in $runc_dir: run scripts/build-docker29.sh (buildkitd runs its runc 1.5.1)"
sock="${IMAGEBUILD_TEST_BUILDKIT_HOST#unix://}"
certs="$(dirname "$IMAGEBUILD_TEST_BUILDKIT_CA")"

# ---------------------------------------------------------------- certificates
# sign NAME CA_NAME SUBJECT [EXTENSIONS]: NAME.pem + NAME-key.pem signed by CA_NAME.pem.
sign() {
  local name="$1" ca="$2" subject="$3" ext="${4:-}"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$certs/$name-key.pem" -subj "$subject" \
    -out "$certs/$name.csr" 2>/dev/null
  openssl x509 -req -in "$certs/$name.csr" -CA "$certs/$ca.pem" -CAkey "$certs/$ca-key.pem" \
    -CAcreateserial -days 3650 -out "$certs/$name.pem" ${ext:+-extfile <(printf '%s\n' "$ext")} 2>/dev/null
  rm -f "$certs/$name.csr"
}
make_ca() {
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$2" \
    -keyout "$certs/$1-key.pem" -out "$certs/$1.pem" 2>/dev/null
}
if [ ! -s "$IMAGEBUILD_TEST_BUILDKIT_WRONG_CERT" ]; then
  command -v openssl >/dev/null || die "openssl missing: run scripts/install-system.sh"
  rm -rf "$certs" && mkdir -p "$certs"
  make_ca ca "imagebuild test buildkit CA"
  make_ca wrong-ca "imagebuild unrelated CA"
  sign server ca "/CN=127.0.0.1" "subjectAltName=IP:127.0.0.1,DNS:localhost
extendedKeyUsage=serverAuth"
  sign client ca "/CN=imagebuild-client" "extendedKeyUsage=clientAuth"
  sign wrong-client wrong-ca "/CN=imagebuild-wrong-client" "extendedKeyUsage=clientAuth"
  echo "start-buildkitd: made the test certificates in $certs"
fi

# ---------------------------------------------------------------- base images in the registry
# A BuildKit daemon sees no Docker daemon's images: the tests' bases must be in the registry.
# Pushed again when the registry lost them or the local image changed (its id is the tag's label).
push_base() {
  local src="$1" dst="$2" id
  id="$(/usr/bin/docker image inspect -f '{{.Id}}' "$src" 2>/dev/null)" \
    || die "base image $src missing on Engine 20.10: run scripts/make-base-images.sh"
  local marker code repo="${dst#*/}"
  marker="$state/registry/pushed-$(echo "$dst" | tr '/:' '__')"
  code="$(curl -s -o /dev/null -w '%{http_code}' -I -u "$IMAGEBUILD_TEST_REGISTRY_USER:$IMAGEBUILD_TEST_REGISTRY_PASSWORD" \
    -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    "http://$IMAGEBUILD_TEST_REGISTRY/v2/${repo%:*}/manifests/${dst##*:}")"
  if [ "$code" = 200 ] && [ "$(cat "$marker" 2>/dev/null)" = "$id" ]; then
    return 0
  fi
  local cfg
  cfg="$(mktemp -d)"
  /usr/bin/docker tag "$src" "$dst"
  printf '%s' "$IMAGEBUILD_TEST_REGISTRY_PASSWORD" | DOCKER_CONFIG="$cfg" /usr/bin/docker login \
    -u "$IMAGEBUILD_TEST_REGISTRY_USER" --password-stdin "$IMAGEBUILD_TEST_REGISTRY" >/dev/null 2>&1 \
    || { rm -rf "$cfg"; die "docker login to $IMAGEBUILD_TEST_REGISTRY failed"; }
  DOCKER_CONFIG="$cfg" /usr/bin/docker push -q "$dst" >/dev/null || { rm -rf "$cfg"; die "docker push $dst failed"; }
  rm -rf "$cfg"
  echo "$id" >"$marker"
  echo "start-buildkitd: pushed $src to the registry as $dst"
}
push_base "$IMAGEBUILD_BASE_BUSYBOX" "$IMAGEBUILD_BASE_BUSYBOX_REGISTRY"
push_base "$IMAGEBUILD_BASE_PYTHON" "$IMAGEBUILD_BASE_PYTHON_REGISTRY"

# ---------------------------------------------------------------- buildkitd
bk_up() { timeout 10 "$bin/buildctl" --addr "$IMAGEBUILD_TEST_BUILDKIT_HOST" debug workers >/dev/null 2>&1; }
if bk_up; then
  echo "start-buildkitd: buildkitd already running on $IMAGEBUILD_TEST_BUILDKIT_HOST"
else
  conf="$state/buildkitd.toml"
  cat >"$conf" <<TOML
# Written by scripts/start-buildkitd.sh: the test registry speaks plain HTTP on loopback.
[registry."$IMAGEBUILD_TEST_REGISTRY"]
  http = true
  insecure = true
TOML
  log="$state/buildkitd.log"
  rm -f "$sock"
  echo "start-buildkitd: starting buildkitd $IMAGEBUILD_BUILDKIT_VERSION (log $log)"
  pid="$(start_bg buildkitd "$log" env "PATH=$runc_dir:$PATH" "$bin/buildkitd" --config "$conf" \
    --root "$state/buildkitd" --addr "$IMAGEBUILD_TEST_BUILDKIT_HOST" --addr "$IMAGEBUILD_TEST_BUILDKIT_TCP" \
    --tlscacert "$IMAGEBUILD_TEST_BUILDKIT_CA" --tlscert "$certs/server.pem" --tlskey "$certs/server-key.pem" \
    --oci-worker=true --containerd-worker=false --oci-worker-net=host --oci-worker-binary "$runc_dir/runc")"
  wait_for 60 buildkitd "$log" "$pid" bk_up
fi

# A RUN step over mTLS, as the tests build: proves runc, the network mode, the registry and TLS.
check="$(mktemp -d)"
trap 'rm -rf "$check"' EXIT
printf 'FROM %s\nRUN echo start-buildkitd-check %s\n' "$IMAGEBUILD_BASE_BUSYBOX_REGISTRY" "$(date +%s%N)" >"$check/Dockerfile"
mkdir -p "$check/docker"
printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$IMAGEBUILD_TEST_REGISTRY" \
  "$(printf '%s:%s' "$IMAGEBUILD_TEST_REGISTRY_USER" "$IMAGEBUILD_TEST_REGISTRY_PASSWORD" | base64 -w0)" >"$check/docker/config.json"
DOCKER_CONFIG="$check/docker" timeout 120 "$bin/buildctl" --addr "$IMAGEBUILD_TEST_BUILDKIT_TCP" \
  --tlscacert "$IMAGEBUILD_TEST_BUILDKIT_CA" --tlscert "$IMAGEBUILD_TEST_BUILDKIT_CERT" --tlskey "$IMAGEBUILD_TEST_BUILDKIT_KEY" \
  build --frontend dockerfile.v0 --local context="$check" --local dockerfile="$check" >"$check/out" 2>&1 \
  || { tail -n 20 "$check/out" >&2; tail_log "$state/buildkitd.log"; die "a RUN step on buildkitd over mTLS failed"; }
echo "start-buildkitd: a RUN step works on buildkitd (unix socket and mTLS on ${IMAGEBUILD_TEST_BUILDKIT_TCP#tcp://})"
