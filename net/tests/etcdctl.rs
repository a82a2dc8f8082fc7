//! Goal: Debian's real etcdctl 3.4 (grpc-go client) talks to basalt-net's gRPC server.
//! Method: the demo server on an ephemeral port; etcdctl put/get (prefix, JSON output) as a
//! subprocess; the outputs must be what etcd would print for the same data.

mod support;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use basalt_net::ServerConfig;

fn etcdctl_path() -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|paths| std::env::split_paths(&paths).collect::<Vec<_>>())
        .map(|dir| dir.join("etcdctl"))
        .find(|candidate| candidate.is_file())
        .expect(
            "etcdctl not found on PATH: install Debian's etcd-client package \
             (apt-get install etcd-client); tools/test-all.sh installs it",
        )
}

fn etcdctl(endpoint: &str, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(etcdctl_path())
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .arg("--command-timeout=10s")
        .args(args)
        .output()
        .expect("run etcdctl");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn etcdctl_put_get_prefix_and_json() {
    let server = support::start_demo_server(ServerConfig::default());
    let endpoint = server.address.to_string();

    for (key, value) in [("app/a", "1"), ("app/b", "two"), ("other", "x")] {
        let (ok, stdout, stderr) = etcdctl(&endpoint, &["put", key, value]);
        assert!(ok, "put {key}: {stderr}");
        assert_eq!(stdout, "OK\n");
    }

    let (ok, stdout, stderr) = etcdctl(&endpoint, &["get", "--prefix", "app/"]);
    assert!(ok, "get --prefix: {stderr}");
    assert_eq!(stdout, "app/a\n1\napp/b\ntwo\n");

    let (ok, stdout, stderr) = etcdctl(&endpoint, &["get", "other", "-w", "json"]);
    assert!(ok, "get -w json: {stderr}");
    // etcdctl prints the response as JSON with base64 keys/values and our header fields.
    assert!(stdout.contains(r#""cluster_id":4660"#), "{stdout}");
    assert!(stdout.contains(r#""member_id":22136"#), "{stdout}");
    assert!(stdout.contains(r#""revision":3"#), "{stdout}");
    assert!(stdout.contains(r#""key":"b3RoZXI=""#), "{stdout}"); // base64("other")
    assert!(stdout.contains(r#""value":"eA==""#), "{stdout}"); // base64("x")
    assert!(stdout.contains(r#""count":1"#), "{stdout}");

    // A method the demo does not serve reaches etcdctl as gRPC's Unimplemented.
    let (ok, _, stderr) = etcdctl(&endpoint, &["del", "other"]);
    assert!(!ok);
    assert!(stderr.contains("Unimplemented"), "{stderr}");
    assert!(
        stderr.contains("unknown method DeleteRange for service etcdserverpb.KV"),
        "{stderr}"
    );
}

#[test]
fn etcdctl_sees_the_size_limit_and_a_bidi_watch() {
    // etcdctl refuses to send over 2 MiB itself, so lower our limit below that: 512 KiB +
    // gRPC overhead (512 KiB) = 1 MiB.
    let server = support::start_demo_server(ServerConfig::for_max_request_bytes(512 * 1024));
    let endpoint = server.address.to_string();

    // 1.5 MiB value on stdin (too long for argv): grpc-go reports our RESOURCE_EXHAUSTED.
    let mut put = Command::new(etcdctl_path())
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(["put", "huge"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run etcdctl");
    put.stdin
        .take()
        .unwrap()
        .write_all(&vec![b'v'; 1536 * 1024])
        .unwrap();
    let output = put.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("code = ResourceExhausted"), "{stderr}");
    assert!(
        stderr.contains("grpc: received message larger than max (1572874 vs. 1048576)"),
        "{stderr}"
    );

    // `etcdctl watch` runs until killed: read its first event from a thread, bounded in time.
    let mut watch = Command::new(etcdctl_path())
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .args(["watch", "watched"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run etcdctl");
    let stdout = watch.stdout.take().unwrap();
    let (lines_sender, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if lines_sender.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    let mut printed = Vec::new();
    while printed.len() < 3 {
        match lines.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => printed.push(line),
            Err(error) => {
                let _ = watch.kill();
                panic!("etcdctl watch printed {printed:?}, then {error}");
            }
        }
    }
    watch.kill().unwrap();
    watch.wait().unwrap();
    assert_eq!(printed, ["PUT", "watched", "echo"]);
}
