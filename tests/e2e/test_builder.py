"""ContainerImage on a standalone BuildKit daemon (`imagebuild:builder`): the real CLI, the plugin,
buildkitd on loopback TCP with mTLS (scripts/start-services.sh) and the local registry. No
Docker daemon takes part in the build: the image exists in the registry only."""
from __future__ import annotations

from conftest import Project, Registry, docker, env_var

PROGRAM = """
import pulumi
import pulumi_imagebuild as ib

cfg = pulumi.Config()
image = ib.ContainerImage(
    "orders",
    context="app",
    dockerfile_inline=cfg.require("dockerfile"),
    repository=cfg.require("repository"),
    registry_auth=ib.RegistryCredentialsArgs(
        username=cfg.require("registryUser"), password=cfg.require_secret("registryPassword")),
    tags=["latest"],
    delete_on_destroy=True,
)
pulumi.export("digest", image.digest)
pulumi.export("hash", image.context_hash)
pulumi.export("uri", image.image_uri)
pulumi.export("sent", image.context_bytes_sent)
"""


def builder_project(factory, registry: Registry, unique: str, **config) -> tuple[Project, str]:
    repository = f"{registry.address}/e2e-builder-{unique}/orders"
    dockerfile = (f"FROM {env_var('IMAGEBUILD_BASE_BUSYBOX_REGISTRY')}\n"
                  "COPY services/orders/ /app/\nRUN ls /app > /listing\n")
    base = {
        "repository": repository,
        "dockerfile": dockerfile,
        "registryUser": registry.username,
        "imagebuild:builder": env_var("IMAGEBUILD_TEST_BUILDKIT_TCP"),
        "imagebuild:builderCaCert": env_var("IMAGEBUILD_TEST_BUILDKIT_CA"),
        "imagebuild:builderCert": env_var("IMAGEBUILD_TEST_BUILDKIT_CERT"),
        "imagebuild:builderKey": env_var("IMAGEBUILD_TEST_BUILDKIT_KEY"),
    }
    base.update(config)
    p = factory(PROGRAM, f"builder-{unique}")
    p.init(config=base, secrets={"registryPassword": registry.password})
    return p, repository


def test_a_builder_lifecycle_builds_there_pushes_and_skips_what_is_unchanged(
        project_factory, registry: Registry, unique):
    """up builds on buildkitd and pushes; a second up changes nothing; an edit rebuilds only
    from the hash; destroy deletes what it pushed. The Docker daemon never holds the image."""
    p, repository = builder_project(project_factory, registry, unique)
    repo = repository.split("/", 1)[1]
    p.up()
    out = p.outputs()
    assert registry.digest(repo, out["hash"]) == out["digest"]
    assert registry.digest(repo, "latest") == out["digest"]
    assert out["uri"] == f"{repository}@{out['digest']}"
    assert out["sent"] > 0
    registry.single_image_config(repo, out["hash"])
    local = docker("image", "inspect", f"{repository}:{out['hash']}", check=False)
    assert local.returncode != 0, "the build ran on the builder, not on the Docker daemon"

    p.run("preview", "--expect-no-changes")

    handler = p.dir / "app" / "services" / "orders" / "handler.py"
    handler.write_text(handler.read_text() + "\n# edited\n")
    p.up()
    edited = p.outputs()
    assert edited["hash"] != out["hash"] and edited["digest"] != out["digest"]
    assert registry.digest(repo, edited["hash"]) == edited["digest"]
    assert edited["sent"] < out["sent"], "only the edited file is sent again"

    p.run("destroy", "--yes")
    assert registry.digest(repo, edited["hash"]) is None


def test_a_bad_builder_address_fails_preview_naming_the_setting(project_factory, registry, unique):
    """A Docker-only scheme is refused by CheckConfig, naming imagebuild:builder and the forms."""
    p, _ = builder_project(project_factory, registry, unique,
                           **{"imagebuild:builder": "docker-container://buildx_buildkit"})
    proc = p.run("preview", check=False)
    assert proc.returncode != 0
    text = proc.stdout + proc.stderr
    assert "imagebuild:builder" in text and "tcp://host:port" in text, text
