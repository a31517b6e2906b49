"""Two ContainerImages that record one digest: destroying one never deletes what the other records.

Each resource holds a claim tag on its digest (`claimTag`); destroy releases it before it asks
which tags still point at the digest, so `deleteOnDestroy` deletes only what no one else claims,
and destroying every claimant together still deletes the image.
"""
from __future__ import annotations

import json
from pathlib import Path

from conftest import Project, Registry

PROGRAMS = Path(__file__).parent / "programs"


def shared_project(factory, registry: Registry, repo: str, images: dict[str, bool]) -> Project:
    p = factory(PROGRAMS.joinpath("shared_digest.py").read_text())
    return p.init(
        config={
            "repository": f"{registry.address}/{repo}",
            "registryUser": registry.username,
            "images": json.dumps(images),
        },
        secrets={"registryPassword": registry.password},
    )


def set_images(p: Project, images: dict[str, bool]) -> None:
    p.run("config", "set", "images", json.dumps(images))


def test_destroy_keeps_a_digest_another_resource_records(project_factory, registry: Registry, unique: str):
    repo = f"e2e-{unique}/shared"
    p = shared_project(project_factory, registry, repo, {"a": True, "b": False})
    p.up()
    out = p.outputs()
    digest = out["a_digest"]
    assert out["b_digest"] == digest, out
    claims = {out["a_claim"], out["b_claim"]}
    assert len(claims) == 2 and all(c.startswith("imagebuild-claim-") for c in claims), out
    for claim in claims:
        assert registry.digest(repo, claim) == digest, claim

    # `a` leaves the program: its destroy (deleteOnDestroy) must leave b's digest in place.
    set_images(p, {"b": False})
    up = p.up()
    assert "other tags still point at it" in up.stdout, up.stdout[-3000:]
    assert registry.digest(repo, digest) == digest
    assert registry.digest(repo, out["b_claim"]) == digest
    assert out["a_claim"] not in registry.tags(repo), "a's claim was not released"

    # refresh keeps b: its digest is still there.
    p.run("refresh", "--yes")
    assert [r["urn"].rsplit("::", 1)[-1] for r in p.resources()] == ["b"]

    # b turns deleteOnDestroy on (an update keeps its claim) and c claims the same digest; a
    # destroy of both together releases both claims and deletes the image: nothing leaks.
    set_images(p, {"b": True, "c": True})
    p.up()
    now = p.outputs()
    assert now["b_claim"] == out["b_claim"], "an update must keep the resource's claim tag"
    assert now["c_digest"] == digest and now["c_claim"] not in claims, now
    p.run("destroy", "--yes")
    assert registry.digest(repo, digest) is None, "destroying every claimant must delete the image"
    assert registry.digest(repo, now["c_hash"]) is None
