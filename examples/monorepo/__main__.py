"""A seed-like monorepo: a shared base image (pinned requirements + shared packages) is itself a
ContainerImage, and each Lambda handler builds FROM it through a build arg fed from the base's
digest-pinned image_uri. Changing a pin or a shared package rebuilds the base and then every
handler; changing one handler rebuilds only that one; an unchanged base never rebuilds anything."""
import os

import pulumi
import pulumi_imagebuild as ib

config = pulumi.Config()
registry = config.get("registry") or os.environ.get("IMAGEBUILD_TEST_REGISTRY", "127.0.0.1:5000")
prefix = config.get("repoPrefix") or f"{registry}/monorepo"
auth = ib.RegistryCredentialsArgs(
    username=config.get("registryUser") or os.environ.get("IMAGEBUILD_TEST_REGISTRY_USER", ""),
    password=config.get_secret("registryPassword")
    or pulumi.Output.secret(os.environ.get("IMAGEBUILD_TEST_REGISTRY_PASSWORD", "")),
)
platform = "linux/amd64"  # linux/arm64 for Graviton Lambdas

base = ib.ContainerImage(
    "base",
    context="app",
    dockerfile="app/base/Dockerfile",
    platform=platform,
    repository=f"{prefix}/base",
    registry_auth=auth,
)
pulumi.export("base_image", base.image_uri)

for service in ["orders", "payments", "notifications"]:
    handler = ib.ContainerImage(
        service,
        context="app",
        dockerfile=f"app/services/{service}/Dockerfile",
        platform=platform,
        build_args={"BASE_IMAGE": base.image_uri},
        repository=f"{prefix}/{service}",
        registry_auth=auth,
        tags=["latest"],
    )
    # e.g. aws.lambda_.Function(service, package_type="Image", image_uri=handler.image_uri, ...)
    pulumi.export(f"{service}_image", handler.image_uri)
    pulumi.export(f"{service}_hash", handler.context_hash)
