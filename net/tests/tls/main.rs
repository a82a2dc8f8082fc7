//! Goal: basalt-net serves gRPC and HTTP/1.1 inside TLS on one port as etcd does with its TLS
//! flags — server certificates, client certificates (mTLS), CRLs, allowed client names,
//! protocol versions, cipher suites, certificate reload and auto-tls — and refuses what etcd
//! refuses, at start-up or at the handshake.
//! Method: a throwaway PKI made with rcgen in a temporary directory; the demo server with a
//! `ServerTls`; real clients (the etcd-client crate, Debian's etcdctl 3.4, curl) where one
//! exists for the point, raw tokio-rustls clients for the knobs real clients do not expose.
//! Every client step is bounded by a time limit (no sleeps).

#[path = "../support/mod.rs"]
mod support;

mod clients;
mod pki;

mod auto_tls;
mod client_certificates;
mod handshake;
mod reload;
mod settings;
mod versions_and_suites;

use std::path::PathBuf;
use std::sync::Arc;

use basalt_net::tls::{ServerTls, TlsServerSettings};
use basalt_net::ServerConfig;

/// A CA, a server certificate for localhost/127.0.0.1 signed by it, and their files.
pub struct TestPki {
    pub dir: tempfile::TempDir,
    pub ca: pki::Ca,
    pub ca_file: PathBuf,
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

impl TestPki {
    pub fn generate() -> TestPki {
        let dir = tempfile::tempdir().unwrap();
        let ca = pki::Ca::new("basalt test CA");
        let server = ca.issue(pki::Leaf::server(1));
        TestPki {
            ca_file: pki::write(dir.path(), "ca.pem", &ca.cert_pem),
            cert_file: pki::write(dir.path(), "server.pem", &server.cert_pem),
            key_file: pki::write(dir.path(), "server-key.pem", &server.key_pem),
            dir,
            ca,
        }
    }

    /// Server settings with this PKI's certificate and key, nothing else.
    pub fn settings(&self) -> TlsServerSettings {
        TlsServerSettings {
            cert_file: self.cert_file.clone(),
            key_file: self.key_file.clone(),
            ..TlsServerSettings::default()
        }
    }

    /// A client trusting this PKI's CA.
    pub fn client(&self) -> clients::TlsClient {
        clients::TlsClient::trusting(&self.ca.cert_pem)
    }
}

/// The demo server with TLS from `settings`.
pub fn serve_tls(settings: TlsServerSettings) -> support::DemoServer {
    serve_with(ServerTls::new(settings).expect("TLS settings accepted"))
}

/// The demo server with this TLS configuration.
pub fn serve_with(tls: ServerTls) -> support::DemoServer {
    support::start_demo_server_with_tls(ServerConfig::default(), Some(Arc::new(tls)))
}

/// The body etcd's /health answers when healthy.
pub const HEALTHY: &str = r#"{"health":"true","reason":""}"#;
