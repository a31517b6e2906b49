//! SSH agent forwarding on the build's session (`moby.sshforward.v1.SSH`), like
//! `docker build --ssh id=socket`.
//!
//! BuildKit mounts a socket into `RUN --mount=type=ssh` steps and, per connection
//! a step makes, opens a `ForwardAgent` stream naming the id (`buildkit.ssh.id`).
//! We connect to the user's agent and relay the agent protocol through a
//! read-only filter, as the docker CLI does: a step may list keys and ask for
//! signatures, but cannot add, remove or lock keys (those requests get
//! SSH_AGENT_FAILURE without reaching the agent). Only agent sockets are
//! offered: a private key file would have to be read and held by us. Nothing
//! of the traffic is ever logged.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use bollard::moby::sshforward::v1::ssh_server::Ssh;
use bollard::moby::sshforward::v1::{BytesMessage, CheckAgentRequest, CheckAgentResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic14::{Request, Response, Status, Streaming};

use super::{LocalError, SshSpec};

/// The id used when a spec or a mount names none.
const DEFAULT_ID: &str = "default";
/// Request metadata key naming the id of a `ForwardAgent` stream.
const ID_KEY: &str = "buildkit.ssh.id";
/// OpenSSH's limit on one agent message.
const MAX_MESSAGE: usize = 256 * 1024;
/// SSH_AGENTC_REQUEST_IDENTITIES and SSH_AGENTC_SIGN_REQUEST: all a build step may ask.
const ALLOWED: [u8; 2] = [11, 13];
/// An SSH_AGENT_FAILURE message.
const FAILURE: [u8; 5] = [0, 0, 0, 1, 5];

/// Agent sockets by id, checked before the build.
#[derive(Debug, Clone, Default)]
pub(crate) struct SshAgents(Arc<BTreeMap<String, PathBuf>>);

impl SshAgents {
    /// No agent is forwarded.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn get(&self, id: &str) -> Option<&PathBuf> {
        self.0.get(id)
    }
}

fn ssh_error(id: &str, detail: String) -> LocalError {
    LocalError::Ssh {
        id: id.to_string(),
        detail,
    }
}

/// Resolves the specs (default id, `$SSH_AUTH_SOCK`) and checks that each names a live agent socket.
pub(crate) async fn resolve(specs: &[SshSpec]) -> Result<SshAgents, LocalError> {
    let mut agents = BTreeMap::new();
    for spec in specs {
        let id = if spec.id.is_empty() {
            DEFAULT_ID
        } else {
            spec.id.as_str()
        };
        if agents.contains_key(id) {
            return Err(ssh_error(
                id,
                "the id is given twice; give each id once".into(),
            ));
        }
        let path = match spec.paths.as_slice() {
            [] => match std::env::var_os("SSH_AUTH_SOCK").filter(|v| !v.is_empty()) {
                Some(p) => PathBuf::from(p),
                None => {
                    return Err(ssh_error(
                        id,
                        "no agent socket given and SSH_AUTH_SOCK is not set; start ssh-agent \
                         (and ssh-add your key) or give the socket path"
                            .into(),
                    ))
                }
            },
            [one] => one.clone(),
            _ => {
                return Err(ssh_error(
                    id,
                    "more than one path given; forward one agent socket per id".into(),
                ))
            }
        };
        check_socket(id, &path).await?;
        agents.insert(id.to_string(), path);
    }
    Ok(SshAgents(Arc::new(agents)))
}

async fn check_socket(id: &str, path: &std::path::Path) -> Result<(), LocalError> {
    use std::os::unix::fs::FileTypeExt;
    let shown = path.display();
    let md = tokio::fs::metadata(path).await.map_err(|e| {
        ssh_error(
            id,
            format!("agent socket {shown} cannot be used ({e}); start ssh-agent and give its socket (SSH_AUTH_SOCK)"),
        )
    })?;
    if !md.file_type().is_socket() {
        let what = if md.is_file() {
            format!(
                "{shown} is a file, not an agent socket; only agents are forwarded: \
                 add the key with `ssh-add {shown}` and give the agent's socket (SSH_AUTH_SOCK)"
            )
        } else {
            format!("{shown} is not an agent socket; give the socket of a running ssh-agent")
        };
        return Err(ssh_error(id, what));
    }
    match tokio::time::timeout(Duration::from_secs(2), UnixStream::connect(path)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(ssh_error(
            id,
            format!("no agent answers at {shown} ({e}); is ssh-agent still running?"),
        )),
        Err(_) => Err(ssh_error(
            id,
            format!("the agent at {shown} does not accept connections"),
        )),
    }
}

/// The SSH service of one build's session.
pub(crate) struct SshService {
    agents: SshAgents,
    cancel: CancellationToken,
}

impl SshService {
    /// Serves `agents`; every forwarded connection ends when `cancel` fires.
    pub(crate) fn new(agents: SshAgents, cancel: CancellationToken) -> Self {
        SshService { agents, cancel }
    }
}

#[tonic14::async_trait]
impl Ssh for SshService {
    async fn check_agent(
        &self,
        r: Request<CheckAgentRequest>,
    ) -> Result<Response<CheckAgentResponse>, Status> {
        let id = match r.get_ref().id.as_str() {
            "" => DEFAULT_ID,
            id => id,
        };
        match self.agents.get(id) {
            Some(_) => Ok(Response::new(CheckAgentResponse {})),
            None => Err(Status::not_found(format!(
                "no ssh agent was given for id {id:?} (add it to the build's ssh settings)"
            ))),
        }
    }

    type ForwardAgentStream = ReceiverStream<Result<BytesMessage, Status>>;

    async fn forward_agent(
        &self,
        r: Request<Streaming<BytesMessage>>,
    ) -> Result<Response<Self::ForwardAgentStream>, Status> {
        let id = r
            .metadata()
            .get(ID_KEY)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .unwrap_or(DEFAULT_ID)
            .to_string();
        let Some(path) = self.agents.get(&id) else {
            return Err(Status::not_found(format!(
                "no ssh agent was given for id {id:?}"
            )));
        };
        let agent = UnixStream::connect(path).await.map_err(|e| {
            Status::unavailable(format!("cannot reach the ssh agent for id {id:?}: {e}"))
        })?;
        let (tx, rx) = mpsc::channel(8);
        tokio::spawn(relay(agent, r.into_inner(), tx, self.cancel.child_token()));
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Relays whole agent messages from the build to the agent and back, refusing all but list/sign.
async fn relay(
    mut agent: UnixStream,
    mut incoming: Streaming<BytesMessage>,
    tx: mpsc::Sender<Result<BytesMessage, Status>>,
    stop: CancellationToken,
) {
    let mut pending: Vec<u8> = Vec::new();
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => return,
            m = incoming.message() => m,
        };
        let Ok(Some(msg)) = msg else { return };
        pending.extend_from_slice(&msg.data);
        while let Some(frame) = take_frame(&mut pending) {
            let Ok(frame) = frame else { return };
            let reply = if frame.get(4).is_some_and(|t| ALLOWED.contains(t)) {
                let exchanged = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = exchange(&mut agent, &frame) => r,
                };
                match exchanged {
                    Some(r) => r,
                    None => return,
                }
            } else {
                FAILURE.to_vec()
            };
            if tx.send(Ok(BytesMessage { data: reply })).await.is_err() {
                return;
            }
        }
    }
}

/// Splits one length-prefixed message off `buf`; `Some(Err)` when it is too large to accept.
fn take_frame(buf: &mut Vec<u8>) -> Option<Result<Vec<u8>, ()>> {
    let len = u32::from_be_bytes(buf.get(..4)?.try_into().ok()?) as usize;
    if len == 0 || len > MAX_MESSAGE {
        return Some(Err(()));
    }
    if buf.len() < 4 + len {
        return None;
    }
    Some(Ok(buf.drain(..4 + len).collect()))
}

/// Sends one request frame to the agent and reads its whole answer frame.
async fn exchange(agent: &mut UnixStream, frame: &[u8]) -> Option<Vec<u8>> {
    agent.write_all(frame).await.ok()?;
    let mut len = [0u8; 4];
    agent.read_exact(&mut len).await.ok()?;
    let n = u32::from_be_bytes(len) as usize;
    if n > MAX_MESSAGE {
        return None;
    }
    let mut out = vec![0u8; 4 + n];
    out[..4].copy_from_slice(&len);
    agent.read_exact(&mut out[4..]).await.ok()?;
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_split_whole() {
        let mut buf = vec![0, 0, 0, 1, 11, 0, 0];
        assert_eq!(take_frame(&mut buf), Some(Ok(vec![0, 0, 0, 1, 11])));
        assert_eq!(take_frame(&mut buf), None);
        buf.extend_from_slice(&[0, 2, 13, 9]);
        assert_eq!(take_frame(&mut buf), Some(Ok(vec![0, 0, 0, 2, 13, 9])));
        let mut huge = (MAX_MESSAGE as u32 + 1).to_be_bytes().to_vec();
        assert_eq!(take_frame(&mut huge), Some(Err(())));
    }

    #[tokio::test]
    async fn specs_are_checked_before_use() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = SshSpec {
            id: String::new(),
            paths: vec![tmp.path().join("nope.sock")],
        };
        let e = resolve(&[missing]).await.unwrap_err().to_string();
        assert!(e.contains("ssh") && e.contains("\"default\""), "{e}");
        let key = tmp.path().join("id_ed25519");
        std::fs::write(&key, "-----BEGIN OPENSSH PRIVATE KEY-----\n").unwrap();
        let keyfile = SshSpec {
            id: "git".into(),
            paths: vec![key],
        };
        let e = resolve(&[keyfile]).await.unwrap_err().to_string();
        assert!(e.contains("ssh-add") && e.contains("\"git\""), "{e}");
        let sock = tmp.path().join("agent.sock");
        let _listener = tokio::net::UnixListener::bind(&sock).unwrap();
        let ok = SshSpec {
            id: "x".into(),
            paths: vec![sock.clone()],
        };
        assert!(!resolve(std::slice::from_ref(&ok)).await.unwrap().is_empty());
        let e = resolve(&[ok.clone(), ok]).await.unwrap_err().to_string();
        assert!(e.contains("twice"), "{e}");
    }
}
