"""An arm64 Lambda image (`platform: linux/arm64`, as Graviton needs) through the Pulumi CLI on
both engines: the Python base is arm64, pip installs a package under QEMU, the pushed artifact is
one arm64 image manifest, and the image's Python reports aarch64."""
from __future__ import annotations

from pathlib import Path

from conftest import Registry, docker

PROGRAM = '''
import pulumi
import pulumi_imagebuild as ib

cfg = pulumi.Config()
image = ib.ContainerImage(
    "arm",
    context="lambda",
    repository=cfg.require("repo"),
    platform="linux/arm64",
    registry_auth=ib.RegistryCredentialsArgs(
        username=cfg.require("registryUser"),
        password=cfg.require_secret("registryPassword"),
    ),
)
pulumi.export("uri", image.image_uri)
pulumi.export("hash", image.context_hash)
'''

DOCKERFILE = """\
FROM imagebuild-base/python-arm64:3.11
COPY greet/ /src/greet/
RUN pip install --no-index /src/greet && python -c "import platform; assert platform.machine() == 'aarch64'"
COPY handler.py /var/task/handler.py
CMD ["python", "/var/task/handler.py"]
"""


def write_lambda(root: Path) -> None:
    files = {
        "Dockerfile": DOCKERFILE,
        "greet/pyproject.toml": '[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"\n\n'
                                '[project]\nname = "greet"\nversion = "1.0"\n',
        "greet/greet/__init__.py": "import platform\n\n\ndef hello():\n    return 'hello from ' + platform.machine()\n",
        "handler.py": "import greet\n\nprint(greet.hello())\n",
    }
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_arm64_lambda_image(project_factory, registry: Registry, unique: str, engine_host: str):
    p = project_factory(PROGRAM)
    write_lambda(p.dir / "lambda")
    repo = f"arm64-{unique}/handler"
    p.init(
        config={
            "repo": f"{registry.address}/{repo}",
            "registryUser": registry.username,
            "imagebuild:dockerHost": engine_host,
        },
        secrets={"registryPassword": registry.password},
    )
    p.up()
    out = p.outputs()
    config = registry.single_image_config(repo, out["hash"])
    assert (config["os"], config["architecture"]) == ("linux", "arm64"), config
    ran = docker("-H", engine_host, "run", "--rm", "--platform", "linux/arm64", out["uri"])
    assert ran.stdout.strip() == "hello from aarch64", ran
    p.up("--expect-no-changes")
    docker("-H", engine_host, "rmi", "-f", out["uri"], check=False)
