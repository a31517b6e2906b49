#!/usr/bin/env bash
# Starts the test services if they are not already answering:
#   dockerd (Debian docker.io), an OCI registry with htpasswd auth on 127.0.0.1:5000,
#   moto_server (S3/ECR/Logs mocks) on 127.0.0.1:5050, and a second Docker daemon, Engine 29
#   (scripts/build-docker29.sh) with its own containerd, on $IMAGEBUILD_TEST_DOCKER29_HOST.
# Each one is waited for; a failure prints the reason and the tail of its log.
# State (logs, pid files, registry storage) lives under $IMAGEBUILD_STATE_DIR, outside the repo.
# `--engine20-only` leaves Engine 29 out (scripts/setup.sh --engine20-first: it is still being built).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"

with_d29=true
case "${1:-}" in
  --engine20-only) with_d29=false ;;
  "") ;;
  *) echo "start-services: ERROR: unknown argument '$1' (usage: start-services.sh [--engine20-only])" >&2; exit 1 ;;
esac
state="$IMAGEBUILD_STATE_DIR"
mkdir -p "$state"
docker_bin=/usr/bin/docker

die() { echo "start-services: ERROR: $*" >&2; exit 1; }

# shellcheck source=service-lib.sh
source "$here/service-lib.sh"

# ---------------------------------------------------------------- dockerd
docker_up() { timeout 10 "$docker_bin" info >/dev/null 2>&1; }
[ -x "$docker_bin" ] || die "$docker_bin missing: run scripts/install-system.sh (Debian docker.io)"
started_daemon=false
if docker_up; then
  echo "start-services: dockerd already running"
else
  started_daemon=true
  command -v dockerd >/dev/null || die "dockerd missing: run scripts/install-system.sh (Debian docker.io)"
  log="$state/dockerd.log"
  echo "start-services: starting dockerd (log $log)"
  pid="$(start_bg dockerd "$log" dockerd --host unix:///var/run/docker.sock)"
  wait_for 300 dockerd "$log" "$pid" docker_up
  echo "start-services: dockerd ready ($("$docker_bin" version --format '{{.Server.Version}}'))"
fi
# A second daemon started and stopped on this machine (seen here) can delete docker0 under the
# running one; every RUN step then fails with "could not find bridge docker0". Put it back.
ensure_docker0() {
  ip link show docker0 >/dev/null 2>&1 && return 0
  local gw
  gw="$("$docker_bin" network inspect bridge --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}')"
  echo "start-services: docker0 bridge missing: recreating it (${gw:-172.17.0.1}/16)"
  ip link add docker0 type bridge && ip addr add "${gw:-172.17.0.1}/16" dev docker0 && ip link set docker0 up \
    || die "could not recreate docker0 (Engine 20.10's RUN steps need it)"
}
ensure_docker0

# ---------------------------------------------------------------- registry
reg_dir="$state/registry"
reg_conf="$reg_dir/config.yml"
reg_htpasswd="$reg_dir/htpasswd"
reg_url="http://$IMAGEBUILD_TEST_REGISTRY/v2/"
reg_auth_ok() {
  [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' -u "$IMAGEBUILD_TEST_REGISTRY_USER:$IMAGEBUILD_TEST_REGISTRY_PASSWORD" "$reg_url")" = 200 ]
}
reg_answers() { curl -s -m 5 -o /dev/null "$reg_url"; }

if reg_auth_ok; then
  echo "start-services: registry already running on $IMAGEBUILD_TEST_REGISTRY"
else
  if reg_answers; then
    die "something on $IMAGEBUILD_TEST_REGISTRY answers but refuses the test credentials; stop it (scripts/stop-services.sh) and rerun"
  fi
  command -v docker-registry >/dev/null || die "docker-registry missing: run scripts/install-system.sh"
  command -v htpasswd >/dev/null || die "htpasswd missing: run scripts/install-system.sh (apache2-utils)"
  mkdir -p "$reg_dir/data"
  # Regenerate the bcrypt entry each start so a changed test password always takes effect.
  htpasswd -Bbn "$IMAGEBUILD_TEST_REGISTRY_USER" "$IMAGEBUILD_TEST_REGISTRY_PASSWORD" >"$reg_htpasswd"
  cat >"$reg_conf" <<YAML
# Written by scripts/start-services.sh: test registry for imagebuild.
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $reg_dir/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
http:
  addr: $IMAGEBUILD_TEST_REGISTRY
  secret: imagebuild-test-registry-secret
  headers:
    X-Content-Type-Options: [nosniff]
auth:
  htpasswd:
    realm: imagebuild-test-registry
    path: $reg_htpasswd
YAML
  log="$state/registry.log"
  echo "start-services: starting registry on $IMAGEBUILD_TEST_REGISTRY (log $log, storage $reg_dir/data)"
  pid="$(start_bg registry "$log" docker-registry serve "$reg_conf")"
  wait_for 30 registry "$log" "$pid" reg_auth_ok
  echo "start-services: registry ready (user $IMAGEBUILD_TEST_REGISTRY_USER)"
fi

# ---------------------------------------------------------------- moto
moto_up() { [ "$(curl -s -m 5 -o /dev/null -w '%{http_code}' "$IMAGEBUILD_TEST_MOTO_ENDPOINT/moto-api/")" = 200 ]; }
if moto_up; then
  echo "start-services: moto_server already running on $IMAGEBUILD_TEST_MOTO_ENDPOINT"
else
  moto="$IMAGEBUILD_VENV/bin/moto_server"
  [ -x "$moto" ] || die "$moto missing: run scripts/setup-python.sh"
  hostport="${IMAGEBUILD_TEST_MOTO_ENDPOINT#http://}"
  log="$state/moto.log"
  echo "start-services: starting moto_server on $hostport (log $log)"
  pid="$(start_bg moto "$log" "$moto" -H "${hostport%:*}" -p "${hostport##*:}")"
  wait_for 60 moto_server "$log" "$pid" moto_up
  echo "start-services: moto_server ready"
fi

# ---------------------------------------------------------------- Docker Engine 29 (second daemon)
# Started after Engine 20.10 and checked afterwards: a second daemon on this machine has deleted
# docker0 under the first one before. Everything of its own: socket, data root, exec root,
# pidfile, containerd (root, state, socket), cgroup parent, bridge and address pool, so the two
# never share state. iptables/ip-forward/masquerade are off: the host's rules stay Engine 20.10's.
d29_host="$IMAGEBUILD_TEST_DOCKER29_HOST"
d29_bin="$IMAGEBUILD_DOCKER29_DIR"
d29_state="$state/docker29"                     # data root, containerd root, configs
d29_exec=/var/run/imagebuild-docker29           # exec root (netns, runtime state)
d29_ctd_state=/var/run/imagebuild-docker29-containerd
d29_ctd_sock="$d29_ctd_state/containerd.sock"
d29_bridge=ib29br0                              # NOT docker0
d29_bridge_cidr=10.229.0.1/24

d29_version() { timeout 10 "$docker_bin" -H "$d29_host" version --format '{{.Server.Version}}' 2>/dev/null; }
d29_up() { [ "$(d29_version)" = "$IMAGEBUILD_DOCKER29_VERSION" ]; }

# ensure_d29_bridge: the bridge `dockerd --bridge` requires to exist already, with its gateway.
ensure_d29_bridge() {
  if ! ip link show "$d29_bridge" >/dev/null 2>&1; then
    echo "start-services: creating bridge $d29_bridge ($d29_bridge_cidr) for Engine 29"
    ip link add "$d29_bridge" type bridge || die "could not create bridge $d29_bridge for Engine 29"
  fi
  ip -4 addr show dev "$d29_bridge" | grep -q "inet $d29_bridge_cidr " \
    || ip addr add "$d29_bridge_cidr" dev "$d29_bridge" || die "could not give $d29_bridge the address $d29_bridge_cidr"
  ip link set "$d29_bridge" up || die "could not bring $d29_bridge up"
}

# start_d29_containerd: its own containerd (CRI and NRI off: nothing here speaks CRI).
start_d29_containerd() {
  local conf="$d29_state/containerd.toml" log="$d29_state/containerd.log" pid
  if [ -S "$d29_ctd_sock" ] && [ -s "$state/docker29-containerd.pid" ] && kill -0 "$(cat "$state/docker29-containerd.pid")" 2>/dev/null; then
    echo "start-services: Engine 29's containerd already running"
    return 0
  fi
  mkdir -p "$d29_state/containerd" "$d29_ctd_state"
  cat >"$conf" <<TOML
# Written by scripts/start-services.sh: containerd of the Engine 29 test daemon.
version = 4
root = "$d29_state/containerd"
state = "$d29_ctd_state"
disabled_plugins = [
  "io.containerd.grpc.v1.cri",
  "io.containerd.cri.v1.images",
  "io.containerd.cri.v1.runtime",
  "io.containerd.podsandbox.controller.v1.podsandbox",
  "io.containerd.nri.v1.nri",
]

[plugins."io.containerd.server.v1.grpc"]
  address = "$d29_ctd_sock"

[plugins."io.containerd.server.v1.ttrpc"]
  address = "$d29_ctd_sock.ttrpc"

[plugins."io.containerd.internal.v1.opt"]
  path = "$d29_state/containerd/opt"

[plugins."io.containerd.image-verifier.v1.bindir"]
  bin_dir = "$d29_state/containerd/image-verifier/bin"
TOML
  local from=0
  [ -f "$log" ] && from="$(stat -c %s "$log")"
  echo "start-services: starting Engine 29's containerd (log $log)"
  pid="$(PATH="$d29_bin:$PATH" start_bg docker29-containerd "$log" "$d29_bin/containerd" --config "$conf")"
  # shellcheck disable=SC2016
  wait_for 60 "Engine 29's containerd" "$log" "$pid" \
    bash -c '[ -S "$0" ] && tail -c +"$(($1 + 1))" "$2" | grep -q "containerd successfully booted"' "$d29_ctd_sock" "$from" "$log"
}

# start_d29_dockerd: Engine 29 on its own socket; its own config file, so /etc/docker/daemon.json
# (Engine 20.10's) never applies to it. PATH puts our runc and shim first (Debian's runc 1.1.5
# cannot start its containers).
# No --default-address-pool: with one set, moby (daemon_unix.go configureNetworking) deletes the
# interface named docker0 on every start after the first, whatever --bridge says; that is how a
# second daemon took Engine 20.10's docker0 away here.
start_d29_dockerd() {
  local log="$d29_state/dockerd.log" conf="$d29_state/daemon.json" pid
  mkdir -p "$d29_state/data" "$d29_exec"
  echo '{}' >"$conf"
  echo "start-services: starting Docker Engine $IMAGEBUILD_DOCKER29_VERSION on $d29_host (log $log)"
  pid="$(PATH="$d29_bin:$PATH" start_bg docker29 "$log" "$d29_bin/dockerd" \
    --config-file "$conf" \
    --host "$d29_host" \
    --data-root "$d29_state/data" \
    --exec-root "$d29_exec" \
    --pidfile /var/run/imagebuild-docker29.pid \
    --containerd "$d29_ctd_sock" \
    --cgroup-parent imagebuild-docker29 \
    --bridge "$d29_bridge" \
    --iptables=false --ip6tables=false --ip-forward=false --ip-masq=false \
    --userland-proxy-path "$d29_bin/docker-proxy")"
  wait_for 300 "Docker Engine 29" "$log" "$pid" d29_up
}

# check_d29_store: a fresh data root gives the containerd image store; an old overlay2 one does not.
check_d29_store() {
  local driver status
  driver="$(timeout 10 "$docker_bin" -H "$d29_host" info --format '{{.Driver}}')"
  status="$(timeout 10 "$docker_bin" -H "$d29_host" info --format '{{json .DriverStatus}}')"
  [ "$driver" = overlayfs ] && [[ "$status" == *io.containerd.snapshotter.v1* ]] \
    || die "Engine 29 is not on the containerd image store (driver '$driver', $status): stop it (scripts/stop-services.sh --engine29), delete $d29_state/data and rerun"
}

if ! $with_d29; then
  echo "start-services: Engine 29 left out (--engine20-only)"
elif d29_up; then
  echo "start-services: Docker Engine $IMAGEBUILD_DOCKER29_VERSION already running on $d29_host"
else
  got="$(d29_version || true)"
  [ -z "$got" ] || die "something on $d29_host answers as Docker $got, not $IMAGEBUILD_DOCKER29_VERSION; stop it (scripts/stop-services.sh --engine29) and rerun"
  for b in dockerd docker-proxy containerd containerd-shim-runc-v2 runc; do
    [ -x "$d29_bin/$b" ] || die "$d29_bin/$b missing: run scripts/build-docker29.sh"
  done
  started_daemon=true
  ensure_d29_bridge
  start_d29_containerd
  start_d29_dockerd
  echo "start-services: Docker Engine $(d29_version) ready on $d29_host"
  if ! ip link show docker0 >/dev/null 2>&1; then
    ensure_docker0
    die "starting Engine 29 deleted Engine 20.10's docker0 (recreated it; check Engine 29's flags, log: $d29_state/dockerd.log)"
  fi
fi
if $with_d29; then check_d29_store; fi

# ---------------------------------------------------------------- checks after start
# run_check NAME HOST DAEMON_LOG: a BuildKit RUN step really runs on that daemon (no cache: a fresh nonce),
# FROM scratch with the static busybox, so no base image is needed yet.
run_check() {
  local what="$1" host="$2" dir nonce
  dir="$(mktemp -d "${TMPDIR:-/tmp}/imagebuild-runcheck.XXXXXX")"
  nonce="$$-$RANDOM$RANDOM"
  cp /bin/busybox "$dir/busybox"
  printf '%s\n' 'FROM scratch' 'COPY busybox /bin/busybox' 'ARG NONCE' \
    'RUN ["/bin/busybox", "sh", "-c", "echo ran-$NONCE >/ran"]' >"$dir/Dockerfile"
  if ! DOCKER_BUILDKIT=1 timeout 180 "$docker_bin" -H "$host" build --build-arg "NONCE=$nonce" \
      --output "type=local,dest=$dir/out" "$dir" >"$dir/build.log" 2>&1 \
     || [ "$(cat "$dir/out/ran" 2>/dev/null)" != "ran-$nonce" ]; then
    tail -n 20 "$dir/build.log" >&2
    rm -rf "$dir"
    die "a RUN step does not work on $what ($host; daemon log: $3)"
  fi
  rm -rf "$dir"
  echo "start-services: a RUN step works on $what"
}
ensure_docker0
if $started_daemon; then
  [ -x /bin/busybox ] || die "/bin/busybox missing: run scripts/install-system.sh (busybox-static)"
  run_check "Engine 20.10" unix:///var/run/docker.sock "$state/dockerd.log"
  if $with_d29; then
    run_check "Engine 29" "$d29_host" "$d29_state/dockerd.log"
    # The check itself ran containers on both daemons: docker0 must still be there afterwards.
    ip link show docker0 >/dev/null 2>&1 || die "docker0 vanished while Engine 29 ran its RUN check (log: $d29_state/dockerd.log)"
  fi
fi

# Test builds leave BuildKit cache behind (seen here: 18k records, 12 GB after a few days), and
# dockerd loads every record at start: past ~10 GB its start took over 90 s. Trim what no build
# used for a day, in the background (15 min for 8 GB here), so set-up does not wait. `until`
# compares a record's last use, so a running test's fresh cache is never touched.
trim_build_cache() {
  local host="$1" log="$2"
  # flock -n: one trim per daemon at a time, however often set-up runs.
  setsid flock -n "$log.lock" "$docker_bin" -H "$host" builder prune -f --filter until=24h \
    >>"$log" 2>&1 </dev/null &
  echo "start-services: trimming build cache unused for 24 h on $host in the background (log $log)"
}
trim_build_cache unix:///var/run/docker.sock "$state/build-cache-trim.log"
if $with_d29; then trim_build_cache "$d29_host" "$state/build-cache-trim-engine29.log"; fi
