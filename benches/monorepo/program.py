"""Bench program: one ContainerImage per service of the generated monorepo, pushed to the local
registry (like tests/e2e/programs/images.py); the context of every image is the repository root."""
import json

import pulumi
import pulumi_imagebuild as ib

cfg = pulumi.Config()
root = cfg.require("monorepoRoot")
prefix = cfg.require("repoPrefix")

for service in json.loads(cfg.require("services")):
    image = ib.ContainerImage(
        service,
        context=root,
        dockerfile=f"{root}/services/{service}/Dockerfile",
        repository=f"{prefix}/{service}",
        registry_auth=ib.RegistryCredentialsArgs(
            username=cfg.require("registryUser"),
            password=cfg.require_secret("registryPassword"),
        ),
        build_args={"BENCH_SALT": cfg.require("salt")},
        tags=["latest"],
    )
    pulumi.export(f"{service}_uri", image.image_uri)
