//! `pulumi-resource-imagebuild`: the plugin the Pulumi engine starts, plus a `context` diagnostic.

use imagebuild::proto::resource_provider_server::ResourceProviderServer;
use imagebuild::provider::{Provider, VERSION};
use std::io::Write;
use tonic::transport::server::TcpIncoming;

/// The engine allows messages up to 400 MiB; tonic's default of 4 MiB is too small for big states.
const MAX_MESSAGE_BYTES: usize = 400 * 1024 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("context") => std::process::exit(imagebuild::plan::run_cli(&args[1..])),
        Some("--version") | Some("version") => println!("{VERSION}"),
        _ => {
            let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| {
                eprintln!("imagebuild: cannot start the async runtime: {e}");
                std::process::exit(1)
            });
            if let Err(e) = runtime.block_on(serve(engine_address(&args))) {
                eprintln!("imagebuild: {e}");
                std::process::exit(1);
            }
        }
    }
}

/// The engine's address is the last argument that is neither a flag nor a flag's value.
fn engine_address(args: &[String]) -> Option<String> {
    let mut candidate = None;
    let mut skip_next = false;
    for arg in args {
        if skip_next {
            skip_next = false;
        } else if arg == "--tracing" || arg == "--root" {
            skip_next = true;
        } else if !arg.starts_with('-') {
            candidate = Some(arg.clone());
        }
    }
    candidate
}

async fn serve(engine: Option<String>) -> Result<(), Box<dyn std::error::Error>> {
    // The engine dials 127.0.0.1 (not ::1); the port goes out first, before any slow set-up.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let mut stdout = std::io::stdout();
    writeln!(stdout, "{port}")?;
    stdout.flush()?;

    let provider = Provider::new(engine);
    let cancel = provider.cancel_handle();
    let closing = provider.closing_report();
    let service = ResourceProviderServer::new(provider)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES);
    tonic::transport::Server::builder()
        .add_service(service)
        .serve_with_incoming_shutdown(engine_connections(listener), async move {
            shutdown_signal().await;
            // In-flight builds must stop too, or graceful shutdown would wait for them.
            cancel.cancel();
            closing.send().await;
        })
        .await?;
    Ok(())
}

/// The engine's connections, with TCP_NODELAY: without it every reply waits out the engine's
/// delayed ACK (Nagle), ~40 ms per RPC, which was most of this plugin's share of a no-op `up`.
fn engine_connections(listener: tokio::net::TcpListener) -> TcpIncoming {
    TcpIncoming::from(listener).with_nodelay(Some(true))
}

/// Resolves when the engine hangs up: it sends SIGINT (then SIGKILL) to the plugin, or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio_stream::StreamExt;

    #[tokio::test]
    async fn engine_connections_send_replies_without_nagles_delay() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut incoming = engine_connections(listener);
        let _engine = tokio::net::TcpStream::connect(addr).await.unwrap();
        let accepted = incoming.next().await.unwrap().unwrap();
        assert!(
            accepted.nodelay().unwrap(),
            "an engine connection must have TCP_NODELAY"
        );
    }
}
