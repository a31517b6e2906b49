"""The edit loop on a seed-like monorepo (context = repository root): an edit updates exactly
the images whose Dockerfile reads the edited file, a shared package edit exactly the images that
copy it, and a rebuilt base image every image built FROM it (digest chaining)."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

from conftest import PLUGIN_DIR, Project, Registry

PROGRAMS = Path(__file__).parent / "programs"
TOKEN = "imagebuild:index:ContainerImage"
PLUGIN = PLUGIN_DIR / "pulumi-resource-imagebuild"
# Six handlers; three copy each shared package.
SERVICES = {
    "ingest": "receipt_dynamo",
    "ocr": "receipt_dynamo",
    "merchant": "receipt_dynamo",
    "label": "receipt_label",
    "embed": "receipt_label",
    "notify": "receipt_label",
}
IGNORE = "**/__pycache__\n**/*.pyc\n.venv/\n*.md\ntests/\ndocs/\n"
BASE_DOCKERFILE = """\
FROM imagebuild-base/python:3.11
COPY base/requirements.txt /opt/requirements.txt
RUN cat /opt/requirements.txt > /opt/installed.txt
"""
SERVICE_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
ARG PACKAGE
ARG SERVICE
ENV LAMBDA_TASK_ROOT=/var/task
COPY packages/${PACKAGE}/ /opt/packages/${PACKAGE}/
COPY services/${SERVICE}/handler.py ${LAMBDA_TASK_ROOT}/
CMD ["python3", "/var/task/handler.py"]
"""


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def make_repo(root: Path) -> None:
    write(root / ".dockerignore", IGNORE)
    write(root / "base/Dockerfile", BASE_DOCKERFILE)
    write(root / "base/requirements.txt", "boto3==1.35.0\n")
    write(root / "services/Dockerfile", SERVICE_DOCKERFILE)
    for package in set(SERVICES.values()):
        for i in range(20):
            write(root / f"packages/{package}/{package}/mod_{i}.py", f"VALUE = {i}\n")
    for name in SERVICES:
        write(root / f"services/{name}/handler.py", f"def handler(e, c):\n    return {name!r}\n")
        write(root / f"services/{name}/tests/test_handler.py", "def test(): pass\n")
    write(root / "docs/guide.md", "# guide\n")
    write(root / "models/weights.bin", "x" * 100_000)


def monorepo_project(factory, registry: Registry, unique: str) -> Project:
    p = factory(PROGRAMS.joinpath("monorepo.py").read_text())
    make_repo(p.dir / "repo")
    return p.init(
        config={
            "repoPrefix": f"{registry.address}/mono-{unique}",
            "registryUser": registry.username,
            "services": json.dumps(SERVICES),
        },
        secrets={"registryPassword": registry.password},
    )


def planned_updates(p: Project) -> set[str]:
    """Names of the images `pulumi preview` plans to update (or replace)."""
    steps = json.loads(p.run("preview", "--json").stdout).get("steps", [])
    return {
        s["urn"].rsplit("::", 1)[-1]
        for s in steps
        if TOKEN in s["urn"] and s["op"] not in ("same", "read")
    }


def digests(p: Project) -> dict[str, str]:
    out = p.outputs()
    return {name: out[f"{name}_digest"] for name in SERVICES} | {"base": out["base_digest"]}


def changed(before: dict[str, str], after: dict[str, str]) -> set[str]:
    return {k for k in before if before[k] != after[k]}


def test_edits_update_exactly_the_images_that_read_them(project_factory, registry, unique):
    p = monorepo_project(project_factory, registry, unique)
    p.up()
    first = digests(p)
    p.run("preview", "--expect-no-changes")

    # Files no Dockerfile reads: ignored ones and kept-but-unread ones.
    repo = p.dir / "repo"
    (repo / "docs/guide.md").write_text("# guide, edited\n")
    (repo / "models/weights.bin").write_text("y" * 100_000)
    (repo / "services/ocr/tests/test_handler.py").write_text("def test(): assert True\n")
    assert planned_updates(p) == set()

    # One handler: exactly its image.
    handler = repo / "services/ingest/handler.py"
    handler.write_text(handler.read_text() + "# edited\n")
    assert planned_updates(p) == {"ingest"}
    p.up()
    after_handler = digests(p)
    assert changed(first, after_handler) == {"ingest"}
    p.up("--expect-no-changes")

    # One shared package: exactly the images that copy it.
    module = repo / "packages/receipt_label/receipt_label/mod_3.py"
    module.write_text("VALUE = 'edited'\n")
    assert planned_updates(p) == {"label", "embed", "notify"}
    p.up()
    after_package = digests(p)
    assert changed(after_handler, after_package) == {"label", "embed", "notify"}
    p.up("--expect-no-changes")

    # The base image rebuilt: the base and every image FROM it.
    (repo / "base/requirements.txt").write_text("boto3==1.35.1\n")
    p.up()
    after_base = digests(p)
    assert changed(after_package, after_base) == {"base", *SERVICES}
    p.up("--expect-no-changes")
    p.run("preview", "--expect-no-changes")


def test_upgrade_from_format_1_hashes_rebuilds_nothing(project_factory, registry, unique):
    """State written by a provider that hashed every kept file (format 1): the upgraded provider
    recognises unchanged images, reports no change, and records the current hash quietly."""
    p = monorepo_project(project_factory, registry, unique)
    p.up()
    before = digests(p)
    repo = p.dir / "repo"
    # The format 1 hash of each image, as the `context` command reports it for the same inputs.
    legacy, current = {}, {}
    for res in p.resources(TOKEN):
        name = res["urn"].rsplit("::", 1)[-1]
        inputs = res["inputs"]
        cmd = ["context", str(repo), "--dockerfile", str(p.dir / inputs["dockerfile"])]
        for k, v in sorted((inputs.get("buildArgs") or {}).items()):
            cmd += ["--build-arg", f"{k}={v}"]
        out = subprocess.run(
            [str(PLUGIN), *cmd], capture_output=True, text=True, check=True, cwd=p.dir
        ).stdout
        fields = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
        legacy[name], current[name] = fields["format 1"].strip(), fields["hash"].strip()
        assert current[name] == res["outputs"]["contextHash"], f"{name}: CLI and resource disagree"
    # Rewrite the state as the old provider would have left it.
    state = json.loads(p.export())
    for res in state["deployment"]["resources"]:
        name = res["urn"].rsplit("::", 1)[-1]
        if res["type"] == TOKEN:
            res["inputs"]["contextHash"] = legacy[name]
            res["outputs"]["contextHash"] = legacy[name]
    exported = p.dir / "old-state.json"
    exported.write_text(json.dumps(state))
    p.run("stack", "import", "--file", str(exported))

    p.run("preview", "--expect-no-changes")
    p.up("--expect-no-changes")
    assert digests(p) == before
    for res in p.resources(TOKEN):
        name = res["urn"].rsplit("::", 1)[-1]
        assert res["inputs"]["contextHash"] == current[name], f"{name}: new hash not recorded"
    p.run("preview", "--expect-no-changes")

    # A real change after the upgrade still updates exactly the image that reads it.
    handler = repo / "services/embed/handler.py"
    handler.write_text(handler.read_text() + "# edited\n")
    assert planned_updates(p) == {"embed"}


def test_bad_dockerfiles_fail_check_naming_the_file_and_line(project_factory, registry, unique):
    p = monorepo_project(project_factory, registry, unique)
    p.up()  # the handlers' build args (the base's digest) are known from now on
    dockerfile = p.dir / "repo/services/Dockerfile"
    dockerfile.write_text(SERVICE_DOCKERFILE + "FORM scratch\n")
    failed = p.run("preview", check=False)
    assert failed.returncode != 0
    text = failed.stdout + failed.stderr
    assert "services/Dockerfile: line 9: unknown instruction: FORM" in text, text[-3000:]

    dockerfile.write_text(SERVICE_DOCKERFILE.replace("handler.py", "missing_handler.py"))
    failed = p.run("preview", check=False)
    assert failed.returncode != 0
    text = failed.stdout + failed.stderr
    assert "COPY services/${SERVICE}/missing_handler.py" in text, text[-3000:]
    assert "does not exist in the build context" in text, text[-3000:]
