"""ContainerImage end to end: the real Pulumi CLI, the plugin, Docker and the local registry."""
from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

from conftest import ENGINE_20_10, Project, Registry, docker, engine29_host, json_events

PROGRAMS = Path(__file__).parent / "programs"
SERVICES = ["orders", "payments", "notifications"]
TOKEN = "imagebuild:index:ContainerImage"


def images_project(factory, registry: Registry, unique: str, sub: str = "p", **config) -> Project:
    p = factory(PROGRAMS.joinpath("images.py").read_text(), sub)
    base = {
        "repoPrefix": f"{registry.address}/e2e-{unique}",
        "registryUser": registry.username,
        "imagebuild:maxParallelBuilds": "3",
    }
    base.update({k: v for k, v in config.items() if v is not None})
    return p.init(config=base, secrets={"registryPassword": registry.password})


def planned_ops(preview_json: str) -> list[tuple[str, str]]:
    steps = json.loads(preview_json).get("steps", [])
    return [(s["op"], s["urn"].rsplit("::", 1)[-1]) for s in steps if TOKEN in s["urn"]]


def build_windows(events: list[dict]) -> dict[str, tuple[float, float]]:
    """Per resource name: first and last time the provider reported build progress."""
    windows: dict[str, list[float]] = {}
    for e in events:
        diag = e.get("diagnosticEvent")
        if not diag or TOKEN not in diag.get("urn", ""):
            continue
        msg = diag.get("message", "")
        if msg.startswith("step ") or msg.startswith("building"):
            name = diag["urn"].rsplit("::", 1)[-1]
            windows.setdefault(name, []).append(float(e["timestamp"]))
    return {k: (min(v), max(v)) for k, v in windows.items()}


def row_endings(events: list[dict]) -> dict[str, str]:
    """Per resource name: the last message kept on its row (ephemeral status lines excluded)."""
    ends = {}
    for e in events:
        diag = e.get("diagnosticEvent")
        if diag and TOKEN in diag.get("urn", "") and not diag.get("ephemeral"):
            ends[diag["urn"].rsplit("::", 1)[-1]] = diag["message"].strip()
    return ends


def stack_messages(events: list[dict]) -> list[str]:
    """The provider's messages on the stack's row."""
    return [
        e["diagnosticEvent"]["message"].strip()
        for e in events
        if "pulumi:pulumi:Stack" in e.get("diagnosticEvent", {}).get("urn", "")
        and e["diagnosticEvent"]["message"].startswith("imagebuild")
    ]


BUILT = re.compile(r"built in [\d.]+ s, (\d+) of (\d+) steps cached, [\d.]+ (?:B|kB|MB|GB) pushed")


def test_lifecycle(project_factory, registry: Registry, unique: str, engine_host: str):
    p = images_project(project_factory, registry, unique, deleteOnDestroy="true",
                       **{"imagebuild:dockerHost": engine_host})
    prefix = f"e2e-{unique}"

    # Preview on a new stack plans three creates and builds nothing.
    preview = p.run("preview", "--json")
    assert sorted(planned_ops(preview.stdout)) == sorted(("create", s) for s in SERVICES)
    assert all(registry.tags(f"{prefix}/{s}") == [] for s in SERVICES)

    # up builds the three images concurrently and pushes them; digests match the registry.
    up = p.up("--json")
    out = p.outputs()
    for s in SERVICES:
        served = registry.digest(f"{prefix}/{s}", out[f"{s}_hash"])
        assert served is not None, f"{s}: hash tag not in the registry"
        assert out[f"{s}_digest"] == served
        assert out[f"{s}_uri"] == f"{registry.address}/{prefix}/{s}@{served}"
        assert out[f"{s}_adopted"] is False
        assert registry.digest(f"{prefix}/{s}", "latest") == served
    # Each row ends with what happened to it; the stack's one message totals the run.
    events = json_events(up.stdout)
    ends = row_endings(events)
    for s in SERVICES:
        built = BUILT.fullmatch(ends.get(s, ""))
        assert built, f"{s}: the row does not end with the build summary: {ends}"
        assert [int(built[1]), int(built[2])] == out[f"{s}_steps"], (ends[s], out[f"{s}_steps"])
        assert out[f"{s}_steps"][1] == 6, f"{s}: six Dockerfile steps, got {out[f'{s}_steps']}"
        # Layers the registry holds already (other tests pushed the same bytes) cost nothing.
        assert out[f"{s}_pushed"] >= 0
    (summary,) = stack_messages(events)
    assert re.fullmatch(r"imagebuild: 3 images: 3 built \([\d.]+ s of build time\)", summary), summary
    windows = build_windows(events)
    assert set(windows) == set(SERVICES), f"build progress missing for some images: {windows}"
    latest_start = max(w[0] for w in windows.values())
    earliest_end = min(w[1] for w in windows.values())
    assert latest_start <= earliest_end, f"builds did not overlap: {windows}"

    # Nothing changed: no update, no diff, no drift; each row says unchanged.
    noop = json_events(p.up("--expect-no-changes", "--json").stdout)
    assert all(row_endings(noop).get(s, "").startswith("unchanged") for s in SERVICES), row_endings(noop)
    assert stack_messages(noop) == ["imagebuild: 3 images: 3 unchanged"], stack_messages(noop)
    p.run("preview", "--expect-no-changes")
    p.run("refresh", "--yes", "--expect-no-changes")

    # A file change in one context updates exactly that image, and the diff names the file.
    handler = p.dir / "app/services/payments/handler.py"
    handler.write_text(handler.read_text() + f"\n# changed {unique}\n")
    diff = p.run("preview", "--diff")
    assert "contextHash" in diff.stdout
    # The engine prints the provider's diagnostics on stderr in --diff mode.
    assert "services/payments/handler.py" in diff.stdout + diff.stderr, diff
    ops = planned_ops(p.run("preview", "--json").stdout)
    assert [o for o in ops if o[0] != "same"] == [("update", "payments")], ops
    edited = json_events(p.up("--json").stdout)
    after = p.outputs()
    # Only the handler's layer is new (its bytes are this test's own): the steps before its
    # COPY come from the cache, and the push uploads that one small layer, not the image.
    cached, total = after["payments_steps"]
    assert total == 6 and 4 <= cached < total, after["payments_steps"]
    assert 0 < after["payments_pushed"] < 1_000_000, after["payments_pushed"]
    assert BUILT.fullmatch(row_endings(edited)["payments"]), row_endings(edited)
    (summary,) = stack_messages(edited)
    assert re.fullmatch(r"imagebuild: 3 images: 1 built \([\d.]+ s of build time\), 2 unchanged", summary), summary
    assert after["payments_digest"] != out["payments_digest"]
    assert after["orders_digest"] == out["orders_digest"]
    assert after["notifications_digest"] == out["notifications_digest"]

    # A file excluded by .dockerignore changes nothing.
    (p.dir / "app/docs/README.md").write_text("edited\n")
    (p.dir / "app/services/orders/notes.md").write_text("ignored by **/*.md\n")
    p.run("preview", "--expect-no-changes")

    # The image vanishes from the registry: refresh notices, the next up builds it again.
    registry.delete(f"{prefix}/notifications", after["notifications_digest"])
    p.run("refresh", "--yes")
    names = [r["urn"].rsplit("::", 1)[-1] for r in p.resources()]
    assert "notifications" not in names, names
    p.up()
    again = p.outputs()
    assert again["notifications_adopted"] is False
    assert registry.digest(f"{prefix}/notifications", again["notifications_hash"]) is not None

    # destroy with deleteOnDestroy removes what was pushed.
    p.run("destroy", "--yes")
    for s in SERVICES:
        assert registry.digest(f"{prefix}/{s}", again[f"{s}_hash"]) is None, s


def test_fresh_stack_adopts_existing_images(project_factory, registry: Registry, unique: str):
    first = images_project(project_factory, registry, unique, "a", services='["notifications"]')
    first.up()
    built = first.outputs()

    second = images_project(project_factory, registry, unique, "b", services='["notifications"]')
    second.up()
    adopted = second.outputs()
    assert adopted["notifications_adopted"] is True
    assert adopted["notifications_digest"] == built["notifications_digest"]
    assert adopted["notifications_uri"] == built["notifications_uri"]


def test_secret_never_in_plaintext(project_factory, registry: Registry, unique: str):
    secret = f"s3cr3t-{unique}-value"
    p = images_project(project_factory, registry, unique, services='["orders"]')
    p.run("config", "set", "--secret", "buildSecret", secret)
    dockerfile = p.dir / "app/services/orders/Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text()
        + "RUN --mount=type=secret,id=token sh -c 'wc -c < /run/secrets/token > /token-length'\n"
    )
    up = p.run("up", "--yes", "--skip-preview", "--json", "--logtostderr", "--logflow", "-v=9")
    assert json_events(up.stdout), "no engine events"
    assert secret not in up.stdout, "secret in the engine events"
    assert secret not in up.stderr, "secret in the engine log"
    assert secret not in p.export(), "secret in the stack state"

    digest = p.outputs()["orders_digest"]
    assert digest.startswith("sha256:")
    ref = docker("images", "-q", "--no-trunc", f"{registry.address}/e2e-{unique}/orders").stdout.split()
    assert ref, "the built image is not in the local engine"
    history = docker("history", "--no-trunc", ref[0]).stdout
    inspect = docker("image", "inspect", ref[0]).stdout
    assert secret not in history and secret not in inspect
    length = docker("run", "--rm", ref[0], "cat", "/token-length").stdout.strip()
    assert length == str(len(secret)), "the secret did not reach the RUN step"


BAD_PROGRAM = """
import pulumi_imagebuild as ib
ib.ContainerImage("bad", push=False, {args})
"""


def run_bad(factory, sub: str, args: str, config: dict | None = None) -> str:
    p = factory(BAD_PROGRAM.format(args=args), sub)
    p.init(config=config)
    proc = p.run("up", "--yes", "--skip-preview", "--logtostderr", "--logflow", "-v=9", check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, f"expected failure for {args}"
    assert "panicked" not in text, "the provider panicked"
    return proc.stdout


def test_bad_inputs_name_the_property(project_factory, registry: Registry):
    out = run_bad(project_factory, "ctx", 'context="missing-dir"')
    assert "context" in out and "missing-dir" in out and "does not exist" in out

    out = run_bad(project_factory, "df", 'context="app", dockerfile="app/nope/Dockerfile"')
    assert "dockerfile" in out and "app/nope/Dockerfile" in out

    out = run_bad(project_factory, "plat", 'context="app", dockerfile="app/services/orders/Dockerfile", platform="linux/amd65"')
    assert "platform" in out and "linux/amd65" in out

    out = run_bad(project_factory, "type", 'context="app", dockerfile="app/services/orders/Dockerfile", no_cache="sometimes"')
    assert "noCache" in out and "must be a boolean" in out

    out = run_bad(
        project_factory, "host", 'context="app", dockerfile="app/services/orders/Dockerfile"',
        config={"imagebuild:dockerHost": "tcp://127.0.0.1:1"},
    )
    assert "tcp://127.0.0.1:1" in out and "Docker" in out

    out = run_bad(project_factory, "cachemode",
                  'context="app", dockerfile="app/services/orders/Dockerfile", '
                  'cache_to=ib.CacheToArgs(ref="127.0.0.1:5000/x/app:cache", mode="all")')
    assert "cacheTo.mode" in out and "`all` is not a cache mode" in out

    # Engine 20.10's BuildKit cannot export a registry cache: Check says so before any build.
    out = run_bad(project_factory, "cache20",
                  'context="app", dockerfile="app/services/orders/Dockerfile", '
                  'cache_to=ib.CacheToArgs(ref="127.0.0.1:5000/x/app:cache")',
                  config={"imagebuild:dockerHost": ENGINE_20_10})
    assert "cacheTo" in out and "Engine 20.10" in out and "containerd image store" in out


def test_wrong_registry_password_names_the_registry(project_factory, registry: Registry, unique: str):
    wrong = f"wrong-{unique}-pw"
    p = project_factory(PROGRAMS.joinpath("images.py").read_text(), "pw")
    p.init(
        config={"repoPrefix": f"{registry.address}/e2e-{unique}", "registryUser": registry.username,
                "services": '["notifications"]'},
        secrets={"registryPassword": wrong},
    )
    proc = p.up(check=False)
    assert proc.returncode != 0
    assert registry.address in proc.stdout
    assert wrong not in proc.stdout + proc.stderr
    assert "panicked" not in proc.stdout + proc.stderr


SLOW_PROGRAM = """
import pulumi_imagebuild as ib
ib.ContainerImage("slow", push=False, context="app",
                  dockerfile_inline="FROM imagebuild-base/busybox:latest\\nRUN sleep {seconds}\\n")
"""


def test_ctrl_c_stops_the_build(project_factory, unique: str):
    seconds = 600 + int(unique[:4], 16) % 300  # unique, so the process can be recognised
    p = project_factory(SLOW_PROGRAM.format(seconds=seconds), "slow")
    p.init()
    proc = subprocess.Popen(
        ["pulumi", "up", "--yes", "--skip-preview", "--non-interactive"],
        cwd=p.dir, env=p.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )

    def sleeping() -> bool:
        ps = subprocess.run(["pgrep", "-f", f"sleep {seconds}"], capture_output=True, text=True)
        return ps.returncode == 0

    deadline = time.time() + 120
    while not sleeping():
        assert proc.poll() is None, f"pulumi exited early:\n{proc.stdout.read()}"
        assert time.time() < deadline, "the build never started"
        time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    try:
        output, _ = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise AssertionError("pulumi up did not stop within 60 s of Ctrl-C")
    assert proc.returncode != 0
    stop_deadline = time.time() + 30
    while sleeping():
        assert time.time() < stop_deadline, "the build kept running on the daemon after Ctrl-C"
        time.sleep(0.5)
    assert "panicked" not in output


class Forwarder:
    """A TCP forwarder to the registry on a port of its own, so a test can take it away."""

    def __init__(self, target: str):
        import socket
        import threading

        host, port = target.split(":")
        self.target = (host, int(port))
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.open = True
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        import threading

        while self.open:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def close(self):
        self.open = False
        self.server.close()


def test_refresh_keeps_state_when_the_registry_is_unreachable(project_factory, registry: Registry, unique: str):
    forwarder = Forwarder(registry.address)
    try:
        p = project_factory(PROGRAMS.joinpath("images.py").read_text(), "net")
        p.init(
            config={"repoPrefix": f"127.0.0.1:{forwarder.port}/e2e-{unique}",
                    "registryUser": registry.username, "services": '["notifications"]'},
            secrets={"registryPassword": registry.password},
        )
        p.up()
    finally:
        forwarder.close()
    proc = p.run("refresh", "--yes", check=False)
    assert proc.returncode != 0, "refresh succeeded although the registry was unreachable"
    assert "kept in state" in proc.stdout, proc.stdout[-3000:]
    names = [r["urn"].rsplit("::", 1)[-1] for r in p.resources()]
    assert names == ["notifications"], "an unreachable registry dropped the resource from state"


CACHE_PROGRAM = """
import pulumi
import pulumi_imagebuild as ib

cfg = pulumi.Config()
image = ib.ContainerImage(
    "cached",
    context="app",
    dockerfile="app/services/orders/Dockerfile",
    repository=cfg.require("repo"),
    cache_to=ib.CacheToArgs(ref=cfg.require("cacheRef")),
    registry_auth=ib.RegistryCredentialsArgs(
        username=cfg.require("registryUser"),
        password=cfg.require_secret("registryPassword"),
    ),
)
pulumi.export("digest", image.digest)
"""


def test_cache_to_exports_an_oci_cache_on_engine_29(project_factory, registry: Registry, unique: str):
    p = project_factory(CACHE_PROGRAM)
    p.init(
        config={
            "repo": f"{registry.address}/cacheto-{unique}/orders",
            "cacheRef": f"{registry.address}/cacheto-{unique}/orders:buildcache",
            "registryUser": registry.username,
            "imagebuild:dockerHost": engine29_host(),
        },
        secrets={"registryPassword": registry.password},
    )
    p.up()
    with registry._request("GET", f"cacheto-{unique}/orders/manifests/buildcache",
                           "application/vnd.oci.image.manifest.v1+json") as r:
        manifest = json.load(r)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json", manifest
    assert manifest["config"]["mediaType"] == "application/vnd.buildkit.cacheconfig.v0", manifest
    assert p.outputs()["digest"].startswith("sha256:")


def test_a_changed_provider_config_applies_to_the_first_up(project_factory, registry: Registry, unique: str):
    """`imagebuild:dockerHost` set, then removed: each first `up` after the change builds on the
    newly configured daemon (DiffConfig reports the change, so the engine reconfigures the
    provider instead of reusing the old configuration), and no image is replaced."""
    e29 = engine29_host()
    p = images_project(project_factory, registry, unique, services='["orders"]')
    p.up()
    first = p.outputs()
    handler = p.dir / "app/services/orders/handler.py"

    def edit_and_up(marker: str) -> dict:
        handler.write_text(handler.read_text() + f"\n# {marker}\n")
        up = p.up("--json")
        ops = [(s["op"], s["urn"].rsplit("::", 1)[-1]) for s in _step_events(up.stdout)]
        assert ("replace", "orders") not in ops and ("create-replacement", "orders") not in ops, ops
        return p.outputs()

    p.run("config", "set", "imagebuild:dockerHost", e29)
    on29 = edit_and_up(f"engine29-{unique}")
    assert on29["orders_hash"] != first["orders_hash"]
    built_on = docker("-H", e29, "image", "inspect", "-f", "{{.Id}}", on29["orders_uri"], check=False)
    assert built_on.returncode == 0, f"the first up after setting dockerHost did not build on Engine 29: {built_on.stderr}"

    p.run("config", "rm", "imagebuild:dockerHost")
    back = edit_and_up(f"engine20-{unique}")
    built_on = docker("-H", ENGINE_20_10, "image", "inspect", "-f", "{{.Id}}", back["orders_uri"], check=False)
    assert built_on.returncode == 0, f"the first up after removing dockerHost did not build on Engine 20.10: {built_on.stderr}"
    missing = docker("-H", e29, "image", "inspect", back["orders_uri"], check=False)
    assert missing.returncode != 0, "built on Engine 29 although dockerHost was removed"
    docker("-H", e29, "rmi", "-f", on29["orders_uri"], check=False)


def _step_events(stdout: str) -> list[dict]:
    return [e["resOutputsEvent"]["metadata"] for e in json_events(stdout) if e.get("resOutputsEvent")]


def test_a_misspelt_provider_key_warns_naming_the_closest_one(project_factory):
    """`imagebuild:maxParalelBuilds` is not silently dropped: preview warns and names the key the
    user most likely meant."""
    p = project_factory(BAD_PROGRAM.format(
        args='context="app", dockerfile="app/services/orders/Dockerfile"'), "typo")
    p.init(config={"imagebuild:maxParalelBuilds": "3"})
    out = p.run("preview").stdout
    assert "imagebuild:maxParalelBuilds is not a provider setting and is ignored" in out, out
    assert "did you mean imagebuild:maxParallelBuilds?" in out, out
