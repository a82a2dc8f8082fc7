//! The listeners of `--listen-peer-urls`. Every member serves them, a one-member cluster too
//! (it grows by MemberAdd and a join), as etcd does. They are bound at start-up before the
//! member opens anything, as etcd binds its peer listeners first: a port another process holds
//! stops the member with the URL named, before it touches its data directory. No SO_REUSEPORT:
//! only the owner core serves peers, and a second member on the same port must fail, not split
//! the port's connections with the first.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::server::error::ServerError;

/// How long a bind waits for a port in use to come free. A member restarted right after a
/// kill -9 finds its old listener still open for a moment: the kernel closes the sockets a
/// dead process's io_uring rings hold when it tears the rings down, after the process has been
/// reaped (seen on this machine: a few milliseconds, under load longer). With SO_REUSEPORT the
/// new listener used to bind beside the dying one; without it, it waits. A port another live
/// process holds is reported after this wait.
const PORT_RELEASE_WAIT: Duration = Duration::from_secs(2);

/// Pause between two binds while waiting for a port to come free.
const PORT_RETRY_PAUSE: Duration = Duration::from_millis(10);

/// One bound `--listen-peer-urls` listener, not yet served.
pub struct PeerListener {
    /// The URL as given.
    pub url: String,
    /// The socket, listening.
    pub listener: TcpListener,
    /// An `https://` URL: served with peer TLS.
    pub secure: bool,
}

impl PeerListener {
    /// The address it listens on (the port chosen, for port 0).
    pub fn local_address(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }
}

/// Binds every `--listen-peer-urls` URL; the first that cannot be bound is the error.
pub fn bind_all(config: &Config) -> Result<Vec<PeerListener>, ServerError> {
    config
        .urls
        .listen_peer
        .iter()
        .map(|url| {
            let refused = |reason: String| ServerError::PeerUrl {
                url: url.text.clone(),
                reason,
            };
            let address = url
                .address
                .to_socket_addrs()
                .map_err(|e| refused(format!("cannot resolve it: {e}")))?
                .next()
                .ok_or_else(|| refused("it resolves to no address".into()))?;
            let listener = bind_waiting(address)
                .map_err(|e| refused(format!("listen tcp {address}: {}", bind_reason(&e))))?;
            Ok(PeerListener {
                url: url.text.clone(),
                listener,
                secure: url.is_tls(),
            })
        })
        .collect()
}

/// Binds `address`, waiting at most [`PORT_RELEASE_WAIT`] while it is in use.
fn bind_waiting(address: SocketAddr) -> std::io::Result<TcpListener> {
    let deadline = Instant::now() + PORT_RELEASE_WAIT;
    loop {
        match basalt_net::bind_exclusive(address) {
            Err(error)
                if error.kind() == std::io::ErrorKind::AddrInUse && Instant::now() < deadline =>
            {
                std::thread::sleep(PORT_RETRY_PAUSE)
            }
            bound => return bound,
        }
    }
}

/// The reason in Go's words where operators grep for them ("bind: address already in use").
fn bind_reason(error: &std::io::Error) -> String {
    match error.kind() {
        std::io::ErrorKind::AddrInUse => "bind: address already in use".into(),
        std::io::ErrorKind::AddrNotAvailable => "bind: cannot assign requested address".into(),
        std::io::ErrorKind::PermissionDenied => "bind: permission denied".into(),
        _ => error.to_string(),
    }
}
