#!/usr/bin/env bash
# Stops the services that scripts/start-services.sh started (by the pids it recorded, nothing else).
# Idempotent: a service that is not running, or was not started by us, is left alone.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"
state="$IMAGEBUILD_STATE_DIR"

# stop NAME EXPECTED_COMMAND_SUBSTRING
stop() {
  local name="$1" expect="$2" pidfile="$state/$1.pid" pid
  if [ ! -f "$pidfile" ]; then
    echo "stop-services: $name: not started by start-services.sh (no $pidfile)"
    return 0
  fi
  pid="$(cat "$pidfile")"
  # A recycled pid must not get killed: check it is still the process we started.
  if ! kill -0 "$pid" 2>/dev/null || ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$expect"; then
    echo "stop-services: $name: not running"
    rm -f "$pidfile"
    return 0
  fi
  echo "stop-services: stopping $name (pid $pid)"
  kill -TERM "$pid"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || { rm -f "$pidfile"; echo "stop-services: $name stopped"; return 0; }
    sleep 0.2
  done
  echo "stop-services: $name did not stop after 20s; sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$pidfile"
}

stop moto moto_server
stop registry docker-registry
if [ "${1:-}" = "--keep-docker" ]; then
  echo "stop-services: leaving dockerd running (--keep-docker)"
else
  stop dockerd dockerd
fi
