//! Goal: every key encoding etcd accepts is served, and every broken file or contradictory
//! setting is refused when the `ServerTls` is built (a start-up refusal), with a message that
//! names the file or the values at fault.
//! Method: files from the test PKI and the OpenSSL-made key fixtures, some of them broken.

use std::path::PathBuf;

use basalt_net::tls::{ClientTls, ServerTls, TlsClientSettings, TlsServerSettings};
use rcgen::KeyPair;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateRevocationListDer;

use crate::pki::{self, fixture_key, Leaf};
use crate::{serve_tls, TestPki, HEALTHY};

fn refusal(settings: TlsServerSettings) -> String {
    ServerTls::new(settings)
        .expect_err("settings refused")
        .to_string()
}

#[tokio::test]
async fn rsa_and_ecdsa_keys_in_every_encoding_are_served() {
    let pki = TestPki::generate();
    for (public, private) in [
        ("rsa-pkcs8.pem", "rsa-pkcs1.pem"),
        ("rsa-pkcs8.pem", "rsa-pkcs8.pem"),
        ("ec-p256-pkcs8.pem", "ec-p256-sec1.pem"),
        ("ec-p256-pkcs8.pem", "ec-p256-pkcs8.pem"),
    ] {
        let key = KeyPair::from_pem(&fixture_key(public)).unwrap();
        let issued = pki.ca.issue_for_key(Leaf::server(5), key);
        let server = serve_tls(TlsServerSettings {
            cert_file: pki::write(pki.dir.path(), "key-test.pem", &issued.cert_pem),
            key_file: pki::write(pki.dir.path(), "key-test-key.pem", fixture_key(private)),
            ..TlsServerSettings::default()
        });
        let (status, body) = pki
            .client()
            .get(server.address, "/health")
            .await
            .unwrap_or_else(|error| panic!("{private}: {error}"));
        assert_eq!(
            (status.as_str(), body.as_str()),
            ("HTTP/1.1 200 OK", HEALTHY)
        );
    }
}

#[test]
fn broken_files_are_refused_naming_the_file() {
    let pki = TestPki::generate();
    let dir = pki.dir.path();
    let missing = dir.join("missing.pem");

    let error = refusal(TlsServerSettings {
        cert_file: missing.clone(),
        ..pki.settings()
    });
    assert!(
        error.starts_with(&format!("TLS certificate file {}: ", missing.display())),
        "{error}"
    );

    let empty = pki::write(dir, "empty.pem", "nothing here\n");
    let error = refusal(TlsServerSettings {
        cert_file: empty.clone(),
        ..pki.settings()
    });
    assert_eq!(
        error,
        format!(
            "TLS certificate file {}: no PEM CERTIFICATE block",
            empty.display()
        )
    );

    let garbled = pki::write(
        dir,
        "garbled.pem",
        "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
    );
    let error = refusal(TlsServerSettings {
        cert_file: garbled,
        ..pki.settings()
    });
    assert!(
        error.contains("is not a valid X.509 certificate"),
        "{error}"
    );

    let error = refusal(TlsServerSettings {
        key_file: empty.clone(),
        ..pki.settings()
    });
    assert!(error.starts_with("TLS key file"), "{error}");
    assert!(error.contains("no PEM private key block"), "{error}");

    let other_key = pki::write(
        dir,
        "other-key.pem",
        KeyPair::generate().unwrap().serialize_pem(),
    );
    let error = refusal(TlsServerSettings {
        key_file: other_key.clone(),
        ..pki.settings()
    });
    assert_eq!(
        error,
        format!(
            "TLS key file {}: private key does not match the public key of the certificate in {}",
            other_key.display(),
            pki.cert_file.display()
        )
    );

    // What etcd's own auto-tls writes: ring cannot sign with P-521.
    let p521 = pki::write(dir, "p521.pem", fixture_key("ec-p521-sec1.pem"));
    let error = refusal(TlsServerSettings {
        key_file: p521,
        ..pki.settings()
    });
    assert!(error.contains("unusable private key"), "{error}");

    let error = refusal(TlsServerSettings {
        trusted_ca_file: Some(empty.clone()),
        ..pki.settings()
    });
    assert_eq!(
        error,
        format!(
            "trusted CA file {}: no PEM CERTIFICATE block",
            empty.display()
        )
    );

    let bad_crl = pki::write(
        dir,
        "bad-crl.pem",
        "-----BEGIN X509 CRL-----\nMAA=\n-----END X509 CRL-----\n",
    );
    let error = refusal(TlsServerSettings {
        trusted_ca_file: Some(pki.ca_file.clone()),
        crl_file: Some(bad_crl.clone()),
        ..pki.settings()
    });
    assert!(
        error.starts_with(&format!("CRL file {}: not a valid CRL", bad_crl.display())),
        "{error}"
    );
    let error = refusal(TlsServerSettings {
        trusted_ca_file: Some(pki.ca_file.clone()),
        crl_file: Some(missing.clone()),
        ..pki.settings()
    });
    assert!(error.starts_with("CRL file"), "{error}");

    // A DER CRL is read as well as a PEM one.
    let der_crl =
        CertificateRevocationListDer::from_pem_slice(pki.ca.crl(&[9]).as_bytes()).unwrap();
    let der_file = pki::write(dir, "crl.der", der_crl.as_ref());
    ServerTls::new(TlsServerSettings {
        trusted_ca_file: Some(pki.ca_file.clone()),
        crl_file: Some(der_file),
        ..pki.settings()
    })
    .unwrap();
}

#[test]
fn contradictory_settings_are_refused_with_etcds_words() {
    let pki = TestPki::generate();
    let error = refusal(TlsServerSettings {
        allowed_cns: vec!["a".into()],
        allowed_hostnames: vec!["b".into(), "c".into()],
        ..pki.settings()
    });
    assert_eq!(
        error,
        r#"AllowedCNs and AllowedHostnames are mutually exclusive (cns=["a"], hostnames=["b" "c"])"#
    );
    let error = refusal(TlsServerSettings {
        allowed_hostnames: vec!["not a host name".into()],
        ..pki.settings()
    });
    assert!(
        error.contains("neither a DNS name nor an IP address"),
        "{error}"
    );

    let error = ClientTls::new(TlsClientSettings {
        cert_file: Some(PathBuf::from("/c.pem")),
        ..TlsClientSettings::default()
    })
    .unwrap_err()
    .to_string();
    assert_eq!(
        error,
        "KeyFile and CertFile must both be present[key: , cert: /c.pem]"
    );
}
