"""Import of an image already in a registry, through the real CLI: `pulumi import` by digest
(Read given only the id, the provider's credentials, nothing written to the registry), and the
`import` resource option by the hash tag, which the program that built the image adopts with no
change and no build."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import Project, Registry

PROGRAM = Path(__file__).parent.joinpath("programs", "imported.py").read_text()
TOKEN = "imagebuild:index:ContainerImage"


def project(factory, registry: Registry, repo: str, sub: str, import_id: str | None = None) -> Project:
    p = factory(PROGRAM, sub)
    config = {
        "repository": f"{registry.address}/{repo}",
        "imagebuild:registryAuth[0].address": registry.address,
        "imagebuild:registryAuth[0].username": registry.username,
    }
    if import_id:
        config["importId"] = import_id
    p.run("stack", "init", "test")
    for key, value in config.items():
        p.run("config", "set", "--path", key, value)
    p.run("config", "set", "--path", "--secret", "imagebuild:registryAuth[0].password", registry.password)
    return p


def test_an_image_built_elsewhere_imports_by_digest_and_by_hash_tag(project_factory, registry: Registry,
                                                                     unique: str):
    repo = f"e2e-{unique}/imported"
    built = project(project_factory, registry, repo, "built")
    built.up()
    made = built.outputs()
    digest, context_hash = made["digest"], made["hash"]
    tags_before = sorted(registry.tags(repo))

    # `pulumi import` by digest: the state records the registry's image; Pulumi's generated code
    # lacks `context`, which the provider says how to fix.
    target = project(project_factory, registry, repo, "cli")
    image_id = f"{registry.address}/{repo}@{digest}"
    generated = target.dir / "imported_code.py"
    out = target.run("import", TOKEN, "orders", image_id, "--yes", "--out", str(generated))
    assert "set `context`" in out.stdout + out.stderr, out.stdout[-3000:]
    [resource] = target.resources()
    assert resource["id"] == image_id
    assert resource["outputs"]["digest"] == digest
    assert resource["inputs"]["repository"] == f"{registry.address}/{repo}"
    assert "contextHash" not in resource["outputs"]
    assert f"{registry.address}/{repo}" in generated.read_text()
    assert sorted(registry.tags(repo)) == tags_before, "an import writes nothing to the registry"

    # The `import` resource option by the hash tag: the program that built it matches, so the
    # import succeeds; nothing is built, and the next `up` has nothing to do.
    adopted = project(project_factory, registry, repo, "option", f"{registry.address}/{repo}:{context_hash}")
    up = adopted.up("--json")
    events = [json.loads(line) for line in up.stdout.splitlines() if line.startswith("{")]
    ops = [e["resOutputsEvent"]["metadata"]["op"] for e in events
           if TOKEN in e.get("resOutputsEvent", {}).get("metadata", {}).get("urn", "")]
    assert ops == ["import"], ops
    assert adopted.outputs()["digest"] == digest
    again = adopted.run("preview", "--json")
    plan = json.loads(again.stdout)
    steps = [s["op"] for s in plan.get("steps", []) if TOKEN in s["urn"]]
    assert set(steps) <= {"same"} and set(plan["changeSummary"]) == {"same"}, plan
