"""E2E program: one FastContainerImage built on the CodeBuild double, driven by stack config."""
import pulumi
import pulumi_imagebuild as ib

cfg = pulumi.Config()
secret_param = cfg.get("ssmParameter")
project = cfg.get("codebuildProject")
image = ib.FastContainerImage(
    "fast",
    context=cfg.get("context") or "ctx",
    dockerfile_inline=(pulumi.Output.secret(cfg.require("dockerfile")) if cfg.get_bool("secretDockerfile")
                       else cfg.require("dockerfile")),
    repository=cfg.require("repository"),
    registry_auth=ib.RegistryCredentialsArgs(
        username=cfg.require("registryUser"),
        password=cfg.require_secret("registryPassword"),
    ),
    contexts=cfg.get_object("contexts"),
    context_bucket=cfg.require("bucket"),
    codebuild_project=project,
    service_role_arn=None if project else "arn:aws:iam::123456789012:role/imagebuild-e2e",
    wait=cfg.get_bool("wait") if cfg.get("wait") is not None else True,
    secrets={"token": ib.RemoteSecretArgs(parameter_store=secret_param)} if secret_param else None,
    delete_on_destroy=True,
)
for name in ["image_uri", "digest", "build_id", "build_status", "context_hash", "context_object",
             "upload_bytes", "upload_skipped", "adopted", "logs_url", "cached_steps", "total_steps", "claim_tag"]:
    pulumi.export(name, getattr(image, name))
