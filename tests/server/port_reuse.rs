//! A member binds its client port while an earlier server's connections on that port linger in
//! TIME_WAIT — the state etcd (or a killed basalt) leaves behind when it goes away first. An
//! operator replacing etcd in place, or a supervisor restarting a member, must not have to wait
//! a minute for "address already in use" to clear.

use crate::support;

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use support::{free_port, Basalt};

/// Kernel TCP state number of TIME_WAIT in /proc/net/tcp.
const TCP_TIME_WAIT: &str = "06";

/// Whether a socket with local port `port` is in TIME_WAIT.
fn time_wait_on(port: u16) -> bool {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    table.lines().skip(1).any(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let local_port = fields[1].rsplit(':').next().unwrap();
        u16::from_str_radix(local_port, 16) == Ok(port) && fields[3] == TCP_TIME_WAIT
    })
}

#[test]
fn starts_on_a_port_with_connections_in_time_wait() {
    let port = free_port();
    // An earlier server (std sets SO_REUSEADDR, as Go does) that closes its side first.
    {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the earlier server");
        let mut client = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let (accepted, _) = listener.accept().expect("accept");
        drop(accepted);
        let mut buffer = [0u8; 1];
        assert_eq!(client.read(&mut buffer).expect("read the close"), 0);
    }
    assert!(
        time_wait_on(port),
        "the test needs a TIME_WAIT socket on port {port} to mean anything"
    );
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start_with(dir.path().join("data"), port);
    assert_eq!(basalt.ok(&["put", "k", "v"]).trim(), "OK");
}

/// Goal: a member refuses a client port another server already listens on, as etcd does
/// ("address already in use"), instead of joining that server's listeners through
/// SO_REUSEPORT and taking about half of the port's new connections (a rolling-restart test
/// once read through the wrong server so). Method: start a member; start a second one, with
/// its own data directory, on the same client port: it must exit before it is ready and say
/// why, and the first must still serve.
#[test]
fn refuses_a_client_port_another_member_listens_on() {
    let dir = tempfile::tempdir().unwrap();
    let first = Basalt::start_with(dir.path().join("first"), free_port());
    let second = Basalt::spawn(
        dir.path().join("second"),
        first.port,
        &["--listen-peer-urls", "http://127.0.0.1:0"],
        &[],
    );
    let said = second.assert_never_ready(Duration::from_secs(20));
    assert!(
        said.to_lowercase().contains("address already in use"),
        "the second member did not say why it stopped:\n{said}"
    );
    assert_eq!(first.ok(&["put", "k", "v"]).trim(), "OK");
}
