"""examples/monorepo's images built remotely: each context is uploaded to S3 once per hash and
built on AWS CodeBuild. The base waits for its build, so its image_uri is digest-pinned and the
handlers build FROM exactly that digest; the handlers may return without waiting (wait=false).

    pulumi config set repoPrefix 123456789012.dkr.ecr.eu-west-1.amazonaws.com/monorepo
    pulumi config set contextBucket my-build-contexts
    pulumi config set serviceRoleArn arn:aws:iam::123456789012:role/imagebuild-codebuild
    pulumi config set imagebuild:region eu-west-1
    pulumi up

The base installs its pins from ../monorepo/app/wheels (fill it with
`pip download -r ../monorepo/app/requirements.txt -d ../monorepo/app/wheels`), as in the local demo.
"""
import pulumi
import pulumi_imagebuild as ib

cfg = pulumi.Config()
prefix = cfg.require("repoPrefix")
project = cfg.get("codebuildProject")  # an existing CodeBuild project, or one made per image:
role = None if project else cfg.require("serviceRoleArn")
services = cfg.get_object("services") or ["orders", "payments", "notifications"]
wait_for_handlers = cfg.get_bool("wait")
# ECR needs no credentials here (the build logs in with its role); other registries do.
auth = (
    ib.RegistryCredentialsArgs(username=cfg.require("registryUser"), password=cfg.require_secret("registryPassword"))
    if cfg.get("registryUser")
    else None
)
common = dict(
    context="../monorepo/app",
    platform="linux/amd64",
    context_bucket=cfg.require("contextBucket"),
    codebuild_project=project,
    service_role_arn=role,
    registry_auth=auth,
)

base = ib.FastContainerImage(
    "base",
    dockerfile="../monorepo/app/base/Dockerfile",
    repository=f"{prefix}/base",
    wait=True,
    **common,
)
pulumi.export("base_image", base.image_uri)

for service in services:
    handler = ib.FastContainerImage(
        service,
        dockerfile=f"../monorepo/app/services/{service}/Dockerfile",
        build_args={"BASE_IMAGE": base.image_uri},
        repository=f"{prefix}/{service}",
        wait=True if wait_for_handlers is None else wait_for_handlers,
        **common,
    )
    pulumi.export(f"{service}_image", handler.image_uri)
    pulumi.export(f"{service}_build_status", handler.build_status)
