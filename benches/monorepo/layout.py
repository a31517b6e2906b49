"""What the generated monorepo holds: the seed's .dockerignore, the big directories it drops, the
big data it keeps (read by no Dockerfile), the services and the Dockerfile in the seed's layer order.
Sizes are for scale 1.0 (~500 MB on disk, ~50 MB kept by the .dockerignore)."""
from __future__ import annotations

from dataclasses import dataclass

MB = 1024 * 1024
KB = 1024

# The seed's .dockerignore (/work/shared/seed/000_*.txt, "Minimize Docker Build Context"), verbatim,
# plus node_modules: the seed's list lacks it, but a monorepo with a web front end carries one.
DOCKERIGNORE = """\
**/__pycache__
**/*.pyc
**/.pytest_cache
**/.git
.venv/
*.md
tests/
docs/
.github/
scripts/
*.log
.DS_Store
.coverage
htmlcov/
.mypy_cache/
.ruff_cache/
*.egg-info/
dist/
build/
test_data/
receipt_data/
cdk.out/
.pulumi/
.vscode/
.idea/
# added for the benchmark (not in the seed's list)
**/node_modules
"""


@dataclass(frozen=True)
class Blobs:
    """`count` files of `size` bytes under `top`, `per_dir` to a sub-directory."""

    top: str
    count: int
    size: int
    ext: str
    per_dir: int = 100
    kept: bool = False

    def path(self, i: int) -> str:
        """The relative path of file `i`."""
        return f"{self.top}/d{i // self.per_dir:03d}/f{i:05d}{self.ext}"


# Dropped by the .dockerignore: ~450 MB in ~7,500 files (what a whole-repository context sends).
IGNORED = (
    Blobs(".git/objects/pack", 3, 40 * MB, ".pack"),
    Blobs(".git/objects/loose", 2000, 4 * KB, ""),
    Blobs("node_modules", 3000, 20 * KB, ".js", per_dir=40),
    Blobs("test_data", 130, 1 * MB, ".json", per_dir=20),
    Blobs(".venv/lib/python3.11/site-packages", 2000, 25 * KB, ".py", per_dir=50),
    Blobs("docs/images", 200, 250 * KB, ".png"),
    Blobs("receipt_data", 30, 1 * MB, ".jpg"),
)

# Kept by the .dockerignore but read by no Dockerfile: the gap between "whole context" and
# "what the Dockerfile reads".
KEPT_UNREAD = (
    Blobs("models", 4, 10 * MB, ".onnx", kept=True),
    Blobs("assets", 50, 100 * KB, ".bin", kept=True),
)

SERVICES = ("polling", "compaction", "submit", "embedding", "validation", "export")
PACKAGES = ("receipt_dynamo", "receipt_label")
MODULES_PER_PACKAGE = 150
SUBPACKAGES = ("entities", "data", "utils")

# Top-level requirements a service may pick (the wheelhouse resolves their dependencies), with
# the module each one is imported as.
REQUIREMENTS = {
    "requests": "requests",
    "python-dateutil": "dateutil",
    "jmespath": "jmespath",
    "attrs": "attr",
    "typing_extensions": "typing_extensions",
    "packaging": "packaging",
    "six": "six",
}


def dockerfile(service: str) -> str:
    """The service's Dockerfile, in the seed's layer order (least to most often changed)."""
    return f"""\
# {service}: a Lambda image; layers go from least to most often changed (the team's order).
FROM imagebuild-base/python:3.11
ENV LAMBDA_TASK_ROOT=/var/task
# Salts every layer below per contender, so no contender reuses another's layer cache.
ARG BENCH_SALT=none
# System step (the team's `dnf install`; nothing can be installed offline here): byte-compile
# part of the standard library, ~2 s of CPU like a small package install.
RUN mkdir -p ${{LAMBDA_TASK_ROOT}} && echo "$BENCH_SALT" > /etc/bench-salt \\
    && cd /usr/lib/python3.11 && python3 -m compileall -q -f email json asyncio xml http \\
       unittest logging multiprocessing >/dev/null
COPY services/{service}/requirements.txt ${{LAMBDA_TASK_ROOT}}/requirements.txt
RUN --mount=type=bind,source=wheels,target=/wheels \\
    pip install --no-index --find-links /wheels -r ${{LAMBDA_TASK_ROOT}}/requirements.txt
COPY packages/receipt_dynamo/ /tmp/receipt_dynamo/
COPY packages/receipt_label/ /tmp/receipt_label/
RUN pip install --no-index --no-build-isolation /tmp/receipt_dynamo /tmp/receipt_label
COPY services/{service}/handler.py ${{LAMBDA_TASK_ROOT}}/
WORKDIR /var/task
CMD ["handler.main"]
"""


def pyproject(package: str) -> str:
    """pyproject.toml of one shared package (setuptools, installed without build isolation)."""
    return f"""\
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "{package.replace('_', '-')}"
version = "1.0.0"
description = "Shared {package} code of the receipt monorepo"

[tool.setuptools.packages.find]
include = ["{package}*"]
"""
