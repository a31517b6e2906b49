"""The benchmark's wheelhouse: a handful of small, real, pure-Python wheels from PyPI, fetched once
with `pip download` into $IMAGEBUILD_TOOLS_DIR/bench-wheelhouse and reused by every run after."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Pinned so every run (and every machine) installs the same bytes; requests brings its four
# dependencies, python-dateutil brings six.
PINS = (
    "requests==2.31.0",
    "idna==3.7",
    "urllib3==2.2.1",
    "certifi==2024.2.2",
    "charset-normalizer==3.3.2",
    "python-dateutil==2.9.0.post0",
    "six==1.16.0",
    "jmespath==1.0.1",
    "attrs==23.2.0",
    "typing_extensions==4.11.0",
    "packaging==24.0",
)


def _wheel_prefix(pin: str) -> str:
    """The file-name prefix of a pin's wheel (`python-dateutil==2.9` -> `python_dateutil-2.9`)."""
    name, version = pin.split("==")
    return f"{name.replace('-', '_').lower()}-{version}-"


def missing(directory: Path) -> list[str]:
    """The pins whose wheel is not in `directory`."""
    have = [p.name.lower() for p in directory.glob("*.whl")] if directory.is_dir() else []
    return [pin for pin in PINS if not any(h.startswith(_wheel_prefix(pin)) for h in have)]


def ensure_wheelhouse() -> Path:
    """The wheelhouse directory, downloading only the wheels it lacks; fails loudly without pip/PyPI."""
    tools = os.environ.get("IMAGEBUILD_TOOLS_DIR")
    if not tools:
        raise SystemExit("IMAGEBUILD_TOOLS_DIR is not set: `source scripts/env.sh` first")
    directory = Path(tools) / "bench-wheelhouse"
    need = missing(directory)
    if not need:
        return directory
    directory.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--platform", "any", "--python-version", "3.11", "--implementation", "py",
           "-d", str(directory), *need]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    still = missing(directory)
    if proc.returncode != 0 or still:
        raise SystemExit(f"pip download into {directory} failed for {still or need}:\n{proc.stderr[-3000:]}")
    return directory
