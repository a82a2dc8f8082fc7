//! Loopback ports for tests that start servers. One file shared by path by every test support
//! that needs it (the server's, the tools', the bench's), as the TLS tests share their PKI.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// A loopback port nobody listens on right now, that this test process never handed out, and
/// that the kernel never picks by itself.
///
/// The kernel draws the ports of port-0 binds (the members' peer listeners here) and the
/// source ports of outgoing connections from its ephemeral range; a port handed out from that
/// range could be taken by either before the member binds it (a member's own peer listener
/// once took the client port it was about to bind). So ports come from below the range.
/// Tests run on parallel threads of this one process, and a member restarting on its port
/// leaves that port free meanwhile: were it handed out again, another test's member could
/// take it and serve on it alongside the restarted one. Hence the set of ports handed out.
pub fn free_port() -> u16 {
    /// Every port handed out so far by this test process.
    static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    let ephemeral_low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let first = ephemeral_low.saturating_sub(20_000).max(1024);
    let span = ephemeral_low.saturating_sub(first);
    assert!(
        span >= 1000,
        "the ephemeral port range starts at {ephemeral_low}: too few ports below it"
    );
    // Where to start in the span: apart for test processes that run at the same time.
    let offset = (std::process::id() % u32::from(span)) as u16;
    let mut handed_out = HANDED_OUT.lock().unwrap();
    for step in 0..span {
        let port = first + (offset + step) % span;
        if !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            handed_out.insert(port);
            return port;
        }
    }
    panic!("no free port below the ephemeral range ({first}..{ephemeral_low}) was left");
}
