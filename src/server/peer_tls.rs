//! The TLS of `https://` peer URLs, built from etcd's `--peer-*` flags with the same
//! `basalt_net::tls` types as the client TLS (`server::client_tls`): a [`ServerTls`] for the
//! peer listeners and a [`ClientTls`] for dialing the other members.

use std::sync::Arc;

use std::path::Path;

use basalt_net::tls::{ClientTls, TlsClientSettings, TlsPolicy, TlsServerSettings};
use basalt_net::ServerTls;

use crate::config::{Config, TlsConfig};
use crate::server::error::ServerError;
use crate::server::logging::Milestones;

/// Both sides of peer TLS, shared by the transport's listeners and its dialer.
pub struct PeerTls {
    /// What an `https://` peer listener serves and checks.
    pub server: Arc<ServerTls>,
    /// What this member presents and checks when it dials an `https://` peer URL.
    pub client: Arc<ClientTls>,
    /// etcd's check that a peer's client certificate names the IP it connects from; off with
    /// `--experimental-peer-skip-client-san-verification`.
    pub check_client_san: bool,
}

/// Peer TLS as etcd builds its `PeerTLSInfo`: from `--peer-cert-file`/`--peer-key-file` (with
/// `--peer-trusted-ca-file`, `--peer-client-cert-auth`, `--peer-crl-file`,
/// `--peer-cert-allowed-cn`, `--peer-cert-allowed-hostname`; the client side presents
/// `--peer-client-cert-file`/`--peer-client-key-file` when given, else the peer certificate),
/// or with `--peer-auto-tls` a self-signed certificate in `<data-dir>/fixtures/peer` for the
/// listen hosts (servers ask for no client certificate and dialers accept any server
/// certificate, as etcd's auto-TLS peers do). `None` when no peer URL is `https://` and no
/// certificate is given: peers talk plain TCP.
pub fn peer_tls(config: &Config, milestones: &Milestones) -> Result<Option<PeerTls>, ServerError> {
    let settings = &config.peer_tls;
    let any_tls_url = config
        .urls
        .listen_peer
        .iter()
        .chain(&config.urls.advertise_peer)
        .any(|url| url.is_tls());
    if !any_tls_url && !settings.has_certificate() {
        return Ok(None);
    }
    let policy = || {
        TlsPolicy::from_etcd_flags(
            &config.tls.cipher_suites,
            &config.tls.min_version,
            config.tls.max_version.as_deref().unwrap_or(""),
        )
    };
    let (server, client) = match (&settings.cert_file, &settings.key_file) {
        (Some(cert_file), Some(key_file)) => {
            if settings.auto_tls {
                milestones.warn("ignoring peer auto TLS since certs given", &[]);
            }
            let server = ServerTls::new(server_settings(
                settings,
                cert_file,
                key_file,
                policy()?,
                "peer",
            ))?;
            // etcd's ClientConfig: the explicit client pair if given, else the peer pair.
            let (client_cert, client_key) =
                match (&settings.client_cert_file, &settings.client_key_file) {
                    (Some(cert), Some(key)) => (cert.clone(), key.clone()),
                    _ => (cert_file.clone(), key_file.clone()),
                };
            let client = ClientTls::new(TlsClientSettings {
                cert_file: Some(client_cert),
                key_file: Some(client_key),
                trusted_ca_file: settings.trusted_ca_file.clone(),
                insecure_skip_verify: false,
                alpn_protocols: Vec::new(),
                policy: policy()?,
            })?;
            (server, client)
        }
        _ => {
            // The configuration's check leaves only --peer-auto-tls here for an https URL.
            assert!(
                settings.auto_tls,
                "an https peer URL without a certificate or --peer-auto-tls"
            );
            let hosts: Vec<String> = config
                .urls
                .listen_peer
                .iter()
                .map(|url| url.address.clone())
                .collect();
            let validity_years =
                u32::try_from(config.tls.self_signed_cert_validity_years).unwrap_or(u32::MAX);
            let dir = config.member.data_dir.join("fixtures").join("peer");
            let server = ServerTls::self_signed(&dir, &hosts, validity_years, policy()?)?;
            let files = basalt_net::tls::self_signed_files(&dir, &hosts, validity_years)?;
            let client = ClientTls::new(TlsClientSettings {
                cert_file: Some(files.cert_file),
                key_file: Some(files.key_file),
                trusted_ca_file: None,
                insecure_skip_verify: true,
                alpn_protocols: Vec::new(),
                policy: policy()?,
            })?;
            (server, client)
        }
    };
    Ok(Some(PeerTls {
        server: Arc::new(server),
        client: Arc::new(client),
        check_client_san: !settings.skip_client_san_verification,
    }))
}

/// What a TLS listener serves and checks, from one side's flags (client or peer; only the
/// peer side has an allowed CN) and its certificate pair.
pub(crate) fn server_settings(
    settings: &TlsConfig,
    cert_file: &Path,
    key_file: &Path,
    policy: TlsPolicy,
    endpoint: &'static str,
) -> TlsServerSettings {
    TlsServerSettings {
        cert_file: cert_file.to_path_buf(),
        key_file: key_file.to_path_buf(),
        trusted_ca_file: settings.trusted_ca_file.clone(),
        client_cert_auth: settings.client_cert_auth,
        crl_file: settings.crl_file.clone(),
        allowed_hostnames: settings.allowed_hostname.iter().cloned().collect(),
        allowed_cns: settings.allowed_cn.iter().cloned().collect(),
        policy,
        endpoint,
    }
}
