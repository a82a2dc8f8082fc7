//! Client and peer TLS as etcd serves it: server certificates, mutual TLS, CRLs, allowed client
//! names, protocol versions and cipher suites, certificates reloaded when their files change,
//! and `--auto-tls` self-signed certificates.
//!
//! The server binary builds one [`ServerTls`] per endpoint (client, peer) from etcd's flags at
//! start-up, shares it (`Arc`) with every executor, and serves each `https://` listener with
//! [`Server::serve_tls`](crate::Server::serve_tls): the handshake runs on the core that accepted
//! the connection, then gRPC and HTTP/1.1 are served inside TLS exactly as in plaintext.
//!
//! ```no_run
//! use std::sync::Arc;
//! use basalt_net::tls::{ServerTls, TlsPolicy, TlsServerSettings};
//!
//! # fn main() -> Result<(), basalt_net::tls::TlsError> {
//! // Once, at start-up: every error here names the flag's file or value (a start-up refusal).
//! let policy = TlsPolicy::from_etcd_flags(&[], "TLS1.2", "")?;
//! let tls = Arc::new(ServerTls::new(TlsServerSettings {
//!     cert_file: "server.pem".into(),
//!     key_file: "server-key.pem".into(),
//!     trusted_ca_file: Some("ca.pem".into()),
//!     client_cert_auth: true,
//!     policy,
//!     ..TlsServerSettings::default()
//! })?);
//! // On each executor, for each https:// listener:
//! //     server.clone().serve_tls(listener, tls.clone()).await
//! # Ok(()) }
//! ```

mod client;
mod client_san;
mod files;
mod policy;
mod reload;
mod self_signed;
mod server;
mod verifier;
pub(crate) mod x509;

use std::path::PathBuf;

pub use client::{ClientTls, TlsClientSettings};
pub use client_san::check_client_san;
pub use policy::{TlsPolicy, TlsVersion};
pub use self_signed::{self_signed_files, SelfSignedFiles};
pub use server::{ServerTls, TlsServerSettings};

/// The rustls crate basalt-net builds on, for callers that need its types (e.g. a peer
/// transport reading the negotiated protocol).
pub use rustls;

/// What is wrong with a TLS configuration: each one refuses start-up, and names the file or
/// the flag value at fault.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate, key, CA bundle or CRL file is missing, unreadable or malformed.
    #[error("{what} file {path}: {problem}")]
    File {
        /// What the file holds ("TLS certificate", "TLS key", "trusted CA", "CRL").
        what: &'static str,
        /// The file, as given.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A setting etcd would refuse too (worded as etcd words it where etcd has a message), or
    /// one rustls cannot provide.
    #[error("{0}")]
    Setting(String),
    /// `--auto-tls` could not create its directory or write its files.
    #[error("cannot generate the self-signed certificate in {dir}: {problem}")]
    SelfSigned {
        /// The directory of `cert.pem` and `key.pem`.
        dir: PathBuf,
        /// What failed.
        problem: String,
    },
}

impl TlsError {
    fn file(what: &'static str, path: &std::path::Path, problem: impl ToString) -> TlsError {
        TlsError::File {
            what,
            path: path.to_path_buf(),
            problem: problem.to_string(),
        }
    }
}

/// Formats a list as Go's `%q` formats a `[]string` (`["a" "b"]`), for etcd's messages.
fn go_quoted_list(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|item| format!("{item:?}")).collect();
    format!("[{}]", quoted.join(" "))
}
