"""Rotated registry credentials: an image pushed with a resource `registryAuth` whose password
is then rotated on the registry. Refresh and destroy try the stored credentials, then the
current ones (the provider's `registryAuth`, an ECR token, the Docker config): with no working
credentials at all, refresh keeps the resource and says how to fix it; with current credentials
in the Docker config, refresh checks the image and destroy deletes it. A registry of its own
(Debian's docker-registry with its own htpasswd), since the shared one's password cannot change."""
from __future__ import annotations

import base64
import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import Registry

USER = "rotating"
PROGRAM = Path(__file__).parent.joinpath("programs", "images.py").read_text()


class PrivateRegistry:
    """docker-registry on a free loopback port, restartable with a new password."""

    def __init__(self, root: Path):
        self.root = root
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.address = f"127.0.0.1:{s.getsockname()[1]}"
        self.proc: subprocess.Popen | None = None

    def start(self, password: str) -> None:
        htpasswd = self.root / "htpasswd"
        entry = subprocess.run(["htpasswd", "-Bbn", USER, password], capture_output=True, text=True, check=True)
        htpasswd.write_text(entry.stdout)
        config = self.root / "config.yml"
        config.write_text(
            "version: 0.1\n"
            f"storage:\n  filesystem:\n    rootdirectory: {self.root / 'data'}\n  delete:\n    enabled: true\n"
            f"http:\n  addr: {self.address}\n  secret: rotating-test\n"
            f"auth:\n  htpasswd:\n    realm: rotating\n    path: {htpasswd}\n")
        log = open(self.root / "registry.log", "ab")
        self.proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=log, stderr=log)
        deadline = time.time() + 30
        while not self.answers(password):
            if self.proc.poll() is not None or time.time() > deadline:
                pytest.fail(f"docker-registry did not start on {self.address} (log {self.root / 'registry.log'})")
            time.sleep(0.2)

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def client(self, password: str) -> Registry:
        return Registry(self.address, USER, password)

    def answers(self, password: str) -> bool:
        try:
            with self.client(password)._request("GET", ""):
                return True
        except (urllib.error.URLError, ConnectionError):
            return False


@pytest.fixture
def private_registry(tmp_path):
    reg = PrivateRegistry(tmp_path / "registry")
    reg.root.mkdir()
    yield reg
    reg.stop()


def docker_config(root: Path, address: str, password: str) -> Path:
    """A Docker config with `docker login`'s entry for `address`, as a user's machine has."""
    root.mkdir(parents=True, exist_ok=True)
    token = base64.b64encode(f"{USER}:{password}".encode()).decode()
    (root / "config.json").write_text(json.dumps({"auths": {address: {"auth": token}}}))
    return root


def test_refresh_and_destroy_survive_a_rotated_password(project_factory, private_registry, unique: str):
    old, new = f"old-{unique}", f"new-{unique}"
    private_registry.start(old)
    p = project_factory(PROGRAM)
    p.init(config={"repoPrefix": f"{private_registry.address}/rot-{unique}", "registryUser": USER,
                   "services": '["orders"]', "deleteOnDestroy": "true"},
           secrets={"registryPassword": old})
    p.up()
    out = p.outputs()
    repo, digest = f"rot-{unique}/orders", out["orders_digest"]

    private_registry.stop()
    private_registry.start(new)
    # No working credentials anywhere: the refresh keeps the resource and names the fix.
    p.env["DOCKER_CONFIG"] = str(docker_config(p.dir.parent / "no-login", "example.invalid", "x"))
    refreshed = p.run("refresh", "--yes", "--expect-no-changes")
    text = refreshed.stdout + refreshed.stderr
    assert "refresh could not check" in text and "kept as it was" in text, text
    assert old not in text and new not in text, "a password reached the output"
    assert [r["urn"].rsplit("::", 1)[-1] for r in p.resources()] == ["orders"]

    # `docker login` with the new password: refresh checks the image, destroy deletes it.
    p.env["DOCKER_CONFIG"] = str(docker_config(p.dir.parent / "login", private_registry.address, new))
    refreshed = p.run("refresh", "--yes", "--expect-no-changes")
    assert "could not check" not in refreshed.stdout + refreshed.stderr, refreshed.stdout
    assert private_registry.client(new).digest(repo, digest) == digest
    p.run("destroy", "--yes")
    assert private_registry.client(new).digest(repo, digest) is None, "destroy left the image"
