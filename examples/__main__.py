"""Builds the demo monorepo's three handler images and pushes them to the local test registry."""
import os

import pulumi
import pulumi_imagebuild as ib

config = pulumi.Config()
registry = config.get("registry") or os.environ.get("IMAGEBUILD_TEST_REGISTRY", "127.0.0.1:5000")
username = config.get("registryUser") or os.environ.get("IMAGEBUILD_TEST_REGISTRY_USER", "")
password = config.get_secret("registryPassword") or pulumi.Output.secret(
    os.environ.get("IMAGEBUILD_TEST_REGISTRY_PASSWORD", "")
)

for service in ["orders", "payments", "notifications"]:
    image = ib.ContainerImage(
        service,
        context="app",
        dockerfile=f"app/services/{service}/Dockerfile",
        platform="linux/amd64",
        repository=f"{registry}/demo/{service}",
        registry_auth=ib.RegistryCredentialsArgs(username=username, password=password),
        tags=["latest"],
    )
    pulumi.export(f"{service}_image", image.image_uri)
    pulumi.export(f"{service}_context_files", image.context_files)
