"""Contenders 2 and 3: what the team ran before, with Debian's docker CLI (`DOCKER_BUILDKIT=1
/usr/bin/docker build -f ... -t ... <root>` and `docker push`): a sequential loop, and the seed's
all-at-once parallel script (every build started at once, then every push)."""
from __future__ import annotations

import os
import re
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from monorepo import Monorepo
from outcome import Outcome

DOCKER = os.environ.get("IMAGEBUILD_DOCKER", "/usr/bin/docker")
# BuildKit's plain progress: `#6 transferring context: 24.89kB 0.0s done` (go-units, base 1000).
_TRANSFER = re.compile(r"^#(\d+) transferring (?:context|dockerfile): ([\d.]+)\s*([kMGT]?B)", re.M)
_UNITS = {"B": 1, "kB": 10**3, "MB": 10**6, "GB": 10**9, "TB": 10**12}


def sent_bytes(progress: str) -> int:
    """Bytes the CLI sent to the daemon in one build: the last figure of each transfer vertex."""
    last: dict[str, int] = {}
    for vertex, number, unit in _TRANSFER.findall(progress):
        last[vertex] = round(float(number) * _UNITS[unit])
    return sum(last.values())


class DockerLoop:
    """Builds and pushes every service with the docker CLI, under its own registry prefix and
    DOCKER_CONFIG (so the registry login never touches the user's ~/.docker)."""

    def __init__(self, repo: Monorepo, prefix: str, salt: str, docker_config: Path, registry: dict):
        self.repo, self.prefix, self.salt = repo, prefix, salt
        self.env = dict(os.environ, DOCKER_BUILDKIT="1", DOCKER_CONFIG=str(docker_config))
        self.iid_dir = docker_config / "iids"
        self.iid_dir.mkdir(parents=True, exist_ok=True)
        self.built_image_ids: set[str] = set()
        self._docker(["login", registry["address"], "-u", registry["user"], "--password-stdin"],
                     stdin=registry["password"])

    def tag(self, service: str) -> str:
        """The reference the loop builds and pushes for `service`."""
        return f"{self.prefix}/{service}:latest"

    def _docker(self, args: list[str], stdin: str | None = None) -> str:
        proc = subprocess.run([DOCKER, *args], env=self.env, input=stdin, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"docker {' '.join(args[:3])} ... failed ({proc.returncode}):\n"
                               f"{(proc.stdout + proc.stderr)[-4000:]}")
        return proc.stdout + proc.stderr

    def build(self, service: str, no_cache: bool) -> int:
        """One `docker build` of `service`; returns the bytes the CLI reported sending."""
        iid = self.iid_dir / f"{service}.iid"
        args = ["build", "--progress=plain", "-f", str(self.repo.dockerfile(service)),
                "-t", self.tag(service), "--build-arg", f"BENCH_SALT={self.salt}", "--iidfile", str(iid)]
        output = self._docker(args + (["--no-cache"] if no_cache else []) + [str(self.repo.root)])
        self.built_image_ids.add(iid.read_text().strip())
        return sent_bytes(output)

    def push(self, service: str) -> None:
        """`docker push` of the service's tag."""
        self._docker(["push", self.tag(service)])

    def sequential(self, no_cache: bool = False) -> Outcome:
        """Build then push each image, one after another."""
        start, sent = time.perf_counter(), 0
        for service in self.repo.services:
            sent += self.build(service, no_cache)
            self.push(service)
        return Outcome(time.perf_counter() - start, len(self.repo.services), sent, "docker progress")

    def parallel(self, no_cache: bool = False) -> Outcome:
        """The seed's script: every build started at once; then every push at once."""
        services = self.repo.services
        start = time.perf_counter()
        with ThreadPoolExecutor(max_workers=len(services)) as pool:
            sent = sum(pool.map(lambda s: self.build(s, no_cache), services))
            list(pool.map(self.push, services))
        return Outcome(time.perf_counter() - start, len(services), sent, "docker progress")
