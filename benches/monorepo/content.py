"""Deterministic file contents for the generated monorepo: incompressible blobs and plausible
Python modules, all derived from one seeded random generator so a seed always gives the same bytes."""
from __future__ import annotations

import random
from pathlib import Path

# Blobs are written in pieces so a 40 MB file never sits in memory twice.
_CHUNK = 4 * 1024 * 1024


def write_blob(path: Path, size: int, rng: random.Random) -> int:
    """Writes `size` pseudo-random (incompressible) bytes to `path`; returns the size."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        left = size
        while left > 0:
            n = min(_CHUNK, left)
            f.write(rng.randbytes(n))
            left -= n
    return size


def write_text(path: Path, text: str) -> int:
    """Writes `text` (UTF-8) to `path`, making parents; returns the byte count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    path.write_bytes(data)
    return len(data)


_WORDS = (
    "receipt line item merchant total tax word label dynamo batch page ocr box token "
    "embedding vector score status record key cursor shard window"
).split()


def _ident(rng: random.Random, parts: int = 2) -> str:
    return "_".join(rng.choice(_WORDS) for _ in range(parts))


def python_module(package: str, index: int, rng: random.Random) -> str:
    """One module of a shared package: a dataclass and a few pure functions (~3-5 KB)."""
    cls = "".join(w.title() for w in _ident(rng, 3).split("_")) + f"{index:03d}"
    fields = sorted({_ident(rng) for _ in range(rng.randint(4, 8))})
    lines = [
        f'"""{package}: {cls} and helpers (generated module {index})."""',
        "from __future__ import annotations",
        "",
        "from dataclasses import dataclass, field",
        "",
        "",
        "@dataclass",
        f"class {cls}:",
        f'    """A {" ".join(fields[0].split("_"))} record as stored by {package}."""',
        "",
    ]
    lines += [f"    {name}: str = field(default=\"\")" for name in fields]
    lines += ["", "    def to_item(self) -> dict:", '        """The record as a DynamoDB-style item."""']
    lines += ["        return {"] + [f'            "{n}": {{"S": self.{n}}},' for n in fields] + ["        }", ""]
    for f in range(rng.randint(3, 6)):
        name = f"{_ident(rng)}_{f}"
        a, b = rng.randint(2, 97), rng.randint(2, 97)
        lines += [
            "",
            f"def {name}(values: list[float]) -> float:",
            f'    """Weighted score of `values` ({a}/{b} rule)."""',
            "    total = 0.0",
            "    for i, v in enumerate(values):",
            f"        total += v * ((i % {a}) + 1) / {b}",
            "    return total",
        ]
    return "\n".join(lines) + "\n"


def handler_source(service: str, imports: list[str]) -> str:
    """The Lambda handler of one service; imports the shared packages and its requirements."""
    body = "\n".join(f"import {m}  # noqa: F401" for m in imports)
    return (
        f'"""The {service} Lambda handler."""\n'
        f"{body}\n"
        "import receipt_dynamo\n"
        "import receipt_label\n\n\n"
        "def main(event, context):\n"
        f'    """Handles one {service} event."""\n'
        f'    return {{"service": "{service}", "dynamo": receipt_dynamo.__version__, '
        '"label": receipt_label.__version__}\n'
    )
