#!/usr/bin/env bash
# Starts the test services if they are not already answering:
#   dockerd (Debian docker.io), an OCI registry with htpasswd auth on 127.0.0.1:5000,
#   and moto_server (S3/ECR/Logs mocks) on 127.0.0.1:5050.
# Each one is waited for; a failure prints the reason and the tail of its log.
# State (logs, pid files, registry storage) lives under $IMAGEBUILD_STATE_DIR, outside the repo.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"

state="$IMAGEBUILD_STATE_DIR"
mkdir -p "$state"
docker_bin=/usr/bin/docker

die() { echo "start-services: ERROR: $*" >&2; exit 1; }

# tail_log FILE: shows why a service did not come up.
tail_log() { [ -f "$1" ] && { echo "--- last lines of $1 ---" >&2; tail -n 25 "$1" >&2; }; return 0; }

# wait_for SECONDS DESCRIPTION LOG PID CMD...: polls CMD until it succeeds; dies if PID exits first.
wait_for() {
  local secs="$1" what="$2" log="$3" pid="$4"; shift 4
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      tail_log "$log"; die "$what exited during start-up (log: $log)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
      tail_log "$log"; die "$what did not answer within ${secs}s (log: $log)"
    fi
    sleep 0.3
  done
}

# start_bg NAME LOG CMD...: starts CMD in its own session (it outlives this script and the
# caller's terminal) and prints its pid. The pid is written by the process itself because setsid
# forks when its caller leads a process group, which would make $! the wrong pid.
start_bg() {
  local name="$1" log="$2" pidfile="$state/$1.pid"; shift 2
  rm -f "$pidfile"
  # shellcheck disable=SC2016
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" >>"$log" 2>&1 </dev/null &
  for _ in $(seq 1 50); do
    [ -s "$pidfile" ] && { cat "$pidfile"; return 0; }
    sleep 0.1
  done
  die "$name did not start (no pid written to $pidfile; log: $log)"
}

# ---------------------------------------------------------------- dockerd
docker_up() { timeout 10 "$docker_bin" info >/dev/null 2>&1; }
[ -x "$docker_bin" ] || die "$docker_bin missing: run scripts/install-system.sh (Debian docker.io)"
if docker_up; then
  echo "start-services: dockerd already running"
else
  command -v dockerd >/dev/null || die "dockerd missing: run scripts/install-system.sh (Debian docker.io)"
  log="$state/dockerd.log"
  echo "start-services: starting dockerd (log $log)"
  pid="$(start_bg dockerd "$log" dockerd --host unix:///var/run/docker.sock)"
  wait_for 90 dockerd "$log" "$pid" docker_up
  echo "start-services: dockerd ready ($("$docker_bin" version --format '{{.Server.Version}}'))"
fi
# A second daemon started and stopped on this machine (seen here) can delete docker0 under the
# running one; every RUN step then fails with "could not find bridge docker0". Put it back.
if ! ip link show docker0 >/dev/null 2>&1; then
  subnet="$("$docker_bin" network inspect bridge --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}')"
  echo "start-services: docker0 bridge missing: recreating it (${subnet:-172.17.0.1}/16)"
  ip link add docker0 type bridge
  ip addr add "${subnet:-172.17.0.1}/16" dev docker0
  ip link set docker0 up
fi

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
