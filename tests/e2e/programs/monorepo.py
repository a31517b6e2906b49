"""E2E program: a seed-like monorepo. A shared base image (pinned requirements) is itself a
ContainerImage; six handler images build FROM it through a build arg fed from its digest-pinned
`image_uri`, and each copies one of two shared packages and its own handler."""
import json

import pulumi
import pulumi_imagebuild as ib

cfg = pulumi.Config()
prefix = cfg.require("repoPrefix")
services = json.loads(cfg.require("services"))  # {"name": "package it copies"}
auth = ib.RegistryCredentialsArgs(
    username=cfg.require("registryUser"), password=cfg.require_secret("registryPassword")
)

base = ib.ContainerImage(
    "base",
    context="repo",
    dockerfile="repo/base/Dockerfile",
    repository=f"{prefix}/base",
    registry_auth=auth,
)
pulumi.export("base_digest", base.digest)

for name, package in services.items():
    image = ib.ContainerImage(
        name,
        context="repo",
        dockerfile="repo/services/Dockerfile",
        build_args={"BASE_IMAGE": base.image_uri, "SERVICE": name, "PACKAGE": package},
        repository=f"{prefix}/{name}",
        registry_auth=auth,
    )
    pulumi.export(f"{name}_digest", image.digest)
    pulumi.export(f"{name}_hash", image.context_hash)
