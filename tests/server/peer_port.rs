//! Every member serves `--listen-peer-urls`, a lone one too (as etcd does): it can grow by
//! MemberAdd. A peer port another member holds stops start-up with the URL named, and the
//! obsolete `BASALT_EXPERIMENTAL_CLUSTERING` switch says it has no effect.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{free_port, Basalt};

/// How long a member may take to exit when its start-up is refused.
const EXIT_LIMIT: Duration = Duration::from_secs(20);

/// A lone member on a data directory in `dir`, its peer listener on `peer_port`.
fn start_alone(dir: &std::path::Path, peer_port: u16, env: &[(&str, &str)]) -> Basalt {
    let peer_url = format!("http://127.0.0.1:{peer_port}");
    Basalt::spawn(
        dir.join("data"),
        free_port(),
        &["--listen-peer-urls", &peer_url],
        env,
    )
    .wait_ready()
}

/// `GET path` on `port` over HTTP/1.1: the status line and the body.
fn http_get(port: u16, path: &str) -> (String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the peer port");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    // Read the head, then Content-Length bytes of body (the server may keep the connection).
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&answer).into_owned();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .expect("a Content-Length header");
            if body.len() >= length {
                let status = head.lines().next().unwrap_or_default().to_string();
                return (status, body[..length].to_string());
            }
        }
        let read = stream.read(&mut chunk).expect("read the answer");
        assert!(read > 0, "the peer port closed before answering: {text}");
        answer.extend_from_slice(&chunk[..read]);
    }
}

/// Goal: a member started alone serves its peer port, where a joining member asks who is in
/// the cluster. Method: start one member with no clustering switch, ask its peer port for
/// `GET /basalt/members` as a joiner does, and check the answer lists this one member with
/// the member and cluster IDs it logged.
#[test]
fn a_lone_member_serves_its_peer_port() {
    let dir = tempfile::tempdir().unwrap();
    let peer_port = free_port();
    let member = start_alone(dir.path(), peer_port, &[]);
    let (status, body) = http_get(peer_port, "/basalt/members");
    assert!(status.contains(" 200 "), "{status}: {body}");
    let listing: serde_json::Value = serde_json::from_str(&body).expect("a JSON listing");
    let members = listing["members"].as_array().expect("a member list");
    assert_eq!(members.len(), 1, "{body}");
    // etcd's default member and cluster IDs (default name, URLs and token).
    assert_eq!(listing["cluster_id"], "cdf818194e3a8c32", "{body}");
    assert_eq!(members[0]["id"], "8e9e05c52164694d", "{body}");
    let serving = member.logged("serving peer traffic");
    assert_eq!(serving.len(), 1, "{serving:?}");
    assert!(
        serving[0].contains(&format!("127.0.0.1:{peer_port}")),
        "{serving:?}"
    );
}

/// Goal: a member restarted at once after a kill -9 binds its peer port again. The dead
/// process's listener stays open a moment after it is reaped (the kernel closes what its
/// io_uring rings hold when it tears them down), so without a bounded wait for the port a
/// restart failed now and then ("address already in use"; a three-member peer TLS test hit it
/// every time). Method: kill -9 and restart one member on the same peer port five times; each
/// restart must become ready and serve the peer port.
#[test]
fn a_member_restarted_after_kill_9_binds_its_peer_port_again() {
    let dir = tempfile::tempdir().unwrap();
    let peer_port = free_port();
    let mut member = start_alone(dir.path(), peer_port, &[]);
    for _ in 0..5 {
        member.kill_9();
        member = start_alone(dir.path(), peer_port, &[]);
        let (status, _) = http_get(peer_port, "/basalt/members");
        assert!(status.contains(" 200 "), "{status}");
    }
}

/// Goal: a second member on a peer port the first one holds stops at start-up, says which
/// URL could not be bound (in Go's words, as etcd says it), and leaves its data directory
/// untouched; the first keeps its port. Method: start one member, then a second one with the
/// same `--listen-peer-urls` and its own client port; wait (bounded) for it to exit.
#[test]
fn a_taken_peer_port_stops_start_up_with_the_url_named() {
    let dir = tempfile::tempdir().unwrap();
    let peer_port = free_port();
    let _first = start_alone(dir.path(), peer_port, &[]);

    let peer_url = format!("http://127.0.0.1:{peer_port}");
    let client_url = format!("http://127.0.0.1:{}", free_port());
    let second_data = dir.path().join("second");
    let mut second = Command::new(env!("CARGO_BIN_EXE_basalt"))
        .arg(format!("--data-dir={}", second_data.display()))
        .arg(format!("--listen-client-urls={client_url}"))
        .arg(format!("--advertise-client-urls={client_url}"))
        .arg(format!("--listen-peer-urls={peer_url}"))
        .env_clear()
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + EXIT_LIMIT;
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("the second member still runs on a taken peer port after {EXIT_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut said = String::new();
    second
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut said)
        .unwrap();
    assert_eq!(status.code(), Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "listen peer URL {peer_url}: listen tcp 127.0.0.1:{peer_port}: bind: address \
             already in use"
        )),
        "{said}"
    );
    assert!(
        !second_data.exists(),
        "the refused member made {second_data:?}"
    );
    // The first member still owns the port.
    let (status, _) = http_get(peer_port, "/basalt/members");
    assert!(status.contains(" 200 "), "{status}");
}

/// Goal: `BASALT_EXPERIMENTAL_CLUSTERING`, which once unlocked clustering, is reported once as
/// obsolete and without effect (not as unrecognized), and the member still starts and serves
/// its peer port. Method: start a lone member with it set and read what it logged.
#[test]
fn the_obsolete_clustering_switch_draws_one_warning() {
    let dir = tempfile::tempdir().unwrap();
    let peer_port = free_port();
    let member = start_alone(
        dir.path(),
        peer_port,
        &[("BASALT_EXPERIMENTAL_CLUSTERING", "1")],
    );
    let warned = member.logged("BASALT_EXPERIMENTAL_CLUSTERING");
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert!(
        warned[0].contains("warning") && warned[0].contains("is obsolete and has no effect"),
        "{warned:?}"
    );
    let (status, _) = http_get(peer_port, "/basalt/members");
    assert!(status.contains(" 200 "), "{status}");
}
