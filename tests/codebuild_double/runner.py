"""Runs one build of the CodeBuild double for real: source, buildspec phases, logs, status.

Phases and statuses carry CodeBuild's names. Each phase's commands run in one `sh`
process (its own process group, so StopBuild can kill docker and its children);
variables persist from phase to phase as in buildspec version 0.2.
"""

import io
import json
import os
import shlex
import shutil
import signal
import subprocess
import threading
import time
import zipfile

import awsio
import yaml

COMMAND_PHASES = ["INSTALL", "PRE_BUILD", "BUILD", "POST_BUILD"]
PHASE_KEYS = {"INSTALL": "install", "PRE_BUILD": "pre_build", "BUILD": "build", "POST_BUILD": "post_build"}
DONE = {"SUCCEEDED", "FAILED", "FAULT", "TIMED_OUT", "STOPPED"}


class PhaseFailed(Exception):
    """A phase ended badly: status, context code and message as CodeBuild reports them."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def stamp():
    return time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime())


class Build:
    """One build: its CodeBuild-shaped description plus the thread that executes it."""

    def __init__(self, config, project, request, build_id, number):
        self.config = config
        self.project = json.loads(json.dumps(project))
        self.request = request
        self.id = build_id
        self.uuid = build_id.split(":", 1)[1]
        self.number = number
        self.lock = threading.Lock()
        self.stop_event = threading.Event()
        self.stop_reason = None
        self.timed_out = False
        self.proc = None
        self.phases = []
        self.status = "IN_PROGRESS"
        self.current = None
        self.start_time = time.time()
        self.end_time = None
        self.exported = []
        self.logs_visible = False
        self.workdir = os.path.join(config.builds_dir, self.uuid)
        self.group = f"/aws/codebuild/{project['name']}"
        self.log = awsio.LogWriter(config, self.group, self.uuid, os.path.join(self.workdir, "build.log"))
        env = self.project.get("environment", {})
        self.image = request.get("imageOverride") or env.get("image")
        self.compute_type = request.get("computeTypeOverride") or env.get("computeType")
        self.env_type = request.get("environmentTypeOverride") or env.get("type")
        privileged = request.get("privilegedModeOverride")
        self.privileged = env.get("privilegedMode", False) if privileged is None else privileged
        self.timeout_minutes = request.get("timeoutInMinutesOverride") or self.project.get("timeoutInMinutes", 60)
        source = self.project.get("source", {})
        self.source_type = request.get("sourceTypeOverride") or source.get("type")
        self.source_location = request.get("sourceLocationOverride") or source.get("location")
        self.buildspec_text = request.get("buildspecOverride") or source.get("buildspec")
        self.env_vars = list(env.get("environmentVariables", []))
        overridden = {v["name"] for v in request.get("environmentVariablesOverride", [])}
        self.env_vars = [v for v in self.env_vars if v["name"] not in overridden]
        self.env_vars += request.get("environmentVariablesOverride", [])

    # ---- description (what BatchGetBuilds returns) ----

    def describe(self):
        with self.lock:
            phases = [dict(p) for p in self.phases]
            d = {
                "id": self.id,
                "arn": f"arn:aws:codebuild:{self.config.region}:123456789012:build/{self.id}",
                "buildNumber": self.number,
                "startTime": self.start_time,
                "currentPhase": self.current or "SUBMITTED",
                "buildStatus": self.status,
                "projectName": self.project["name"],
                "phases": phases,
                # As CodeBuild does, the build's source shows the buildspec it runs (override included).
                "source": {
                    "type": self.source_type,
                    **({"location": self.source_location} if self.source_location else {}),
                    **({"buildspec": self.buildspec_text} if self.buildspec_text else {}),
                },
                "artifacts": {"location": ""},
                "environment": {
                    "type": self.env_type,
                    "image": self.image,
                    "computeType": self.compute_type,
                    "privilegedMode": bool(self.privileged),
                    "environmentVariables": [
                        {k: v for k, v in var.items()} for var in self.env_vars
                    ],
                },
                "serviceRole": self.project.get("serviceRole"),
                "timeoutInMinutes": self.timeout_minutes,
                "queuedTimeoutInMinutes": self.project.get("queuedTimeoutInMinutes", 480),
                "buildComplete": self.status in DONE and self.current == "COMPLETED",
                "initiator": "imagebuild-test",
                "exportedEnvironmentVariables": list(self.exported),
            }
            if self.end_time is not None:
                d["endTime"] = self.end_time
            if self.logs_visible:
                d["logs"] = {
                    "groupName": self.group,
                    "streamName": self.uuid,
                    "deepLink": (
                        f"https://console.aws.amazon.com/cloudwatch/home?region={self.config.region}"
                        f"#logEvent:group={self.group};stream={self.uuid}"
                    ),
                    "cloudWatchLogs": {"status": "ENABLED", "groupName": self.group, "streamName": self.uuid},
                }
            return d

    # ---- control ----

    def start(self):
        threading.Thread(target=self._run, name=f"build-{self.uuid}", daemon=True).start()

    def stop(self, reason):
        with self.lock:
            if self.status in DONE:
                return
            self.stop_reason = reason
        self.stop_event.set()
        self._kill()

    def _kill(self):
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        try:
            os.killpg(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # ---- phase bookkeeping ----

    def _enter(self, phase):
        with self.lock:
            self.current = phase
            self.phases.append({"phaseType": phase, "startTime": time.time()})
        if phase != "COMPLETED":
            self.log.line(f"[Container] {stamp()} Entering phase {phase}")

    def _leave(self, status, code=None, message=None):
        with self.lock:
            p = self.phases[-1]
            p["endTime"] = time.time()
            p["durationInSeconds"] = int(round(p["endTime"] - p["startTime"]))
            p["phaseStatus"] = status
            p["contexts"] = [{"statusCode": code or "", "message": message or ""}]
        self.log.line(f"[Container] {stamp()} Phase complete: {p['phaseType']} State: {status}")
        if code:
            self.log.line(f"[Container] {stamp()} Phase context status code: {code} Message: {message}")

    def _interrupted(self):
        if self.timed_out:
            return PhaseFailed("TIMED_OUT", "BUILD_TIMED_OUT", f"Build has timed out. Build timeout: {self.timeout_minutes} minutes")
        if self.stop_event.is_set():
            return PhaseFailed("STOPPED", "BUILD_STOPPED", f"Build was stopped ({self.stop_reason})")
        return None

    def _step(self, phase, work):
        """Run one phase; returns None on success or the PhaseFailed that ended it."""
        self._enter(phase)
        failure = self._interrupted()
        if failure is None:
            try:
                work()
            except PhaseFailed as e:
                failure = e
            except Exception as e:  # a bug or outage in the double itself
                failure = PhaseFailed("FAULT", "CLIENT_ERROR", f"double error: {e!r}")
            failure = self._interrupted() or failure
        if failure:
            self._leave(failure.status, failure.code, failure.message)
        else:
            self._leave("SUCCEEDED")
        return failure

    # ---- the build ----

    def _run(self):
        os.makedirs(self.workdir, exist_ok=True)
        self.src_dir = os.path.join(self.workdir, "src")
        os.makedirs(self.src_dir, exist_ok=True)
        self.env_file = os.path.join(self.workdir, "env.sh")
        self.spec = None
        timer = threading.Timer(self.timeout_minutes * 60, self._on_timeout)
        timer.daemon = True
        timer.start()
        outcome = None
        try:
            for phase, work in (("SUBMITTED", lambda: None), ("QUEUED", self._queue), ("PROVISIONING", self._provision),
                                ("DOWNLOAD_SOURCE", self._download)):
                outcome = self._step(phase, work)
                if outcome:
                    break
            failed_phase = None
            for phase in COMMAND_PHASES if outcome is None else []:
                if outcome is not None:
                    # After a failed build phase CodeBuild still runs post_build, telling it so.
                    if not (phase == "POST_BUILD" and failed_phase == "BUILD" and outcome.status == "FAILED"):
                        break
                    self._set_succeeding(False)
                failure = self._step(phase, lambda p=phase: self._commands(p))
                if failure and outcome is None:
                    outcome, failed_phase = failure, phase
            if outcome is None:
                self._collect_exports()
            upload = self._step("UPLOAD_ARTIFACTS", lambda: None) if outcome is None or outcome.status == "FAILED" else None
            outcome = outcome or upload
            self._enter("FINALIZING")
            self._leave("SUCCEEDED")
        finally:
            timer.cancel()
            # Logs are complete before the build reads as finished, so a last fetch sees them all.
            self.log.close()
            # The unpacked context can be large; build.log and the phase scripts stay for debugging.
            shutil.rmtree(self.src_dir, ignore_errors=True)
            with self.lock:
                self.status = outcome.status if outcome else "SUCCEEDED"
                self.end_time = time.time()
                self.current = "COMPLETED"
                self.phases.append({"phaseType": "COMPLETED", "startTime": self.end_time})

    def _on_timeout(self):
        self.timed_out = True
        self.stop_event.set()
        self._kill()

    def _queue(self):
        self.stop_event.wait(self.config.queue_seconds)

    def _provision(self):
        self.log.open()
        with self.lock:
            self.logs_visible = True
        self.env = self._base_env()
        for var in self.env_vars:
            self.env[var["name"]] = self._resolve(var.get("type", "PLAINTEXT"), var["value"], var["name"])
        self._offer_buildx()

    def _offer_buildx(self):
        """Opt-in: a build whose variables say IMAGEBUILD_DOUBLE_BUILDX=1 gets docker buildx as a CLI
        plugin in its own DOCKER_CONFIG (like a build image with Docker 23+); no other build sees it."""
        if self.env.get("IMAGEBUILD_DOUBLE_BUILDX") != "1":
            return
        plugin = self.config.buildx_plugin
        if not plugin or not os.access(plugin, os.X_OK):
            raise PhaseFailed("FAULT", "CLIENT_ERROR",
                              f"double error: IMAGEBUILD_DOUBLE_BUILDX=1 but no buildx binary at {plugin!r}: run "
                              "scripts/build-buildx.sh and start the double with scripts/env.sh sourced "
                              "(or set IMAGEBUILD_DOUBLE_BUILDX_PLUGIN)")
        plugins = os.path.join(self.env["DOCKER_CONFIG"], "cli-plugins")
        os.makedirs(plugins, exist_ok=True)
        os.symlink(plugin, os.path.join(plugins, "docker-buildx"))
        self.log.line(f"[Container] {stamp()} docker buildx available to this build (double opt-in)")

    def _download(self):
        if self.source_type == "S3":
            bucket, _, key = (self.source_location or "").partition("/")
            data = awsio.get_object(self.config, bucket, key)
            self.log.line(f"[Container] {stamp()} Downloaded source s3://{bucket}/{key} ({len(data)} bytes)")
            extract_zip(data, self.src_dir)
        elif self.source_type != "NO_SOURCE":
            raise PhaseFailed("FAILED", "CLIENT_ERROR", f"source type {self.source_type} is not supported by the double")
        text = self.buildspec_text
        if not text:
            path = os.path.join(self.src_dir, "buildspec.yml")
            if not os.path.exists(path):
                raise PhaseFailed("FAILED", "YAML_FILE_ERROR", "YAML_FILE_ERROR: stat buildspec.yml: no such file")
            with open(path, encoding="utf-8") as f:
                text = f.read()
        try:
            spec = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise PhaseFailed("FAILED", "YAML_FILE_ERROR", f"YAML_FILE_ERROR: {e}")
        if not isinstance(spec, dict) or str(spec.get("version")) not in ("0.1", "0.2"):
            raise PhaseFailed("FAILED", "YAML_FILE_ERROR", "YAML_FILE_ERROR: missing or unsupported version")
        self.spec = spec
        env = spec.get("env") or {}
        for name, value in (env.get("variables") or {}).items():
            self.env.setdefault(name, str(value))
        for name, ref in (env.get("parameter-store") or {}).items():
            self.env.setdefault(name, self._resolve("PARAMETER_STORE", ref, name))
        for name, ref in (env.get("secrets-manager") or {}).items():
            self.env.setdefault(name, self._resolve("SECRETS_MANAGER", ref, name))
        # Overrides win over buildspec values, as in CodeBuild.
        for var in self.env_vars:
            self.env[var["name"]] = self._resolve(var.get("type", "PLAINTEXT"), var["value"], var["name"])

    def _resolve(self, kind, value, name):
        try:
            return awsio.resolve_variable(self.config, kind, value)
        except Exception as e:
            raise PhaseFailed("FAILED", "CLIENT_ERROR", f"Error while resolving environment variable {name} ({kind} {value}): {e}")

    def _base_env(self):
        home = os.path.join(self.workdir, "home")
        os.makedirs(home, exist_ok=True)
        env = {
            "PATH": f"{self.config.shim_dir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "HOME": home,
            "DOCKER_CONFIG": os.path.join(home, ".docker"),
            "LANG": "C.UTF-8",
            "AWS_REGION": self.config.region,
            "AWS_DEFAULT_REGION": self.config.region,
            "AWS_ENDPOINT_URL": self.config.moto_endpoint,
            "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "testing"),
            "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"),
            "CODEBUILD_BUILD_ID": self.id,
            "CODEBUILD_BUILD_ARN": f"arn:aws:codebuild:{self.config.region}:123456789012:build/{self.id}",
            "CODEBUILD_BUILD_NUMBER": str(self.number),
            "CODEBUILD_BUILD_IMAGE": self.image or "",
            "CODEBUILD_SRC_DIR": self.src_dir,
            "CODEBUILD_INITIATOR": "imagebuild-test",
            "CODEBUILD_LOG_PATH": self.uuid,
            "CODEBUILD_BUILD_SUCCEEDING": "1",
        }
        for key in ("DOCKER_HOST",):
            if os.environ.get(key):
                env[key] = os.environ[key]
        if self.config.registry_user:
            env["IMAGEBUILD_DOUBLE_REGISTRY_USER"] = self.config.registry_user
            env["IMAGEBUILD_DOUBLE_REGISTRY_PASSWORD"] = self.config.registry_password
        return env

    def _set_succeeding(self, ok):
        self.env["CODEBUILD_BUILD_SUCCEEDING"] = "1" if ok else "0"

    def _commands(self, phase):
        section = ((self.spec or {}).get("phases") or {}).get(PHASE_KEYS[phase]) or {}
        commands = [str(c).lower() if isinstance(c, bool) else str(c) for c in (section.get("commands") or [])]
        if not commands:
            return
        cur_file = os.path.join(self.workdir, "current-command")
        # allexport stays on: plain assignments persist into later phases, as in buildspec 0.2.
        lines = ["set -a", f'[ -f {shlex.quote(self.env_file)} ] && . {shlex.quote(self.env_file)}',
                 f"CODEBUILD_BUILD_SUCCEEDING={self.env['CODEBUILD_BUILD_SUCCEEDING']}"]
        for i, cmd in enumerate(commands):
            lines.append(f"echo {i} > {shlex.quote(cur_file)}")
            lines.append(f'printf "[Container] %s Running command %s\\n" "$(date -u +%Y/%m/%d\\ %H:%M:%S)" {shlex.quote(cmd)}')
            lines.append(cmd)
            lines.append("__ib_rc=$?; if [ $__ib_rc -ne 0 ]; then exit $__ib_rc; fi")
        lines.append(f"export -p > {shlex.quote(self.env_file)}.new && mv {shlex.quote(self.env_file)}.new {shlex.quote(self.env_file)}")
        script = os.path.join(self.workdir, f"{phase.lower()}.sh")
        with open(script, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        self.proc = subprocess.Popen(["sh", script], cwd=self.src_dir, env=dict(self.env), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        for raw in self.proc.stdout:
            self.log.line(raw.decode("utf-8", "replace").rstrip("\n"))
        rc = self.proc.wait()
        if rc == 0:
            return
        try:
            with open(cur_file, encoding="utf-8") as f:
                cmd = commands[int(f.read().strip())]
        except (OSError, ValueError, IndexError):
            cmd = commands[-1]
        reason = f"exit status {rc}" if rc > 0 else f"signal {-rc}"
        self.log.line(f"[Container] {stamp()} Command did not exit successfully {cmd} {reason}")
        raise PhaseFailed("FAILED", "COMMAND_EXECUTION_ERROR", f"Error while executing command: {cmd}. Reason: {reason}")

    def _collect_exports(self):
        names = ((self.spec or {}).get("env") or {}).get("exported-variables") or []
        if not names or not os.path.exists(self.env_file):
            return
        out = subprocess.run(["sh", "-c", 'set -a; . "$1"; env -0', "sh", self.env_file], capture_output=True,
                             env={"PATH": "/usr/bin:/bin"}, check=True).stdout
        values = dict(item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
        with self.lock:
            self.exported = [{"name": n, "value": values.get(n, "")} for n in names]


def extract_zip(data, dest):
    """Unzip keeping Unix modes and symlinks (as CodeBuild's S3 ZIP source does)."""
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            path = os.path.join(dest, info.filename)
            mode = info.external_attr >> 16
            if info.is_dir():
                os.makedirs(path, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if mode and (mode & 0o170000) == 0o120000:
                os.symlink(z.read(info).decode(), path)
                continue
            with open(path, "wb") as f:
                f.write(z.read(info))
            if mode:
                os.chmod(path, mode & 0o7777)
