"""The double's calls to moto: S3 source objects, SSM/Secrets Manager values, CloudWatch Logs."""

import json
import os
import sys
import threading
import time

import boto3


def client(config, service):
    return boto3.client(
        service,
        region_name=config.region,
        endpoint_url=config.moto_endpoint,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
    )


def get_object(config, bucket, key):
    return client(config, "s3").get_object(Bucket=bucket, Key=key)["Body"].read()


def resolve_variable(config, kind, value):
    """Value of a CodeBuild environment variable of type PLAINTEXT, PARAMETER_STORE or SECRETS_MANAGER."""
    if kind == "PLAINTEXT":
        return value
    if kind == "PARAMETER_STORE":
        return client(config, "ssm").get_parameter(Name=value, WithDecryption=True)["Parameter"]["Value"]
    if kind == "SECRETS_MANAGER":
        # secret-id[:json-key[:version-stage[:version-id]]]; an ARN secret-id has 7 parts itself.
        parts = value.split(":")
        n = 7 if value.startswith("arn:") else 1
        secret_id = ":".join(parts[:n])
        json_key, stage, version = (parts[n:] + ["", "", ""])[:3]
        args = {"SecretId": secret_id}
        if stage:
            args["VersionStage"] = stage
        if version:
            args["VersionId"] = version
        secret = client(config, "secretsmanager").get_secret_value(**args)["SecretString"]
        return str(json.loads(secret)[json_key]) if json_key else secret
    raise ValueError(f"unknown environment variable type {kind}")


class LogWriter:
    """Build log: local file always, CloudWatch Logs stream once opened, flushed in batches."""

    def __init__(self, config, group, stream, path):
        self.config = config
        self.group = group
        self.stream = stream
        self.path = path
        self.pending = []
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.closed = False
        self.thread = None
        self.logs = None
        self.error = None

    def open(self):
        self.logs = client(self.config, "logs")
        try:
            self.logs.create_log_group(logGroupName=self.group)
        except self.logs.exceptions.ResourceAlreadyExistsException:
            pass
        self.logs.create_log_stream(logGroupName=self.group, logStreamName=self.stream)
        self.thread = threading.Thread(target=self._pump, daemon=True)
        self.thread.start()

    def line(self, text):
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(text + "\n")
        with self.cond:
            # CodeBuild's events end with a newline (CloudWatch refuses empty messages).
            self.pending.append({"timestamp": int(time.time() * 1000), "message": text + "\n"})
            self.cond.notify()

    def _pump(self):
        while True:
            with self.cond:
                self.cond.wait_for(lambda: self.pending or self.closed, timeout=0.25)
                batch, self.pending = self.pending, []
                closed = self.closed
            for i in range(0, len(batch), 500):
                try:
                    self.logs.put_log_events(logGroupName=self.group, logStreamName=self.stream,
                                             logEvents=batch[i:i + 500])
                except Exception as e:  # keep building; the local file still has the line
                    self.error = e
                    print(f"codebuild double: PutLogEvents to {self.group}/{self.stream} failed: {e!r}",
                          file=sys.stderr, flush=True)
            if closed and not batch:
                return
            time.sleep(0.1)

    def close(self):
        with self.cond:
            self.closed = True
            self.cond.notify()
        if self.thread:
            self.thread.join(timeout=30)
