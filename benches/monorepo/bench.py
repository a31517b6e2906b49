"""`make bench-monorepo`: the team's monorepo workload, three contenders in one run (`pulumi up`
with ContainerImage, a sequential docker build+push loop, the seed's parallel loop), the same
scenarios for each, and the issue's targets. See benches/monorepo/README.md for how to read it."""
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
from cleanup import remove_run  # noqa: E402
from docker_loops import DOCKER, DockerLoop  # noqa: E402
from layout import SERVICES  # noqa: E402
from monorepo import Monorepo, edit_handler, edit_package, generate  # noqa: E402
from outcome import Outcome, median  # noqa: E402
from pulumi_contender import PulumiContender, install_sdk, pulumi_floor, registry_env  # noqa: E402
from report import CONTENDERS, PAR, PULUMI, SEQ, human, table, targets  # noqa: E402
from wheelhouse import ensure_wheelhouse  # noqa: E402

from conftest import PLUGIN_DIR, Registry  # noqa: E402  (tests/e2e, put on sys.path by pulumi_contender)

PLUGIN = PLUGIN_DIR / "pulumi-resource-imagebuild"
COLD, NOOP, HANDLER, PACKAGE, NEW = "cold", "no-op", "handler edited", "package edited", "new machine"
FLOOR = "pulumi floor"


def preflight(reg: dict) -> None:
    """The plugin, the CLI, dockerd and the registry must be there; say which is missing."""
    if not PLUGIN.exists():
        raise SystemExit(f"plugin not built at {PLUGIN}: run `make bench-plugin` (cargo build --release --bins), or `make build` with IMAGEBUILD_PLUGIN_DIR unset")
    if shutil.which("pulumi") is None:
        raise SystemExit("pulumi CLI not on PATH: run scripts/setup.sh and `source scripts/env.sh`")
    probe = subprocess.run([DOCKER, "info"], capture_output=True, text=True)
    if probe.returncode != 0:
        raise SystemExit(f"dockerd not reachable ({probe.stderr.strip()}): run scripts/start-services.sh")
    try:
        Registry(reg["address"], reg["user"], reg["password"]).tags("bench-mono-preflight/none")
    except Exception as e:  # noqa: BLE001 - any failure means the registry is not usable
        raise SystemExit(f"registry {reg['address']} not reachable ({e}): run scripts/start-services.sh")


def read_context_bytes(repo: Monorepo) -> int:
    """What one image's hash covers (the files its Dockerfile reads, after .dockerignore), by the
    plugin's own `context` command."""
    out = subprocess.run([str(PLUGIN), "context", str(repo.root), "--dockerfile",
                          str(repo.dockerfile(repo.services[0]))], capture_output=True, text=True)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("bytes:")), None)
    if out.returncode != 0 or line is None:
        raise SystemExit(f"`{PLUGIN.name} context {repo.root}` gave no `bytes:` line:\n{out.stdout}{out.stderr}")
    return int(line.split()[1])


def our_repos(uid: str, services: tuple) -> list[str]:
    """Every registry repository this run pushes to."""
    return [f"bench-mono-{uid}/{c}/{s}" for c in ("pulumi", "seq", "par", "warm") for s in services]


def require_empty_repos(reg: dict, uid: str, services: tuple) -> None:
    """Cold means cold: none of this run's repositories may hold a tag yet."""
    registry = Registry(reg["address"], reg["user"], reg["password"])
    taken = [r for r in our_repos(uid, services) if registry.tags(r)]
    if taken:
        raise SystemExit(f"registry repositories not empty before the cold run: {taken}")


def run_scenario(name: str, runners: dict, rounds: int, prepare, results: dict, log) -> None:
    """`rounds` timed runs of every contender (order rotated per round); stores the medians."""
    runs: dict[str, list[Outcome]] = {c: [] for c in CONTENDERS}
    for i in range(rounds):
        prepare(i)
        order = CONTENDERS[i % 3:] + CONTENDERS[: i % 3]
        for contender in order:
            outcome = runners[contender]()
            runs[contender].append(outcome)
            log(f"{name} #{i + 1} {contender}: {outcome.wall:.2f} s, {outcome.updated} updated, "
                f"{human(outcome.sent_bytes)} sent  (load {os.getloadavg()[0]:.1f})")
    results[name] = {c: median(v) for c, v in runs.items()}


def run_all(work: Path, repo: Monorepo, reg: dict, uid: str, repeats: tuple[int, int], log,
            made: list) -> dict:
    """Every scenario in order; returns the medians. Every contender goes into `made` as soon as
    it exists, so a failed run still removes what it built."""
    prefix = f"{reg['address']}/bench-mono-{uid}"
    start = time.perf_counter()
    sdk = install_sdk(work)
    pulumi = PulumiContender(work / "pulumi", repo, f"{prefix}/pulumi", f"{uid}-pulumi", reg, sdk)
    seq = DockerLoop(repo, f"{prefix}/seq", f"{uid}-seq", work / "docker-seq", reg)
    par = DockerLoop(repo, f"{prefix}/par", f"{uid}-par", work / "docker-par", reg)
    made += [pulumi, seq, par]
    log(f"set-up (SDK copy, stack init, docker logins; not timed) took {time.perf_counter() - start:.1f} s")
    results: dict = {FLOOR: pulumi_floor(work / "floor", 3)}
    log(f"pulumi up of an empty program (no provider): {results[FLOOR]:.2f} s")
    runners = {PULUMI: pulumi.up, SEQ: seq.sequential, PAR: par.parallel}
    nothing = lambda i: None  # noqa: E731
    require_empty_repos(reg, uid, repo.services)
    # Untimed: the first build of a run pays for cold page caches (the monorepo, the wheelhouse,
    # the base image's layers), which would penalize whichever contender the cold round runs first.
    warm = DockerLoop(repo, f"{prefix}/warm", f"{uid}-warm", work / "docker-warm", reg)
    made.append(warm)
    log(f"warm-up (untimed): parallel loop {warm.parallel().wall:.1f} s")
    run_scenario(COLD, runners, 1, nothing, results, log)
    run_scenario(NOOP, runners, repeats[0], nothing, results, log)
    run_scenario(HANDLER, runners, repeats[0],
                 lambda i: edit_handler(repo, repo.services[0], f"{uid}-handler-{i}"), results, log)
    run_scenario(PACKAGE, runners, repeats[1],
                 lambda i: edit_package(repo, "receipt_dynamo", f"{uid}-package-{i}"), results, log)
    # A colleague's machine: fresh PULUMI_HOME, state and hash cache; the registry has every image.
    fresh = PulumiContender(work / "pulumi-new", repo, f"{prefix}/pulumi", f"{uid}-pulumi", reg, sdk)
    made.append(fresh)
    new_runners = {PULUMI: fresh.up, SEQ: lambda: seq.sequential(no_cache=True),
                   PAR: lambda: par.parallel(no_cache=True)}
    run_scenario(NEW, new_runners, 1, nothing, results, log)
    return results


def print_report(results: dict, repo: Monorepo, read: int, repeats: tuple[int, int], elapsed: float) -> None:
    print("\n== monorepo bench: pulumi up (ContainerImage) vs docker build loops ==")
    print(f"monorepo: {len(repo.services)} Lambda images, {repo.files} files, {human(repo.disk_bytes)} on disk, "
          f"the whole root is each image's context; {human(read)} of it is what one image's Dockerfile reads "
          f"(and its hash covers)")
    print(f"cold = empty registry repos, daemon layer cache cold for every contender (a per-contender "
          f"BENCH_SALT build arg salts every layer above the base); medians of {repeats[0]} no-op and "
          f"handler-edit rounds and {repeats[1]} package-edit rounds (cold, new machine: one round); "
          f"new machine: pulumi with fresh PULUMI_HOME/state/cache dir, loops with --no-cache")
    floor = results.pop(FLOOR)
    print(table(results))
    print(f"\npulumi up of an empty program (the CLI, the Python host, `import pulumi`; no provider): "
          f"{floor:.2f} s, {floor / results[PACKAGE][PAR].wall:.2f}x of the parallel loop's package edit "
          f"and {floor / results[COLD][PAR].wall:.2f}x of its cold build: what any provider's `up` pays here")
    print("\ntargets (pulumi up):")
    for t in targets(results, HANDLER, PACKAGE, COLD, NOOP):
        print(t.line())
    print(f"\ntotal bench time {elapsed / 60:.1f} min; load average now {os.getloadavg()[0]:.1f} "
          f"on {os.cpu_count()} CPUs (dockerd is shared: other engineers' builds add noise)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seed", type=int, default=505833, help="monorepo seed (same seed, same bytes)")
    ap.add_argument("--repeats", type=int, default=3, help="timed rounds of no-op and handler edit")
    # Two, not three, by default: each package-edit round rebuilds 18 images (~2.5 min under load),
    # and three kept the whole run above 15 minutes on the shared 2-core machine.
    ap.add_argument("--package-repeats", type=int, default=2, help="timed rounds of the package edit")
    ap.add_argument("--scale", type=float, default=1.0, help="monorepo size factor (1.0 = ~500 MB)")
    ap.add_argument("--services", type=int, default=len(SERVICES), choices=range(1, len(SERVICES) + 1),
                    help="images to build (fewer only for a quick try)")
    args = ap.parse_args()
    reg = registry_env()
    preflight(reg)
    started, uid = time.perf_counter(), uuid.uuid4().hex[:8]
    work = Path(tempfile.mkdtemp(prefix=f"imagebuild-bench-mono-{uid}-"))
    print(f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    log = lambda msg: print(f"[{time.perf_counter() - started:6.0f}s] {msg}", flush=True)  # noqa: E731
    made: list = []
    repo: Monorepo | None = None
    try:
        repo = generate(work / "repo", args.seed, ensure_wheelhouse(), args.scale, SERVICES[: args.services])
        read = read_context_bytes(repo)
        log(f"generated {repo.root}: {repo.files} files, {human(repo.disk_bytes)}; one image reads {human(read)}")
        repeats = (args.repeats, args.package_repeats)
        results = run_all(work, repo, reg, uid, repeats, log, made)
        print_report(results, repo, read, repeats, time.perf_counter() - started)
    finally:
        cleanup(reg, uid, made, repo.services if repo else (), log)
        shutil.rmtree(work, ignore_errors=True)


def cleanup(reg: dict, uid: str, made: list, services: tuple, log) -> None:
    """This run's local tags and image ids, then its registry repositories."""
    remove_run(reg, f"bench-mono-{uid}", made, our_repos(uid, services), log)


if __name__ == "__main__":
    main()
