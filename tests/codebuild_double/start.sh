#!/usr/bin/env bash
# Start the CodeBuild test double in the background and wait until it answers.
#   tests/codebuild_double/start.sh         start (no-op if already answering)
#   tests/codebuild_double/start.sh stop    stop the one this script started
# Settings (see README.md): IMAGEBUILD_DOUBLE_PORT (5060), IMAGEBUILD_DOUBLE_STATE_DIR,
# IMAGEBUILD_TEST_MOTO_ENDPOINT, IMAGEBUILD_TEST_REGISTRY_USER/PASSWORD, IMAGEBUILD_DOUBLE_PYTHON.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
port=${IMAGEBUILD_DOUBLE_PORT:-5060}
state=${IMAGEBUILD_DOUBLE_STATE_DIR:-/tmp/codebuild-double}
pidfile="$state/server.pid"
url="http://127.0.0.1:$port/__double/health"

if [ "${1:-}" = "stop" ]; then
  if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; rm -f "$pidfile"; fi
  exit 0
fi

python=${IMAGEBUILD_DOUBLE_PYTHON:-$repo/.venv/bin/python}
if [ ! -x "$python" ] || ! "$python" -c 'import boto3, yaml' 2>/dev/null; then
  echo "codebuild double: no Python with boto3 and PyYAML at $python (set IMAGEBUILD_DOUBLE_PYTHON or run scripts/setup-python.sh)" >&2
  exit 1
fi

# A double started from another checkout (its shims run that checkout's Python, which may be
# gone) is replaced, not reused.
owner="$python $here/server.py"
if curl -fsS "$url" >/dev/null 2>&1; then
  if [ "$(cat "$state/owner" 2>/dev/null)" = "$owner" ]; then
    echo "codebuild double already answering on 127.0.0.1:$port"
    exit 0
  fi
  echo "codebuild double on 127.0.0.1:$port belongs to another checkout: restarting it"
  if [ -f "$pidfile" ]; then kill "$(cat "$pidfile")" 2>/dev/null || true; rm -f "$pidfile"; fi
  for _ in $(seq 1 50); do curl -fsS "$url" >/dev/null 2>&1 || break; sleep 0.1; done
  if curl -fsS "$url" >/dev/null 2>&1; then
    echo "codebuild double: port $port is held by a process this script did not start; stop it" >&2
    exit 1
  fi
fi

mkdir -p "$state"
export IMAGEBUILD_DOUBLE_REGISTRY_USER=${IMAGEBUILD_DOUBLE_REGISTRY_USER:-${IMAGEBUILD_TEST_REGISTRY_USER:-}}
export IMAGEBUILD_DOUBLE_REGISTRY_PASSWORD=${IMAGEBUILD_DOUBLE_REGISTRY_PASSWORD:-${IMAGEBUILD_TEST_REGISTRY_PASSWORD:-}}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-testing} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-testing}
nohup "$python" "$here/server.py" --port "$port" --state-dir "$state" >"$state/server.log" 2>&1 &
echo $! >"$pidfile"
echo "$owner" >"$state/owner"
for _ in $(seq 1 100); do
  if curl -fsS "$url" >/dev/null 2>&1; then
    echo "codebuild double on 127.0.0.1:$port (pid $(cat "$pidfile"), log $state/server.log)"
    exit 0
  fi
  if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then break; fi
  sleep 0.1
done
echo "codebuild double failed to start; its log:" >&2
cat "$state/server.log" >&2
exit 1
