"""E2E program: one ContainerImage per service of the example monorepo, driven by stack config."""
import json

import pulumi
import pulumi_imagebuild as ib

cfg = pulumi.Config()
prefix = cfg.require("repoPrefix")
services = json.loads(cfg.get("services") or '["orders", "payments", "notifications"]')
secret = cfg.get_secret("buildSecret")

for service in services:
    args = dict(
        context="app",
        dockerfile=f"app/services/{service}/Dockerfile",
        repository=f"{prefix}/{service}",
        registry_auth=ib.RegistryCredentialsArgs(
            username=cfg.require("registryUser"),
            password=cfg.require_secret("registryPassword"),
        ),
        tags=["latest"],
        delete_on_destroy=cfg.get_bool("deleteOnDestroy") or False,
    )
    if secret is not None and service == "orders":
        args["secrets"] = {"token": secret}
    image = ib.ContainerImage(service, **args)
    pulumi.export(f"{service}_uri", image.image_uri)
    pulumi.export(f"{service}_digest", image.digest)
    pulumi.export(f"{service}_hash", image.context_hash)
    pulumi.export(f"{service}_adopted", image.adopted)
    pulumi.export(f"{service}_steps", pulumi.Output.all(image.cached_steps, image.total_steps))
    pulumi.export(f"{service}_pushed", image.pushed_bytes)
