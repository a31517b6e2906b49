"""Contender 1: `pulumi up` of program.py (one ContainerImage per service) with the real CLI, in its
own file backend, PULUMI_HOME and provider cache dir (tests/e2e/conftest.py's Project)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from monorepo import Monorepo
from outcome import Outcome

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests" / "e2e"))
from conftest import REPO, Project, json_events  # noqa: E402

TOKEN = "imagebuild:index:ContainerImage"
PROGRAM = (Path(__file__).parent / "program.py").read_text()
CHANGED_OPS = {"create", "update", "replace", "create-replacement"}
# Today's provider reports the whole (.dockerignore-filtered) context it tars; a later version
# adds the bytes it really sent. Read the better one when the provider has it.
SENT_KEYS = ("contextBytesSent", "contextBytes")


class PulumiContender:
    """One Pulumi project (state, PULUMI_HOME, cache dir) building the monorepo's images."""

    def __init__(self, root: Path, repo: Monorepo, prefix: str, salt: str, registry_env: dict, sdk: Path,
                 config: dict | None = None):
        self.project = Project(root, PROGRAM, name="bench-monorepo")
        (root / "pulumi-home").mkdir()
        self.project.env.update(
            PULUMI_HOME=str(root / "pulumi-home"),
            IMAGEBUILD_CACHE_DIR=str(root / "imagebuild-cache"),
            PYTHONPATH=os.pathsep.join(filter(None, [str(sdk), os.environ.get("PYTHONPATH")])),
        )
        self.project.init(
            config={
                "monorepoRoot": str(repo.root),
                "services": json.dumps(list(repo.services)),
                "repoPrefix": prefix,
                "salt": salt,
                "registryUser": registry_env["user"],
                **(config or {}),
            },
            secrets={"registryPassword": registry_env["password"]},
        )
        self.built_image_ids: set[str] = set()

    def up(self) -> Outcome:
        """One timed `pulumi up --yes --skip-preview --json`; images updated and bytes from its events."""
        start = time.perf_counter()
        proc = self.project.up("--json")
        wall = time.perf_counter() - start
        updated, sent, source = 0, 0, SENT_KEYS[-1]
        for op, outputs in _image_steps(json_events(proc.stdout)):
            if op not in CHANGED_OPS:
                continue
            updated += 1
            if outputs.get("imageId"):
                self.built_image_ids.add(outputs["imageId"])
            if outputs.get("adopted"):
                continue  # adopted from the registry: nothing was built, nothing sent
            key = next((k for k in SENT_KEYS if isinstance(outputs.get(k), (int, float))), None)
            if key is None:
                raise AssertionError(f"no {' or '.join(SENT_KEYS)} output in {sorted(outputs)}")
            sent, source = sent + int(outputs[key]), key
        return Outcome(wall, updated, sent, source)


def _image_steps(events: list[dict]) -> list[tuple[str, dict]]:
    """(op, new outputs) of every ContainerImage step the engine reported as finished."""
    steps = []
    for e in events:
        meta = (e.get("resOutputsEvent") or {}).get("metadata")
        if not meta or meta.get("type") != TOKEN:
            continue
        new = meta.get("new") or {}
        steps.append((meta.get("op", ""), new.get("outputs") or {}))
    return steps


def pulumi_floor(root: Path, rounds: int) -> float:
    """Median wall seconds of `pulumi up` of a program with no resource and no provider (the CLI,
    the Python language host and `import pulumi`): what any Pulumi provider's `up` costs here."""
    project = Project(root, "import pulumi\n", name="bench-floor")
    project.init()
    walls = []
    for _ in range(rounds):
        start = time.perf_counter()
        project.up()
        walls.append(time.perf_counter() - start)
    return sorted(walls)[len(walls) // 2]


def install_sdk(work: Path) -> Path:
    """This checkout's sdk-python installed into a private directory (for PYTHONPATH), so the
    bench never touches the shared venv and always runs the SDK that matches the plugin."""
    source, target = work / "sdk-src", work / "sdk"
    shutil.copytree(REPO / "sdk-python", source, ignore=shutil.ignore_patterns("build", "*.egg-info"))
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(source)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"installing {REPO / 'sdk-python'} into {target} failed:\n{proc.stderr[-3000:]}")
    return target


def registry_env() -> dict:
    """The test registry's address and credentials from scripts/env.sh, failing loudly without them."""
    names = {"address": "IMAGEBUILD_TEST_REGISTRY", "user": "IMAGEBUILD_TEST_REGISTRY_USER",
             "password": "IMAGEBUILD_TEST_REGISTRY_PASSWORD"}
    missing = [v for v in names.values() if not os.environ.get(v)]
    if missing:
        raise SystemExit(f"{', '.join(missing)} not set: `source scripts/env.sh` first")
    return {k: os.environ[v] for k, v in names.items()}
