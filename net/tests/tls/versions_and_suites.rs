//! Goal: --tls-min-version, --tls-max-version and --cipher-suites decide what a handshake can
//! negotiate, with Go's semantics (the suite list restricts TLS 1.2 only).
//! Method: clients offering one version or one TLS 1.2 suite against restricted servers; the
//! negotiated version and suite are read back from the client's connection.

use basalt_net::tls::{TlsPolicy, TlsServerSettings};
use rustls::crypto::ring::cipher_suite;
use rustls::{CipherSuite, ProtocolVersion};

use crate::{serve_tls, TestPki};

fn with_policy(pki: &TestPki, suites: &[&str], min: &str, max: &str) -> TlsServerSettings {
    let suites: Vec<String> = suites.iter().map(|suite| suite.to_string()).collect();
    TlsServerSettings {
        policy: TlsPolicy::from_etcd_flags(&suites, min, max).unwrap(),
        ..pki.settings()
    }
}

#[tokio::test]
async fn min_and_max_versions_are_honoured() {
    let pki = TestPki::generate();
    let tls12_only = pki.client().with_versions(&[&rustls::version::TLS12]);
    let tls13_only = pki.client().with_versions(&[&rustls::version::TLS13]);

    let min_13 = serve_tls(with_policy(&pki, &[], "TLS1.3", ""));
    let error = tls12_only.connect(min_13.address).await.unwrap_err();
    assert!(!error.contains("no answer within"), "{error}");
    let stream = tls13_only.connect(min_13.address).await.unwrap();
    assert_eq!(
        stream.get_ref().1.protocol_version(),
        Some(ProtocolVersion::TLSv1_3)
    );

    let max_12 = serve_tls(with_policy(&pki, &[], "", "TLS1.2"));
    assert!(tls13_only.connect(max_12.address).await.is_err());
    let stream = pki.client().connect(max_12.address).await.unwrap();
    assert_eq!(
        stream.get_ref().1.protocol_version(),
        Some(ProtocolVersion::TLSv1_2)
    );

    // The default offers both.
    let default = serve_tls(pki.settings());
    tls12_only.get(default.address, "/health").await.unwrap();
    tls13_only.get(default.address, "/health").await.unwrap();
}

#[tokio::test]
async fn cipher_suites_restrict_tls12() {
    let pki = TestPki::generate();
    // rcgen's keys are ECDSA P-256, so the ECDSA suites are the ones that can be chosen.
    let server = serve_tls(with_policy(
        &pki,
        &["TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"],
        "",
        "",
    ));
    let tls12 = pki.client().with_versions(&[&rustls::version::TLS12]);

    let refused = tls12
        .clone()
        .with_tls12_suites(&[cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384]);
    let error = refused.connect(server.address).await.unwrap_err();
    assert!(!error.contains("no answer within"), "{error}");

    let accepted = tls12.with_tls12_suites(&[
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        cipher_suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    ]);
    let stream = accepted.connect(server.address).await.unwrap();
    let negotiated = stream.get_ref().1.negotiated_cipher_suite().unwrap();
    assert_eq!(
        negotiated.suite(),
        CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
    );

    // As in Go, TLS 1.3 keeps all its suites.
    let tls13 = pki.client().with_versions(&[&rustls::version::TLS13]);
    tls13.get(server.address, "/health").await.unwrap();
}
