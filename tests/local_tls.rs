//! DOCKER_HOST=tcp://... with DOCKER_TLS_VERIFY: a mutual-TLS proxy in front of the daemon under test
//! stands in for a TLS daemon; a BuildKit build (session upgrade included) must go through it.

mod local_common;

use std::path::Path;
use std::sync::Arc;

use imagebuild::local::{LocalConfig, LocalEngine};
use local_common::*;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;

fn openssl(dir: &Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// ca.pem, server-{cert,key}.pem (127.0.0.1), cert.pem/key.pem (client), like `dockerd --tlsverify` set-ups.
fn make_certs(dir: &Path) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca-key.pem",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=itest-ca",
        ],
    );
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    std::fs::write(dir.join("client.ext"), "extendedKeyUsage=clientAuth\n").unwrap();
    for (name, ext) in [("server", "server.ext"), ("client", "client.ext")] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                &format!("{name}-key.pem"),
                "-out",
                &format!("{name}.csr"),
                "-subj",
                &format!("/CN={name}"),
            ],
        );
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca-key.pem",
                "-CAcreateserial",
                "-out",
                &format!("{name}-cert.pem"),
                "-days",
                "2",
                "-extfile",
                ext,
            ],
        );
    }
    std::fs::copy(dir.join("client-cert.pem"), dir.join("cert.pem")).unwrap();
    std::fs::copy(dir.join("client-key.pem"), dir.join("key.pem")).unwrap();
}

async fn tls_proxy(dir: &Path) -> std::net::SocketAddr {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .unwrap();
    let chain: Vec<_> = CertificateDer::pem_file_iter(dir.join("server-cert.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("server-key.pem")).unwrap();
    let cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // In front of the daemon under test ($DOCKER_HOST, else the default socket).
    let sock = docker_sock();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let sock = sock.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let Ok(mut unix) = tokio::net::UnixStream::connect(&sock).await else {
                    return;
                };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut unix).await;
            });
        }
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builds_through_a_mutual_tls_docker_host() {
    require_services();
    let certs = tempfile::tempdir().unwrap();
    make_certs(certs.path());
    let addr = tls_proxy(certs.path()).await;
    std::env::set_var("DOCKER_TLS_VERIFY", "1");
    std::env::set_var("DOCKER_CERT_PATH", certs.path());
    let id = uuid::Uuid::new_v4().simple().to_string();
    let dir = write_tree(&[("a.txt", "a")]);
    let df = format!("FROM {BUSYBOX}\nCOPY a.txt /a\nRUN --mount=type=secret,id=s test -s /run/secrets/s && echo tls-{id}\n");
    let mut b = build_spec(snapshot(dir.path(), &df, None, &id));
    b.secrets.insert("s".into(), "x".into());
    let spec = publish_spec(b, unique_repo("tls"));
    let eng = LocalEngine::new(LocalConfig {
        docker_host: Some(format!("tcp://{addr}")),
        max_parallel_builds: 1,
        max_parallel_pushes: 0,
        builder: None,
    });
    let (r, ev) = publish(&eng, spec, CancellationToken::new()).await;
    let p = r.unwrap_or_else(|e| panic!("build over TLS failed: {e}"));
    assert!(p.digest.is_some());
    assert!(ev.iter().any(
        |(_, e)| matches!(e, imagebuild::local::ProgressEvent::Log(l) if l == &format!("tls-{id}"))
    ));

    // Without the client certificate the daemon (proxy) refuses: the error names the host.
    std::fs::remove_file(certs.path().join("cert.pem")).unwrap();
    let mut spec2 = publish_spec(
        build_spec(snapshot(dir.path(), &df, None, &format!("{id}-2"))),
        unique_repo("tls"),
    );
    spec2.push = false;
    let eng = LocalEngine::new(LocalConfig {
        docker_host: Some(format!("tcp://{addr}")),
        max_parallel_builds: 1,
        max_parallel_pushes: 0,
        builder: None,
    });
    let (r, _) = publish(&eng, spec2, CancellationToken::new()).await;
    let msg = r.expect_err("no client certificate").to_string();
    assert!(msg.contains(&format!("tcp://{addr}")), "{msg}");
}
