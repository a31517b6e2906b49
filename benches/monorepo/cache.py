"""The registry-cache bench (`make bench-cache`, part of `make bench`): a fresh CI runner after a
shared package changed, on Docker Engine 29 (containerd image store, the engine that can export a
registry cache). Every contender builds the same six images with the same salt, each on a "fresh
machine": Engine 29's build cache is emptied (`docker builder prune -af`; images, including the
base images, stay, as on a runner with a pre-pulled base) before each timed run.

- pulumi up, registry cache: ContainerImage with `cacheTo`/`cacheFrom` at <prefix>/<service>:
  buildcache, exported by an earlier untimed run before the package was edited;
- pulumi up, no registry cache: the same program without them (fresh state, own repositories);
- parallel docker loop: the seed's script (every build at once, then every push), no cache.

Prints wall seconds, images built and the ratio to the parallel loop."""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench import preflight  # noqa: E402  (also puts tests/e2e on sys.path)
from cleanup import remove_run  # noqa: E402
from docker_loops import DOCKER, DockerLoop  # noqa: E402
from layout import SERVICES  # noqa: E402
from monorepo import edit_package, generate  # noqa: E402
from pulumi_contender import PulumiContender, install_sdk, registry_env  # noqa: E402
from wheelhouse import ensure_wheelhouse  # noqa: E402


PARALLEL = "parallel docker loop"
WITH_CACHE = "pulumi up, registry cache"
WITHOUT_CACHE = "pulumi up, no registry cache"


def engine29() -> str:
    """Engine 29's address; every docker and pulumi call of this bench goes there."""
    host = os.environ.get("IMAGEBUILD_TEST_DOCKER29_HOST")
    if not host:
        raise SystemExit("IMAGEBUILD_TEST_DOCKER29_HOST not set: `source scripts/env.sh` first")
    os.environ["DOCKER_HOST"] = host
    return host


def fresh_machine(log) -> None:
    """Empties Engine 29's build cache, as on a new CI runner."""
    start = time.perf_counter()
    proc = subprocess.run([DOCKER, "builder", "prune", "-af"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"docker builder prune failed: {proc.stderr.strip()}")
    log(f"build cache emptied (untimed, {time.perf_counter() - start:.1f} s)")


def pulumi(work: Path, name: str, repo, reg: dict, uid: str, sdk: Path, host: str, cached: bool):
    prefix = f"{reg['address']}/bench-cache-{uid}"
    config = {"imagebuild:dockerHost": host}
    if cached:
        config["cachePrefix"] = f"{prefix}/cache"
    # The salt is the same for every contender: they all build the same layers.
    return PulumiContender(work / name, repo, f"{prefix}/{name}", f"{uid}-salt", reg, sdk, config=config)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=505833)
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args()
    host = engine29()
    reg = registry_env()
    preflight(reg)
    started, uid = time.perf_counter(), uuid.uuid4().hex[:8]
    log = lambda msg: print(f"[{time.perf_counter() - started:6.0f}s] {msg}", flush=True)  # noqa: E731
    work = Path(tempfile.mkdtemp(prefix=f"imagebuild-bench-cache-{uid}-"))
    made: list = []
    results: dict = {}
    try:
        repo = generate(work / "repo", args.seed, ensure_wheelhouse(), args.scale, SERVICES)
        sdk = install_sdk(work)
        log(f"load average at start {os.getloadavg()[0]:.1f}; {len(repo.services)} images on {host}")
        seeder = pulumi(work, "seed", repo, reg, uid, sdk, host, cached=True)
        made.append(seeder)
        log(f"CI run before the edit (untimed, exports the registry cache): {seeder.up().wall:.1f} s")
        edit_package(repo, "receipt_dynamo", f"{uid}-package")
        cached = pulumi(work, "cached", repo, reg, uid, sdk, host, cached=True)
        uncached = pulumi(work, "uncached", repo, reg, uid, sdk, host, cached=False)
        made += [cached, uncached]
        runners = {WITH_CACHE: cached.up, WITHOUT_CACHE: uncached.up}
        loop = DockerLoop(repo, f"{reg['address']}/bench-cache-{uid}/par", f"{uid}-salt", work / "par", reg)
        made.append(loop)
        runners[PARALLEL] = lambda: loop.parallel(no_cache=False)
        for name, run in runners.items():
            fresh_machine(log)
            outcome = run()
            results[name] = outcome
            log(f"new machine + package edited, {name}: {outcome.wall:.1f} s, {outcome.updated} built "
                f"(load {os.getloadavg()[0]:.1f})")
        base = results[PARALLEL].wall
        print(f"\n== new machine + shared package edited, Engine 29, {os.cpu_count()} CPUs ==")
        for name, o in results.items():
            print(f"{name:32} {o.wall:8.1f} s {o.wall / base:6.2f}x the parallel loop, {o.updated} images")
    finally:
        kinds = ["seed", "cached", "uncached", "par", "cache"]
        repos = [f"bench-cache-{uid}/{k}/{s}" for k in kinds for s in SERVICES]
        remove_run(reg, f"bench-cache-{uid}", made, repos, log)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
