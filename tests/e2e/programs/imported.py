"""E2E program: the orders service's ContainerImage, optionally adopting an existing image with
the `import` resource option (config `importId`)."""
import pulumi
import pulumi_imagebuild as ib

cfg = pulumi.Config()
import_id = cfg.get("importId")
image = ib.ContainerImage(
    "orders",
    context="app",
    dockerfile="app/services/orders/Dockerfile",
    repository=cfg.require("repository"),
    opts=pulumi.ResourceOptions(import_=import_id) if import_id else None,
)
pulumi.export("digest", image.digest)
pulumi.export("hash", image.context_hash)
pulumi.export("claim", image.claim_tag)
