"""Writes the `aws` and `docker` shims that builds in the double find first on PATH.

Why: moto's ECR has no registry endpoint, so images go to the local registry instead.
`aws ecr get-login-password` prints the local registry's password and `docker login
--username AWS` logs in as the local registry's user; `aws s3 cp` talks to moto's S3.
Everything else in the buildspec runs unchanged against the real Docker engine.
"""

import os
import stat
import sys

AWS_SHIM = r'''#!{python}
"""aws CLI shim of the CodeBuild double: s3 cp against moto, ecr get-login-password."""
import os
import shutil
import sys

import boto3

VALUED = {{"--region", "--endpoint-url", "--profile", "--output"}}
FLAGS = {{"--quiet", "--no-progress", "--only-show-errors", "--no-sign-request"}}


def fail(msg):
    print(f"aws (codebuild double shim): {{msg}}", file=sys.stderr)
    sys.exit(2)


def split_s3(uri):
    rest = uri[len("s3://"):]
    bucket, _, key = rest.partition("/")
    if not bucket or not key:
        fail(f"not an s3://bucket/key URI: {{uri}}")
    return bucket, key


def main():
    args, region, i = [], os.environ.get("AWS_REGION", "us-east-1"), 1
    argv = sys.argv
    quiet = "--quiet" in argv or "--only-show-errors" in argv
    while i < len(argv):
        a = argv[i]
        if a in VALUED and i + 1 < len(argv):
            if a == "--region":
                region = argv[i + 1]
            i += 2
            continue
        if a in FLAGS:
            i += 1
            continue
        args.append(a)
        i += 1
    if args[:2] == ["ecr", "get-login-password"]:
        password = os.environ.get("IMAGEBUILD_DOUBLE_REGISTRY_PASSWORD")
        if password is None:
            fail("IMAGEBUILD_DOUBLE_REGISTRY_PASSWORD is not set in the double's environment")
        print(password)
        return
    if args[:2] == ["s3", "cp"] and len(args) == 4:
        s3 = boto3.client("s3", region_name=region, endpoint_url=os.environ["AWS_ENDPOINT_URL"])
        src, dst = args[2], args[3]
        if src.startswith("s3://") and not dst.startswith("s3://"):
            bucket, key = split_s3(src)
            try:
                body = s3.get_object(Bucket=bucket, Key=key)["Body"]
            except Exception as e:
                fail(f"download failed: An error occurred ({{e}}) when calling GetObject for {{src}}")
            out = sys.stdout.buffer if dst == "-" else open(dst, "wb")
            shutil.copyfileobj(body, out, 1 << 20)
            out.flush()
            if dst != "-":
                out.close()
                if not quiet:
                    print(f"download: {{src}} to {{dst}}")
            return
        if dst.startswith("s3://") and not src.startswith("s3://"):
            bucket, key = split_s3(dst)
            s3.upload_file(src, bucket, key)
            if not quiet:
                print(f"upload: {{src}} to {{dst}}")
            return
    fail("unsupported command: aws " + " ".join(args))


main()
'''

DOCKER_SHIM = r'''#!{python}
"""docker shim of the CodeBuild double: maps the ECR login user to the local registry user."""
import os
import sys

REAL = {docker!r}
args = sys.argv[1:]
user = os.environ.get("IMAGEBUILD_DOUBLE_REGISTRY_USER")
if args and args[0] == "login" and user:
    out = []
    i = 0
    while i < len(args):
        a = args[i]
        if a in ("-u", "--username") and i + 1 < len(args) and args[i + 1] == "AWS":
            out += [a, user]
            i += 2
            continue
        if a == "--username=AWS":
            a = "--username=" + user
        out.append(a)
        i += 1
    args = out
os.execv(REAL, [REAL] + args)
'''


def _write(path, text):
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    os.chmod(path, os.stat(path).st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def write_shims(config):
    """Create <state>/shims/{aws,docker}; returns the directory to put first on PATH."""
    shim_dir = os.path.join(config.state_dir, "shims")
    os.makedirs(shim_dir, exist_ok=True)
    _write(os.path.join(shim_dir, "aws"), AWS_SHIM.format(python=sys.executable))
    _write(os.path.join(shim_dir, "docker"), DOCKER_SHIM.format(python=sys.executable, docker=config.docker))
    return shim_dir
