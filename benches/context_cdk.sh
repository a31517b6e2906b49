#!/bin/sh
# AWS CDK's FileSystem.fingerprint as the bench's reference point.
#   context_cdk.sh install          install aws-cdk-lib (npm) outside the repo
#   context_cdk.sh fingerprint DIR  print {"fingerprint":..,"seconds":..} for DIR,
#                                   with DIR/.dockerignore lines as `exclude`
#                                   and IgnoreMode.DOCKER (timed in-process)
set -eu
TOOLS="${IMAGEBUILD_CDK_DIR:-${HOME}/.cache/imagebuild-tools/cdk}"
case "${1:-}" in
install)
    if [ ! -d "$TOOLS/node_modules/aws-cdk-lib" ]; then
        mkdir -p "$TOOLS"
        cd "$TOOLS"
        [ -f package.json ] || echo '{"name":"imagebuild-bench-cdk","private":true}' > package.json
        npm install --no-audit --no-fund --loglevel=error aws-cdk-lib constructs >&2
    fi
    ;;
fingerprint)
    NODE_PATH="$TOOLS/node_modules" exec node -e '
const fs = require("fs");
const path = require("path");
const { FileSystem, IgnoreMode } = require("aws-cdk-lib");
const dir = process.argv[1];
let exclude = [];
try {
  exclude = fs.readFileSync(path.join(dir, ".dockerignore"), "utf8")
    .split(/\r?\n/).filter((l) => l.trim() !== "" && !l.startsWith("#"));
} catch (e) {}
const t0 = process.hrtime.bigint();
const fingerprint = FileSystem.fingerprint(dir, { exclude, ignoreMode: IgnoreMode.DOCKER });
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
const version = require("aws-cdk-lib/package.json").version;
console.log(JSON.stringify({ fingerprint, seconds, version }));
' "$2"
    ;;
*)
    echo "usage: $0 install | fingerprint DIR" >&2
    exit 2
    ;;
esac
