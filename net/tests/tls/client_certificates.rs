//! Goal: client certificates are asked for, verified and refused as etcd does: required when
//! a trusted CA or --client-cert-auth is given; refused when missing, from another CA, revoked
//! by the CRL, not valid for the allowed hostname, or not of the allowed CN.
//! Method: raw TLS clients presenting each kind of certificate; "served" means a whole
//! HTTP/1.1 /health answer came back, "refused" that the handshake or the first read failed.

use basalt_net::tls::{ClientTls, TlsClientSettings, TlsServerSettings};
use etcd_client::{Client, ConnectOptions, Identity};
use rustls::pki_types::ServerName;
use tokio_util::compat::{FuturesAsyncReadCompatExt, TokioAsyncReadCompatExt};

use crate::clients::{http1_get, within, TlsClient};
use crate::pki::{self, Leaf};
use crate::{serve_tls, TestPki, HEALTHY};

async fn served(client: &TlsClient, address: std::net::SocketAddr) -> Result<(), String> {
    let (status, body) = client.get(address, "/health").await?;
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", HEALTHY)
    );
    Ok(())
}

fn mutual(pki: &TestPki) -> TlsServerSettings {
    TlsServerSettings {
        trusted_ca_file: Some(pki.ca_file.clone()),
        client_cert_auth: true,
        ..pki.settings()
    }
}

#[tokio::test]
async fn mutual_tls_refuses_missing_and_foreign_certificates() {
    let pki = TestPki::generate();
    let server = serve_tls(mutual(&pki));
    let good = pki.ca.issue(Leaf::client("good", &[], 10));
    let foreign_ca = pki::Ca::new("another CA");
    let foreign = foreign_ca.issue(Leaf::client("good", &[], 10));

    for versions in [
        &[&rustls::version::TLS13][..],
        &[&rustls::version::TLS12][..],
    ] {
        let client = pki.client().with_versions(versions);
        served(
            &client.clone().with_identity(&good.cert_pem, &good.key_pem),
            server.address,
        )
        .await
        .expect("a certificate from the trusted CA is served");
        let error = served(&client, server.address).await.unwrap_err();
        assert!(!error.contains("no answer within"), "{error}");
        let error = served(
            &client.with_identity(&foreign.cert_pem, &foreign.key_pem),
            server.address,
        )
        .await
        .unwrap_err();
        assert!(!error.contains("no answer within"), "{error}");
    }

    // gRPC under mutual TLS with the etcd-client crate.
    let tls = crate::handshake::etcd_client_tls(&pki)
        .identity(Identity::from_pem(&good.cert_pem, &good.key_pem));
    let mut client = Client::connect(
        [format!("https://{}", server.address)],
        Some(ConnectOptions::new().with_tls(tls)),
    )
    .await
    .unwrap();
    client.put("mtls", "yes", None).await.unwrap();
}

/// etcd's rule (listener.go, `ServerConfig`): a trusted CA file alone already requires and
/// verifies client certificates, --client-cert-auth or not.
#[tokio::test]
async fn a_trusted_ca_alone_requires_client_certificates() {
    let pki = TestPki::generate();
    let server = serve_tls(TlsServerSettings {
        trusted_ca_file: Some(pki.ca_file.clone()),
        ..pki.settings()
    });
    assert!(served(&pki.client(), server.address).await.is_err());
    let good = pki.ca.issue(Leaf::client("good", &[], 10));
    served(
        &pki.client().with_identity(&good.cert_pem, &good.key_pem),
        server.address,
    )
    .await
    .unwrap();

    // With neither, no certificate is asked for and a client presenting one is served too.
    let server = serve_tls(pki.settings());
    served(&pki.client(), server.address).await.unwrap();
    served(
        &pki.client().with_identity(&good.cert_pem, &good.key_pem),
        server.address,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn a_revoked_certificate_is_refused() {
    let pki = TestPki::generate();
    let revoked = pki.ca.issue(Leaf::client("revoked", &[], 0x1234_5678_9abc));
    let kept = pki.ca.issue(Leaf::client("kept", &[], 0x1234_5678_9abd));
    let crl_file = pki::write(pki.dir.path(), "crl.pem", pki.ca.crl(&[revoked.serial, 77]));
    let server = serve_tls(TlsServerSettings {
        crl_file: Some(crl_file),
        ..mutual(&pki)
    });
    let error = served(
        &pki.client()
            .with_identity(&revoked.cert_pem, &revoked.key_pem),
        server.address,
    )
    .await
    .unwrap_err();
    assert!(!error.contains("no answer within"), "{error}");
    served(
        &pki.client().with_identity(&kept.cert_pem, &kept.key_pem),
        server.address,
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn allowed_hostname_and_allowed_cn_are_enforced() {
    let pki = TestPki::generate();
    let matching = pki
        .ca
        .issue(Leaf::client("x", &["client.example.com", "10.0.0.7"], 20));
    let wildcard = pki.ca.issue(Leaf::client("x", &["*.example.com"], 21));
    let other = pki.ca.issue(Leaf::client(
        "client.example.com",
        &["other.example.org"],
        22,
    ));

    let by_hostname = serve_tls(TlsServerSettings {
        allowed_hostnames: vec!["client.example.com".into()],
        ..mutual(&pki)
    });
    for (issued, allowed) in [(&matching, true), (&wildcard, true), (&other, false)] {
        let client = pki
            .client()
            .with_identity(&issued.cert_pem, &issued.key_pem);
        let outcome = served(&client, by_hostname.address).await;
        assert_eq!(outcome.is_ok(), allowed, "{outcome:?}");
    }
    // An IP address is matched against IP SANs (Go's VerifyHostname).
    let by_ip = serve_tls(TlsServerSettings {
        allowed_hostnames: vec!["10.0.0.7".into()],
        ..mutual(&pki)
    });
    let client = pki
        .client()
        .with_identity(&matching.cert_pem, &matching.key_pem);
    served(&client, by_ip.address).await.unwrap();

    let member = pki.ca.issue(Leaf::client("member-1", &[], 30));
    let stranger = pki.ca.issue(Leaf::client("member-2", &["member-1"], 31));
    let by_cn = serve_tls(TlsServerSettings {
        allowed_cns: vec!["member-1".into()],
        endpoint: "peer",
        ..mutual(&pki)
    });
    for (issued, allowed) in [(&member, true), (&stranger, false)] {
        let client = pki
            .client()
            .with_identity(&issued.cert_pem, &issued.key_pem);
        let outcome = served(&client, by_cn.address).await;
        assert_eq!(outcome.is_ok(), allowed, "{outcome:?}");
    }
}

/// Goal: `ClientTls`, what the peer transport will use, verifies the server against the
/// trusted CA and presents its certificate: a peer server that allows only its CN lets it in,
/// and a server of another CA is refused by the client.
#[tokio::test]
async fn peer_client_tls_against_a_peer_server() {
    let pki = TestPki::generate();
    let member = pki.ca.issue(Leaf::client("member-1", &[], 50));
    let server = serve_tls(TlsServerSettings {
        allowed_cns: vec!["member-1".into()],
        endpoint: "peer",
        ..mutual(&pki)
    });
    let client = ClientTls::new(TlsClientSettings {
        cert_file: Some(pki::write(pki.dir.path(), "member.pem", &member.cert_pem)),
        key_file: Some(pki::write(
            pki.dir.path(),
            "member-key.pem",
            &member.key_pem,
        )),
        trusted_ca_file: Some(pki.ca_file.clone()),
        alpn_protocols: vec![b"http/1.1".to_vec()],
        ..TlsClientSettings::default()
    })
    .unwrap();
    let connect = |address| {
        let connector = client.connector();
        async move {
            let socket = within(tokio::net::TcpStream::connect(address)).await?;
            let name = ServerName::try_from("localhost").unwrap();
            within(connector.connect(name, socket.compat())).await
        }
    };
    let mut stream = connect(server.address).await.unwrap().compat();
    let (status, body) = http1_get(&mut stream, "/health").await.unwrap();
    assert_eq!(
        (status.as_str(), body.as_str()),
        ("HTTP/1.1 200 OK", HEALTHY)
    );

    let stranger = TestPki::generate();
    let other_server = serve_tls(stranger.settings());
    let error = connect(other_server.address).await.unwrap_err();
    assert!(error.contains("invalid peer certificate"), "{error}");
}
