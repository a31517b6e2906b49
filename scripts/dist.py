#!/usr/bin/env python3
"""Release packaging: the plugin archive, the SDK wheel and sdist, and the checksums file.

    dist.py --binary PATH [--os OS --arch ARCH] [--out DIR] [--no-sdk]   archive (+ SDK) + checksums
    dist.py --sdk-only [--out DIR]                                       SDK wheel and sdist + checksums
    dist.py --checksums-only [--out DIR]                                 checksums over what DIR holds

One version, Cargo.toml's, must be the binary's (`--version`, when it runs on this machine), the
schema's, the generated SDK's (pyproject.toml, pulumi-plugin.json) and the built wheel's; any
disagreement stops the packaging naming both values. Archives are reproducible: fixed owner,
modes and timestamps ($SOURCE_DATE_EPOCH, default 0), so one commit gives the same bytes.
Standard library only, so the release workflow's macOS and Linux runners run it as is.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NAME = "imagebuild"
BINARY = f"pulumi-resource-{NAME}"
SDK_DIST = "pulumi_imagebuild"
ARCHIVE_EXTRAS = ("LICENSE", "README.md")


def fail(message: str) -> None:
    """Stops with `message` on stderr."""
    sys.exit(f"dist: ERROR: {message}")


def cargo_version() -> str:
    """The [package] version in Cargo.toml: the one version of a release."""
    text = (ROOT / "Cargo.toml").read_text()
    match = re.search(r'^\[package\]\n(?:[^\[].*\n)*?version = "([^"]+)"', text, re.M)
    if not match:
        fail("no [package] version in Cargo.toml")
    return match.group(1)


def check_sources(version: str) -> str:
    """Fails unless schema.json and the committed SDK carry `version`; returns pluginDownloadURL."""
    schema = json.loads((ROOT / "schema.json").read_text())
    plugin = json.loads((ROOT / "sdk-python" / SDK_DIST / "pulumi-plugin.json").read_text())
    pyproject = (ROOT / "sdk-python" / "pyproject.toml").read_text()
    py_version = re.search(r'^\s*version = "([^"]+)"', pyproject, re.M)
    url = schema.get("pluginDownloadURL", "")
    found = {
        "schema.json version": schema.get("version"),
        "sdk-python/pyproject.toml version": py_version.group(1) if py_version else None,
        f"sdk-python/{SDK_DIST}/pulumi-plugin.json version": plugin.get("version"),
    }
    for where, got in found.items():
        if got != version:
            fail(f"{where} is {got!r} but Cargo.toml says {version!r}: set it, then `make sdk`")
    if not url or plugin.get("server") != url:
        fail(f"pulumi-plugin.json server {plugin.get('server')!r} is not schema.json's "
             f"pluginDownloadURL {url!r}: run `make sdk`")
    return url


def host_platform() -> tuple[str, str]:
    """This machine as Pulumi names platforms (linux/darwin, amd64/arm64)."""
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}
    return platform.system().lower(), arch.get(platform.machine().lower(), platform.machine())


def check_binary(binary: Path, version: str, target: tuple[str, str]) -> None:
    """The binary must exist and, when it runs here, report `version`."""
    if not binary.is_file():
        fail(f"no plugin binary at {binary}: build it first (cargo build --release)")
    if target != host_platform():
        return
    got = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()
    if got != version:
        fail(f"{binary} --version prints {got!r} but Cargo.toml says {version!r}: rebuild it")


def _tar_entry(archive: tarfile.TarFile, name: str, source: Path, mode: int, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = source.stat().st_size, mode, mtime
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    with open(source, "rb") as f:
        archive.addfile(info, f)


def write_archive(binary: Path, version: str, target: tuple[str, str], out: Path, level: int) -> Path:
    """`pulumi-resource-<name>-v<version>-<os>-<arch>.tar.gz`: the binary at the root + LICENSE, README."""
    mtime = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
    path = out / f"{BINARY}-v{version}-{target[0]}-{target[1]}.tar.gz"
    with open(path, "wb") as f, gzip.GzipFile(
            fileobj=f, mode="wb", mtime=mtime, filename="", compresslevel=level) as gz, \
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as archive:
        _tar_entry(archive, BINARY, binary, 0o755, mtime)
        for extra in ARCHIVE_EXTRAS:
            _tar_entry(archive, extra, ROOT / extra, 0o644, mtime)
    return path


def build_sdk(version: str, url: str, out: Path) -> list[Path]:
    """Wheel and sdist of sdk-python/ (built from a copy, so the tree stays clean), checked."""
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "sdk"
        shutil.copytree(ROOT / "sdk-python", src, ignore=shutil.ignore_patterns(
            "__pycache__", "*.egg-info", "build", "dist"))
        # No isolation: the build needs no index (setuptools and wheel come from the running venv).
        cmd = [sys.executable, "-m", "build", "--no-isolation", "--sdist", "--wheel", "--outdir", tmp, str(src)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            fail(f"python -m build failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
        wheel = Path(tmp) / f"{SDK_DIST}-{version}-py3-none-any.whl"
        sdist = Path(tmp) / f"{SDK_DIST}-{version}.tar.gz"
        for built in (wheel, sdist):
            if not built.is_file():
                fail(f"python -m build made no {built.name} (made: {sorted(p.name for p in Path(tmp).iterdir())})")
        check_wheel(wheel, version, url)
        return [Path(shutil.copy2(p, out / p.name)) for p in (wheel, sdist)]


def check_wheel(wheel: Path, version: str, url: str) -> None:
    """The wheel's metadata version and its pulumi-plugin.json name the plugin version and server."""
    with zipfile.ZipFile(wheel) as z:
        meta = z.read(f"{SDK_DIST}-{version}.dist-info/METADATA").decode()
        plugin = json.loads(z.read(f"{SDK_DIST}/pulumi-plugin.json"))
    if f"\nVersion: {version}\n" not in meta:
        fail(f"{wheel.name}: METADATA does not say Version: {version}")
    if plugin.get("version") != version or plugin.get("server") != url or plugin.get("name") != NAME:
        fail(f"{wheel.name}: pulumi-plugin.json is {plugin}, expected {NAME} {version} from {url}")


def write_checksums(version: str, out: Path) -> Path:
    """`pulumi-<name>_<version>_checksums.txt` in `sha256sum` format over this version's files in `out`."""
    path = out / f"pulumi-{NAME}_{version}_checksums.txt"
    files = sorted(p for p in out.iterdir() if p.is_file() and p != path and (
        p.name.startswith(f"{BINARY}-v{version}-") or p.name.startswith(f"{SDK_DIST}-{version}")))
    if not files:
        fail(f"nothing of version {version} in {out} to checksum")
    lines = [f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in files]
    path.write_text("".join(lines))
    return path


def main() -> None:
    """Parses the arguments and packages what they ask for."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--binary", type=Path, help="the plugin binary to archive")
    ap.add_argument("--os", help="target OS (default: this machine's)")
    ap.add_argument("--arch", help="target architecture (default: this machine's)")
    ap.add_argument("--out", type=Path, default=ROOT / "dist", help="output directory (default: dist/)")
    ap.add_argument("--gzip-level", type=int, default=9, choices=range(1, 10), metavar="1-9",
                    help="archive compression (default 9; the e2e test packs a debug build with 1)")
    ap.add_argument("--no-sdk", action="store_true", help="archive only, no wheel/sdist")
    ap.add_argument("--sdk-only", action="store_true", help="wheel and sdist only")
    ap.add_argument("--checksums-only", action="store_true", help="only (re)write the checksums file")
    args = ap.parse_args()
    version = cargo_version()
    args.out.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    if not args.checksums_only:
        url = check_sources(version)
        if not args.sdk_only:
            if args.binary is None:
                fail("--binary PATH is required (or --sdk-only / --checksums-only)")
            host = host_platform()
            target = (args.os or host[0], args.arch or host[1])
            check_binary(args.binary, version, target)
            made.append(write_archive(args.binary, version, target, args.out, args.gzip_level))
        if not args.no_sdk:
            made.extend(build_sdk(version, url, args.out))
    made.append(write_checksums(version, args.out))
    for p in made:
        print(f"dist: {p}")


if __name__ == "__main__":
    main()
