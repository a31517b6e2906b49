"""The build-slot sweep (`make bench-slots`, part of `make bench`): which default for
`maxParallelBuilds` serves the monorepo workload on this machine. Every contender is a `pulumi up`
of program.py with `imagebuild:maxParallelBuilds=N` (pushes always run outside the build slots,
bounded by `maxParallelPushes`, default 4), plus the seed's parallel docker loop (every build at
once, then every push at once) as the named baseline, all in one run on one monorepo:

- cold: empty registry repositories, a per-contender salt in the first RUN (no contender reuses
  another's layers);
- package edited: one module of the shared package every image installs changes (every image
  rebuilds its package layers).

An untimed warm-up build comes first (cold page caches would otherwise penalize whichever
contender runs first). One round each (a round rebuilds every image for every contender); contender order is rotated
between the two scenarios. Prints wall seconds and the ratio to the parallel loop."""
from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench import preflight  # noqa: E402  (also puts tests/e2e on sys.path)
from cleanup import remove_run  # noqa: E402
from docker_loops import DockerLoop  # noqa: E402
from layout import SERVICES  # noqa: E402
from monorepo import edit_package, generate  # noqa: E402
from pulumi_contender import PulumiContender, install_sdk, registry_env  # noqa: E402
from wheelhouse import ensure_wheelhouse  # noqa: E402


PARALLEL = "parallel docker loop"


def contenders(work: Path, repo, reg: dict, uid: str, slots: list[int], made: list) -> dict:
    """name -> runner, every one under its own registry prefix and salt."""
    prefix = f"{reg['address']}/bench-slots-{uid}"
    sdk = install_sdk(work)
    runners = {}
    for n in slots:
        c = PulumiContender(work / f"slots{n}", repo, f"{prefix}/slots{n}", f"{uid}-slots{n}", reg, sdk,
                            config={"imagebuild:maxParallelBuilds": str(n)})
        made.append(c)
        runners[f"pulumi up, {n} build slot{'s' if n > 1 else ''}"] = c.up
    loop = DockerLoop(repo, f"{prefix}/par", f"{uid}-par", work / "docker-par", reg)
    made.append(loop)
    runners[PARALLEL] = loop.parallel
    return runners


def run_round(name: str, runners: dict, rotate: int, results: dict, log) -> None:
    names = list(runners)
    order = names[rotate % len(names):] + names[: rotate % len(names)]
    for n in order:
        outcome = runners[n]()
        results.setdefault(n, {})[name] = outcome.wall
        log(f"{name} {n}: {outcome.wall:.1f} s, {outcome.updated} updated (load {os.getloadavg()[0]:.1f})")


def report(results: dict, scenarios: list[str]) -> None:
    print(f"\n== build-slot sweep: {os.cpu_count()} CPUs; ratio = wall / the {PARALLEL}'s in the same scenario ==")
    print(f"{'contender':34}" + "".join(f"{s:>22}" for s in scenarios))
    for name, row in results.items():
        cells = "".join(f"{row[s]:>10.1f} s {row[s] / results[PARALLEL][s]:>6.2f}x  " for s in scenarios)
        print(f"{name:34}{cells}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--slots", default="1,2,3,4,6", help="build-slot counts to compare")
    ap.add_argument("--seed", type=int, default=505833)
    ap.add_argument("--scale", type=float, default=1.0)
    args = ap.parse_args()
    slots = [int(x) for x in args.slots.split(",")]
    reg = registry_env()
    preflight(reg)
    started, uid = time.perf_counter(), uuid.uuid4().hex[:8]
    log = lambda msg: print(f"[{time.perf_counter() - started:6.0f}s] {msg}", flush=True)  # noqa: E731
    work = Path(tempfile.mkdtemp(prefix=f"imagebuild-bench-slots-{uid}-"))
    made: list = []
    results: dict = {}
    try:
        repo = generate(work / "repo", args.seed, ensure_wheelhouse(), args.scale, SERVICES)
        log(f"load average at start {os.getloadavg()[0]:.1f}; {len(repo.services)} images")
        runners = contenders(work, repo, reg, uid, slots, made)
        # Untimed: the first build of a run pays for cold page caches (the monorepo, the
        # wheelhouse, the base image's layers); without this the first cold contender loses.
        warm = DockerLoop(repo, f"{reg['address']}/bench-slots-{uid}/warm", f"{uid}-warm", work / "warm", reg)
        made.append(warm)
        log(f"warm-up (untimed): parallel loop {warm.parallel().wall:.1f} s")
        run_round("cold", runners, 0, results, log)
        edit_package(repo, "receipt_dynamo", f"{uid}-package")
        run_round("package edited", runners, len(runners) // 2, results, log)
        report(results, ["cold", "package edited"])
    finally:
        kinds = [f"slots{n}" for n in slots] + ["par", "warm"]
        repos = [f"bench-slots-{uid}/{c}/{s}" for c in kinds for s in SERVICES]
        remove_run(reg, f"bench-slots-{uid}", made, repos, log)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
