#!/usr/bin/env bash
# Stops the services that scripts/start-services.sh and scripts/start-buildkitd.sh started (by the pids it recorded, nothing else).
# Idempotent: a service that is not running, or was not started by us, is left alone.
#   --keep-docker  stop buildkitd, the registry and moto only (both Docker daemons keep running)
#   --engine29     stop only the second daemon (Engine 29, its containerd and its bridge)
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

# stop_engine29: Engine 29 before its containerd; its bridge is ours alone (docker0 is Engine
# 20.10's), removed once nothing answers on Engine 29's socket any more.
stop_engine29() {
  stop docker29 imagebuild-docker29.sock
  stop docker29-containerd docker29/containerd.toml
  if ip link show ib29br0 >/dev/null 2>&1 \
     && ! curl -s -m 3 -o /dev/null --unix-socket "${IMAGEBUILD_TEST_DOCKER29_HOST#unix://}" http://engine29/_ping; then
    ip link del ib29br0 && echo "stop-services: removed Engine 29's bridge ib29br0"
  fi
}

case "${1:-}" in
  --engine29)
    # Only the second daemon: Engine 20.10, the registry and moto keep serving the others' tests.
    stop_engine29 ;;
  --keep-docker)
    stop buildkitd buildkitd
    stop moto moto_server
    stop registry docker-registry
    echo "stop-services: leaving both Docker daemons running (--keep-docker)" ;;
  "")
    stop buildkitd buildkitd
    stop moto moto_server
    stop registry docker-registry
    stop_engine29
    stop dockerd dockerd ;;
  *) echo "stop-services: ERROR: unknown argument '$1' (usage: stop-services.sh [--keep-docker | --engine29])" >&2; exit 1 ;;
esac
