//! The client side, for the peer transport: etcd's `TLSInfo.ClientConfig` — trust the
//! trusted CA file (or the system's bundle), present the certificate and key when a server
//! asks, skip verification only for auto-TLS peers (etcd's `InsecureSkipVerify`), and reload
//! the files when they change.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::sign::SingleCertAndKey;
use rustls::{DigitallySignedStruct, SignatureScheme};

use super::files;
use super::policy::TlsPolicy;
use super::reload::Reloading;
use super::TlsError;

/// etcd's TLS flags for connecting to a peer.
#[derive(Clone, Debug, Default)]
pub struct TlsClientSettings {
    /// `--peer-cert-file` (or `--peer-client-cert-file`): presented when the server asks.
    pub cert_file: Option<PathBuf>,
    /// Its key.
    pub key_file: Option<PathBuf>,
    /// `--peer-trusted-ca-file`: CAs the server's certificate must chain to; `None`: the
    /// system's bundle, as Go.
    pub trusted_ca_file: Option<PathBuf>,
    /// Accept any server certificate (signatures are still checked): etcd does this for
    /// `--peer-auto-tls`, whose certificates are self-signed.
    pub insecure_skip_verify: bool,
    /// ALPN protocols to offer (empty: none).
    pub alpn_protocols: Vec<Vec<u8>>,
    /// `--cipher-suites`, `--tls-min-version`, `--tls-max-version`.
    pub policy: TlsPolicy,
}

/// A TLS client configuration shared by every executor, reloaded when its files change.
pub struct ClientTls {
    settings: TlsClientSettings,
    config: Reloading<rustls::ClientConfig>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ClientTls")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Loads and checks every file; each error names the file at fault.
    pub fn new(settings: TlsClientSettings) -> Result<ClientTls, TlsError> {
        let identity = match (&settings.cert_file, &settings.key_file) {
            (Some(cert), Some(key)) => Some((cert.clone(), key.clone())),
            (None, None) => None,
            (cert, key) => {
                return Err(TlsError::Setting(format!(
                    "KeyFile and CertFile must both be present[key: {}, cert: {}]",
                    key.as_deref()
                        .map(|path| path.display().to_string())
                        .unwrap_or_default(),
                    cert.as_deref()
                        .map(|path| path.display().to_string())
                        .unwrap_or_default(),
                )))
            }
        };
        let ca_file = match (&settings.trusted_ca_file, settings.insecure_skip_verify) {
            (_, true) => None,
            (Some(file), false) => Some(file.clone()),
            (None, false) => Some(files::system_ca_bundle()?),
        };
        let mut watched = Vec::new();
        if let Some((cert, key)) = &identity {
            watched.extend([cert.clone(), key.clone()]);
        }
        watched.extend(ca_file.iter().cloned());
        let build_settings = settings.clone();
        let config = Reloading::new(
            watched,
            Box::new(move || {
                build_client_config(&build_settings, identity.as_ref(), ca_file.as_ref())
            }),
        )?;
        Ok(ClientTls { settings, config })
    }

    /// The connector for one new connection, with the current configuration (reloaded first
    /// if the files changed).
    pub fn connector(&self) -> futures_rustls::TlsConnector {
        futures_rustls::TlsConnector::from(self.config.current())
    }

    /// The current rustls configuration (reloaded first if the files changed).
    pub fn current_config(&self) -> Arc<rustls::ClientConfig> {
        self.config.current()
    }
}

fn build_client_config(
    settings: &TlsClientSettings,
    identity: Option<&(PathBuf, PathBuf)>,
    ca_file: Option<&PathBuf>,
) -> Result<rustls::ClientConfig, TlsError> {
    let provider = settings.policy.provider();
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&settings.policy.versions())
        .map_err(|error| TlsError::Setting(format!("TLS versions and cipher suites: {error}")))?;
    let builder = match ca_file {
        Some(ca_file) => builder.with_root_certificates(files::ca_bundle(ca_file)?),
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyServerCertificate(provider.clone()))),
    };
    let mut config = match identity {
        Some((cert, key)) => {
            let certified_key = files::certified_key(cert, key, &provider)?;
            builder.with_client_cert_resolver(Arc::new(SingleCertAndKey::from(certified_key)))
        }
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = settings.alpn_protocols.clone();
    Ok(config)
}

/// Go's `InsecureSkipVerify`: any certificate is accepted, but the handshake's signatures are
/// still checked against the certificate presented.
#[derive(Debug)]
struct AnyServerCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
