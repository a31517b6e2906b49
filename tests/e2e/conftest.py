"""Fixtures for the end-to-end tests: the real Pulumi CLI drives the plugin from Python programs,
against the real Docker engine and the local registry. A service that is not reachable fails the
test with the reason; nothing is skipped."""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# The plugin the projects run: the debug build the tests compile, or another build's directory
# (the benches run what users run: IMAGEBUILD_PLUGIN_DIR=target/release).
PLUGIN_DIR = Path(os.environ.get("IMAGEBUILD_PLUGIN_DIR") or REPO / "target" / "debug").resolve()
VENV = REPO / ".venv"
EXAMPLE_APP = REPO / "examples" / "app"
BASE_IMAGES = (
    "imagebuild-base/busybox:latest",
    "imagebuild-base/python:3.11",
    "imagebuild-base/python-arm64:3.11",
)
ENGINE_20_10 = "unix:///var/run/docker.sock"
MANIFEST_TYPES = ", ".join(
    [
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
    ]
)


def env_var(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: run the tests through `make test` (it sources scripts/env.sh)")
    return value


@dataclass
class Registry:
    """The local htpasswd registry, spoken to over the distribution API directly."""

    address: str
    username: str
    password: str

    def _request(self, method: str, path: str, accept: str | None = None):
        req = urllib.request.Request(f"http://{self.address}/v2/{path}", method=method)
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
        if accept:
            req.add_header("Accept", accept)
        return urllib.request.urlopen(req, timeout=30)

    def digest(self, repo: str, reference: str) -> str | None:
        """The manifest digest the registry serves for repo:reference, None on 404."""
        try:
            with self._request("HEAD", f"{repo}/manifests/{reference}", MANIFEST_TYPES) as r:
                return r.headers["Docker-Content-Digest"]
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return None
            raise

    def tags(self, repo: str) -> list[str]:
        try:
            with self._request("GET", f"{repo}/tags/list") as r:
                return json.load(r).get("tags") or []
        except urllib.error.HTTPError as e:
            if e.code == 404:
                return []
            raise

    def delete(self, repo: str, digest: str) -> None:
        with self._request("DELETE", f"{repo}/manifests/{digest}"):
            pass

    def single_image_config(self, repo: str, reference: str) -> dict:
        """The image config of repo:reference, asserting it is one image manifest, never an index."""
        with self._request("GET", f"{repo}/manifests/{reference}", MANIFEST_TYPES) as r:
            manifest = json.load(r)
        media = manifest.get("mediaType", "")
        assert media.endswith(("image.manifest.v1+json", "manifest.v2+json")), manifest
        with self._request("GET", f"{repo}/blobs/{manifest['config']['digest']}") as r:
            return json.load(r)


@pytest.fixture(scope="session")
def registry() -> Registry:
    reg = Registry(
        env_var("IMAGEBUILD_TEST_REGISTRY"),
        env_var("IMAGEBUILD_TEST_REGISTRY_USER"),
        env_var("IMAGEBUILD_TEST_REGISTRY_PASSWORD"),
    )
    try:
        with reg._request("GET", ""):
            pass
    except Exception as e:  # noqa: BLE001 - any failure means the service is not usable
        pytest.fail(f"registry at {reg.address} is not reachable ({e}); run scripts/start-services.sh")
    return reg


@pytest.fixture(scope="session", autouse=True)
def tools_ready():
    """The plugin binary, the CLI and the SDK must exist; say which is missing."""
    if not (PLUGIN_DIR / "pulumi-resource-imagebuild").exists():
        pytest.fail(f"plugin not built at {PLUGIN_DIR}: run `cargo build --bins`")
    if shutil.which("pulumi") is None:
        pytest.fail("pulumi CLI not on PATH: run scripts/setup.sh and source scripts/env.sh")
    # The CLI, the plugin and the CodeBuild double all inherit DOCKER_HOST: check that daemon.
    host = docker_host()
    probe = docker("info", check=False)
    if probe.returncode != 0:
        pytest.fail(f"Docker engine not reachable at {host}: {probe.stderr.strip()}")
    for image in BASE_IMAGES:
        if docker("image", "inspect", "-f", "{{.Id}}", image, check=False).returncode != 0:
            pytest.fail(f"base image {image} is missing on {host}: run scripts/make-base-images.sh --host {host}")


def engine29_host() -> str:
    """Engine 29's address, after checking it answers as Engine 29 (fails the test otherwise)."""
    host = os.environ.get("IMAGEBUILD_TEST_DOCKER29_HOST")
    if not host:
        pytest.fail("IMAGEBUILD_TEST_DOCKER29_HOST is not set: run through `make test` (scripts/env.sh)")
    probe = subprocess.run(["docker", "-H", host, "version", "-f", "{{.Server.Version}}"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or not probe.stdout.startswith("29."):
        pytest.fail(f"Engine 29 is not answering at {host}: {probe.stderr.strip() or probe.stdout}")
    for image in BASE_IMAGES:
        if docker("-H", host, "image", "inspect", "-f", "{{.Id}}", image, check=False).returncode != 0:
            pytest.fail(f"base image {image} is missing on {host}: run scripts/make-base-images.sh --host {host}")
    return host


@pytest.fixture(params=["engine20", "engine29"])
def engine_host(request) -> str:
    """Runs a test once per engine: Engine 20.10 (classic store) and Engine 29 (containerd store);
    the value goes to the provider's `imagebuild:dockerHost`."""
    return ENGINE_20_10 if request.param == "engine20" else engine29_host()


def docker_host() -> str:
    """The daemon under test: $DOCKER_HOST, else Engine 20.10's default socket."""
    return os.environ.get("DOCKER_HOST") or "unix:///var/run/docker.sock"


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    exe = os.environ.get("IMAGEBUILD_DOCKER", "/usr/bin/docker")
    return subprocess.run([exe, *args], capture_output=True, text=True, check=check)


class Project:
    """A Pulumi project in a temporary directory with its own file backend."""

    def __init__(self, root: Path, program: str, name: str = "e2e", *,
                 plugin_dir: Path | None = PLUGIN_DIR, venv: Path = VENV):
        """`plugin_dir=None` leaves `plugins.providers` out, so the CLI must find or fetch the plugin."""
        self.dir = root / "project"
        self.state = root / "state"
        self.dir.mkdir(parents=True)
        self.state.mkdir()
        shutil.copytree(EXAMPLE_APP, self.dir / "app", symlinks=True)
        (self.dir / "__main__.py").write_text(program)
        lines = [f"name: {name}", "runtime:", "  name: python", "  options:", "    toolchain: pip",
                 f"    virtualenv: {venv}"]
        if plugin_dir is not None:
            lines += ["plugins:", "  providers:", "    - name: imagebuild", f"      path: {plugin_dir}"]
        (self.dir / "Pulumi.yaml").write_text("\n".join(lines + [""]))
        self.env = dict(os.environ)
        self.env.update(
            PULUMI_BACKEND_URL=f"file://{self.state}",
            PULUMI_CONFIG_PASSPHRASE="",
            PULUMI_SKIP_UPDATE_CHECK="true",
            PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION="true",
        )

    def run(self, *args: str, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
        proc = subprocess.run(
            ["pulumi", *args, "--non-interactive"],
            cwd=self.dir,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"pulumi {' '.join(args)} failed ({proc.returncode})\n"
                f"--- stdout ---\n{proc.stdout[-6000:]}\n--- stderr ---\n{proc.stderr[-4000:]}"
            )
        return proc

    def init(self, stack: str = "test", config: dict | None = None, secrets: dict | None = None):
        self.run("stack", "init", stack)
        for key, value in (config or {}).items():
            self.run("config", "set", key, value)
        for key, value in (secrets or {}).items():
            self.run("config", "set", "--secret", key, value)
        return self

    def up(self, *extra: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("up", "--yes", "--skip-preview", *extra, check=check)

    def outputs(self) -> dict:
        return json.loads(self.run("stack", "output", "--json", "--show-secrets").stdout)

    def export(self) -> str:
        return self.run("stack", "export").stdout

    def resources(self, type_token: str = "imagebuild:index:ContainerImage") -> list[dict]:
        deployment = json.loads(self.export())["deployment"]
        return [r for r in deployment.get("resources", []) if r["type"] == type_token]


def json_events(stdout: str) -> list[dict]:
    """The engine events `pulumi up --json` streams, one JSON object per line."""
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]


@pytest.fixture
def project_factory(tmp_path):
    made = []

    def make(program: str, sub: str = "p") -> Project:
        p = Project(tmp_path / sub, program)
        made.append(p)
        return p

    yield make
