"""Installation as users get it: the SDK from its wheel in a fresh venv, no `plugins.providers`, no
`plugin install --file`, a fresh PULUMI_HOME; `pulumi up` must download the plugin archive that
scripts/dist.py made (from the debug binary, to keep `make test` free of a release build) from a
loopback HTTP server, named through the CLI's PULUMI_PLUGIN_DOWNLOAD_URL_OVERRIDES, and run it."""
from __future__ import annotations

import hashlib
import http.server
import json
import os
import platform
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from conftest import PLUGIN_DIR, REPO, Project, Registry, env_var

PROGRAM = '''\
import pulumi
import pulumi_imagebuild as ib

cfg = pulumi.Config()
image = ib.ContainerImage(
    "fetched",
    context="app",
    dockerfile_inline="FROM imagebuild-base/busybox:latest\\nCOPY libs/common /common\\n",
    repository=cfg.require("repository"),
    registry_auth=ib.RegistryCredentialsArgs(
        username=cfg.require("registryUser"), password=cfg.require_secret("registryPassword")),
)
pulumi.export("uri", image.image_uri)
pulumi.export("digest", image.digest)
pulumi.export("hash", image.context_hash)
'''


def version() -> str:
    """Cargo.toml's version: the plugin's, the SDK's, the archive's."""
    return re.search(r'^version = "([^"]+)"', (REPO / "Cargo.toml").read_text(), re.M).group(1)


class ReleaseServer(http.server.ThreadingHTTPServer):
    """Serves a directory on 127.0.0.1 and records every request path with its status."""

    def __init__(self, directory: Path):
        self.requests: list[tuple[str, int]] = []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(directory), **kwargs)

            def log_request(self, code="-", size="-"):
                server.requests.append((self.path, int(code) if isinstance(code, int) else 0))

        super().__init__(("127.0.0.1", 0), Handler)


@pytest.fixture
def release(tmp_path):
    """`dist.py` output (plugin archive, SDK wheel, checksums) served over loopback HTTP."""
    out = tmp_path / "release" / f"v{version()}"
    binary = PLUGIN_DIR / "pulumi-resource-imagebuild"
    proc = subprocess.run([sys.executable, str(REPO / "scripts/dist.py"), "--binary", str(binary), "--out", str(out),
                           "--gzip-level", "1"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, f"scripts/dist.py failed:\n{proc.stdout}\n{proc.stderr}"
    server = ReleaseServer(tmp_path / "release")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield out, f"http://127.0.0.1:{server.server_address[1]}/v{version()}", server
    server.shutdown()
    server.server_close()


def fresh_venv(root: Path, wheel: Path) -> Path:
    """A new venv with the SDK installed from `wheel`; dependencies from the offline wheelhouse."""
    wheelhouse = Path(env_var("IMAGEBUILD_SDK_WHEELHOUSE"))
    if not any(wheelhouse.glob("pulumi-*.whl")):
        pytest.fail(f"no SDK dependency wheels in {wheelhouse}: run scripts/wheelhouses.sh (set-up)")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin/pip"), "install", "-q", "--disable-pip-version-check", "--no-index",
                          "--find-links", str(wheelhouse), str(wheel)], capture_output=True, text=True)
    assert pip.returncode == 0, f"installing {wheel.name} offline failed:\n{pip.stderr[-3000:]}"
    return venv


def test_up_downloads_the_plugin_named_by_the_sdk(tmp_path, release, registry: Registry, unique: str):
    out, base_url, server = release
    ver = version()
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    archive = f"pulumi-resource-imagebuild-v{ver}-{platform.system().lower()}-{machine}.tar.gz"
    assert (out / archive).is_file(), f"dist.py made no {archive}: {sorted(p.name for p in out.iterdir())}"
    sums = (out / f"pulumi-imagebuild_{ver}_checksums.txt").read_text()
    assert f"{hashlib.sha256((out / archive).read_bytes()).hexdigest()}  {archive}\n" in sums

    venv = fresh_venv(tmp_path, out / f"pulumi_imagebuild-{ver}-py3-none-any.whl")
    plugin_json = json.loads(subprocess.run(
        [str(venv / "bin/python"), "-c",
         "import importlib.resources as r; print(r.files('pulumi_imagebuild').joinpath('pulumi-plugin.json').read_text())"],
        capture_output=True, text=True, check=True).stdout)
    schema = json.loads((REPO / "schema.json").read_text())
    assert plugin_json == {"resource": True, "name": "imagebuild", "version": ver,
                           "server": schema["pluginDownloadURL"]}

    home = tmp_path / "pulumi-home"
    p = Project(tmp_path / "p", PROGRAM, plugin_dir=None, venv=venv)
    assert "plugins:" not in (p.dir / "Pulumi.yaml").read_text()
    p.env.pop("PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION", None)
    p.env.update(
        PULUMI_HOME=str(home),
        # Only the cache may hold the plugin: not $PATH, not a provider path.
        PULUMI_IGNORE_AMBIENT_PLUGINS="true",
        # Anchored on the SDK's own pluginDownloadURL: any other source would go to the internet and fail.
        PULUMI_PLUGIN_DOWNLOAD_URL_OVERRIDES=f"^{re.escape(schema['pluginDownloadURL'])}$={base_url}",
    )
    p.env["PATH"] = os.pathsep.join(d for d in p.env["PATH"].split(os.pathsep) if Path(d) != PLUGIN_DIR)
    repo = f"e2e-{unique}/fetched"
    p.init(config={"repository": f"{registry.address}/{repo}", "registryUser": registry.username},
           secrets={"registryPassword": registry.password})
    p.up()

    assert (f"/v{ver}/{archive}", 200) in server.requests, f"the archive was not fetched: {server.requests}"
    installed = home / "plugins" / f"resource-imagebuild-v{ver}" / "pulumi-resource-imagebuild"
    assert installed.is_file(), f"no plugin in the fresh PULUMI_HOME: {sorted(home.rglob('*'))[:20]}"
    assert installed.read_bytes() == (PLUGIN_DIR / "pulumi-resource-imagebuild").read_bytes()
    outputs = p.outputs()
    served = registry.digest(repo, outputs["hash"])
    assert served is not None and outputs["digest"] == served
    assert outputs["uri"] == f"{registry.address}/{repo}@{served}"

    # The cached plugin serves later commands without another download.
    fetched = len([r for r in server.requests if r[0].endswith(".tar.gz")])
    p.run("preview", "--expect-no-changes")
    assert len([r for r in server.requests if r[0].endswith(".tar.gz")]) == fetched
