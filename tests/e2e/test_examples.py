"""The example programs in examples/, run as they are (copied, with absolute tool paths): the
seed-like monorepo whose handlers build FROM a shared base by digest, and its FastContainerImage
twin on the CodeBuild double."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from conftest import PLUGIN_DIR, REPO, VENV, Project, Registry
from test_fast_container_image import aws, endpoint  # noqa: F401 (aws: the moto + double fixture)

EXAMPLES = REPO / "examples"
SERVICES = ["orders", "payments", "notifications"]


def example_project(root: Path, name: str) -> Project:
    """examples/<name> and examples/monorepo copied under `root`, wheels filled, paths made absolute."""
    wheels = Path(os.environ.get("IMAGEBUILD_EXAMPLE_WHEELHOUSE", "/nonexistent"))
    if not any(wheels.glob("*.whl")):
        pytest.fail(f"no wheels in {wheels}: run scripts/wheelhouses.sh (set-up)")
    p = Project(root, "", name=f"example-{name}")
    shutil.rmtree(p.dir)
    skip = shutil.ignore_patterns(".pulumi-state", "Pulumi.*.yaml", "wheels", "__pycache__")
    shutil.copytree(EXAMPLES / name, p.dir, ignore=skip)
    if name != "monorepo":
        shutil.copytree(EXAMPLES / "monorepo", p.dir.parent / "monorepo", ignore=skip)
    app = (p.dir if name == "monorepo" else p.dir.parent / "monorepo") / "app"
    (app / "wheels").mkdir()
    for wheel in wheels.glob("*.whl"):
        shutil.copyfile(wheel, app / "wheels" / wheel.name)
    yaml = p.dir / "Pulumi.yaml"
    text = yaml.read_text()
    assert "../../.venv" in text and "../../target/debug" in text, text
    yaml.write_text(text.replace("../../.venv", str(VENV)).replace("../../target/debug", str(PLUGIN_DIR)))
    return p


def planned(p: Project) -> dict[str, str]:
    """Image name -> planned op in a `preview --json` (which leaves unchanged resources out: "same")."""
    steps = json.loads(p.run("preview", "--json").stdout).get("steps", [])
    ops = {s["urn"].rsplit("::", 1)[-1]: s["op"] for s in steps if "imagebuild:index:" in s["urn"]}
    return {name: ops.pop(name, "same") for name in ["base", *SERVICES]} | ops


def test_monorepo_example_chains_the_base_digest(tmp_path, registry: Registry, unique: str):
    p = example_project(tmp_path / "m", "monorepo")
    prefix = f"e2e-{unique}/monorepo"
    p.init(config={"repoPrefix": f"{registry.address}/{prefix}", "registryUser": registry.username},
           secrets={"registryPassword": registry.password})
    p.up()
    first = p.outputs()
    base_digest = first["base_image"].rsplit("@", 1)[1]
    assert registry.digest(f"{prefix}/base", base_digest) == base_digest
    for s in SERVICES:
        assert registry.digest(f"{prefix}/{s}", first[f"{s}_hash"]) == first[f"{s}_image"].rsplit("@", 1)[1]
    p.run("preview", "--expect-no-changes")

    # One handler edited: only it rebuilds; the unchanged base rebuilds nothing else.
    handler = p.dir / "app/services/payments/handler.py"
    handler.write_text(handler.read_text() + "\n# edited\n")
    ops = planned(p)
    assert ops == {"base": "same", "orders": "same", "payments": "update", "notifications": "same"}, ops
    p.up()
    second = p.outputs()
    assert second["base_image"] == first["base_image"]
    assert second["payments_hash"] != first["payments_hash"]
    assert [second[f"{s}_image"] for s in ("orders", "notifications")] == \
        [first[f"{s}_image"] for s in ("orders", "notifications")]

    # A shared package edited: the base rebuilds, and through its new digest every handler.
    pkg = p.dir / "app/packages/receipt_common/receipt_common/__init__.py"
    pkg.write_text(pkg.read_text() + "\n# edited\n")
    assert planned(p) == {"base": "update", **{s: "update" for s in SERVICES}}
    p.up()
    third = p.outputs()
    assert third["base_image"] != second["base_image"]
    for s in SERVICES:
        assert third[f"{s}_hash"] != second[f"{s}_hash"], s
        assert registry.digest(f"{prefix}/{s}", third[f"{s}_hash"]) is not None, s
    p.run("preview", "--expect-no-changes")


def test_fast_example_builds_base_and_handler_on_codebuild(tmp_path, registry: Registry, aws, unique: str):
    p = example_project(tmp_path / "f", "fast")
    bucket = f"e2e-example-{unique}"
    aws["s3"].create_bucket(Bucket=bucket)
    moto = endpoint("IMAGEBUILD_TEST_MOTO_ENDPOINT")
    p.env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1")
    prefix = f"e2e-{unique}/fast"
    p.init(config={
        "repoPrefix": f"{registry.address}/{prefix}", "contextBucket": bucket,
        "serviceRoleArn": "arn:aws:iam::123456789012:role/imagebuild-e2e", "services": '["orders"]',
        "registryUser": registry.username, "imagebuild:region": "us-east-1",
        "imagebuild:s3Endpoint": moto, "imagebuild:logsEndpoint": moto, "imagebuild:ecrEndpoint": moto,
        "imagebuild:codebuildEndpoint": endpoint("IMAGEBUILD_TEST_CODEBUILD_ENDPOINT"),
    }, secrets={"registryPassword": registry.password})
    p.up()
    out = p.outputs()
    base_digest = out["base_image"].rsplit("@", 1)[1]
    assert registry.digest(f"{prefix}/base", base_digest) == base_digest
    assert out["orders_build_status"] == "SUCCEEDED"
    orders_digest = out["orders_image"].rsplit("@", 1)[1]
    assert registry.digest(f"{prefix}/orders", orders_digest) == orders_digest
    p.run("preview", "--expect-no-changes")
