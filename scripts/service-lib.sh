# Helpers of the scripts that start test services (start-services.sh, start-buildkitd.sh): sourced,
# with `state` (the state directory) and a `die` function defined by the caller.
# shellcheck shell=bash
: "${state:?service-lib.sh needs state (the state directory) set by its caller}"

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

