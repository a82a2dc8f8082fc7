//! etcd's JSON gateway (`/v3/...`) on a real member, spoken to as curl and Python's `etcd3gw`
//! speak to etcd: raw HTTP/1.1 requests for every service group, streaming watch and lease
//! keep-alive, errors with etcd's bodies and HTTP statuses, body limits, `Expect:
//! 100-continue`, chunked request bodies, and a client that leaves cancelling its call.
//! The expected shapes were taken from etcd 3.4 answering the same requests.

use crate::support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::Basalt;

/// Bound on every wait for the member.
const LIMIT: Duration = Duration::from_secs(20);

/// An HTTP/1.1 response: status, head (lower-cased), body.
struct Response {
    status: u16,
    head: String,
    body: String,
}

impl Response {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("not JSON ({error}): {:?}", self.body))
    }
}

fn connect(port: u16) -> TcpStream {
    let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    stream
}

/// Sends raw request bytes and reads one whole response (the request asks to close).
fn exchange(port: u16, request: &[u8]) -> Response {
    let mut stream = connect(port);
    stream.write_all(request).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    parse_response(&String::from_utf8(raw).unwrap())
}

fn parse_response(raw: &str) -> Response {
    let (head, body) = raw
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP head: {raw:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {raw:?}"));
    let head = head.to_ascii_lowercase();
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body)
    } else {
        body.to_string()
    };
    Response { status, head, body }
}

fn dechunk(mut raw: &str) -> String {
    let mut body = String::new();
    while let Some((size, rest)) = raw.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        body.push_str(&rest[..size]);
        raw = &rest[size + 2..];
    }
    body
}

/// `POST path` with `body` as curl -d sends it.
fn post(port: u16, path: &str, body: &str) -> Response {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    exchange(port, request.as_bytes())
}

/// `post` that must succeed; its JSON.
fn ok(port: u16, path: &str, body: &str) -> Value {
    let response = post(port, path, body);
    assert_eq!(response.status, 200, "{path} {body}: {}", response.body);
    assert!(
        response.head.contains("content-type: application/json"),
        "{}",
        response.head
    );
    response.json()
}

fn b64(text: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes = text.as_bytes();
    let mut out = String::new();
    for group in bytes.chunks(3) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (b as u32) << (16 - 8 * i));
        for i in 0..4 {
            if i <= group.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A streaming response read line by line (one JSON object per chunk).
struct Stream {
    reader: BufReader<TcpStream>,
}

impl Stream {
    /// Sends `head_and_body` and reads the response head, which must be a 200 chunked one.
    fn open(port: u16, head_and_body: &[u8]) -> Stream {
        let mut stream = connect(port);
        stream.write_all(head_and_body).unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            assert!(reader.read_line(&mut line).unwrap() > 0, "closed: {head}");
            if line == "\r\n" {
                break;
            }
            head.push_str(&line.to_ascii_lowercase());
        }
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        Stream { reader }
    }

    fn post(port: u16, path: &str, body: &str) -> Stream {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        Stream::open(port, request.as_bytes())
    }

    /// The next message of the stream (`{"result":...}` or `{"error":...}`).
    fn next(&mut self) -> Value {
        let mut size = String::new();
        self.reader.read_line(&mut size).unwrap();
        let size = usize::from_str_radix(size.trim(), 16)
            .unwrap_or_else(|_| panic!("not a chunk size: {size:?}"));
        assert!(size > 0, "the stream ended");
        let mut chunk = vec![0; size + 2];
        self.reader.read_exact(&mut chunk).unwrap();
        let line = std::str::from_utf8(&chunk[..size]).unwrap();
        assert!(line.ends_with('\n'), "one line per chunk: {line:?}");
        serde_json::from_str(line).unwrap()
    }

    fn send(&mut self, bytes: &[u8]) {
        self.reader.get_mut().write_all(bytes).unwrap();
    }
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("no string at {pointer} in {value}"))
}

/// Goal: every service group answers on its `/v3/` paths with etcd's JSON shapes (snake_case
/// names, 64-bit integers as strings, base64 bytes, defaults left out) and etcd's errors.
/// Method: one member, each call as curl would make it, checked against what etcd 3.4 answered
/// to the same request.
#[test]
fn every_service_group_answers_with_etcds_json() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    let port = basalt.port;

    // KV.
    let put = ok(
        port,
        "/v3/kv/put",
        &format!(r#"{{"key":"{}","value":"{}"}}"#, b64("foo"), b64("bar")),
    );
    let header = &put["header"];
    for field in ["cluster_id", "member_id", "revision", "raft_term"] {
        assert!(header[field].is_string(), "{field} is a string: {put}");
    }
    let revision: i64 = text(&put, "/header/revision").parse().unwrap();
    let range = ok(
        port,
        "/v3/kv/range",
        &format!(r#"{{"key":"{}"}}"#, b64("foo")),
    );
    assert_eq!(range["count"], "1", "{range}");
    let kv = &range["kvs"][0];
    assert_eq!(kv["key"], b64("foo"));
    assert_eq!(kv["value"], b64("bar"));
    assert_eq!(kv["create_revision"], revision.to_string());
    assert_eq!(kv["version"], "1");
    assert!(kv.get("lease").is_none(), "defaults are left out: {kv}");
    assert!(range.get("more").is_none(), "{range}");
    // camelCase names, enum names and unknown fields are read as etcd reads them.
    let keys_only = ok(
        port,
        "/v3/kv/range",
        &format!(
            r#"{{"key":"{}","keysOnly":true,"sort_order":"DESCEND","nope":1}}"#,
            b64("foo")
        ),
    );
    assert!(keys_only["kvs"][0].get("value").is_none(), "{keys_only}");
    // The /v3beta/ alias and an empty body (an empty request).
    let empty = post(port, "/v3beta/kv/range", "");
    assert_eq!(empty.status, 400);
    assert_eq!(
        empty.body,
        r#"{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}"#
    );
    let txn = ok(
        port,
        "/v3/kv/txn",
        &format!(
            r#"{{"compare":[{{"key":"{k}","result":"EQUAL","target":"VALUE","value":"{v}"}}],
                "success":[{{"request_put":{{"key":"{k}","value":"{w}"}}}}],
                "failure":[{{"request_range":{{"key":"{k}"}}}}]}}"#,
            k = b64("foo"),
            v = b64("bar"),
            w = b64("baz")
        ),
    );
    assert_eq!(txn["succeeded"], true, "{txn}");
    assert!(txn["responses"][0]["response_put"].is_object(), "{txn}");
    let deleted = ok(
        port,
        "/v3/kv/deleterange",
        &format!(r#"{{"key":"{}","prev_kv":true}}"#, b64("foo")),
    );
    assert_eq!(deleted["deleted"], "1");
    assert_eq!(deleted["prev_kvs"][0]["value"], b64("baz"));
    let future = post(port, "/v3/kv/compaction", r#"{"revision":"1000"}"#);
    assert_eq!(future.status, 400);
    assert_eq!(future.json()["code"], 11);
    assert_eq!(
        future.json()["error"],
        "etcdserver: mvcc: required revision is a future revision"
    );
    ok(
        port,
        "/v3/kv/compaction",
        &format!(r#"{{"revision":"{revision}"}}"#),
    );

    // Malformed requests, unknown paths and other methods, as grpc-gateway answers them.
    let bad = post(port, "/v3/kv/range", r#"{"key":"Zm9v",bad"#);
    assert_eq!((bad.status, &bad.json()["code"]), (400, &Value::from(3)));
    let bad = post(port, "/v3/kv/range", r#"{"key":"Zm9v!"}"#);
    assert_eq!(bad.status, 400, "{}", bad.body);
    let unknown = post(port, "/v3/kv/nothing", "{}");
    assert_eq!(
        (unknown.status, unknown.body.as_str()),
        (404, "Not Found\n")
    );
    let get = exchange(
        port,
        b"GET /v3/kv/range HTTP/1.1\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        (get.status, get.body.as_str()),
        (405, "Method Not Allowed\n")
    );

    // Lease, with the /v3/kv/lease/ aliases.
    let grant = ok(port, "/v3/lease/grant", r#"{"TTL":"30"}"#);
    assert_eq!(grant["TTL"], "30", "{grant}");
    let id = text(&grant, "/ID").to_string();
    for path in ["/v3/lease/timetolive", "/v3/kv/lease/timetolive"] {
        let ttl = ok(port, path, &format!(r#"{{"ID":"{id}","keys":true}}"#));
        assert_eq!(ttl["ID"], id.as_str(), "{ttl}");
        assert_eq!(ttl["grantedTTL"], "30", "{ttl}");
    }
    for path in ["/v3/lease/leases", "/v3/kv/lease/leases"] {
        let leases = ok(port, path, "{}");
        assert_eq!(leases["leases"][0]["ID"], id.as_str(), "{leases}");
    }
    let mut keepalive = Stream::post(port, "/v3/lease/keepalive", &format!(r#"{{"ID":"{id}"}}"#));
    let renewed = keepalive.next();
    assert_eq!(renewed["result"]["ID"], id.as_str(), "{renewed}");
    assert_eq!(renewed["result"]["TTL"], "30", "{renewed}");
    ok(port, "/v3/kv/lease/revoke", &format!(r#"{{"ID":"{id}"}}"#));
    let gone = post(port, "/v3/lease/revoke", &format!(r#"{{"ID":"{id}"}}"#));
    assert_eq!(gone.status, 404);
    assert_eq!(
        gone.body,
        r#"{"error":"etcdserver: requested lease not found","message":"etcdserver: requested lease not found","code":5}"#
    );

    // Cluster and Maintenance.
    let members = ok(port, "/v3/cluster/member/list", "{}");
    assert_eq!(
        members["members"][0]["clientURLs"][0],
        format!("http://127.0.0.1:{port}"),
        "{members}"
    );
    let status = ok(port, "/v3/maintenance/status", "{}");
    assert!(
        status["version"].is_string() && status["dbSize"].is_string(),
        "{status}"
    );
    let alarms = ok(port, "/v3/maintenance/alarm", r#"{"action":"GET"}"#);
    assert!(alarms.get("alarms").is_none(), "no alarm: {alarms}");
    let hash = ok(port, "/v3/maintenance/hashkv", "{}");
    assert!(hash["hash"].is_number(), "uint32 is a number: {hash}");
    let mut snapshot = Stream::post(port, "/v3/maintenance/snapshot", "{}");
    let first = snapshot.next();
    assert!(text(&first, "/result/blob").len() > 100, "{first}");

    // Lock and Election.
    let lease = ok(port, "/v3/lease/grant", r#"{"TTL":"60"}"#);
    let lease = text(&lease, "/ID").to_string();
    let locked = ok(
        port,
        "/v3/lock/lock",
        &format!(r#"{{"name":"{}","lease":"{lease}"}}"#, b64("gw-lock")),
    );
    let key = text(&locked, "/key").to_string();
    ok(port, "/v3/lock/unlock", &format!(r#"{{"key":"{key}"}}"#));
    let campaign = ok(
        port,
        "/v3/election/campaign",
        &format!(
            r#"{{"name":"{}","lease":"{lease}","value":"{}"}}"#,
            b64("gw-election"),
            b64("me")
        ),
    );
    let leader = ok(
        port,
        "/v3/election/leader",
        &format!(r#"{{"name":"{}"}}"#, b64("gw-election")),
    );
    assert_eq!(leader["kv"]["value"], b64("me"), "{leader}");
    let mut observe = Stream::post(
        port,
        "/v3/election/observe",
        &format!(r#"{{"name":"{}"}}"#, b64("gw-election")),
    );
    assert_eq!(observe.next()["result"]["kv"]["value"], b64("me"));
    let resign = format!(r#"{{"leader":{}}}"#, campaign["leader"]);
    ok(port, "/v3/election/resign", &resign);

    // Auth: served like any other service (UNIMPLEMENTED while basalt has no Auth service).
    let auth = post(port, "/v3/auth/status", "{}");
    match auth.status {
        200 => assert!(auth.json()["header"].is_object(), "{}", auth.body),
        501 => assert_eq!(auth.json()["error"], "unknown service etcdserverpb.Auth"),
        other => panic!("auth/status answered {other}: {}", auth.body),
    }
}

/// Goal: a watch over the gateway streams its events as etcd's do, reads requests from a
/// chunked body as they arrive, and ends (its watchers cancelled) when the client leaves.
/// Method: a watch opened with a chunked body; a put is seen on it; a second create request
/// sent later on the same body gets its own watcher; then the client closes, and a waiting
/// Lock whose client closed is shown cancelled: the next locker gets the lock at once.
#[test]
fn a_watch_streams_events_and_a_leaving_client_cancels_its_call() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    let port = basalt.port;

    let create = |key: &str| {
        let body = format!(r#"{{"create_request":{{"key":"{}"}}}}"#, b64(key));
        format!("{:x}\r\n{body}\r\n", body.len())
    };
    let mut watch = Stream::open(
        port,
        format!(
            "POST /v3/watch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{}",
            create("w1")
        )
        .as_bytes(),
    );
    let created = watch.next();
    assert_eq!(created["result"]["created"], true, "{created}");
    assert!(
        created["result"].get("watch_id").is_none(),
        "watch 0 is a default: {created}"
    );
    ok(
        port,
        "/v3/kv/put",
        &format!(r#"{{"key":"{}","value":"{}"}}"#, b64("w1"), b64("v")),
    );
    let event = watch.next();
    let kv = &event["result"]["events"][0]["kv"];
    assert_eq!(
        (&kv["key"], &kv["value"]),
        (&Value::from(b64("w1")), &Value::from(b64("v"))),
        "{event}"
    );
    assert!(
        event["result"]["events"][0].get("type").is_none(),
        "PUT is the default: {event}"
    );
    // A second request on the same (still open) body.
    watch.send(create("w2").as_bytes());
    let second = watch.next();
    assert_eq!(second["result"]["watch_id"], "1", "{second}");
    drop(watch);

    // A Lock waiting behind a held lock, whose client leaves: its call must end with it, or
    // it would take the lock when the holder lets go and keep the next locker waiting.
    let lease = |ttl: u32| {
        let grant = ok(port, "/v3/lease/grant", &format!(r#"{{"TTL":"{ttl}"}}"#));
        text(&grant, "/ID").to_string()
    };
    let name = b64("gw-cancel");
    let holder = ok(
        port,
        "/v3/lock/lock",
        &format!(r#"{{"name":"{name}","lease":"{}"}}"#, lease(60)),
    );
    let waiting_body = format!(r#"{{"name":"{name}","lease":"{}"}}"#, lease(60));
    let mut waiting = connect(port);
    write!(
        waiting,
        "POST /v3/lock/lock HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n{waiting_body}",
        waiting_body.len()
    )
    .unwrap();
    // Its waiter key exists once the call is under way.
    let prefix = b64("gw-cancel/");
    let waiters = || {
        let range = ok(
            port,
            "/v3/kv/range",
            &format!(
                r#"{{"key":"{prefix}","range_end":"{}","count_only":true}}"#,
                b64("gw-cancel0")
            ),
        );
        range["count"]
            .as_str()
            .unwrap_or("0")
            .parse::<u32>()
            .unwrap()
    };
    let deadline = Instant::now() + LIMIT;
    while waiters() < 2 {
        assert!(Instant::now() < deadline, "the waiting lock never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(waiting);
    ok(
        port,
        "/v3/lock/unlock",
        &format!(r#"{{"key":"{}"}}"#, text(&holder, "/key")),
    );
    // The next locker gets the lock within the bound, not after the gone client's lease.
    let started = Instant::now();
    let next = post(
        port,
        "/v3/lock/lock",
        &format!(r#"{{"name":"{name}","lease":"{}"}}"#, lease(60)),
    );
    assert_eq!(next.status, 200, "{}", next.body);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

/// Goal: request bodies are bounded and `Expect: 100-continue` is honoured. Method: a
/// Content-Length far past the limit gets 413 before any body is sent; a request sent with
/// `Expect` gets `100 Continue` first, then its answer; a body whose protobuf is over
/// `--max-request-bytes` plus gRPC's overhead gets etcd's 429.
#[test]
fn bodies_are_bounded_and_expect_continue_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    let port = basalt.port;

    let huge = exchange(
        port,
        b"POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n",
    );
    assert_eq!(huge.status, 413, "{}", huge.body);

    let body = format!(r#"{{"key":"{}","value":"{}"}}"#, b64("e"), b64("v"));
    let mut stream = connect(port);
    write!(
        stream,
        "POST /v3/kv/put HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(body.as_bytes()).unwrap();
    let mut rest = String::new();
    stream.read_to_string(&mut rest).unwrap();
    assert_eq!(parse_response(&rest).status, 200, "{rest}");

    // 2.5 MB of value: under the body limit, over the gRPC receive limit (2 MiB).
    let value = "eHh4".repeat(2_500_000 / 3);
    let big = post(
        port,
        "/v3/kv/put",
        &format!(r#"{{"key":"{}","value":"{value}"}}"#, b64("big")),
    );
    assert_eq!(big.status, 429, "{}", big.body);
    assert!(
        big.json()["error"]
            .as_str()
            .unwrap()
            .starts_with("grpc: received message larger than max"),
        "{}",
        big.body
    );
}

/// Goal: Python's `etcd3gw` (Debian's python3-etcd3gw), unchanged, works against basalt:
/// put, get, delete, a lease, a watch and a lock. Method: one script run by the system
/// Python against a member; it prints OK once every step saw what etcd would answer. (Like
/// etcd 3.4, basalt serves `/v3/` and `/v3beta/`, not etcd 3.3's `/v3alpha/` that etcd3gw 2.0
/// uses when no `api_path` is given.)
#[test]
fn python_etcd3gw_works_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    let script = r#"
import sys, threading
from etcd3gw.client import Etcd3Client
from etcd3gw.lock import Lock
c = Etcd3Client(host="127.0.0.1", port=int(sys.argv[1]), api_path="/v3/")
assert c.status()["version"], c.status()
assert c.put("gw/a", "1") is True
assert c.get("gw/a") == [b"1"], c.get("gw/a")
lease = c.lease(ttl=30)
assert c.put("gw/leased", "x", lease=lease)
assert lease.ttl() > 0 and lease.keys() == [b"gw/leased"], lease.keys()
assert lease.refresh() == 30
assert lease.revoke() is True
assert c.get("gw/leased") == []
events, iterator_ready = [], threading.Event()
iterator, cancel = c.watch("gw/w")
def consume():
    for event in iterator:
        events.append(event)
        break
t = threading.Thread(target=consume); t.start()
import time
deadline = time.time() + 20
while not events and time.time() < deadline:
    c.put("gw/w", "seen")
    t.join(0.2)
assert events and events[0]["kv"]["value"] == b"seen", events
cancel()
lock = Lock("gw-lock", ttl=30, client=c)
assert lock.acquire() is True
assert lock.is_acquired()
assert lock.release() is True
assert c.delete("gw/a") is True
assert c.get("gw/a") == []
print("OK")
"#;
    let output = Command::new("/usr/bin/python3")
        .arg("-c")
        .arg(script)
        .arg(basalt.port.to_string())
        .output()
        .expect(
            "run /usr/bin/python3 (Debian's python3-etcd3gw is installed by tools/test-all.sh)",
        );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.trim() == "OK",
        "etcd3gw failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// `POST /v3/kv/range` for key `k`: (status, body).
pub fn range_status(port: u16) -> (u16, String) {
    let response = post(
        port,
        "/v3/kv/range",
        &format!(r#"{{"key":"{}"}}"#, b64("k")),
    );
    (response.status, response.body)
}

/// Goal: the gateway answers over HTTP/2 too, as etcd's Go server does (`curl
/// --http2-prior-knowledge`, or TLS with ALPN h2): unary calls, errors and a streaming watch.
/// Method: curl over h2c against a member; the watch's output is read line by line while a
/// put is made once the watch is created.
#[test]
fn the_gateway_answers_over_http2() {
    use std::process::Stdio;
    use std::sync::mpsc;

    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    let url = |path: &str| format!("http://127.0.0.1:{}{path}", basalt.port);
    let curl = |path: &str, body: &str| {
        let output = Command::new("curl")
            .args([
                "-s",
                "--http2-prior-knowledge",
                "-w",
                "\n%{http_version} %{http_code}",
            ])
            .args(["--max-time", "20", "-d", body, &url(path)])
            .output()
            .expect("run curl");
        String::from_utf8(output.stdout).unwrap()
    };
    let put = curl(
        "/v3/kv/put",
        &format!(r#"{{"key":"{}","value":"{}"}}"#, b64("h2"), b64("v")),
    );
    assert!(
        put.ends_with("\n2 200") && put.contains(r#""revision":"2""#),
        "{put}"
    );
    let error = curl("/v3/kv/range", "{}");
    assert_eq!(
        error,
        "{\"error\":\"etcdserver: key is not provided\",\"message\":\"etcdserver: key is not provided\",\"code\":3}\n2 400"
    );

    let mut watch = Command::new("curl")
        .args([
            "-s",
            "-N",
            "--http2-prior-knowledge",
            "--max-time",
            "20",
            "-d",
        ])
        .arg(format!(r#"{{"create_request":{{"key":"{}"}}}}"#, b64("h2")))
        .arg(url("/v3/watch"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("run curl");
    let (lines_in, lines) = mpsc::channel();
    let stdout = watch.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_in.send(line).is_err() {
                break;
            }
        }
    });
    let created: Value = serde_json::from_str(&lines.recv_timeout(LIMIT).unwrap()).unwrap();
    assert_eq!(created["result"]["created"], true, "{created}");
    curl(
        "/v3/kv/put",
        &format!(r#"{{"key":"{}","value":"{}"}}"#, b64("h2"), b64("w")),
    );
    let event: Value = serde_json::from_str(&lines.recv_timeout(LIMIT).unwrap()).unwrap();
    assert_eq!(
        event["result"]["events"][0]["kv"]["value"],
        b64("w"),
        "{event}"
    );
    let _ = watch.kill();
    let _ = watch.wait();
}
