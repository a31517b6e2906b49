"""FastContainerImage end to end: the real Pulumi CLI and plugin, moto (S3, SSM, Logs) and the
CodeBuild test double, which really runs the generated buildspec against Docker and the registry."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

from conftest import Project, Registry, json_events

PROGRAMS = Path(__file__).parent / "programs"
BASE = "imagebuild-base/busybox:latest"
TOKEN = "imagebuild:index:FastContainerImage"


def endpoint(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run through `make test` (it sources scripts/env.sh)")
    return value


@pytest.fixture(scope="session")
def aws():
    """moto clients; fails loudly when moto or the CodeBuild double does not answer."""
    moto = endpoint("IMAGEBUILD_TEST_MOTO_ENDPOINT")
    double = endpoint("IMAGEBUILD_TEST_CODEBUILD_ENDPOINT")
    for url in (f"{moto}/moto-api/", f"{double}/__double/health"):
        try:
            urllib.request.urlopen(url, timeout=10).close()
        except Exception as e:  # noqa: BLE001
            pytest.fail(f"{url} is not reachable ({e}): run scripts/start-services.sh and "
                        "tests/codebuild_double/start.sh")
    kw = dict(endpoint_url=moto, region_name="us-east-1",
              aws_access_key_id="testing", aws_secret_access_key="testing")
    return {
        "s3": boto3.client("s3", **kw),
        "ssm": boto3.client("ssm", **kw),
        "codebuild": boto3.client("codebuild", **{**kw, "endpoint_url": double}),
        "double": double,
    }


def start_build_requests(aws) -> list[dict]:
    with urllib.request.urlopen(f"{aws['double']}/__double/requests", timeout=10) as r:
        return json.load(r)


def fast_project(factory, registry: Registry, aws, unique: str, dockerfile: str, sub: str = "p",
                 **config) -> Project:
    bucket = f"e2e-contexts-{unique}"
    try:
        aws["s3"].create_bucket(Bucket=bucket)
    except aws["s3"].exceptions.BucketAlreadyOwnedByYou:
        pass
    p = factory(PROGRAMS.joinpath("fast.py").read_text(), sub)
    ctx = p.dir / "ctx"
    ctx.mkdir()
    (ctx / "run.sh").write_text("#!/bin/sh\necho run\n")
    (ctx / "run.sh").chmod(0o755)
    (ctx / "data.txt").write_text(f"data {unique}\n")
    (ctx / "link").symlink_to("data.txt")
    p.env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1")
    base = {
        "repository": f"{registry.address}/e2e-{unique}/fast",
        "registryUser": registry.username,
        "bucket": bucket,
        "dockerfile": dockerfile,
        "imagebuild:region": "us-east-1",
        "imagebuild:s3Endpoint": endpoint("IMAGEBUILD_TEST_MOTO_ENDPOINT"),
        "imagebuild:logsEndpoint": endpoint("IMAGEBUILD_TEST_MOTO_ENDPOINT"),
        "imagebuild:ecrEndpoint": endpoint("IMAGEBUILD_TEST_MOTO_ENDPOINT"),
        "imagebuild:codebuildEndpoint": endpoint("IMAGEBUILD_TEST_CODEBUILD_ENDPOINT"),
    }
    base.update(config)
    return p.init(config=base, secrets={"registryPassword": registry.password})


# The build proves the round trip keeps the executable bit and the symlink.
MODES_DOCKERFILE = (
    f"FROM {BASE}\nCOPY . /app/\n"
    "RUN test -x /app/run.sh && test -L /app/link && test \"$(cat /app/link)\" = \"$(cat /app/data.txt)\"\n"
)


def test_cold_up_then_nothing_then_adopt(project_factory, registry: Registry, aws, unique: str):
    p = fast_project(project_factory, registry, aws, unique, MODES_DOCKERFILE)
    events = json_events(p.up("--json").stdout)
    out = p.outputs()
    # FROM, COPY and RUN, read off CodeBuild's log; the row ends saying so.
    assert out["total_steps"] == 3 and 0 <= out["cached_steps"] <= 1, out
    kept = [e["diagnosticEvent"]["message"].strip() for e in events
            if TOKEN in e.get("diagnosticEvent", {}).get("urn", "")
            and not e["diagnosticEvent"].get("ephemeral")]
    assert kept and re.fullmatch(r"built on CodeBuild in [\d.]+ s, [01] of 3 steps cached", kept[-1]), kept
    served = registry.digest(f"e2e-{unique}/fast", out["context_hash"])
    assert served is not None and out["digest"] == served
    assert out["image_uri"] == f"{registry.address}/e2e-{unique}/fast@{served}"
    assert out["build_status"] == "SUCCEEDED"
    assert out["upload_skipped"] is False and out["upload_bytes"] > 0
    key = out["context_object"].split("/", 3)[3]
    head = aws["s3"].head_object(Bucket=f"e2e-contexts-{unique}", Key=key)
    assert head["ServerSideEncryption"] == "AES256"

    builds = len(start_build_requests(aws))
    p.up("--expect-no-changes")
    p.run("refresh", "--yes", "--expect-no-changes")
    assert len(start_build_requests(aws)) == builds, "an unchanged hash started a build"

    fresh = fast_project(project_factory, registry, aws, unique, MODES_DOCKERFILE, "fresh")
    fresh.up()
    adopted = fresh.outputs()
    assert adopted["adopted"] is True and adopted["digest"] == served
    assert len(start_build_requests(aws)) == builds, "adoption started a build"
    # Each resource claims the digest with a tag of its own (see test_shared_digest.py).
    claims = {out["claim_tag"], adopted["claim_tag"]}
    assert len(claims) == 2 and all(c.startswith("imagebuild-claim-") for c in claims), claims
    for claim in claims:
        assert registry.digest(f"e2e-{unique}/fast", claim) == served, claim


SECRET_SIG = "4dabf18193072939515e22adb298388d"  # Pulumi's marker of a secret value in state


def test_wait_false_returns_before_the_build_ends(project_factory, registry: Registry, aws, unique: str):
    """With a secret Dockerfile, so the refresh that fills in the digest must keep what derives
    from it secret."""
    dockerfile = f"FROM {BASE}\nCOPY . /app/\nRUN sleep 12\n"
    p = fast_project(project_factory, registry, aws, unique, dockerfile, wait="false",
                     secretDockerfile="true")
    p.up()
    out = p.outputs()
    assert out["build_status"] == "IN_PROGRESS"
    assert out["image_uri"] == f"{registry.address}/e2e-{unique}/fast:{out['context_hash']}"
    live = aws["codebuild"].batch_get_builds(ids=[out["build_id"]])["builds"][0]
    assert live["buildStatus"] == "IN_PROGRESS", "up waited for the build"

    # refresh updates the resource's state (stack outputs only change on the next up).
    deadline = time.time() + 240
    while True:
        p.run("refresh", "--yes")
        state = p.resources(TOKEN)[0]["outputs"]
        if state["buildStatus"] != "IN_PROGRESS":
            break
        assert time.time() < deadline, "the build never finished"
        time.sleep(3)
    assert state["buildStatus"] == "SUCCEEDED"
    for name in ("digest", "imageUri", "contextHash"):
        assert isinstance(state[name], dict) and SECRET_SIG in state[name], f"{name} not secret: {state[name]}"
    shown = json.loads(p.run("stack", "export", "--show-secrets").stdout)["deployment"]["resources"]
    state = next(r["outputs"] for r in shown if r["type"] == TOKEN)
    served = registry.digest(f"e2e-{unique}/fast", json.loads(state["contextHash"]["plaintext"]))
    assert served is not None
    assert json.loads(state["digest"]["plaintext"]) == served
    assert json.loads(state["imageUri"]["plaintext"]).endswith(f"@{served}")
    # The refresh that saw the build finish claimed the digest.
    assert registry.digest(f"e2e-{unique}/fast", state["claimTag"]) == served, state.get("claimTag")


def test_failing_build_shows_the_step_log(project_factory, registry: Registry, aws, unique: str):
    dockerfile = f"FROM {BASE}\nRUN echo broken-step-{unique} && exit 3\n"
    p = fast_project(project_factory, registry, aws, unique, dockerfile)
    proc = p.up(check=False)
    assert proc.returncode != 0
    assert f"broken-step-{unique}" in proc.stdout, proc.stdout[-3000:]
    assert "BUILD" in proc.stdout and "FAILED" in proc.stdout

    # Retried at once (inside CodeBuild's 5-minute token window): a new build, not the failed one.
    def tokens() -> list[str]:
        ours = [b for b in start_build_requests(aws) if f"e2e-{unique}/fast" in json.dumps(b)]
        return [b["body"]["idempotencyToken"] for b in ours]
    assert len(set(tokens())) == 1
    again = p.up(check=False)
    assert again.returncode != 0 and f"broken-step-{unique}" in again.stdout
    assert len(set(tokens())) == 2, "the retry got the failed build back instead of a new one"


def test_secret_reaches_the_build_only_by_reference(project_factory, registry: Registry, aws, unique: str):
    secret = f"remote-s3cr3t-{unique}"
    name = f"/e2e/{unique}/pip-index"
    aws["ssm"].put_parameter(Name=name, Value=secret, Type="SecureString")
    dockerfile = (
        f"FROM {BASE}\n"
        "RUN --mount=type=secret,id=token test \"$(wc -c < /run/secrets/token)\" -gt 0 "
        "&& wc -c < /run/secrets/token > /token-length\n"
    )
    p = fast_project(project_factory, registry, aws, unique, dockerfile, ssmParameter=name)
    up = p.up()
    assert secret not in up.stdout + up.stderr
    assert secret not in p.export()
    requests = json.dumps(start_build_requests(aws))
    assert name in requests and secret not in requests
    history = subprocess.run(["/usr/bin/docker", "history", "--no-trunc",
                              f"{registry.address}/e2e-{unique}/fast:{p.outputs()['context_hash']}"],
                             capture_output=True, text=True).stdout
    assert secret not in history


def test_ctrl_c_stops_the_remote_build(project_factory, registry: Registry, aws, unique: str):
    seconds = 900 + int(unique[:4], 16) % 300
    p = fast_project(project_factory, registry, aws, unique, f"FROM {BASE}\nRUN sleep {seconds}\n")
    proc = subprocess.Popen(["pulumi", "up", "--yes", "--skip-preview", "--non-interactive"],
                            cwd=p.dir, env=p.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)

    def sleeping() -> bool:
        return subprocess.run(["pgrep", "-f", f"sleep {seconds}"], capture_output=True).returncode == 0

    deadline = time.time() + 180
    while not sleeping():
        assert proc.poll() is None, f"pulumi exited early:\n{proc.stdout.read()}"
        assert time.time() < deadline, "the remote build never started"
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    try:
        output, _ = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("pulumi up did not stop within 90 s of Ctrl-C")
    assert proc.returncode != 0
    stop_deadline = time.time() + 30
    while sleeping():
        assert time.time() < stop_deadline, "the remote build kept running after Ctrl-C"
        time.sleep(0.5)
    assert "panicked" not in output


def engine29_project(aws, unique: str) -> str:
    """A CodeBuild project whose builds run on Engine 29 with docker buildx (the double's opt-in):
    Engine 20.10's BuildKit cannot read named contexts."""
    name = f"e2e-named-{unique}"
    host = endpoint("IMAGEBUILD_TEST_DOCKER29_HOST")
    probe = subprocess.run(["/usr/bin/docker", "-H", host, "image", "inspect", "-f", "{{.Id}}", BASE],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(f"Engine 29 at {host} or its base image {BASE} is not there ({probe.stderr.strip()}): "
                    "run scripts/setup.sh (start-services.sh, make-base-images.sh --host $IMAGEBUILD_TEST_DOCKER29_HOST)")
    variables = {"DOCKER_HOST": host, "IMAGEBUILD_DOUBLE_BUILDX": "1"}
    aws["codebuild"].create_project(
        name=name,
        source={"type": "NO_SOURCE", "buildspec": "version: 0.2"},
        artifacts={"type": "NO_ARTIFACTS"},
        environment={
            "type": "LINUX_CONTAINER", "image": "aws/codebuild/standard:7.0",
            "computeType": "BUILD_GENERAL1_SMALL", "privilegedMode": True,
            "environmentVariables": [{"name": k, "value": v, "type": "PLAINTEXT"} for k, v in variables.items()],
        },
        serviceRole="arn:aws:iam::123456789012:role/imagebuild-e2e",
    )
    return name


def image_files(registry: Registry, repo: str, reference: str) -> dict[str, bytes]:
    """Every regular file or symlink in the pushed image's layers, read from the registry."""
    import io
    import tarfile
    with registry._request("GET", f"{repo}/manifests/{reference}",
                           "application/vnd.oci.image.manifest.v1+json, "
                           "application/vnd.docker.distribution.manifest.v2+json") as r:
        manifest = json.load(r)
    assert "layers" in manifest, f"expected one image manifest (Lambda refuses indexes), got {manifest}"
    files = {}
    for layer in manifest["layers"]:
        with registry._request("GET", f"{repo}/blobs/{layer['digest']}") as r:
            blob = r.read()
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:*") as t:
            for m in t.getmembers():
                if m.isfile():
                    files[m.name] = t.extractfile(m).read()
                elif m.issym():
                    files[m.name] = f"-> {m.linkname}".encode()
    return files


def archive_members(aws, bucket: str, context_object: str) -> set[str]:
    import io
    import tarfile
    key = context_object.split("/", 3)[3]
    body = aws["s3"].get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as t:
        return {m.name.rstrip("/") for m in t.getmembers()}


def test_named_context_builds_with_only_the_files_it_reads(project_factory, registry: Registry, aws,
                                                           unique: str):
    # `base` exists only as an image context: without --build-context the build would pull docker.io/base.
    dockerfile = ("FROM base AS probe\nRUN echo from-base > /probe\n"
                  "FROM scratch\nCOPY --from=probe /probe /probe\nCOPY --from=shared lib/ /shared/lib/\nCOPY . /main/\n")
    contexts = json.dumps({"shared": "shared", "base": f"docker-image://{BASE}"})
    p = fast_project(project_factory, registry, aws, unique, dockerfile,
                     codebuildProject=engine29_project(aws, unique), contexts=contexts)
    shared = p.dir / "shared"
    for rel, text in {".dockerignore": "lib/*.log\n", "lib/a.py": f"a {unique}\n", "lib/pkg/b.py": "b\n",
                      "lib/debug.log": "ignored by shared/.dockerignore\n", "docs/unread.md": "not read\n"}.items():
        (shared / rel).parent.mkdir(parents=True, exist_ok=True)
        (shared / rel).write_text(text)

    p.up()
    out = p.outputs()
    assert out["build_status"] == "SUCCEEDED"
    repo = f"e2e-{unique}/fast"
    assert out["digest"] == registry.digest(repo, out["context_hash"])
    files = image_files(registry, repo, out["digest"])
    # The inline Dockerfile travels in the archive as .imagebuild.Dockerfile, which `COPY .` sees (as before).
    main = ["main/.imagebuild.Dockerfile", "main/data.txt", "main/link", "main/run.sh"]
    assert sorted(files) == main + ["probe", "shared/lib/a.py", "shared/lib/pkg/b.py"], \
        "the image holds exactly the named files the Dockerfile reads, and the main context holds no named files"
    assert files["shared/lib/a.py"] == f"a {unique}\n".encode() and files["probe"] == b"from-base\n"
    members = archive_members(aws, f"e2e-contexts-{unique}", out["context_object"])
    assert {m for m in members if m.startswith(".imagebuild-contexts")} == {
        ".imagebuild-contexts", ".imagebuild-contexts/0", ".imagebuild-contexts/0/lib",
        ".imagebuild-contexts/0/lib/a.py", ".imagebuild-contexts/0/lib/pkg", ".imagebuild-contexts/0/lib/pkg/b.py",
    }, "the archive carries the used named files only"

    # Files the build does not read (unread, or ignored by the named dir's .dockerignore) leave the hash alone.
    (shared / "docs/unread.md").write_text("edited\n")
    (shared / "lib/debug.log").write_text("edited\n")
    p.run("preview", "--expect-no-changes")
    # A file it reads changes the hash and the image.
    (shared / "lib/a.py").write_text(f"a {unique} edited\n")
    p.up()
    edited = p.outputs()
    assert edited["context_hash"] != out["context_hash"] and edited["build_status"] == "SUCCEEDED"
    assert image_files(registry, repo, edited["digest"])["shared/lib/a.py"] == f"a {unique} edited\n".encode()


def test_named_context_without_buildx_fails_saying_why(project_factory, registry: Registry, aws, unique: str):
    dockerfile = "FROM scratch\nCOPY --from=shared lib/ /shared/lib/\n"
    p = fast_project(project_factory, registry, aws, unique, dockerfile, contexts='{"shared": "shared"}')
    (p.dir / "shared/lib").mkdir(parents=True)
    (p.dir / "shared/lib/a.py").write_text("a\n")
    proc = p.up(check=False)
    assert proc.returncode != 0
    printed = [line for line in proc.stdout.splitlines()
               if "imagebuild: this build uses named contexts" in line and 'echo "' not in line]
    assert printed and "buildx (Docker 23 or later)" in printed[0], proc.stdout[-3000:]


def push_marker_base(registry: Registry, ref: str, marker: str, work: Path) -> None:
    """Builds an image whose /marker holds `marker` on the default daemon and pushes it as `ref`."""
    (work / "Dockerfile").write_text(f"FROM {BASE}\nRUN echo {marker} > /marker\n")
    env = dict(os.environ, DOCKER_CONFIG=str(work / "docker-config"), DOCKER_BUILDKIT="1")
    login = ["/usr/bin/docker", "login", registry.address, "-u", registry.username, "--password-stdin"]
    subprocess.run(login, input=registry.password, text=True, env=env, check=True, capture_output=True)
    for cmd in (["build", "-q", "-t", ref, str(work)], ["push", ref], ["rmi", ref]):
        subprocess.run(["/usr/bin/docker", *cmd], env=env, check=True, capture_output=True)


def archive_dockerfile(aws, bucket: str, context_object: str) -> str:
    import io
    import tarfile
    key = context_object.split("/", 3)[3]
    body = aws["s3"].get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as t:
        return t.extractfile(".imagebuild.Dockerfile").read().decode()


def test_a_registry_base_is_built_with_the_digest_that_was_hashed(project_factory, registry: Registry, aws,
                                                                 unique: str, tmp_path: Path):
    base_repo = f"e2e-{unique}/pinned-base"
    ref = f"{registry.address}/{base_repo}:base"
    (tmp_path / "first").mkdir()
    push_marker_base(registry, ref, "first", tmp_path / "first")
    first = registry.digest(base_repo, "base")
    p = fast_project(project_factory, registry, aws, unique, f"FROM {ref}\nRUN cat /marker > /seen\n")
    p.up()
    out = p.outputs()
    repo = f"e2e-{unique}/fast"
    # The archive's Dockerfile names the digest the hash covers, so the build cannot drift to a moved tag.
    assert f"{registry.address}/{base_repo}:base@{first}" in archive_dockerfile(
        aws, f"e2e-contexts-{unique}", out["context_object"])
    assert image_files(registry, repo, out["digest"])["seen"] == b"first\n"
    p.run("preview", "--expect-no-changes")

    # The tag moves in the registry: a new hash, and the build uses the new digest.
    (tmp_path / "second").mkdir()
    push_marker_base(registry, ref, "second", tmp_path / "second")
    p.up()
    moved = p.outputs()
    assert moved["context_hash"] != out["context_hash"]
    assert image_files(registry, repo, moved["digest"])["seen"] == b"second\n"
    p.run("preview", "--expect-no-changes")


def test_a_missing_ssm_parameter_is_named_in_the_error(project_factory, registry: Registry, aws, unique: str):
    # A parameter name is a reference, not a secret: the failure must say which one is missing.
    name = f"/e2e/{unique}/never-created"
    dockerfile = f"FROM {BASE}\nRUN --mount=type=secret,id=token true\n"
    p = fast_project(project_factory, registry, aws, unique, dockerfile, ssmParameter=name)
    up = p.up(check=False)
    assert up.returncode != 0
    assert name in up.stdout + up.stderr, up.stdout[-3000:]
