//! SSH agent forwarding (`BuildSpec.ssh`, like `docker build --ssh`) against a real ssh-agent.
//!
//! The build step runs the host's own `ssh-add` (Debian's openssh-client) inside the local
//! `imagebuild-base/python:3.11` image, which is the same Debian release and already has the few
//! shared libraries it links (libcrypto, libselinux, libpcre2): the simplest real agent client.

mod local_common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use imagebuild::local::{LocalError, ProgressEvent, SshSpec};
use local_common::*;
use tokio_util::sync::CancellationToken;

const PYTHON: &str = "imagebuild-base/python:3.11";

/// An ssh-agent of our own, killed on drop.
struct Agent {
    child: Child,
    sock: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (apt install openssh-client)"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Starts ssh-agent on a socket in `dir` and adds a new ed25519 key with `comment`.
fn start_agent(dir: &Path, comment: &str) -> Agent {
    let sock = dir.join("agent.sock");
    let child = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&sock)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("start ssh-agent (apt install openssh-client)");
    let agent = Agent { child, sock };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !agent.sock.exists() {
        assert!(
            Instant::now() < deadline,
            "ssh-agent never created {}",
            agent.sock.display()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let key = dir.join("id_ed25519");
    run(Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f"])
        .arg(&key));
    run(Command::new("ssh-add")
        .env("SSH_AUTH_SOCK", &agent.sock)
        .arg(&key));
    agent
}

fn logs(events: &[(Instant, ProgressEvent)]) -> Vec<String> {
    events
        .iter()
        .filter_map(|(_, e)| match e {
            ProgressEvent::Log(l) => Some(l.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_run_step_lists_the_forwarded_key_and_cannot_change_the_agent() {
    require_services();
    let tmp = tempfile::tempdir().unwrap();
    let id = uuid::Uuid::new_v4().simple().to_string();
    let comment = format!("imagebuild-test-{}", &id[..12]);
    let agent = start_agent(tmp.path(), &comment);

    let dir = write_tree(&[]);
    let ssh_add = dir.path().join("ssh-add");
    std::fs::copy("/usr/bin/ssh-add", &ssh_add).unwrap();
    std::fs::set_permissions(&ssh_add, std::fs::Permissions::from_mode(0o755)).unwrap();
    let df = format!(
        "FROM {PYTHON}\nCOPY ssh-add /usr/local/bin/ssh-add\n\
         RUN --mount=type=ssh ssh-add -l; echo list-{id}\n\
         RUN --mount=type=ssh,id=deploy ssh-add -l; echo deploy-{id}\n\
         RUN --mount=type=ssh ssh-add -D; echo delete-exit=$?\n"
    );
    let mut build = build_spec(snapshot(dir.path(), &df, None, &id));
    build.ssh = vec![
        SshSpec {
            id: String::new(),
            paths: vec![agent.sock.clone()],
        },
        SshSpec {
            id: "deploy".into(),
            paths: vec![agent.sock.clone()],
        },
    ];
    let mut spec = publish_spec(build, unique_repo("ssh"));
    spec.push = false;
    let (r, ev) = publish(&engine(1), spec, CancellationToken::new()).await;
    r.unwrap_or_else(|e| panic!("ssh build failed: {e}"));
    let lines = logs(&ev);
    let listed = lines
        .iter()
        .filter(|l| l.contains(&comment) && l.contains("ED25519"))
        .count();
    assert_eq!(listed, 2, "both mounts list the key: {lines:?}");
    assert!(
        lines.iter().any(|l| l == "delete-exit=1"),
        "removing keys must be refused: {lines:?}"
    );
    let still = run(Command::new("ssh-add")
        .env("SSH_AUTH_SOCK", &agent.sock)
        .arg("-l"));
    assert!(still.contains(&comment), "the agent lost its key: {still}");
}

#[tokio::test]
async fn a_missing_agent_socket_fails_before_any_build() {
    require_services();
    let tmp = tempfile::tempdir().unwrap();
    let dir = write_tree(&[("x", "x")]);
    let df = format!("FROM {BUSYBOX}\nRUN --mount=type=ssh true\n");
    let mut build = build_spec(snapshot(dir.path(), &df, None, "ssh-missing"));
    build.ssh = vec![SshSpec {
        id: "git".into(),
        paths: vec![tmp.path().join("no-agent.sock")],
    }];
    let mut spec = publish_spec(build, unique_repo("ssh"));
    spec.push = false;
    let eng = engine(1);
    let (r, _) = publish(&eng, spec, CancellationToken::new()).await;
    let e = r.expect_err("a missing socket must fail");
    assert!(
        matches!(&e, LocalError::Ssh { id, .. } if id == "git"),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(
        msg.contains("ssh") && msg.contains("\"git\"") && msg.contains("no-agent.sock"),
        "{msg}"
    );
    assert_eq!(eng.builds_started(), 0, "nothing may be built");
}
