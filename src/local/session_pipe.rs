//! A byte pipe between a session's HTTP/2 server and a builder's `Control.Session` stream: what
//! the server writes leaves as `BytesMessage`s, what arrives in them is read by the server.

use bollard::moby::buildkit::v1::BytesMessage;
use futures::{Stream, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream, ReadHalf, WriteHalf};

/// Bytes buffered each way; BuildKit's own hijacked streams carry frames of this order.
const PIPE_BUFFER: usize = 256 << 10;

/// The receiving half: feeds the builder's messages to the session's server.
pub(crate) struct Incoming(WriteHalf<DuplexStream>);

impl Incoming {
    /// Copies every message of `messages` into the pipe until either side ends, then closes it.
    pub(crate) async fn feed<S>(mut self, mut messages: S)
    where
        S: Stream<Item = Result<BytesMessage, tonic14::Status>> + Unpin,
    {
        while let Some(Ok(m)) = messages.next().await {
            if self.0.write_all(&m.data).await.is_err() {
                break;
            }
        }
        let _ = self.0.shutdown().await;
    }
}

/// The server's end of the pipe, the stream of outgoing messages, and the feeder of incoming ones.
pub(crate) fn message_pipe() -> (
    TokioIo<DuplexStream>,
    impl Stream<Item = BytesMessage> + Send + 'static,
    Incoming,
) {
    let (server_end, pipe_end) = tokio::io::duplex(PIPE_BUFFER);
    let (reader, writer) = tokio::io::split(pipe_end);
    (TokioIo::new(server_end), outgoing(reader), Incoming(writer))
}

/// What the server writes, as messages; ends when the server closes its end.
fn outgoing(reader: ReadHalf<DuplexStream>) -> impl Stream<Item = BytesMessage> + Send + 'static {
    futures::stream::unfold(reader, |mut reader| async move {
        let mut buf = vec![0u8; 32 << 10];
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((BytesMessage { data: buf }, reader))
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn bytes_cross_the_pipe_both_ways_and_close_ends_it() {
        let (conn, out, incoming) = message_pipe();
        let mut conn = conn.into_inner();
        let feed = futures::stream::iter(vec![
            Ok(BytesMessage {
                data: b"he".to_vec(),
            }),
            Ok(BytesMessage {
                data: b"llo".to_vec(),
            }),
        ]);
        tokio::spawn(incoming.feed(feed));
        let mut got = String::new();
        conn.read_to_string(&mut got).await.unwrap();
        assert_eq!(got, "hello");
        conn.write_all(b"world").await.unwrap();
        drop(conn);
        let sent: Vec<u8> = out
            .flat_map(|m| futures::stream::iter(m.data))
            .collect()
            .await;
        assert_eq!(sent, b"world");
    }
}
