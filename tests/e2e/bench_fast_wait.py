"""Benchmark (run by `make bench`): `pulumi up` wall time for the same context change with a
FastContainerImage that waits for its CodeBuild build (wait=true) and one that does not
(wait=false). The build runs on the CodeBuild test double against the local Docker engine."""
from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).parent))
from conftest import Project  # noqa: E402

PROGRAM = (Path(__file__).parent / "programs" / "fast.py").read_text()
# A build that takes a realistic few seconds of work after the context arrives.
DOCKERFILE = "FROM imagebuild-base/busybox:latest\nCOPY . /app/\nRUN sleep 8 && ls -R /app > /listing\n"
ROUNDS = 3


def project(root: Path, wait: bool, bucket: str, unique: str) -> Project:
    p = Project(root, PROGRAM)
    (p.dir / "ctx").mkdir()
    p.env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_REGION="us-east-1")
    moto = os.environ["IMAGEBUILD_TEST_MOTO_ENDPOINT"]
    p.init(
        config={
            "repository": f"{os.environ['IMAGEBUILD_TEST_REGISTRY']}/bench-{unique}/{'wait' if wait else 'nowait'}",
            "registryUser": os.environ["IMAGEBUILD_TEST_REGISTRY_USER"],
            "bucket": bucket,
            "dockerfile": DOCKERFILE,
            "wait": "true" if wait else "false",
            "imagebuild:region": "us-east-1",
            "imagebuild:s3Endpoint": moto,
            "imagebuild:logsEndpoint": moto,
            "imagebuild:ecrEndpoint": moto,
            "imagebuild:codebuildEndpoint": os.environ["IMAGEBUILD_TEST_CODEBUILD_ENDPOINT"],
        },
        secrets={"registryPassword": os.environ["IMAGEBUILD_TEST_REGISTRY_PASSWORD"]},
    )
    return p


def timed_up(p: Project, round_no: int) -> float:
    (p.dir / "ctx" / "handler.py").write_text(f"VERSION = {round_no}  # {uuid.uuid4().hex}\n")
    start = time.perf_counter()
    p.up()
    return time.perf_counter() - start


def main() -> None:
    unique = uuid.uuid4().hex[:8]
    bucket = f"bench-contexts-{unique}"
    boto3.client("s3", endpoint_url=os.environ["IMAGEBUILD_TEST_MOTO_ENDPOINT"], region_name="us-east-1",
                 aws_access_key_id="testing", aws_secret_access_key="testing").create_bucket(Bucket=bucket)
    root = Path(tempfile.mkdtemp(prefix="imagebuild-bench-"))
    try:
        waiting = project(root / "wait", True, bucket, unique)
        returning = project(root / "nowait", False, bucket, unique)
        results = {"wait=true": [], "wait=false": []}
        for i in range(ROUNDS):
            results["wait=true"].append(timed_up(waiting, i))
            results["wait=false"].append(timed_up(returning, i))
        best = {k: min(v) for k, v in results.items()}
        print("\nFastContainerImage: `pulumi up` wall time for one changed context "
              f"(best of {ROUNDS}; build step takes ~8 s on the CodeBuild double)")
        for k, v in results.items():
            print(f"  {k:<11} best {best[k]:6.2f} s   all: {', '.join(f'{x:.2f}' for x in v)}")
        print(f"  ratio wait=false / wait=true: {best['wait=false'] / best['wait=true']:.2f}x")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
