#!/usr/bin/env bash
# Creates <repo>/.venv with the pinned test/demo packages (scripts/requirements-dev.txt).
# Idempotent: a stamp records the requirements hash and Python version; a matching stamp skips pip.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
venv="$root/.venv"
reqs="$here/requirements-dev.txt"
stamp="$venv/.imagebuild-requirements.sha256"
python="${IMAGEBUILD_PYTHON:-python3}"

die() { echo "setup-python: ERROR: $*" >&2; exit 1; }

command -v "$python" >/dev/null || die "no '$python' on PATH (set IMAGEBUILD_PYTHON to a Python >= 3.9)"
"$python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 9) else 1)' \
  || die "$("$python" --version 2>&1) is too old: Pulumi's Python SDK needs Python >= 3.9"

if [ ! -x "$venv/bin/python" ]; then
  echo "setup-python: creating virtualenv $venv with $("$python" --version 2>&1)"
  if ! "$python" -m venv "$venv" 2>/tmp/imagebuild-venv.err; then
    # Debian's own python3 ships venv/ensurepip separately.
    if grep -qi ensurepip /tmp/imagebuild-venv.err && [ "$(command -v "$python")" = /usr/bin/python3 ]; then
      echo "setup-python: apt installing python3-venv (needed by Debian's python3 for venv)"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
      rm -rf "$venv"
      "$python" -m venv "$venv" || die "could not create $venv"
    else
      cat /tmp/imagebuild-venv.err >&2
      die "could not create $venv with $python"
    fi
  fi
fi

want="$( (sha256sum "$reqs" | cut -d' ' -f1; "$venv/bin/python" --version 2>&1) | sha256sum | cut -d' ' -f1)"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] \
   && "$venv/bin/python" -c 'import importlib.util as u, sys; sys.exit(any(u.find_spec(m) is None for m in ("pulumi", "moto", "boto3", "pytest")))' 2>/dev/null; then
  echo "setup-python: $venv up to date"
  exit 0
fi

echo "setup-python: pip installing $(grep -cv '^\s*\(#\|$\)' "$reqs") pinned packages into $venv"
"$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$reqs" \
  || die "pip install -r $reqs failed (is PyPI reachable?)"
"$venv/bin/python" -c 'import pulumi, moto, boto3, pytest' \
  || die "packages installed but do not import in $venv"
[ -x "$venv/bin/moto_server" ] || die "moto_server missing from $venv/bin (moto[server] extra not installed?)"
echo "$want" >"$stamp"
echo "setup-python: $venv ready ($("$venv/bin/python" -c 'import importlib.metadata as m; print("pulumi", m.version("pulumi"), "moto", m.version("moto"))'))"
