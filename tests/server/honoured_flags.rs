//! The flags the flag table marks honoured, each set away from its default on a real member and
//! seen to change what the member does. `config_flags::every_honoured_flag_is_proven` names a
//! test here (or elsewhere) for every honoured flag, so a flag cannot be marked honoured and
//! be ignored.

use crate::support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use basalt::config::{self, Url};
use etcd_client::{Client, CompactionOptions, Txn, TxnOp};
use support::{free_port, Basalt};

/// Bound on each conversation with the member.
const LIMIT: Duration = Duration::from_secs(30);

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Goal: identity, raft timing, request limits, the HTTP/2 stream limit and the reported
/// version follow their flags. Method: one member with every one of them away from its
/// default; each is read back through what a client sees (MemberList, response headers, a
/// lease's minimum TTL, refused requests, the server's HTTP/2 SETTINGS, /version) and
/// through where the files land.
#[test]
fn a_member_follows_its_identity_timing_and_limit_flags() {
    let dir = tempfile::tempdir().unwrap();
    let peer_url = format!("http://127.0.0.1:{}", free_port());
    let wal_dir = dir.path().join("wal-elsewhere");
    let flags = [
        "--name=walker".to_string(),
        format!("--wal-dir={}", wal_dir.display()),
        format!("--initial-advertise-peer-urls={peer_url}"),
        format!("--initial-cluster=walker={peer_url}"),
        "--initial-cluster-token=walk-token".to_string(),
        "--heartbeat-interval=700".to_string(),
        "--election-timeout=3500".to_string(),
        "--max-txn-ops=3".to_string(),
        "--max-request-bytes=4096".to_string(),
        "--max-concurrent-streams=7".to_string(),
        "--reported-version=3.5.99".to_string(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let data_dir = dir.path().join("data");
    let basalt = Basalt::start_with_flags(data_dir.clone(), free_port(), &flags);

    // --data-dir and --wal-dir: the database is in the one, the log in the other.
    assert!(data_dir.join("member").join("snap").join("db").is_file());
    assert!(non_empty_dir(&wal_dir), "no WAL in {}", wal_dir.display());
    assert!(!data_dir.join("member").join("wal").exists());

    // --max-concurrent-streams: the server's SETTINGS frame says 7.
    assert_eq!(server_max_concurrent_streams(basalt.port), Some(7));
    // --reported-version: /version.
    let (_, version) = support::http_request(basalt.port, "GET", "/version");
    assert!(version.contains(r#""etcdserver":"3.5.99""#), "{version}");

    support::with_member(&basalt, |mut client| async move {
        // --name, --initial-advertise-peer-urls, --initial-cluster(-token): the member and
        // cluster IDs are etcd's for exactly these.
        let members = client.member_list().await.unwrap();
        let [member] = members.members() else {
            panic!("one member: {:?}", members.members());
        };
        assert_eq!(member.name(), "walker");
        assert_eq!(member.peer_urls(), std::slice::from_ref(&peer_url));
        // --advertise-client-urls (the test support sets it, with --listen-client-urls).
        assert_eq!(
            member.client_urls(),
            [format!("http://127.0.0.1:{}", basalt.port)]
        );
        let peer_urls = [Url::parse(&peer_url).unwrap()];
        let member_id = config::member_id(&peer_urls, "walk-token", None);
        assert_eq!(member.id(), member_id.0);
        assert_ne!(
            member_id,
            config::member_id(&peer_urls, "etcd-cluster", None)
        );
        let header = members.header().expect("a header");
        assert_eq!(header.cluster_id(), config::cluster_id(&[member_id]).0);
        assert_eq!(header.member_id(), member_id.0);

        // --election-timeout and --heartbeat-interval: etcd's minimum lease TTL is 3/2 of the
        // election ticks (in whole ticks) times the heartbeat, rounded up to seconds:
        // (5 * 3 / 2) * 700 ms = 4.9 s -> 5 s. The defaults give 2 s; the election timeout
        // alone (35 ticks of 100 ms: 52 * 100 ms) 6 s.
        let lease = client.lease_grant(1, None).await.unwrap();
        assert_eq!(lease.ttl(), 5);

        // --max-txn-ops: 3 operations pass, 4 are refused with etcd's error.
        let puts = |n: usize| -> Vec<TxnOp> {
            (0..n)
                .map(|i| TxnOp::put(format!("k{i}"), "v", None))
                .collect()
        };
        client.txn(Txn::new().and_then(puts(3))).await.unwrap();
        let error = client.txn(Txn::new().and_then(puts(4))).await.unwrap_err();
        assert!(
            error
                .to_string()
                .contains("etcdserver: too many operations in txn request"),
            "{error}"
        );

        // --max-request-bytes: a 5,000-byte put is over 4,096.
        let error = client
            .put("big", vec![b'x'; 5_000], None)
            .await
            .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("etcdserver: request is too large"),
            "{error}"
        );
        client.put("small", vec![b'x'; 1_000], None).await.unwrap();
    });
}

/// Goal: `--experimental-compaction-batch-limit` and `--experimental-compaction-sleep-interval`
/// pace a compaction's removal. Method: 13 revisions of one key, then a physical compaction
/// of the 12 older ones with steps of 1 revision every 250 ms. A physical compaction is
/// answered once the removal is done, so it cannot be answered before 11 pauses (2.75 s);
/// with the defaults (1,000 revisions a step) it is answered at once. Only the lower bound
/// is asserted: it holds however slow the machine is.
#[test]
fn compaction_steps_follow_the_batch_limit_and_sleep_interval() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start_with_flags(
        dir.path().join("data"),
        free_port(),
        &[
            "--experimental-compaction-batch-limit=1",
            "--experimental-compaction-sleep-interval=250ms",
        ],
    );
    support::with_member(&basalt, |mut client| async move {
        let mut revision = 0;
        for i in 0..13 {
            let put = client.put("paced", format!("v{i}"), None).await.unwrap();
            revision = put.header().unwrap().revision();
        }
        let started = Instant::now();
        tokio::time::timeout(
            LIMIT,
            client.compact(revision, Some(CompactionOptions::new().with_physical())),
        )
        .await
        .expect("the compaction finished within the limit")
        .unwrap();
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(2_500),
            "12 revisions in steps of 1 every 250 ms took only {took:?}"
        );
    });
}

/// Goal: `--logger`, `--log-level` and `--log-outputs` decide the shape, the threshold and the
/// place of the member's log lines. Method: a member logging plain text at `warn` to a file;
/// once it answers a request, the file holds its insecure-serving warning as a plain line and
/// not the info line "ready to serve client requests" (logged before it serves), and stderr
/// holds no log line at all.
#[test]
fn log_lines_follow_logger_level_and_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("member.log");
    let stderr_file = dir.path().join("stderr");
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut child = Command::new(env!("CARGO_BIN_EXE_basalt"))
        .arg(format!("--data-dir={}", dir.path().join("data").display()))
        .arg(format!("--listen-client-urls={url}"))
        .arg(format!("--advertise-client-urls={url}"))
        .arg("--listen-peer-urls=http://127.0.0.1:0")
        .arg("--logger=capnslog")
        .arg("--log-level=warn")
        .arg(format!("--log-outputs={}", log_file.display()))
        .env_clear()
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr_file).unwrap())
        .spawn()
        .unwrap();
    let basalt = KillOnDrop(&mut child);
    let deadline = Instant::now() + LIMIT;
    let answered = loop {
        let ok = runtime().block_on(async {
            let connect = Client::connect([format!("127.0.0.1:{port}")], None);
            match tokio::time::timeout(Duration::from_secs(2), connect).await {
                Ok(Ok(mut client)) => client.put("logged", "v", None).await.is_ok(),
                _ => false,
            }
        });
        if ok || Instant::now() > deadline {
            break ok;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(answered, "the member never answered");
    drop(basalt);
    let log = std::fs::read_to_string(&log_file).unwrap();
    let warning = log
        .lines()
        .find(|line| line.contains("serving insecure client requests"))
        .unwrap_or_else(|| panic!("no warning in the log file:\n{log}"));
    assert!(
        !warning.starts_with('{') && warning.contains(" WARN | executors/owner_core.rs:"),
        "not a capnslog line: {warning}"
    );
    assert!(!log.contains("ready to serve client requests"), "{log}");
    let stderr = std::fs::read_to_string(&stderr_file).unwrap();
    assert!(!stderr.contains("serving insecure"), "{stderr}");
}

/// Goal: one log for everything: besides the milestones, every `tracing` event of the member
/// and raft-rs's own records reach `--log-outputs` as zap JSON lines (level, ts, caller, msg,
/// then fields). Method: a member logging JSON to a file elects itself (raft logs "became
/// leader") and runs a Defragment (the service traces its outcome with numeric fields).
#[test]
fn traced_events_and_raft_records_reach_the_log_as_zap_json() {
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("member.log");
    let basalt = Basalt::start_with_flags(
        dir.path().join("data"),
        free_port(),
        &[&format!("--log-outputs=stderr,{}", log_file.display())],
    );
    support::with_member(&basalt, |mut client| async move {
        client.defragment().await.unwrap();
    });
    let find = |needle: &str| -> serde_json::Value {
        let deadline = Instant::now() + LIMIT;
        loop {
            let log = std::fs::read_to_string(&log_file).unwrap_or_default();
            if let Some(line) = log.lines().find(|line| line.contains(needle)) {
                return serde_json::from_str(line)
                    .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} in the log:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let leader = find("became leader at term");
    assert_eq!(leader["level"], "info");
    assert!(
        leader["caller"]
            .as_str()
            .unwrap()
            .starts_with("raft/raft.rs:"),
        "{leader}"
    );
    let defrag = find("finished defragmenting the backend database");
    assert_eq!(defrag["level"], "info");
    assert!(defrag["ts"].as_str().unwrap().ends_with('Z'), "{defrag}");
    assert!(
        defrag["caller"]
            .as_str()
            .unwrap()
            .starts_with("v3rpc/defragment_service.rs:"),
        "{defrag}"
    );
    assert!(defrag["bytes_before"].as_u64().unwrap() > 0, "{defrag}");
    assert_eq!(
        defrag["msg"], "finished defragmenting the backend database",
        "{defrag}"
    );
}

/// Goal: `--grpc-keepalive-interval` and `--grpc-keepalive-timeout` make the member ping its
/// clients and drop one that does not answer. Method: a raw socket completes the HTTP/2
/// preface and then only reads: it must see a PING, then the end of its connection, within a
/// bound far above the flags' 100 ms + 200 ms (etcd's defaults would ping after 2 hours).
#[test]
fn keepalive_pings_follow_their_flags() {
    const PING: u8 = 0x6;
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start_with_flags(
        dir.path().join("data"),
        free_port(),
        &[
            "--grpc-keepalive-interval=100ms",
            "--grpc-keepalive-timeout=200ms",
        ],
    );
    let mut stream = TcpStream::connect(("127.0.0.1", basalt.port)).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .unwrap();
    stream.write_all(&[0, 0, 0, 0x4, 0, 0, 0, 0, 0]).unwrap();
    let started = Instant::now();
    let mut pinged = false;
    loop {
        let mut head = [0u8; 9];
        match stream.read_exact(&mut head) {
            Ok(()) => {}
            Err(error) if error.kind() == std::io::ErrorKind::WouldBlock => {
                panic!("still open after {:?}", started.elapsed())
            }
            Err(_) => break, // closed by the member
        }
        let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; length];
        if stream.read_exact(&mut payload).is_err() {
            break;
        }
        pinged |= head[3] == PING && head[4] & 0x1 == 0;
    }
    assert!(pinged, "the member closed the connection without a ping");
}

/// Goal: `--grpc-keepalive-min-time` sets how often a client with a call open may ping, as
/// grpc-go enforces it: at 100 ms, pings 300 ms apart keep the connection (etcd's default of
/// 5 s would strike them and close it), and a burst of pings still gets GOAWAY
/// ENHANCE_YOUR_CALM. Method: raw HTTP/2 frames over a socket, a Watch call kept open.
#[test]
fn keepalive_min_time_follows_its_flag() {
    const PING: u8 = 0x6;
    const GOAWAY: u8 = 0x7;
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start_with_flags(
        dir.path().join("data"),
        free_port(),
        &["--grpc-keepalive-min-time=100ms"],
    );
    let frame = |kind: u8, flags: u8, stream_id: u32, payload: &[u8]| {
        let mut bytes = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        bytes.extend_from_slice(&[kind, flags]);
        bytes.extend_from_slice(&stream_id.to_be_bytes());
        bytes.extend_from_slice(payload);
        bytes
    };
    let mut stream = TcpStream::connect(("127.0.0.1", basalt.port)).unwrap();
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .unwrap();
    stream.write_all(&frame(0x4, 0, 0, &[])).unwrap();
    // A Watch call (HPACK literals: POST, http, its path, application/grpc) that sends nothing.
    let mut headers = vec![0x83, 0x86, 0x04, 25];
    headers.extend_from_slice(b"/etcdserverpb.Watch/Watch");
    headers.extend_from_slice(&[0x0f, 0x10, 16]);
    headers.extend_from_slice(b"application/grpc");
    stream.write_all(&frame(0x1, 0x4, 1, &headers)).unwrap();
    let mut writer = stream.try_clone().unwrap();
    // Frames read until `until` passes: (ping acks, GOAWAY seen, closed).
    let mut read_until = |until: Instant| {
        let (mut acks, mut goaway) = (0, false);
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return (acks, goaway, false);
            }
            stream.set_read_timeout(Some(left)).unwrap();
            let mut head = [0u8; 9];
            match stream.read_exact(&mut head) {
                Ok(()) => {}
                Err(error)
                    if matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return (acks, goaway, false)
                }
                Err(_) => return (acks, goaway, true),
            }
            let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
            let mut payload = vec![0u8; length];
            stream.set_read_timeout(Some(LIMIT)).unwrap();
            if stream.read_exact(&mut payload).is_err() {
                return (acks, goaway, true);
            }
            acks += usize::from(head[3] == PING && head[4] & 0x1 != 0);
            goaway |= head[3] == GOAWAY;
        }
    };
    let mut acks = 0;
    for payload in 0..6u8 {
        writer.write_all(&frame(PING, 0, 0, &[payload; 8])).unwrap();
        let (more, goaway, closed) = read_until(Instant::now() + Duration::from_millis(300));
        assert!(!goaway && !closed, "ping {payload} closed the connection");
        acks += more;
    }
    let (more, _, _) = read_until(Instant::now() + Duration::from_millis(300));
    assert_eq!(acks + more, 6);
    for payload in 0..4u8 {
        let _ = writer.write_all(&frame(PING, 0, 0, &[payload; 8]));
    }
    let (_, goaway, closed) = read_until(Instant::now() + LIMIT);
    assert!(goaway && closed, "a burst of pings kept the connection");
}

/// Goal: `--max-watchers` and `--max-watch-streams` bound the member's watchers and Watch
/// streams over every client: past the watcher limit a create is answered created and
/// canceled with the reason, on any stream or connection; past the stream limit a Watch call
/// fails with ResourceExhausted; and both limits give their room back as watchers are
/// canceled and streams closed. Method: two etcd-client connections against a member with
/// limits of 3 watchers and 2 streams (the defaults are a million and a hundred thousand).
#[test]
fn watch_limits_follow_their_flags() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start_with_flags(
        dir.path().join("data"),
        free_port(),
        &["--max-watchers=3", "--max-watch-streams=2"],
    );
    let endpoint = basalt.endpoint();
    support::with_member(&basalt, |mut first| async move {
        let mut second = Client::connect([endpoint], None).await.unwrap();
        let mut stream_a = first.watch("a", None).await.unwrap();
        for key in ["b", "c", "d"] {
            stream_a.watch(key, None).await.unwrap();
        }
        let mut answers = Vec::new();
        for _ in 0..4 {
            let answer = stream_a.message().await.unwrap().expect("an answer");
            answers.push((
                answer.created(),
                answer.canceled(),
                answer.cancel_reason().to_string(),
            ));
        }
        let accepted = (true, false, String::new());
        let refused = (
            true,
            true,
            "etcdserver: too many watchers on this member".to_string(),
        );
        assert_eq!(
            answers,
            [
                accepted.clone(),
                accepted.clone(),
                accepted.clone(),
                refused.clone()
            ]
        );

        // Another connection's stream: the member's limit, not the stream's.
        let mut stream_b = second.watch("e", None).await.unwrap();
        let answer = stream_b.message().await.unwrap().expect("an answer");
        assert_eq!(
            (
                answer.created(),
                answer.canceled(),
                answer.cancel_reason().to_string()
            ),
            refused
        );
        // A third stream is refused whole.
        match first.watch("f", None).await {
            Err(etcd_client::Error::GRpcStatus(status)) => {
                assert_eq!(format!("{:?}", status.code()), "ResourceExhausted");
                assert_eq!(
                    status.message(),
                    "etcdserver: too many watch streams on this member"
                );
            }
            other => panic!("a third stream: {other:?}"),
        }

        // A cancel gives a watcher's room back; a closed stream its stream's.
        stream_a.cancel(0).await.unwrap();
        let answer = stream_a.message().await.unwrap().expect("an answer");
        assert!(answer.canceled());
        stream_b.watch("g", None).await.unwrap();
        let answer = stream_b.message().await.unwrap().expect("an answer");
        assert_eq!(
            (
                answer.created(),
                answer.canceled(),
                answer.cancel_reason().to_string()
            ),
            accepted
        );
        drop(stream_b);
        // The server closes the stream once it sees the end: retry until then (bounded by
        // the conversation's limit).
        loop {
            match second.watch("h", None).await {
                Ok(mut stream) => {
                    let answer = stream.message().await.unwrap().expect("an answer");
                    assert!(answer.created());
                    break;
                }
                Err(etcd_client::Error::GRpcStatus(status))
                    if format!("{:?}", status.code()) == "ResourceExhausted" =>
                {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(other) => panic!("{other:?}"),
            }
        }
    });
}

/// Kills and reaps the member when the test ends, pass or fail.
struct KillOnDrop<'a>(&'a mut std::process::Child);

impl Drop for KillOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn non_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some())
}

/// The SETTINGS_MAX_CONCURRENT_STREAMS the server announces in its first SETTINGS frame.
fn server_max_concurrent_streams(port: u16) -> Option<u32> {
    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    const SETTINGS: u8 = 0x4;
    const MAX_CONCURRENT_STREAMS: u16 = 0x3;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream.write_all(PREFACE).unwrap();
    // An empty SETTINGS frame: length 0, type 4, flags 0, stream 0.
    stream
        .write_all(&[0, 0, 0, SETTINGS, 0, 0, 0, 0, 0])
        .unwrap();
    loop {
        let mut head = [0u8; 9];
        stream.read_exact(&mut head).unwrap();
        let length = u32::from_be_bytes([0, head[0], head[1], head[2]]) as usize;
        let mut payload = vec![0u8; length];
        stream.read_exact(&mut payload).unwrap();
        let is_ack = head[4] & 0x1 != 0;
        if head[3] != SETTINGS || is_ack {
            continue;
        }
        return payload.chunks_exact(6).find_map(|setting| {
            let id = u16::from_be_bytes([setting[0], setting[1]]);
            (id == MAX_CONCURRENT_STREAMS)
                .then(|| u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]))
        });
    }
}

/// Goal: `--enable-grpc-gateway=false` turns the JSON gateway off as etcd does: its `/v3/`
/// paths answer Go's plain 404 while `/health` and gRPC still serve. Method: the same gateway
/// request to a member with the flag and to one without it.
#[test]
fn the_json_gateway_follows_enable_grpc_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let off = Basalt::start_with_flags(
        dir.path().join("off"),
        free_port(),
        &["--enable-grpc-gateway=false"],
    );
    let on = Basalt::start_with(dir.path().join("on"), free_port());
    let (status, body) = crate::json_gateway::range_status(on.port);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""header":"#), "{body}");
    assert_eq!(
        crate::json_gateway::range_status(off.port),
        (404, "404 page not found\n".to_string())
    );
    assert_eq!(support::http_request(off.port, "GET", "/health").0, 200);
    assert_eq!(off.ok(&["put", "k", "v"]).trim(), "OK");
}
