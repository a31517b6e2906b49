"""E2E program: each Lambda's context is its own folder; the shared packages come in as named
build contexts (`contexts`), each with its own .dockerignore. Built on the daemon the stack's
`imagebuild:dockerHost` names."""
import json

import pulumi
import pulumi_imagebuild as ib

cfg = pulumi.Config()
prefix = cfg.require("repoPrefix")
services = json.loads(cfg.require("services"))  # {"name": "package it copies"}
auth = ib.RegistryCredentialsArgs(
    username=cfg.require("registryUser"), password=cfg.require_secret("registryPassword")
)

for name, package in services.items():
    image = ib.ContainerImage(
        name,
        context=f"repo/services/{name}",
        contexts={"pkg": f"repo/packages/{package}", "base": "docker-image://imagebuild-base/python:3.11"},
        repository=f"{prefix}/{name}",
        registry_auth=auth,
    )
    pulumi.export(f"{name}_digest", image.digest)
    pulumi.export(f"{name}_tag", image.tags[0])
