//! TLS on the HTTP port, and certificate and token rotation without a restart (DESIGN §8):
//! a node started with one certificate and one admin token takes new ones from its files
//! while a Watch stream opened before the rotation keeps streaming.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use switchyard_proto::admin::{self as apb, admin_client::AdminClient};
use switchyard_proto::client::{self as pb, client_client::ClientClient};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tonic::Code;

use crate::auth::with_token;
use crate::certs::Pki;
use crate::support::{Cluster, eventually};
use crate::tls::tls_channel;

const WAIT: Duration = Duration::from_secs(30);
const OLD_ADMIN: &str = "adm-old-4Fq9";
const NEW_ADMIN: &str = "adm-new-7Kd2";
const VIEWER: &str = "vie-3Lp8";

/// One HTTPS GET trusting `ca_pem`: the status code and the certificate the server presented.
async fn https_get(
    addr: &str,
    ca_pem: &str,
    path: &str,
    token: &str,
) -> std::io::Result<(u16, Vec<u8>)> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots
            .add(cert.map_err(std::io::Error::other)?)
            .map_err(std::io::Error::other)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").expect("server name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    let served = tls.get_ref().1.peer_certificates().expect("a certificate")[0].to_vec();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Connection: close\r\n\r\n"
    );
    tls.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    // A peer that closes without close_notify is fine here: the response is complete.
    let _ = tls.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line: {text:?}")))?;
    Ok((status, served))
}

/// The DER of the first certificate in a PEM file.
fn der(pem: &str) -> Vec<u8> {
    CertificateDer::pem_slice_iter(pem.as_bytes())
        .next()
        .expect("a certificate")
        .expect("PEM")
        .to_vec()
}

fn copy(from: &Path, to: &Path) {
    // Write then rename, as a secret manager does, so the node never reads half a file.
    let tmp = to.with_extension("tmp");
    std::fs::copy(from, &tmp).expect("copy");
    std::fs::rename(&tmp, to).expect("rename");
}

fn write(to: &Path, text: &str) {
    let tmp = to.with_extension("tmp");
    std::fs::write(&tmp, text).expect("write");
    std::fs::rename(&tmp, to).expect("rename");
}

/// What a plaintext `GET /healthz` to `addr` gets back (empty when the connection is closed).
async fn plaintext_get(addr: &str) -> String {
    let Ok(mut tcp) = tokio::net::TcpStream::connect(addr).await else {
        return String::new();
    };
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if tcp.write_all(request.as_bytes()).await.is_err() {
        return String::new();
    }
    let mut response = Vec::new();
    let _ = tokio::time::timeout(WAIT, tcp.read_to_end(&mut response)).await;
    String::from_utf8_lossy(&response).into_owned()
}

async fn status_code(addr: &str, ca_pem: &str, token: &str) -> Result<(), Code> {
    let channel = tls_channel(addr, ca_pem, None)
        .await
        .map_err(|_| Code::Unavailable)?;
    AdminClient::new(channel)
        .status(with_token(apb::StatusRequest { local: true }, Some(token)))
        .await
        .map(|_| ())
        .map_err(|s| s.code())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_and_tokens_rotate_without_a_restart_under_a_live_watch() {
    // Goal: HTTPS on the HTTP port with a test CA; new certificate and admin token files are
    // picked up without a restart (new connections get them), a Watch stream opened before
    // keeps streaming, and a broken file keeps the material in force.
    let dir = tempfile::tempdir().expect("tempdir");
    let (a, b) = (
        Pki::generate(dir.path(), "a"),
        Pki::generate(dir.path(), "b"),
    );
    let live = dir.path().join("live");
    std::fs::create_dir_all(&live).expect("live dir");
    let (cert, key, admin_file) = (
        live.join("node.pem"),
        live.join("node.key"),
        live.join("admin.tok"),
    );
    copy(&a.cert, &cert);
    copy(&a.key, &key);
    write(&admin_file, OLD_ADMIN);
    let args = [
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
        "--tls-ca",
        a.ca.to_str().unwrap(),
        "--admin-token-file",
        admin_file.to_str().unwrap(),
    ];
    let cluster = Cluster::start_with_env(1, &args, &[("SWITCHYARD_VIEWER_TOKEN", VIEWER)]);
    let node = &cluster.nodes[&1];
    eventually(WAIT, "the node serving over TLS", || async {
        status_code(&node.grpc, &a.ca_pem, OLD_ADMIN).await.ok()
    })
    .await;

    // phase: HTTPS on the HTTP port, with certificate a; plaintext HTTP gets no answer
    let (status, served) = https_get(&node.http, &a.ca_pem, "/api/v1/status", VIEWER)
        .await
        .expect("https");
    assert_eq!((status, served == der(&a.cert_pem)), (200, true));
    let plain = plaintext_get(&node.http).await;
    assert!(
        !plain.starts_with("HTTP/1.1 200"),
        "plaintext HTTP answered: {plain:?}"
    );

    // phase: a Watch stream over TLS, opened before the rotation
    let channel = tls_channel(&node.grpc, &a.ca_pem, None)
        .await
        .expect("tls channel");
    let mut watch = ClientClient::new(channel)
        .watch(pb::WatchRequest {
            scopes: vec![],
            known_index: 0,
        })
        .await
        .expect("watch")
        .into_inner();
    watch
        .next()
        .await
        .expect("snapshot")
        .expect("snapshot event");

    // phase: rotate to certificate b and a new admin token, by writing the files
    copy(&b.key, &key);
    copy(&b.cert, &cert);
    write(&admin_file, NEW_ADMIN);
    eventually(
        WAIT,
        "new HTTPS connections served certificate b",
        || async {
            let (_, served) = https_get(&node.http, &b.ca_pem, "/healthz", VIEWER)
                .await
                .ok()?;
            (served == der(&b.cert_pem)).then_some(())
        },
    )
    .await;
    eventually(WAIT, "the new admin token accepted", || async {
        status_code(&node.grpc, &b.ca_pem, NEW_ADMIN).await.ok()
    })
    .await;
    assert_eq!(
        status_code(&node.grpc, &b.ca_pem, OLD_ADMIN).await,
        Err(Code::PermissionDenied),
        "the old admin token still works"
    );
    assert_eq!(
        status_code(&node.grpc, &a.ca_pem, NEW_ADMIN).await,
        Err(Code::Unavailable),
        "a client trusting only the old CA still connected: the old certificate is still served"
    );

    // phase: the stream opened before the rotation still streams a change made after it
    let channel = tls_channel(&node.grpc, &b.ca_pem, None)
        .await
        .expect("tls channel");
    AdminClient::new(channel)
        .set_override(with_token(
            apb::SetOverrideRequest {
                key: "rotation/db".into(),
                mode: apb::OverrideMode::ForcedOpen as i32,
                reason: "rotation test".into(),
                for_ms: None,
            },
            Some(NEW_ADMIN),
        ))
        .await
        .expect("override with the new token");
    let event = tokio::time::timeout(WAIT, async {
        loop {
            let event = watch.next().await.expect("stream open").expect("event");
            if format!("{event:?}").contains("rotation/db") {
                return event;
            }
        }
    })
    .await;
    assert!(
        event.is_ok(),
        "the Watch stream opened before the rotation went quiet"
    );

    // phase: a broken certificate file is refused and logged; the material in force stays
    write(&cert, "not a certificate");
    eventually(WAIT, "the failed reload logged", || async {
        node.log().contains("TLS reload failed").then_some(())
    })
    .await;
    let (status, served) = https_get(&node.http, &b.ca_pem, "/healthz", VIEWER)
        .await
        .expect("https after a failed reload");
    assert_eq!((status, served == der(&b.cert_pem)), (200, true));
    assert!(!node.log().contains(NEW_ADMIN) && !node.log().contains(OLD_ADMIN));
}
