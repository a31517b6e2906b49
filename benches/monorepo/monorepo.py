"""Generates the benchmark's monorepo (deterministic from a seed) and makes its edits.

    python benches/monorepo/monorepo.py DIR [--seed N] [--scale F]

writes a fresh monorepo into DIR (which must not exist) and prints its sizes."""
from __future__ import annotations

import argparse
import random
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
import layout  # noqa: E402
from content import handler_source, python_module, write_blob, write_text  # noqa: E402
from wheelhouse import ensure_wheelhouse  # noqa: E402

EDIT_MARKER = "BENCH_EDIT = "


@dataclass
class Monorepo:
    """A generated monorepo: its root (the build context of every image) and its services."""

    root: Path
    services: tuple[str, ...]
    disk_bytes: int
    files: int

    def dockerfile(self, service: str) -> Path:
        """The service's Dockerfile (inside the context)."""
        return self.root / "services" / service / "Dockerfile"


def _blobs(root: Path, spec: layout.Blobs, scale: float, rng: random.Random) -> tuple[int, int]:
    count = max(1, round(spec.count * scale))
    return sum(write_blob(root / spec.path(i), spec.size, rng) for i in range(count)), count


def _package(root: Path, name: str, modules: int, rng: random.Random) -> tuple[int, int]:
    top = root / "packages" / name
    size = write_text(top / "pyproject.toml", layout.pyproject(name))
    size += write_text(top / "README.md", f"# {name}\n\nShared code (ignored by `*.md`).\n")
    size += write_text(top / name / "__init__.py", f'"""{name}."""\n__version__ = "1.0.0"\n')
    files = 3
    for sub in layout.SUBPACKAGES:
        size += write_text(top / name / sub / "__init__.py", "")
        files += 1
    for i in range(modules):
        sub = layout.SUBPACKAGES[i % len(layout.SUBPACKAGES)]
        size += write_text(top / name / sub / f"mod_{i:03d}.py", python_module(name, i, rng))
        # Stale byte code a developer's checkout carries (dropped by `**/__pycache__`).
        if i % 5 == 0:
            size += write_blob(top / name / sub / "__pycache__" / f"mod_{i:03d}.cpython-311.pyc", 3000, rng)
            files += 1
    size += write_text(top / "tests" / "test_smoke.py", f"import {name}\n")
    return size, files + modules + 1


def _service(root: Path, name: str, rng: random.Random) -> tuple[int, int]:
    top = root / "services" / name
    picks = sorted(rng.sample(sorted(layout.REQUIREMENTS), rng.randint(2, 5)))
    size = write_text(top / "Dockerfile", layout.dockerfile(name))
    size += write_text(top / "requirements.txt", "\n".join(picks) + "\n")
    size += write_text(top / "handler.py", handler_source(name, [layout.REQUIREMENTS[p] for p in picks]))
    size += write_text(top / "README.md", f"# {name}\n")
    return size, 4


def generate(root: Path, seed: int, wheelhouse: Path, scale: float = 1.0,
             services: tuple[str, ...] = layout.SERVICES) -> Monorepo:
    """Writes the monorepo into `root` (must not exist); the same seed gives the same bytes."""
    rng = random.Random(seed)
    root.mkdir(parents=True)
    size = write_text(root / ".dockerignore", layout.DOCKERIGNORE)
    files = 1
    for spec in layout.IGNORED + layout.KEPT_UNREAD:
        s, n = _blobs(root, spec, scale, rng)
        size, files = size + s, files + n
    modules = max(3, round(layout.MODULES_PER_PACKAGE * min(1.0, scale * 10)))
    for name in layout.PACKAGES:
        s, n = _package(root, name, modules, rng)
        size, files = size + s, files + n
    for name in services:
        s, n = _service(root, name, rng)
        size, files = size + s, files + n
    (root / "wheels").mkdir()
    for wheel in sorted(wheelhouse.glob("*.whl")):
        shutil.copyfile(wheel, root / "wheels" / wheel.name)
        size, files = size + wheel.stat().st_size, files + 1
    size += write_text(root / "infra" / "__main__.py", "# the team's Pulumi program lives here\n")
    size += write_text(root / "README.md", "# receipt monorepo (generated for imagebuild's bench)\n")
    return Monorepo(root, tuple(services), size, files + 2)


def _stamp(path: Path, tag: str) -> None:
    """Replaces the file's edit marker line (or adds one): a real content change every time."""
    lines = [ln for ln in path.read_text().splitlines() if not ln.startswith(EDIT_MARKER)]
    path.write_text("\n".join(lines + [f"{EDIT_MARKER}{tag!r}"]) + "\n")


def edit_handler(repo: Monorepo, service: str, tag: str) -> Path:
    """Edits one service's handler (only that image's last layer depends on it)."""
    path = repo.root / "services" / service / "handler.py"
    _stamp(path, tag)
    return path


def edit_package(repo: Monorepo, package: str, tag: str) -> Path:
    """Edits one module of a shared package (every image installs it)."""
    path = sorted((repo.root / "packages" / package / package / "utils").glob("mod_*.py"))[0]
    _stamp(path, tag)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dir", type=Path)
    ap.add_argument("--seed", type=int, default=505833)
    ap.add_argument("--scale", type=float, default=1.0, help="blob sizes/counts factor (1.0 = ~500 MB)")
    args = ap.parse_args()
    repo = generate(args.dir, args.seed, ensure_wheelhouse(), args.scale)
    print(f"{repo.root}: {repo.files} files, {repo.disk_bytes / layout.MB:.1f} MiB, services {', '.join(repo.services)}")


if __name__ == "__main__":
    main()
