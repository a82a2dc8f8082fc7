//! A throwaway PKI for the TLS tests: CAs, server and client certificates and CRLs made with
//! rcgen, written as PEM files into a temporary directory.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};

/// A certificate authority that issues certificates and CRLs.
pub struct Ca {
    pub cert_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

/// An issued certificate and its key, as PEM.
pub struct Issued {
    pub cert_pem: String,
    pub key_pem: String,
    pub serial: u64,
}

/// What a leaf certificate is for.
pub struct Leaf<'a> {
    pub common_name: &'a str,
    pub sans: &'a [&'a str],
    pub serial: u64,
    pub server: bool,
    pub client: bool,
}

impl Leaf<'_> {
    /// A server certificate for localhost and 127.0.0.1.
    pub fn server(serial: u64) -> Leaf<'static> {
        Leaf {
            common_name: "basalt server",
            sans: &["localhost", "127.0.0.1"],
            serial,
            server: true,
            client: false,
        }
    }

    /// A client certificate.
    pub fn client<'a>(common_name: &'a str, sans: &'a [&'a str], serial: u64) -> Leaf<'a> {
        Leaf {
            common_name,
            sans,
            serial,
            server: false,
            client: true,
        }
    }
}

impl Ca {
    pub fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert_pem = params.self_signed(&key).unwrap().pem();
        Ca {
            cert_pem,
            issuer: Issuer::new(params, key),
        }
    }

    /// A certificate for `leaf` with a new P-256 key.
    pub fn issue(&self, leaf: Leaf<'_>) -> Issued {
        self.issue_for_key(leaf, KeyPair::generate().unwrap())
    }

    /// A certificate for `leaf` with `key` (PKCS#8 PEM) as its public key; the returned key PEM
    /// is rcgen's PKCS#8 form of it.
    pub fn issue_for_key(&self, leaf: Leaf<'_>, key: KeyPair) -> Issued {
        let sans: Vec<String> = leaf.sans.iter().map(|san| san.to_string()).collect();
        let mut params = CertificateParams::new(sans).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, leaf.common_name);
        params.serial_number = Some(SerialNumber::from(leaf.serial));
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        if leaf.server {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ServerAuth);
        }
        if leaf.client {
            params
                .extended_key_usages
                .push(ExtendedKeyUsagePurpose::ClientAuth);
        }
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            serial: leaf.serial,
        }
    }

    /// A CRL (PEM) revoking these serial numbers.
    pub fn crl(&self, revoked_serials: &[u64]) -> String {
        let now = time::OffsetDateTime::now_utc();
        CertificateRevocationListParams {
            this_update: now,
            next_update: now + time::Duration::days(1),
            crl_number: SerialNumber::from(1u64),
            issuing_distribution_point: None,
            revoked_certs: revoked_serials
                .iter()
                .map(|serial| RevokedCertParams {
                    serial_number: SerialNumber::from(*serial),
                    revocation_time: now,
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&self.issuer)
        .unwrap()
        .pem()
        .unwrap()
    }
}

/// Writes `contents` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap();
    path
}

/// A key pair from the fixtures in `tests/tls/keys` (made once with OpenSSL).
pub fn fixture_key(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/tls/keys")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|error| panic!("{}: {error}", path.display()))
}
