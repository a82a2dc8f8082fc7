//! `--auto-tls` and `--peer-auto-tls`: a self-signed certificate for the listen hosts, made as
//! etcd's `transport.SelfCert` makes it and kept in the same place
//! (`<data-dir>/fixtures/client/{cert,key}.pem`, `.../fixtures/peer/...`), reused while there.
//!
//! One difference: etcd's key is ECDSA P-521, which rustls' ring provider cannot sign with, so
//! the key here is P-384; files an earlier etcd left behind are replaced (with a warning) the
//! first time basalt cannot load them. Clients of an auto-TLS endpoint skip verification, as
//! etcd's own do, so a new self-signed certificate changes nothing for them.

use std::io::Write;
use std::net::IpAddr;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType, SerialNumber,
};

use super::{files, TlsError};

/// The two files of a self-signed certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SelfSignedFiles {
    /// `<dir>/cert.pem`, absolute.
    pub cert_file: PathBuf,
    /// `<dir>/key.pem`, absolute, mode 0600.
    pub key_file: PathBuf,
}

/// The self-signed certificate and key of `dir`: the ones there if basalt can use them, else
/// new ones for `hosts` (`host:port` or bare hosts; IPs become IP SANs, names DNS SANs), valid
/// for `validity_years` × 365 days from now (etcd's `--self-signed-cert-validity`).
pub fn self_signed_files(
    dir: &Path,
    hosts: &[String],
    validity_years: u32,
) -> Result<SelfSignedFiles, TlsError> {
    if validity_years == 0 {
        return Err(TlsError::Setting(
            "selfSignedCertValidity is invalid,it should be greater than 0".into(),
        ));
    }
    let failed = |problem: String| TlsError::SelfSigned {
        dir: dir.to_path_buf(),
        problem,
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|error| failed(format!("cannot create the directory: {error}")))?;
    let dir = std::path::absolute(dir).map_err(|error| failed(error.to_string()))?;
    let files = SelfSignedFiles {
        cert_file: dir.join("cert.pem"),
        key_file: dir.join("key.pem"),
    };
    if files.cert_file.exists() && files.key_file.exists() {
        let provider = rustls::crypto::ring::default_provider();
        match files::certified_key(&files.cert_file, &files.key_file, &provider) {
            Ok(_) => return Ok(files),
            Err(error) => tracing::warn!(
                %error,
                dir = %dir.display(),
                "the self-signed certificate there cannot be used; making a new one"
            ),
        }
    }
    let (cert_pem, key_pem) =
        generate(hosts, validity_years).map_err(|error| failed(error.to_string()))?;
    tracing::warn!(validity_years, "automatically generate certificates");
    std::fs::write(&files.cert_file, cert_pem)
        .map_err(|error| failed(format!("{}: {error}", files.cert_file.display())))?;
    let mut key_out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&files.key_file)
        .map_err(|error| failed(format!("{}: {error}", files.key_file.display())))?;
    key_out
        .write_all(key_pem.as_bytes())
        .and_then(|()| key_out.sync_all())
        .map_err(|error| failed(format!("{}: {error}", files.key_file.display())))?;
    tracing::info!(cert = %files.cert_file.display(), key = %files.key_file.display(), "created self-signed certificate");
    Ok(files)
}

/// (certificate PEM, PKCS#8 key PEM): subject O=etcd, a random 128-bit serial, key usages
/// digital signature and key encipherment, server auth, not a CA — etcd's template.
fn generate(hosts: &[String], validity_years: u32) -> Result<(String, String), rcgen::Error> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P384_SHA384)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params
        .distinguished_name
        .push(DnType::OrganizationName, "etcd");
    let mut serial = [0u8; 16];
    rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut serial)
        .map_err(|_| rcgen::Error::RingUnspecified)?;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now;
    params.not_after = now + time::Duration::days(365 * i64::from(validity_years));
    params.key_usages = vec![
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.is_ca = IsCa::ExplicitNoCa;
    for host in hosts {
        let host = host_of(host);
        if host.is_empty() {
            continue;
        }
        let san = match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(host.to_string().try_into()?),
        };
        if !params.subject_alt_names.contains(&san) {
            params.subject_alt_names.push(san);
        }
    }
    let certificate = params.self_signed(&key)?;
    Ok((certificate.pem(), key.serialize_pem()))
}

/// The host of `host:port` (`[v6]:port` too), or the whole string if it has no port.
fn host_of(host_port: &str) -> &str {
    if host_port.parse::<IpAddr>().is_ok() {
        return host_port; // a bare IPv6 address has colons and no port
    }
    let host = match host_port.rsplit_once(':') {
        Some((host, port)) if port.chars().all(|c| c.is_ascii_digit()) => host,
        _ => host_port,
    };
    host.trim_start_matches('[').trim_end_matches(']')
}

#[cfg(test)]
mod tests {
    //! Goal: listen hosts become the SANs etcd would put in, and the files are reused.
    use super::*;

    #[test]
    fn hosts_are_split_like_go_split_host_port() {
        assert_eq!(host_of("127.0.0.1:2379"), "127.0.0.1");
        assert_eq!(host_of("[::1]:2379"), "::1");
        assert_eq!(host_of("localhost:2379"), "localhost");
        assert_eq!(host_of("localhost"), "localhost");
        assert_eq!(host_of("::1"), "::1");
        assert_eq!(host_of(":2379"), "");
    }

    #[test]
    fn files_are_made_once_then_reused() {
        let dir = tempfile::tempdir().unwrap();
        let fixtures = dir.path().join("fixtures").join("client");
        let hosts = ["127.0.0.1:2379".to_string(), "localhost:2379".to_string()];
        assert!(self_signed_files(&fixtures, &hosts, 0)
            .unwrap_err()
            .to_string()
            .contains("should be greater than 0"));
        let made = self_signed_files(&fixtures, &hosts, 1).unwrap();
        assert_eq!(made.cert_file, fixtures.join("cert.pem"));
        let mode = std::fs::metadata(&made.key_file).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        let first = std::fs::read(&made.cert_file).unwrap();
        let again = self_signed_files(&fixtures, &hosts, 1).unwrap();
        assert_eq!(again, made);
        assert_eq!(std::fs::read(&again.cert_file).unwrap(), first);
        // A key basalt cannot use is replaced.
        std::fs::write(&made.key_file, "garbage").unwrap();
        self_signed_files(&fixtures, &hosts, 1).unwrap();
        assert_ne!(std::fs::read(&made.cert_file).unwrap(), first);
    }
}
