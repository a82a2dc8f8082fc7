//! Goal: inside TLS the port serves what it serves in plaintext — gRPC to real clients, /health
//! over HTTP/1.1 and HTTP/2 whichever ALPN the client sent (none included) — and a client of
//! the wrong kind (plaintext on a TLS port, TLS on a plaintext port, a silent one) is ended
//! cleanly and bounded in time, leaving the server serving.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use basalt_net::tls::ServerTls;
use basalt_net::ServerConfig;
use bytes::Bytes;
use etcd_client::{Certificate, Client, ConnectOptions, GetOptions, TlsOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::clients::{http1_get, within};
use crate::{serve_tls, support, TestPki, HEALTHY};

pub fn etcd_client_tls(pki: &TestPki) -> TlsOptions {
    TlsOptions::new()
        .ca_certificate(Certificate::from_pem(&pki.ca.cert_pem))
        .domain_name("localhost")
}

#[tokio::test]
async fn grpc_over_tls_with_the_etcd_client_crate() {
    let pki = TestPki::generate();
    let server = serve_tls(pki.settings());
    let options = ConnectOptions::new()
        .with_tls(etcd_client_tls(&pki))
        .with_timeout(Duration::from_secs(10));
    let mut client = Client::connect([format!("https://{}", server.address)], Some(options))
        .await
        .expect("connect over TLS");
    client.put("tls/1", "a", None).await.unwrap();
    client.put("tls/2", "b", None).await.unwrap();
    let got = client
        .get("tls/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(got.count(), 2);
    assert_eq!(got.kvs()[1].value(), b"b");
}

/// The path of a program on PATH, or a panic naming the Debian package that has it.
fn program(name: &str, package: &str) -> std::path::PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| panic!("{name} not found on PATH: apt-get install {package}"))
}

/// Runs a program with a time limit: (success, stdout, stderr).
fn run(program: &Path, args: &[String]) -> (bool, String, String) {
    let output = Command::new("timeout")
        .arg("20")
        .arg(program)
        .args(args)
        .env("ETCDCTL_API", "3")
        .output()
        .expect("run");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Debian's etcdctl 3.4 is grpc-go: ALPN h2, TLS 1.3, a client certificate when given one.
#[test]
fn grpc_over_mutual_tls_with_etcdctl() {
    let pki = TestPki::generate();
    let client = pki.ca.issue(crate::pki::Leaf::client("etcdctl", &[], 10));
    let client_cert = crate::pki::write(pki.dir.path(), "client.pem", &client.cert_pem);
    let client_key = crate::pki::write(pki.dir.path(), "client-key.pem", &client.key_pem);
    let server = serve_tls(basalt_net::tls::TlsServerSettings {
        trusted_ca_file: Some(pki.ca_file.clone()),
        client_cert_auth: true,
        ..pki.settings()
    });
    let etcdctl = program("etcdctl", "etcd-client");
    let mut args = vec![
        format!("--endpoints=https://{}", server.address),
        format!("--cacert={}", pki.ca_file.display()),
        format!("--cert={}", client_cert.display()),
        format!("--key={}", client_key.display()),
        "--command-timeout=10s".to_string(),
    ];
    let put: Vec<String> = args
        .iter()
        .cloned()
        .chain(["put".into(), "greeting".into(), "hello".into()])
        .collect();
    let (ok, stdout, stderr) = run(&etcdctl, &put);
    assert!(ok, "etcdctl put: {stdout} {stderr}");
    assert_eq!(stdout.trim(), "OK");
    args.extend(["get".to_string(), "greeting".to_string()]);
    let (ok, stdout, stderr) = run(&etcdctl, &args);
    assert!(ok, "etcdctl get: {stdout} {stderr}");
    assert_eq!(stdout, "greeting\nhello\n");

    // Without its certificate etcdctl is refused.
    let anonymous: Vec<String> = args
        .iter()
        .filter(|arg| !arg.starts_with("--cert=") && !arg.starts_with("--key="))
        .map(|arg| arg.replace("--command-timeout=10s", "--command-timeout=2s"))
        .collect();
    let (ok, _, _) = run(&etcdctl, &anonymous);
    assert!(!ok, "etcdctl without a client certificate was served");
}

#[tokio::test]
async fn health_over_tls_whatever_alpn_the_client_sent() {
    let pki = TestPki::generate();
    let server = serve_tls(pki.settings());

    // No ALPN (the first bytes decide), then ALPN http/1.1.
    for alpn in [&[][..], &[&b"http/1.1"[..]][..]] {
        let client = pki.client().with_alpn(alpn);
        let mut stream = client.connect(server.address).await.unwrap();
        let negotiated = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
        assert_eq!(negotiated, alpn.first().map(|protocol| protocol.to_vec()));
        let (status, body) = http1_get(&mut stream, "/health").await.unwrap();
        assert_eq!(
            (status.as_str(), body.as_str()),
            ("HTTP/1.1 200 OK", HEALTHY)
        );
        // Keep-alive: a second request on the same TLS connection.
        let (status, _) = http1_get(&mut stream, "/version").await.unwrap();
        assert_eq!(status, "HTTP/1.1 200 OK");
    }

    // curl's offer: h2 wins, and /health is answered over HTTP/2.
    let client = pki.client().with_alpn(&[b"h2", b"http/1.1"]);
    let stream = client.connect(server.address).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, connection) = within(h2::client::handshake(stream)).await.unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let request = http::Request::get("https://localhost/health")
        .body(())
        .unwrap();
    let (response, _) = sender.send_request(request, true).unwrap();
    let response = within(response).await.unwrap();
    assert_eq!(response.status(), 200);
    let mut body = response.into_body();
    let mut received = Vec::new();
    while let Some(chunk) = body.data().await {
        let chunk: Bytes = chunk.unwrap();
        received.extend_from_slice(&chunk);
    }
    assert_eq!(received, HEALTHY.as_bytes());
}

/// curl (OpenSSL) as an operator would run it: HTTP/2 by ALPN, and forced HTTP/1.1.
#[test]
fn health_over_tls_with_curl() {
    let pki = TestPki::generate();
    let server = serve_tls(pki.settings());
    let curl = program("curl", "curl");
    let url = format!("https://localhost:{}/health", server.address.port());
    for http_version in ["--http2", "--http1.1"] {
        let args = [
            "--silent".to_string(),
            "--show-error".to_string(),
            "--max-time".to_string(),
            "10".to_string(),
            http_version.to_string(),
            "--cacert".to_string(),
            pki.ca_file.display().to_string(),
            "--write-out".to_string(),
            " %{http_version}".to_string(),
            url.clone(),
        ];
        let (ok, stdout, stderr) = run(&curl, &args);
        assert!(ok, "curl {http_version}: {stderr}");
        let expected_version = if http_version == "--http2" {
            "2"
        } else {
            "1.1"
        };
        assert_eq!(stdout, format!("{HEALTHY} {expected_version}"));
    }
}

#[tokio::test]
async fn plaintext_client_on_a_tls_port_is_refused() {
    let pki = TestPki::generate();
    let server = serve_tls(pki.settings());

    let mut socket = within(tokio::net::TcpStream::connect(server.address))
        .await
        .unwrap();
    socket
        .write_all(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .unwrap();
    // The server ends the connection (after at most a TLS alert): never an HTTP answer.
    let mut received = Vec::new();
    let _ = within(socket.read_to_end(&mut received)).await;
    assert!(
        !String::from_utf8_lossy(&received).contains("HTTP/1.1"),
        "{received:?}"
    );

    // gRPC without TLS (HTTP/2 prior knowledge): the HTTP/2 handshake fails.
    let socket = within(tokio::net::TcpStream::connect(server.address))
        .await
        .unwrap();
    let refused = async {
        let (_sender, connection) = h2::client::handshake(socket).await?;
        connection.await
    };
    assert!(within(refused).await.is_err());

    // The server still serves TLS.
    let (status, _) = pki.client().get(server.address, "/health").await.unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
}

/// Goal: one `Server` serves an http:// and an https:// listener side by side (etcd's
/// --listen-client-urls may mix them), each with its own kind of client.
#[tokio::test]
async fn one_server_serves_plaintext_and_tls_listeners() {
    let pki = TestPki::generate();
    let server = serve_tls(pki.settings());
    let plaintext = server.plaintext_address.unwrap();
    let mut socket = tokio::net::TcpStream::connect(plaintext).await.unwrap();
    let (status, body) = http1_get(&mut socket, "/health").await.unwrap();
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", HEALTHY)
    );
    let (status, _) = pki.client().get(server.address, "/health").await.unwrap();
    assert_eq!(status, "HTTP/1.1 200 OK");
    assert!(pki.client().connect(plaintext).await.is_err());
}

#[tokio::test]
async fn tls_client_on_a_plaintext_port_fails_cleanly() {
    let pki = TestPki::generate();
    let server = support::start_demo_server(ServerConfig::default());
    let error = pki.client().connect(server.address).await.unwrap_err();
    assert!(!error.contains("no answer within"), "{error}");
    // The plaintext port still serves.
    let mut socket = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    let (status, body) = http1_get(&mut socket, "/health").await.unwrap();
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", HEALTHY)
    );
}

/// Goal: a client that connects and never starts its handshake is dropped once
/// handshake_timeout has passed, not held forever.
#[tokio::test]
async fn silent_client_is_dropped_after_the_handshake_timeout() {
    let pki = TestPki::generate();
    let server = support::start_demo_server_with_tls(
        ServerConfig {
            handshake_timeout: Duration::from_millis(200),
            ..ServerConfig::default()
        },
        Some(std::sync::Arc::new(ServerTls::new(pki.settings()).unwrap())),
    );
    let mut socket = tokio::net::TcpStream::connect(server.address)
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    let read = within(socket.read(&mut byte)).await;
    assert!(
        matches!(read, Ok(0))
            || read
                .as_ref()
                .is_err_and(|error| !error.contains("no answer")),
        "{read:?}"
    );
}
