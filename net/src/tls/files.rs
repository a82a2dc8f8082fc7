//! Reading etcd's TLS files: a certificate chain and its key (PEM; RSA, ECDSA or Ed25519 keys
//! as PKCS#1, SEC1 or PKCS#8), a CA bundle (PEM), a CRL (PEM or DER). Every failure names the
//! file and says what is wrong with it.

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls::RootCertStore;

use super::x509;
use super::TlsError;

/// Largest TLS file read: far above any certificate chain, key, CA bundle or private CA's CRL,
/// and a bound on what a wrong path (a log, a device) can make us buffer.
pub(crate) const FILE_BYTES_MAX: u64 = 16 * 1024 * 1024;

pub(crate) const CERTIFICATE: &str = "TLS certificate";
pub(crate) const KEY: &str = "TLS key";
pub(crate) const TRUSTED_CA: &str = "trusted CA";
pub(crate) const CRL: &str = "CRL";

/// Where Go looks for the system's CA bundle on Linux when no CA file is given (after
/// `SSL_CERT_FILE`): etcd's `--client-cert-auth` without `--trusted-ca-file` verifies clients
/// against it.
const SYSTEM_CA_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/pki/tls/cacert.pem",
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

/// The system CA bundle Go would use, or an error listing where it looked.
pub(crate) fn system_ca_bundle() -> Result<PathBuf, TlsError> {
    let from_env = std::env::var_os("SSL_CERT_FILE").map(PathBuf::from);
    let candidates = from_env
        .into_iter()
        .chain(SYSTEM_CA_BUNDLES.iter().map(PathBuf::from));
    let mut looked = Vec::new();
    for candidate in candidates {
        if candidate.is_file() {
            return Ok(candidate);
        }
        looked.push(candidate.display().to_string());
    }
    Err(TlsError::Setting(format!(
        "client certificate authentication without a trusted CA file verifies against the \
         system's CA bundle, and there is none (looked at SSL_CERT_FILE and {})",
        looked.join(", ")
    )))
}

/// The whole file, refusing one above `FILE_BYTES_MAX`.
pub(crate) fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let file = std::fs::File::open(path).map_err(|error| TlsError::file(what, path, error))?;
    let mut bytes = Vec::new();
    file.take(FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(|error| TlsError::file(what, path, error))?;
    if bytes.len() as u64 > FILE_BYTES_MAX {
        return Err(TlsError::file(
            what,
            path,
            format!("larger than {FILE_BYTES_MAX} bytes"),
        ));
    }
    Ok(bytes)
}

/// Every `CERTIFICATE` block of a PEM file, each checked to be an X.509 certificate; at least
/// one.
pub(crate) fn certificates(
    what: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let bytes = read(what, path)?;
    let mut certificates = Vec::new();
    for (index, certificate) in CertificateDer::pem_slice_iter(&bytes).enumerate() {
        let certificate = certificate
            .map_err(|error| TlsError::file(what, path, format!("malformed PEM: {error}")))?;
        if let Err(error) = ParsedCertificate::try_from(&certificate) {
            return Err(TlsError::file(
                what,
                path,
                format!(
                    "certificate {} is not a valid X.509 certificate: {error}",
                    index + 1
                ),
            ));
        }
        certificates.push(certificate);
    }
    if certificates.is_empty() {
        return Err(TlsError::file(what, path, "no PEM CERTIFICATE block"));
    }
    Ok(certificates)
}

/// The certificate chain and key, loaded with `provider` and checked to belong together.
pub(crate) fn certified_key(
    cert_file: &Path,
    key_file: &Path,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, TlsError> {
    let chain = certificates(CERTIFICATE, cert_file)?;
    let key_bytes = read(KEY, key_file)?;
    let key = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|error| match error {
        pem::Error::NoItemsFound => TlsError::file(
            KEY,
            key_file,
            "no PEM private key block (RSA PRIVATE KEY, EC PRIVATE KEY or PRIVATE KEY)",
        ),
        other => TlsError::file(KEY, key_file, format!("malformed PEM: {other}")),
    })?;
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|error| {
            TlsError::file(
                KEY,
                key_file,
                format!(
                    "unusable private key ({error}); supported: RSA, ECDSA on P-256 or P-384, \
                     Ed25519"
                ),
            )
        })?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
            Ok(certified)
        }
        Err(_) => Err(TlsError::file(
            KEY,
            key_file,
            format!(
                "private key does not match the public key of the certificate in {}",
                cert_file.display()
            ),
        )),
    }
}

/// The certificates of a PEM CA bundle, as trust anchors; at least one.
pub(crate) fn ca_bundle(path: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for (index, certificate) in certificates(TRUSTED_CA, path)?.into_iter().enumerate() {
        roots.add(certificate).map_err(|error| {
            TlsError::file(
                TRUSTED_CA,
                path,
                format!("certificate {} is not a usable CA: {error}", index + 1),
            )
        })?;
    }
    Ok(roots)
}

/// The serial numbers a CRL file revokes. Like etcd (Go's `x509.ParseCRL`), the file may be
/// PEM (`X509 CRL` blocks, all of them read) or DER, and only serial numbers count: etcd
/// refuses any presented certificate whose serial is listed, without checking who signed the
/// list.
pub(crate) fn revoked_serials(path: &Path) -> Result<HashSet<Vec<u8>>, TlsError> {
    let bytes = read(CRL, path)?;
    let mut lists: Vec<Vec<u8>> = Vec::new();
    if bytes.first() == Some(&0x30) {
        lists.push(bytes);
    } else {
        for list in CertificateRevocationListDer::pem_slice_iter(&bytes) {
            let list =
                list.map_err(|error| TlsError::file(CRL, path, format!("malformed PEM: {error}")))?;
            lists.push(list.as_ref().to_vec());
        }
        if lists.is_empty() {
            return Err(TlsError::file(
                CRL,
                path,
                "neither a DER CRL nor a PEM X509 CRL block",
            ));
        }
    }
    let mut serials = HashSet::new();
    for list in &lists {
        let revoked = x509::crl_revoked_serials(list)
            .map_err(|problem| TlsError::file(CRL, path, format!("not a valid CRL: {problem}")))?;
        serials.extend(revoked.into_iter().map(|serial| serial.to_vec()));
    }
    Ok(serials)
}
