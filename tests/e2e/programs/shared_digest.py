"""E2E program: ContainerImages that build the same content into one repository.

Config `images` is a JSON object {name: deleteOnDestroy}; each image builds the orders service.
"""
import json

import pulumi
import pulumi_imagebuild as ib

cfg = pulumi.Config()
repository = cfg.require("repository")
for name, delete in json.loads(cfg.require("images")).items():
    image = ib.ContainerImage(
        name,
        context="app",
        dockerfile="app/services/orders/Dockerfile",
        repository=repository,
        registry_auth=ib.RegistryCredentialsArgs(
            username=cfg.require("registryUser"),
            password=cfg.require_secret("registryPassword"),
        ),
        delete_on_destroy=delete,
    )
    pulumi.export(f"{name}_digest", image.digest)
    pulumi.export(f"{name}_hash", image.context_hash)
    pulumi.export(f"{name}_claim", image.claim_tag)
