"""Removes what one bench run made, and nothing else: its local tags and the image ids it built
(never `docker builder prune`: other engineers share this dockerd), and its registry manifests."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "e2e"))
from conftest import Registry  # noqa: E402

DOCKER = os.environ.get("IMAGEBUILD_DOCKER", "/usr/bin/docker")


def _docker(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([DOCKER, *args], capture_output=True, text=True)


def remove_local_images(prefix: str, image_ids: set[str]) -> list[str]:
    """`docker rmi` of every tag under `prefix` (this run's unique one), then of the ids this run
    built (without -f: an id another tag still uses stays). Returns what could not be removed."""
    listing = _docker("images", "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
    # `repo:<none>` rows are pushed images whose tag moved on: removed below by id.
    tags = [t for t in listing if t.startswith(prefix) and not t.endswith(":<none>")]
    problems = []
    if tags:
        out = _docker("rmi", *tags)
        if out.returncode != 0:
            problems.append(out.stderr.strip())
    if image_ids:
        # One call: docker goes on past an id it cannot remove and names each one on stderr.
        out = _docker("rmi", *sorted(image_ids))
        problems += [ln for ln in out.stderr.splitlines() if ln.strip() and "No such image" not in ln]
    return problems


def remove_registry_repos(registry: Registry, repos: list[str]) -> list[str]:
    """Deletes every manifest of this run's repositories (blobs go at the registry's next GC)."""
    problems = []
    for repo in repos:
        for tag in registry.tags(repo):
            try:
                digest = registry.digest(repo, tag)
                if digest:
                    registry.delete(repo, digest)
            except Exception as e:  # noqa: BLE001 - a tag deleted through its twin's digest is fine
                if "404" not in str(e):
                    problems.append(f"{repo}:{tag}: {e}")
    return problems


def remove_run(reg: dict, run: str, made: list, repos: list[str], log) -> None:
    """Everything one run made: its local tags (under <registry>/<run>/) and the image ids its
    contenders (`made`) built, then the manifests of its registry repositories; logs what is left."""
    ids = set().union(*(m.built_image_ids for m in made)) if made else set()
    problems = remove_local_images(f"{reg['address']}/{run}/", ids)
    problems += remove_registry_repos(Registry(reg["address"], reg["user"], reg["password"]), repos)
    log("cleaned up" + ("" if not problems else ": left behind:\n  " + "\n  ".join(problems)))
