#!/usr/bin/env bash
# Smoke-tests the built Pulumi toolchain (a few seconds): `pulumi version`, a Python program's
# stack init / up / outputs / destroy against a file backend, and `pulumi package gen-sdk` for
# Python (which goes through the language host's GeneratePackage). Leaves nothing behind.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$here/env.sh"

die() { echo "check-pulumi: ERROR: $*" >&2; exit 1; }

[ "$(command -v pulumi)" = "$IMAGEBUILD_PULUMI_DIR/pulumi" ] || die "pulumi on PATH is '$(command -v pulumi || true)', expected $IMAGEBUILD_PULUMI_DIR/pulumi (run scripts/build-pulumi.sh)"
[ -x "$IMAGEBUILD_VENV/bin/python" ] || die "no venv at $IMAGEBUILD_VENV (run scripts/setup-python.sh)"
got="$(pulumi version)"
[ "$got" = "v$IMAGEBUILD_PULUMI_VERSION" ] || die "pulumi version is '$got', expected v$IMAGEBUILD_PULUMI_VERSION"

work="$(mktemp -d "${TMPDIR:-/tmp}/imagebuild-check-pulumi.XXXXXX")"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/state" "$work/home" "$work/proj"
export PULUMI_HOME="$work/home" PULUMI_BACKEND_URL="file://$work/state" PULUMI_CONFIG_PASSPHRASE=""
log="$work/log"
run() { "$@" >>"$log" 2>&1 || { tail -n 40 "$log" >&2; die "'$*' failed"; }; }

cd "$work/proj"
cat >Pulumi.yaml <<YAML
name: imagebuild-smoke
runtime:
  name: python
  options:
    virtualenv: $IMAGEBUILD_VENV
YAML
cat >__main__.py <<'PY'
import pulumi
pulumi.export("greeting", "hello " + pulumi.get_stack())
pulumi.export("pw", pulumi.Config().require_secret("pw"))
PY
run pulumi stack init smoke
run pulumi config set --secret pw s3cret
run pulumi up --yes --skip-preview
[ "$(pulumi stack output greeting)" = "hello smoke" ] || die "stack output 'greeting' is wrong"
[ "$(pulumi stack output pw --show-secrets)" = "s3cret" ] || die "secret stack output 'pw' is wrong"
run pulumi preview --expect-no-changes
run pulumi destroy --yes
echo "check-pulumi: python program up/preview/destroy OK"

cat >"$work/schema.json" <<'JSON'
{"name": "smoke", "version": "0.0.1",
 "resources": {"smoke:index:Thing": {"inputProperties": {"size": {"type": "integer"}},
   "properties": {"size": {"type": "integer"}}}},
 "language": {"python": {"respectSchemaVersion": true, "pyproject": {"enabled": true}}}}
JSON
run pulumi package gen-sdk "$work/schema.json" --language python -o "$work/sdk"
[ -f "$work/sdk/python/pulumi_smoke/thing.py" ] || die "gen-sdk wrote no pulumi_smoke/thing.py"
echo "check-pulumi: pulumi $got + python host OK (gen-sdk OK)"
