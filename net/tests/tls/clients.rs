//! Raw TLS clients (tokio-rustls) with every knob the tests turn: trusted roots, a client
//! certificate, protocol versions, TLS 1.2 cipher suites, ALPN. Every network step is bounded.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// Time any one client step may take before the test fails instead of hanging.
pub const STEP_LIMIT: Duration = Duration::from_secs(10);

/// A TLS client's configuration.
#[derive(Clone)]
pub struct TlsClient {
    roots: Vec<CertificateDer<'static>>,
    identity: Option<(String, String)>,
    versions: Vec<&'static SupportedProtocolVersion>,
    tls12_suites: Option<Vec<SupportedCipherSuite>>,
    alpn: Vec<Vec<u8>>,
}

impl TlsClient {
    /// Trusts the certificates of `ca_pem`; TLS 1.2 and 1.3, every suite, no ALPN, no client
    /// certificate.
    pub fn trusting(ca_pem: &str) -> TlsClient {
        TlsClient {
            roots: CertificateDer::pem_slice_iter(ca_pem.as_bytes())
                .map(Result::unwrap)
                .collect(),
            identity: None,
            versions: vec![&rustls::version::TLS13, &rustls::version::TLS12],
            tls12_suites: None,
            alpn: Vec::new(),
        }
    }

    /// Presents this certificate and key when asked.
    pub fn with_identity(mut self, cert_pem: &str, key_pem: &str) -> TlsClient {
        self.identity = Some((cert_pem.to_string(), key_pem.to_string()));
        self
    }

    /// Offers only these versions.
    pub fn with_versions(mut self, versions: &[&'static SupportedProtocolVersion]) -> TlsClient {
        self.versions = versions.to_vec();
        self
    }

    /// Offers only these TLS 1.2 suites (TLS 1.3 suites stay).
    pub fn with_tls12_suites(mut self, suites: &[SupportedCipherSuite]) -> TlsClient {
        self.tls12_suites = Some(suites.to_vec());
        self
    }

    /// Offers these ALPN protocols.
    pub fn with_alpn(mut self, protocols: &[&[u8]]) -> TlsClient {
        self.alpn = protocols.iter().map(|protocol| protocol.to_vec()).collect();
        self
    }

    fn config(&self) -> rustls::ClientConfig {
        let mut provider = rustls::crypto::ring::default_provider();
        if let Some(tls12) = &self.tls12_suites {
            provider
                .cipher_suites
                .retain(|suite| suite.version() == &rustls::version::TLS13);
            provider.cipher_suites.extend(tls12.iter().copied());
        }
        let mut roots = rustls::RootCertStore::empty();
        for root in &self.roots {
            roots.add(root.clone()).unwrap();
        }
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(provider))
            .with_protocol_versions(&self.versions)
            .unwrap()
            .with_root_certificates(roots);
        let mut config = match &self.identity {
            Some((cert_pem, key_pem)) => builder
                .with_client_auth_cert(
                    CertificateDer::pem_slice_iter(cert_pem.as_bytes())
                        .map(Result::unwrap)
                        .collect(),
                    PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).unwrap(),
                )
                .unwrap(),
            None => builder.with_no_client_auth(),
        };
        config.alpn_protocols = self.alpn.clone();
        config
    }

    /// Connects and completes the client's side of the handshake (with TLS 1.3 the server may
    /// still refuse the client certificate after this: the refusal arrives on the first read).
    pub async fn connect(&self, address: SocketAddr) -> Result<TlsStream<TcpStream>, String> {
        let connector = tokio_rustls::TlsConnector::from(Arc::new(self.config()));
        let socket = within(TcpStream::connect(address)).await?;
        let name = ServerName::try_from("localhost").unwrap();
        within(connector.connect(name, socket)).await
    }

    /// `GET path` over HTTP/1.1 in TLS: the status line and body, or why there is none.
    pub async fn get(&self, address: SocketAddr, path: &str) -> Result<(String, String), String> {
        let mut stream = self.connect(address).await?;
        http1_get(&mut stream, path).await
    }
}

/// The output of `future`, or a description of its error or time-out.
pub async fn within<T, E: std::fmt::Display>(
    future: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, String> {
    match tokio::time::timeout(STEP_LIMIT, future).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err(format!("no answer within {STEP_LIMIT:?}")),
    }
}

/// One HTTP/1.1 GET on `stream`: (status line, body), read by Content-Length.
pub async fn http1_get<S>(stream: &mut S, path: &str) -> Result<(String, String), String>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
    within(stream.write_all(request.as_bytes())).await?;
    within(stream.flush()).await?;
    let mut received = Vec::new();
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .ok_or_else(|| format!("no Content-Length in {head:?}"))?;
            if body.len() >= length {
                let status = head.lines().next().unwrap_or("").to_string();
                return Ok((status, body[..length].to_string()));
            }
        }
        let mut chunk = [0u8; 4096];
        let read = within(stream.read(&mut chunk)).await?;
        if read == 0 {
            return Err(format!(
                "closed after {} bytes: {:?}",
                received.len(),
                String::from_utf8_lossy(&received)
            ));
        }
        received.extend_from_slice(&chunk[..read]);
    }
}

/// The leaf certificate the server presented on `stream`.
pub fn presented_certificate(stream: &TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0]
        .clone()
        .into_owned()
}
