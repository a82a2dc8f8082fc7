//! Goal: as etcd re-reads its key pair on each handshake, the next handshake after the files
//! change uses the new certificate (rewritten in place or replaced by rename), new CA bundle
//! and new CRL; files that cannot be loaded leave the previous configuration serving.
//! Method: one server; files rewritten between connections; the certificate each handshake
//! presents is read back from the client's connection.

use basalt_net::tls::TlsServerSettings;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::clients::presented_certificate;
use crate::pki::{self, Leaf};
use crate::{serve_tls, TestPki};

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

#[tokio::test]
async fn the_next_handshake_presents_the_new_certificate() {
    let pki = TestPki::generate();
    let first = std::fs::read_to_string(&pki.cert_file).unwrap();
    let server = serve_tls(pki.settings());
    let stream = pki.client().connect(server.address).await.unwrap();
    assert_eq!(presented_certificate(&stream), der(&first));

    // Rewritten in place (`cp new.pem cert.pem`), key first then certificate.
    let second = pki.ca.issue(Leaf::server(2));
    std::fs::write(&pki.key_file, &second.key_pem).unwrap();
    std::fs::write(&pki.cert_file, &second.cert_pem).unwrap();
    let stream = pki.client().connect(server.address).await.unwrap();
    assert_eq!(presented_certificate(&stream), der(&second.cert_pem));

    // A broken certificate file keeps the last good configuration serving.
    std::fs::write(&pki.cert_file, "-----BEGIN CERTIFICATE-----\nnot base64\n").unwrap();
    for _ in 0..2 {
        let stream = pki.client().connect(server.address).await.unwrap();
        assert_eq!(presented_certificate(&stream), der(&second.cert_pem));
    }

    // Replaced by rename, as certificate managers do.
    let third = pki.ca.issue(Leaf::server(3));
    let staged_key = pki::write(pki.dir.path(), "staged-key.pem", &third.key_pem);
    let staged_cert = pki::write(pki.dir.path(), "staged.pem", &third.cert_pem);
    std::fs::rename(staged_key, &pki.key_file).unwrap();
    std::fs::rename(staged_cert, &pki.cert_file).unwrap();
    let stream = pki.client().connect(server.address).await.unwrap();
    assert_eq!(presented_certificate(&stream), der(&third.cert_pem));
}

#[tokio::test]
async fn a_new_ca_bundle_and_crl_apply_to_the_next_handshake() {
    let pki = TestPki::generate();
    let crl_file = pki::write(pki.dir.path(), "crl.pem", pki.ca.crl(&[]));
    let server = serve_tls(TlsServerSettings {
        trusted_ca_file: Some(pki.ca_file.clone()),
        client_cert_auth: true,
        crl_file: Some(crl_file.clone()),
        ..pki.settings()
    });
    let client_cert = pki.ca.issue(Leaf::client("client", &[], 40));
    let client = pki
        .client()
        .with_identity(&client_cert.cert_pem, &client_cert.key_pem);
    client.get(server.address, "/health").await.unwrap();

    // The CRL now lists the client's serial.
    std::fs::write(&crl_file, pki.ca.crl(&[client_cert.serial])).unwrap();
    assert!(client.get(server.address, "/health").await.is_err());
    std::fs::write(&crl_file, pki.ca.crl(&[])).unwrap();
    client.get(server.address, "/health").await.unwrap();

    // The CA bundle now trusts another CA as well: its clients get in.
    let other_ca = pki::Ca::new("second CA");
    let other_cert = other_ca.issue(Leaf::client("client", &[], 41));
    let other_client = pki
        .client()
        .with_identity(&other_cert.cert_pem, &other_cert.key_pem);
    assert!(other_client.get(server.address, "/health").await.is_err());
    std::fs::write(
        &pki.ca_file,
        format!("{}{}", pki.ca.cert_pem, other_ca.cert_pem),
    )
    .unwrap();
    other_client.get(server.address, "/health").await.unwrap();
    client.get(server.address, "/health").await.unwrap();
}
