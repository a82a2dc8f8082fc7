//! Goal: --auto-tls gives a working TLS listener with a self-signed certificate for the listen
//! hosts, written where etcd writes it, and etcd's own kind of client (one that skips
//! verification, `ClientTls` with `insecure_skip_verify`) connects to it.
//! Method: `ServerTls::self_signed` into a temporary data dir; one client trusting the written
//! certificate, one skipping verification.

use basalt_net::tls::{ClientTls, ServerTls, TlsClientSettings, TlsPolicy};
use rustls::pki_types::ServerName;
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

use crate::clients::{http1_get, within, TlsClient};
use crate::{serve_with, HEALTHY};

#[tokio::test]
async fn auto_tls_serves_a_self_signed_certificate() {
    let data_dir = tempfile::tempdir().unwrap();
    let fixtures = data_dir.path().join("fixtures").join("client");
    let hosts = ["127.0.0.1:2379".to_string(), "localhost:2379".to_string()];
    let tls = ServerTls::self_signed(&fixtures, &hosts, 1, TlsPolicy::default()).unwrap();
    let cert_pem = std::fs::read_to_string(fixtures.join("cert.pem")).unwrap();
    assert!(fixtures.join("key.pem").is_file());
    assert_eq!(tls.settings().cert_file, fixtures.join("cert.pem"));
    let server = serve_with(tls);

    // Trusting the self-signed certificate itself, with the name it was made for.
    let (status, body) = TlsClient::trusting(&cert_pem)
        .get(server.address, "/health")
        .await
        .unwrap();
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", HEALTHY)
    );

    // As etcd's clients of an auto-tls member: no verification.
    let client = ClientTls::new(TlsClientSettings {
        insecure_skip_verify: true,
        ..TlsClientSettings::default()
    })
    .unwrap();
    let socket = within(tokio::net::TcpStream::connect(server.address))
        .await
        .unwrap();
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let stream = within(client.connector().connect(name, socket.compat()))
        .await
        .unwrap();
    let mut stream = stream.compat();
    let (status, _) = http1_get(&mut stream, "/health").await.unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");

    // A second start reuses the files.
    ServerTls::self_signed(&fixtures, &hosts, 1, TlsPolicy::default()).unwrap();
    assert_eq!(
        std::fs::read_to_string(fixtures.join("cert.pem")).unwrap(),
        cert_pem
    );
}
