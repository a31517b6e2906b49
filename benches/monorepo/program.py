"""Bench program: one ContainerImage per service of the generated monorepo, pushed to the local
registry (like tests/e2e/programs/images.py); the context of every image is the repository root."""
import json

import pulumi
import pulumi_imagebuild as ib

cfg = pulumi.Config()
root = cfg.require("monorepoRoot")
prefix = cfg.require("repoPrefix")

# Optional registry build cache: each image exports its cache to CACHE/<service>:buildcache and
# reads it back (what a CI fleet shares).
cache_prefix = cfg.get("cachePrefix")

for service in json.loads(cfg.require("services")):
    cache = f"{cache_prefix}/{service}:buildcache" if cache_prefix else None
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
        cache_to=ib.CacheToArgs(ref=cache) if cache else None,
        cache_from=[cache] if cache else None,
    )
    pulumi.export(f"{service}_uri", image.image_uri)
