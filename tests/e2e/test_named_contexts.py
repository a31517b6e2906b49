"""Named build contexts through the Pulumi CLI: a Lambda's context is its own folder and the shared
packages are named contexts with their own .dockerignore. On Engine 29 (BuildKit's Control API)
the images contain exactly the used, non-ignored package files, and an edit updates exactly the
images that read the edited file. On Engine 20.10 (BuildKit 0.8) preview fails in Check, naming
`contexts` and the engine."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import Project, Registry, engine29_host

PROGRAMS = Path(__file__).parent / "programs"
TOKEN = "imagebuild:index:ContainerImage"
SERVICES = {"ingest": "receipt_dynamo", "ocr": "receipt_dynamo", "label": "receipt_label"}
PACKAGE_IGNORE = "**/__pycache__\ntests/\n*.md\n"
DOCKERFILE = """\
FROM base
COPY --from=pkg src/ /opt/pkg/
RUN --mount=from=pkg,source=setup.cfg,target=/tmp/setup.cfg cp /tmp/setup.cfg /opt/setup.cfg
COPY handler.py /var/task/
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_repo(root: Path) -> None:
    for package in set(SERVICES.values()):
        pkg = root / "packages" / package
        write(pkg / ".dockerignore", PACKAGE_IGNORE)
        write(pkg / "setup.cfg", f"[metadata]\nname = {package}\n")
        write(pkg / "README.md", "# not sent\n")
        write(pkg / "tests/test_pkg.py", "def test(): pass\n")
        for i in range(3):
            write(pkg / f"src/{package}/mod_{i}.py", f"VALUE = {i}\n")
        write(pkg / "notes/unread.txt", "no instruction reads this\n")
    for name in SERVICES:
        write(root / f"services/{name}/Dockerfile", DOCKERFILE)
        write(root / f"services/{name}/handler.py", f"def handler(e, c):\n    return {name!r}\n")


def project(factory, registry: Registry, unique: str, host: str) -> Project:
    p = factory(PROGRAMS.joinpath("named_contexts.py").read_text())
    make_repo(p.dir / "repo")
    return p.init(
        config={
            "repoPrefix": f"{registry.address}/named-{unique}",
            "registryUser": registry.username,
            "services": json.dumps(SERVICES),
            "imagebuild:dockerHost": host,
        },
        secrets={"registryPassword": registry.password},
    )


def planned_updates(p: Project) -> set[str]:
    steps = json.loads(p.run("preview", "--json").stdout).get("steps", [])
    return {s["urn"].rsplit("::", 1)[-1] for s in steps if TOKEN in s["urn"] and s["op"] not in ("same", "read")}


def image_files(host: str, ref: str) -> list[str]:
    out = subprocess.run(["docker", "-H", host, "run", "--rm", ref, "find", "/opt", "-type", "f"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return sorted(out.stdout.split())


def test_named_contexts_build_and_rebuild_exactly_what_reads_them(project_factory, registry, unique):
    host = engine29_host()
    p = project(project_factory, registry, unique, host)
    p.up()
    out = p.outputs()
    files = image_files(host, out["ingest_tag"])
    assert files == [
        "/opt/pkg/receipt_dynamo/mod_0.py",
        "/opt/pkg/receipt_dynamo/mod_1.py",
        "/opt/pkg/receipt_dynamo/mod_2.py",
        "/opt/setup.cfg",
    ], files
    p.run("preview", "--expect-no-changes")

    repo = p.dir / "repo"
    # Ignored by the package's own .dockerignore, or kept but read by no instruction.
    (repo / "packages/receipt_dynamo/tests/test_pkg.py").write_text("def test(): assert 1\n")
    (repo / "packages/receipt_dynamo/notes/unread.txt").write_text("edited\n")
    assert planned_updates(p) == set()

    # Read through COPY --from: the images whose `pkg` is that package.
    (repo / "packages/receipt_dynamo/src/receipt_dynamo/mod_1.py").write_text("VALUE = 'x'\n")
    assert planned_updates(p) == {"ingest", "ocr"}
    # Read through RUN --mount=from: likewise.
    (repo / "packages/receipt_label/setup.cfg").write_text("[metadata]\nname = edited\n")
    assert planned_updates(p) == {"ingest", "ocr", "label"}
    p.up()
    after = p.outputs()
    assert all(after[f"{n}_digest"] != out[f"{n}_digest"] for n in SERVICES)
    assert "VALUE = 'x'" in subprocess.run(
        ["docker", "-H", host, "run", "--rm", after["ocr_tag"], "cat", "/opt/pkg/receipt_dynamo/mod_1.py"],
        capture_output=True, text=True, check=True).stdout
    p.up("--expect-no-changes")


def test_engine_20_10_fails_check_naming_contexts(project_factory, registry, unique):
    p = project(project_factory, registry, unique, "unix:///var/run/docker.sock")
    proc = p.run("preview", check=False)
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text
    assert "contexts" in text and "Engine 23" in text and "20.10" in text, text
