//! Goal: the peer port also answers HTTP/1.1 (etcd serves `/version`, `/members` there) when
//! the member gives a handler, told apart from peers by the first bytes, while peers keep
//! talking on the same port. Method: raw HTTP requests next to a peer connection.

use std::time::Duration;

use basalt_net::peer::Lane;
use basalt_net::{Http1Request, Http1Response};
use futures_lite::{AsyncReadExt, AsyncWriteExt};

use crate::support::{check_pattern_frame, pattern_frame, run, within, Member};

async fn http_get(port: u16, request: &str) -> String {
    let mut stream = glommio::net::TcpStream::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    within(
        Duration::from_secs(10),
        "the HTTP response",
        stream.read_to_end(&mut response),
    )
    .await
    .unwrap();
    String::from_utf8(response).unwrap()
}

#[test]
fn the_peer_port_answers_http_next_to_peers() {
    run(|_logs| async move {
        let a = Member::start(7, 1);
        let b = Member::start(7, 2);
        b.transport.set_http1(|request: Http1Request| {
            let response = match request.path() {
                "/version" => {
                    Http1Response::json(r#"{"etcdserver":"3.5.17","etcdcluster":"3.5.0"}"#)
                }
                _ => Http1Response::not_found(),
            };
            Box::pin(async move { response })
        });
        a.dial(2, &b);
        a.transport
            .send(2, Lane::Control, pattern_frame(0, 0, 32))
            .unwrap();

        let version = http_get(
            b.port,
            "GET /version HTTP/1.1\r\nHost: b\r\nConnection: close\r\n\r\n",
        )
        .await;
        assert!(version.starts_with("HTTP/1.1 200"), "{version}");
        assert!(
            version.ends_with(r#"{"etcdserver":"3.5.17","etcdcluster":"3.5.0"}"#),
            "{version}"
        );
        // Shorter than a hello: decided at its first byte, not after a handshake timeout.
        let short = http_get(b.port, "GET /x HTTP/1.0\r\n\r\n").await;
        assert!(short.starts_with("HTTP/1.1 404"), "{short}");

        let (from, frame) = within(
            Duration::from_secs(10),
            "the peer frame",
            b.transport.recv(Lane::Control),
        )
        .await;
        assert_eq!((from, check_pattern_frame(&frame)), (1, (0, 0)));
        a.stop().await;
        b.stop().await;
    });
}
