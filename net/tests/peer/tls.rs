//! Goal: peer TLS — the peer protocol runs unchanged inside mutual TLS, and the listener
//! turns away what etcd's peer endpoint turns away (plaintext, no client certificate), with a
//! log line. Method: a throwaway CA issues each member a certificate for 127.0.0.1 usable as
//! server and client (as etcd's peer certificates are); members dial `https://` URLs.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use basalt_net::peer::{Lane, PeerError, PeerEvent, TlsDialer, Transport, TransportConfig};
use basalt_net::tls::{ClientTls, ServerTls, TlsClientSettings, TlsServerSettings};

use crate::pki::{write, Ca, Leaf};
use crate::support::{check_pattern_frame, next_event, pattern_frame, run, within};

/// A member serving its peer port over TLS.
struct TlsMember {
    transport: Transport,
    url: String,
}

fn peer_certificate(
    ca: &Ca,
    dir: &std::path::Path,
    name: &str,
    serial: u64,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let issued = ca.issue(Leaf {
        common_name: name,
        sans: &["127.0.0.1"],
        serial,
        server: true,
        client: true,
    });
    (
        write(dir, &format!("{name}.pem"), &issued.cert_pem),
        write(dir, &format!("{name}-key.pem"), &issued.key_pem),
    )
}

fn start_tls_member(
    id: u64,
    ca_file: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
    present_certificate: bool,
) -> TlsMember {
    let server = Arc::new(
        ServerTls::new(TlsServerSettings {
            cert_file: cert.to_path_buf(),
            key_file: key.to_path_buf(),
            trusted_ca_file: Some(ca_file.to_path_buf()),
            client_cert_auth: true,
            endpoint: "peer",
            ..TlsServerSettings::default()
        })
        .unwrap(),
    );
    let client = Arc::new(
        ClientTls::new(TlsClientSettings {
            cert_file: present_certificate.then(|| cert.to_path_buf()),
            key_file: present_certificate.then(|| key.to_path_buf()),
            trusted_ca_file: Some(ca_file.to_path_buf()),
            ..TlsClientSettings::default()
        })
        .unwrap(),
    );
    let listener = basalt_net::bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = listener.local_addr().unwrap().port();
    let transport = Transport::with_dialer(
        TransportConfig::new(7, id, 1536 * 1024),
        Rc::new(TlsDialer::new(client)),
    );
    let accept = transport.clone();
    glommio::spawn_local(async move { accept.serve_tls(listener, server, true).await }).detach();
    TlsMember {
        transport,
        url: format!("https://127.0.0.1:{port}"),
    }
}

#[test]
fn peers_talk_over_mutual_tls() {
    run(|logs| async move {
        let dir = tempfile::tempdir().unwrap();
        let ca = Ca::new("peer ca");
        let ca_file = write(dir.path(), "ca.pem", &ca.cert_pem);
        let (a_cert, a_key) = peer_certificate(&ca, dir.path(), "a", 1);
        let (b_cert, b_key) = peer_certificate(&ca, dir.path(), "b", 2);
        let a = start_tls_member(1, &ca_file, &a_cert, &a_key, true);
        let b = start_tls_member(2, &ca_file, &b_cert, &b_key, true);
        a.transport
            .add_peer(2, std::slice::from_ref(&b.url))
            .unwrap();
        b.transport
            .add_peer(1, std::slice::from_ref(&a.url))
            .unwrap();

        // Both lanes and both directions, and a snapshot.
        let wait = Duration::from_secs(10);
        for sequence in 0..10 {
            a.transport
                .send(2, Lane::Control, pattern_frame(0, sequence, 100))
                .unwrap();
            a.transport
                .send(2, Lane::Append, pattern_frame(1, sequence, 100_000))
                .unwrap();
            b.transport
                .send(1, Lane::Control, pattern_frame(2, sequence, 100))
                .unwrap();
        }
        for sequence in 0..10 {
            let (_, frame) =
                within(wait, "control over TLS", b.transport.recv(Lane::Control)).await;
            assert_eq!(check_pattern_frame(&frame), (0, sequence));
            let (_, frame) = within(wait, "appends over TLS", b.transport.recv(Lane::Append)).await;
            assert_eq!(check_pattern_frame(&frame), (1, sequence));
            let (_, frame) = within(
                wait,
                "control back over TLS",
                a.transport.recv(Lane::Control),
            )
            .await;
            assert_eq!(check_pattern_frame(&frame), (2, sequence));
        }
        let sender = {
            let transport = a.transport.clone();
            glommio::spawn_local(async move {
                let mut writer = transport.open_snapshot(2, b"over tls").await.unwrap();
                writer
                    .send_chunk(&pattern_frame(9, 0, 1 << 20))
                    .await
                    .unwrap();
                writer.finish().await
            })
        };
        let mut incoming = within(wait, "the snapshot", b.transport.recv_snapshot()).await;
        assert_eq!(
            check_pattern_frame(&incoming.next_chunk().await.unwrap().unwrap()),
            (9, 0)
        );
        assert!(incoming.next_chunk().await.unwrap().is_none());
        incoming.complete(Ok(())).await.unwrap();
        assert_eq!(within(wait, "the verdict", sender).await.unwrap(), 1 << 20);

        // A member without a client certificate is turned away by the TLS handshake.
        let (c_cert, c_key) = peer_certificate(&ca, dir.path(), "c", 3);
        let c = start_tls_member(3, &ca_file, &c_cert, &c_key, false);
        c.transport
            .add_peer(2, std::slice::from_ref(&b.url))
            .unwrap();
        c.transport
            .send(2, Lane::Control, pattern_frame(0, 0, 10))
            .unwrap();
        assert!(matches!(
            next_event(&c.transport).await,
            PeerEvent::Unreachable { peer: 2, .. }
        ));
        logs.wait_for(&["rejected connection on peer endpoint"])
            .await;

        // A plaintext dialer cannot use an https URL, and is refused on a TLS port.
        let plain = Transport::new(TransportConfig::new(7, 4, 1536 * 1024));
        assert!(matches!(
            plain.add_peer(2, std::slice::from_ref(&b.url)),
            Err(PeerError::Url { .. })
        ));
        plain
            .add_peer(2, &[b.url.replace("https://", "http://")])
            .unwrap();
        plain
            .send(2, Lane::Control, pattern_frame(0, 0, 10))
            .unwrap();
        assert!(matches!(
            next_event(&plain).await,
            PeerEvent::Unreachable { peer: 2, .. }
        ));
        for member in [&a.transport, &b.transport, &c.transport, &plain] {
            member.shutdown();
        }
    });
}
