"""CodeBuild test double: the AWS JSON 1.1 API surface imagebuild uses, backed by real builds.

Serves CreateProject, UpdateProject, BatchGetProjects, StartBuild, BatchGetBuilds,
ListBuildsForProject and StopBuild (X-Amz-Target: CodeBuild_20161006.<Op>). Builds run for real (see runner.py).
Test-only routes: GET /__double/health, POST /__double/reset, GET /__double/requests,
POST /__double/expire-tokens (ages every idempotency token past CodeBuild's window).
"""

import argparse
import hashlib
import json
import os
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import runner  # noqa: E402
import shims  # noqa: E402

ACCOUNT = "123456789012"
TARGET_PREFIX = "CodeBuild_20161006."
# Real CodeBuild forgets an idempotency token after 5 minutes.
TOKEN_TTL_SECONDS = 300


class ApiError(Exception):
    """An error answered as an AWS JSON error body."""

    def __init__(self, code, message, status=400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


class State:
    """Projects, builds and idempotency tokens, shared by all request threads."""

    def __init__(self, config):
        self.config = config
        self.lock = threading.Lock()
        self.projects = {}
        self.builds = {}
        self.tokens = {}
        self.build_numbers = {}
        self.faults = {}

    def reset(self):
        with self.lock:
            for build in self.builds.values():
                build.stop("reset")
            self.projects.clear()
            self.builds.clear()
            self.tokens.clear()
            self.build_numbers.clear()
            self.faults.clear()


def project_arn(config, name):
    return f"arn:aws:codebuild:{config.region}:{ACCOUNT}:project/{name}"


def require(body, key):
    value = body.get(key)
    if value in (None, ""):
        raise ApiError("InvalidInputException", f"{key} is required")
    return value


def op_create_project(state, body):
    name = require(body, "name")
    for key in ("source", "artifacts", "environment", "serviceRole"):
        require(body, key)
    with state.lock:
        if name in state.projects:
            raise ApiError(
                "ResourceAlreadyExistsException",
                f"Project already exists: arn:aws:codebuild:{state.config.region}:{ACCOUNT}:project/{name}",
            )
        now = time.time()
        project = dict(body)
        project.update(
            {
                "arn": project_arn(state.config, name),
                "created": now,
                "lastModified": now,
                "timeoutInMinutes": body.get("timeoutInMinutes", 60),
                "queuedTimeoutInMinutes": body.get("queuedTimeoutInMinutes", 480),
            }
        )
        state.projects[name] = project
        return {"project": project}


def op_update_project(state, body):
    name = require(body, "name")
    with state.lock:
        project = state.projects.get(name)
        if project is None:
            raise ApiError("ResourceNotFoundException", f"Project cannot be found: {project_arn(state.config, name)}")
        for key, value in body.items():
            if key != "name":
                project[key] = value
        project["lastModified"] = time.time()
        return {"project": project}


def op_batch_get_projects(state, body):
    names = require(body, "names")
    with state.lock:
        found = [state.projects[n] for n in names if n in state.projects]
        missing = [n for n in names if n not in state.projects]
    return {"projects": found, "projectsNotFound": missing}


def record_start_build(state, body):
    # Tests read this file to prove what StartBuild carried (e.g. no plaintext secrets).
    line = json.dumps({"time": time.time(), "body": body}, sort_keys=True)
    with state.lock:
        with open(state.config.record_file, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def injected_fault(state, name):
    """Test hooks by project name: `denied-*` is always AccessDenied; `throttled-*` and `flaky-*`
    answer their first two StartBuild calls with ThrottlingException or HTTP 500."""
    if name.startswith("denied-"):
        raise ApiError(
            "AccessDeniedException",
            f"User: arn:aws:sts::{ACCOUNT}:assumed-role/test/session is not authorized to perform: "
            f"codebuild:StartBuild on resource: {project_arn(state.config, name)}",
        )
    for prefix, code, status in (("throttled-", "ThrottlingException", 400), ("flaky-", "InternalFailure", 500)):
        if name.startswith(prefix):
            with state.lock:
                seen = state.faults.get(name, 0)
                state.faults[name] = seen + 1
            if seen < 2:
                raise ApiError(code, f"injected {code} #{seen + 1}", status)


def op_start_build(state, body):
    record_start_build(state, body)
    name = require(body, "projectName")
    injected_fault(state, name)
    token = body.get("idempotencyToken")
    fingerprint = hashlib.sha256(
        json.dumps({k: v for k, v in body.items() if k != "idempotencyToken"}, sort_keys=True).encode()
    ).hexdigest()
    with state.lock:
        project = state.projects.get(name)
        if project is None:
            raise ApiError("ResourceNotFoundException", f"Project cannot be found: {project_arn(state.config, name)}")
        if token:
            known = state.tokens.get(token)
            if known and time.time() - known["at"] < TOKEN_TTL_SECONDS:
                if known["fingerprint"] != fingerprint:
                    raise ApiError(
                        "InvalidInputException",
                        "Request parameters do not match the original request for this idempotency token",
                    )
                return {"build": state.builds[known["build_id"]].describe()}
        number = state.build_numbers.get(name, 0) + 1
        state.build_numbers[name] = number
        build_id = f"{name}:{uuid.uuid4()}"
        build = runner.Build(state.config, project, body, build_id, number)
        state.builds[build_id] = build
        if token:
            state.tokens[token] = {"build_id": build_id, "fingerprint": fingerprint, "at": time.time()}
    build.start()
    return {"build": build.describe()}


def op_batch_get_builds(state, body):
    ids = require(body, "ids")
    with state.lock:
        found = [state.builds[i] for i in ids if i in state.builds]
        missing = [i for i in ids if i not in state.builds]
    return {"builds": [b.describe() for b in found], "buildsNotFound": missing}


def op_list_builds_for_project(state, body):
    """Build ids of one project, newest first (CodeBuild's default DESCENDING), 100 a page."""
    name = require(body, "projectName")
    with state.lock:
        if name not in state.projects:
            raise ApiError("ResourceNotFoundException", f"Project cannot be found: {project_arn(state.config, name)}")
        builds = sorted((b for b in state.builds.values() if b.project["name"] == name),
                        key=lambda b: b.number, reverse=body.get("sortOrder", "DESCENDING") != "ASCENDING")
    ids = [b.id for b in builds]
    start = int(body.get("nextToken") or 0)
    page = ids[start:start + 100]
    out = {"ids": page}
    if start + 100 < len(ids):
        out["nextToken"] = str(start + 100)
    return out


def op_stop_build(state, body):
    build_id = require(body, "id")
    with state.lock:
        build = state.builds.get(build_id)
    if build is None:
        raise ApiError("ResourceNotFoundException", f"Build {build_id} does not exist")
    build.stop("StopBuild")
    return {"build": build.describe()}


OPERATIONS = {
    "CreateProject": op_create_project,
    "UpdateProject": op_update_project,
    "BatchGetProjects": op_batch_get_projects,
    "StartBuild": op_start_build,
    "BatchGetBuilds": op_batch_get_builds,
    "ListBuildsForProject": op_list_builds_for_project,
    "StopBuild": op_stop_build,
}


class Handler(BaseHTTPRequestHandler):
    """One AWS JSON 1.1 request per POST; test routes under /__double/."""

    server_version = "codebuild-double/1"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if self.server.state.config.verbose:
            super().log_message(fmt, *args)

    def reply(self, status, payload, content_type="application/x-amz-json-1.1", headers=None):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("x-amzn-RequestId", str(uuid.uuid4()))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def do_GET(self):
        state = self.server.state
        if self.path == "/__double/health":
            self.reply(200, {"ok": True}, "application/json")
        elif self.path == "/__double/requests":
            try:
                with open(state.config.record_file, encoding="utf-8") as f:
                    lines = [json.loads(line) for line in f if line.strip()]
            except FileNotFoundError:
                lines = []
            self.reply(200, lines, "application/json")
        else:
            self.reply(404, {"message": "not found"}, "application/json")

    def do_POST(self):
        state = self.server.state
        raw = self.read_body()
        if self.path == "/__double/reset":
            state.reset()
            self.reply(200, {"ok": True}, "application/json")
            return
        if self.path == "/__double/expire-tokens":
            # As if CodeBuild's idempotency window had passed for every token seen so far.
            with state.lock:
                for known in state.tokens.values():
                    known["at"] -= TOKEN_TTL_SECONDS
            self.reply(200, {"ok": True}, "application/json")
            return
        target = self.headers.get("X-Amz-Target", "")
        op = target[len(TARGET_PREFIX):] if target.startswith(TARGET_PREFIX) else None
        handler = OPERATIONS.get(op)
        if handler is None:
            self.reply(400, {"__type": "UnknownOperationException", "message": f"unsupported target {target!r}"})
            return
        try:
            body = json.loads(raw or b"{}")
            self.reply(200, handler(state, body))
        except ApiError as e:
            self.reply(e.status, {"__type": e.code, "message": e.message}, headers={"x-amzn-ErrorType": e.code})
        except Exception as e:  # the double must answer, not hang the client
            self.reply(500, {"__type": "InternalFailure", "message": f"double error: {e!r}"})


class Config:
    """Settings from the command line and IMAGEBUILD_DOUBLE_* variables (see README.md)."""

    def __init__(self, args):
        self.port = args.port
        self.state_dir = os.path.abspath(args.state_dir)
        self.region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.moto_endpoint = args.moto_endpoint
        self.docker = os.environ.get("IMAGEBUILD_DOUBLE_DOCKER", "/usr/bin/docker")
        self.registry_user = os.environ.get("IMAGEBUILD_DOUBLE_REGISTRY_USER", "")
        self.registry_password = os.environ.get("IMAGEBUILD_DOUBLE_REGISTRY_PASSWORD", "")
        self.queue_seconds = float(os.environ.get("IMAGEBUILD_DOUBLE_QUEUE_SECONDS", "0.5"))
        self.verbose = bool(os.environ.get("IMAGEBUILD_DOUBLE_VERBOSE"))
        # docker buildx for builds that opt in (IMAGEBUILD_DOUBLE_BUILDX=1); scripts/build-buildx.sh builds it.
        buildx_dir = os.environ.get("IMAGEBUILD_BUILDX_DIR")
        self.buildx_plugin = os.environ.get("IMAGEBUILD_DOUBLE_BUILDX_PLUGIN") or (
            os.path.join(buildx_dir, "docker-buildx") if buildx_dir else "")
        os.makedirs(self.state_dir, exist_ok=True)
        self.record_file = os.path.join(self.state_dir, "start_build_requests.jsonl")
        self.builds_dir = os.path.join(self.state_dir, "builds")
        os.makedirs(self.builds_dir, exist_ok=True)
        self.shim_dir = shims.write_shims(self)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=5060)
    parser.add_argument("--state-dir", default=os.environ.get("IMAGEBUILD_DOUBLE_STATE_DIR", "/tmp/codebuild-double"))
    parser.add_argument(
        "--moto-endpoint", default=os.environ.get("IMAGEBUILD_TEST_MOTO_ENDPOINT", "http://127.0.0.1:5050")
    )
    config = Config(parser.parse_args())
    server = ThreadingHTTPServer(("127.0.0.1", config.port), Handler)
    server.daemon_threads = True
    server.state = State(config)
    print(f"codebuild double listening on 127.0.0.1:{config.port}, state in {config.state_dir}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
