//! The server side: one [`ServerTls`] per TLS listener, built from etcd's flags and shared by
//! every executor.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use rustls::server::{NoServerSessionStorage, WebPkiClientVerifier};
use rustls::sign::SingleCertAndKey;

use super::files;
use super::policy::TlsPolicy;
use super::reload::Reloading;
use super::self_signed::self_signed_files;
use super::verifier::{AllowedClients, EtcdClientVerifier};
use super::{go_quoted_list, TlsError};

/// ALPN protocols offered: gRPC clients ask for `h2`, curl for both; a client that sends no
/// ALPN is still served (the first bytes tell HTTP/2 from HTTP/1.1).
const ALPN_PROTOCOLS: [&[u8]; 2] = [b"h2", b"http/1.1"];

/// etcd's TLS flags for one server endpoint (client or peer), as given.
#[derive(Clone, Debug, Default)]
pub struct TlsServerSettings {
    /// `--cert-file`: the server's certificate chain (PEM, leaf first).
    pub cert_file: PathBuf,
    /// `--key-file`: its private key (PEM: RSA, ECDSA P-256/P-384 or Ed25519; PKCS#1, SEC1 or
    /// PKCS#8).
    pub key_file: PathBuf,
    /// `--trusted-ca-file`: CAs client certificates must chain to. As in etcd, giving it
    /// requires and verifies a client certificate even without `client_cert_auth`.
    pub trusted_ca_file: Option<PathBuf>,
    /// `--client-cert-auth`: require and verify a client certificate (against the trusted CA
    /// file, or the system's CA bundle when there is none, as Go does).
    pub client_cert_auth: bool,
    /// `--client-crl-file`: refuse client certificates whose serial number it lists.
    pub crl_file: Option<PathBuf>,
    /// `--client-cert-allowed-hostname`: a verified client certificate must be valid for one
    /// of these names (DNS or IP SANs); empty: no such check.
    pub allowed_hostnames: Vec<String>,
    /// `--peer-cert-allowed-cn`: a verified client certificate's subject CN must be one of
    /// these; empty: no such check.
    pub allowed_cns: Vec<String>,
    /// `--cipher-suites`, `--tls-min-version`, `--tls-max-version`.
    pub policy: TlsPolicy,
    /// Names the endpoint in logs (`rejected connection on client endpoint`); empty: "client".
    pub endpoint: &'static str,
}

/// A TLS server configuration shared by every executor: each handshake takes the current
/// rustls configuration (reloaded when the certificate, key, CA or CRL files changed) and runs
/// on the core of its connection.
pub struct ServerTls {
    settings: TlsServerSettings,
    config: Reloading<rustls::ServerConfig>,
}

impl fmt::Debug for ServerTls {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("ServerTls")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ServerTls {
    /// Loads and checks every file and setting; each error names the file or value at fault.
    pub fn new(settings: TlsServerSettings) -> Result<ServerTls, TlsError> {
        if !settings.allowed_cns.is_empty() && !settings.allowed_hostnames.is_empty() {
            return Err(TlsError::Setting(format!(
                "AllowedCNs and AllowedHostnames are mutually exclusive (cns={}, hostnames={})",
                go_quoted_list(&settings.allowed_cns),
                go_quoted_list(&settings.allowed_hostnames)
            )));
        }
        let allowed = allowed_clients(&settings)?;
        // etcd: `ClientAuth = RequireAndVerifyClientCert` if a CA file is given or
        // --client-cert-auth is set; with neither, no client certificate is asked for, and the
        // CRL and allowed names have nothing to check.
        let verify_clients = settings.trusted_ca_file.is_some() || settings.client_cert_auth;
        let ca_file = match (&settings.trusted_ca_file, verify_clients) {
            (Some(file), _) => Some(file.clone()),
            (None, true) => Some(files::system_ca_bundle()?),
            (None, false) => None,
        };
        if !verify_clients
            && (settings.crl_file.is_some() || !matches!(allowed, AllowedClients::Any))
        {
            tracing::warn!(
                "a CRL file or allowed client names without --client-cert-auth or \
                 --trusted-ca-file: no client certificate is asked for, so they check nothing"
            );
        }
        let mut watched = vec![settings.cert_file.clone(), settings.key_file.clone()];
        watched.extend(ca_file.iter().cloned());
        watched.extend(settings.crl_file.iter().cloned());
        let build_settings = settings.clone();
        let config = Reloading::new(
            watched,
            Box::new(move || {
                build_server_config(&build_settings, ca_file.as_deref(), allowed.clone())
            }),
        )?;
        Ok(ServerTls { settings, config })
    }

    /// `--auto-tls`: serves the self-signed certificate of `dir` (etcd's
    /// `<data-dir>/fixtures/client`), made for `hosts` (the listen URLs' `host:port`) and
    /// valid `validity_years` (`--self-signed-cert-validity`) if `dir` has none yet. As etcd's
    /// auto-tls, it asks for no client certificate: only `policy` applies.
    pub fn self_signed(
        dir: &Path,
        hosts: &[String],
        validity_years: u32,
        policy: TlsPolicy,
    ) -> Result<ServerTls, TlsError> {
        let files = self_signed_files(dir, hosts, validity_years)?;
        ServerTls::new(TlsServerSettings {
            cert_file: files.cert_file,
            key_file: files.key_file,
            policy,
            ..TlsServerSettings::default()
        })
    }

    /// The acceptor for one new connection, with the current configuration (reloaded first
    /// if the files changed).
    pub fn acceptor(&self) -> futures_rustls::TlsAcceptor {
        futures_rustls::TlsAcceptor::from(self.config.current())
    }

    /// The current rustls configuration (reloaded first if the files changed).
    pub fn current_config(&self) -> Arc<rustls::ServerConfig> {
        self.config.current()
    }

    /// The settings this was built from.
    pub fn settings(&self) -> &TlsServerSettings {
        &self.settings
    }

    /// The endpoint's name for logs.
    pub fn endpoint(&self) -> &'static str {
        if self.settings.endpoint.is_empty() {
            "client"
        } else {
            self.settings.endpoint
        }
    }
}

/// The allowed client names, checked once at start-up.
fn allowed_clients(settings: &TlsServerSettings) -> Result<AllowedClients, TlsError> {
    if !settings.allowed_cns.is_empty() {
        return Ok(AllowedClients::CommonNames(settings.allowed_cns.clone()));
    }
    if settings.allowed_hostnames.is_empty() {
        return Ok(AllowedClients::Any);
    }
    let mut names = Vec::new();
    for hostname in &settings.allowed_hostnames {
        // Go's VerifyHostname takes an IPv6 literal with or without brackets.
        let bare = hostname.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare.to_string()).map_err(|error| {
            TlsError::Setting(format!(
                "allowed client hostname {hostname:?} is neither a DNS name nor an IP address: \
                 {error}"
            ))
        })?;
        names.push(name);
    }
    Ok(AllowedClients::Hostnames(names))
}

/// Reads the files and builds the rustls configuration.
fn build_server_config(
    settings: &TlsServerSettings,
    ca_file: Option<&Path>,
    allowed: AllowedClients,
) -> Result<rustls::ServerConfig, TlsError> {
    let provider = settings.policy.provider();
    let certified_key = files::certified_key(&settings.cert_file, &settings.key_file, &provider)?;
    let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&settings.policy.versions())
        .map_err(|error| TlsError::Setting(format!("TLS versions and cipher suites: {error}")))?;
    let builder = match ca_file {
        Some(ca_file) => {
            let roots = Arc::new(files::ca_bundle(ca_file)?);
            let chain = WebPkiClientVerifier::builder_with_provider(roots, provider)
                .build()
                .map_err(|error| {
                    TlsError::file(files::TRUSTED_CA, ca_file, format!("unusable: {error}"))
                })?;
            let revoked = match &settings.crl_file {
                Some(crl_file) => Some(files::revoked_serials(crl_file)?),
                None => None,
            };
            builder.with_client_cert_verifier(Arc::new(EtcdClientVerifier {
                chain,
                revoked,
                allowed,
            }))
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(certified_key)));
    config.alpn_protocols = ALPN_PROTOCOLS
        .iter()
        .map(|protocol| protocol.to_vec())
        .collect();
    // No session resumption: its cache (or ticket key rotation) is state shared by every
    // connection of every core, and etcd's clients keep their connections for long.
    config.session_storage = Arc::new(NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok(config)
}
