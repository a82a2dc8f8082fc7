//! The listeners of `--listen-peer-urls`. Every member serves them, a one-member cluster too
//! (it grows by MemberAdd and a join), as etcd does. They are bound at start-up before the
//! member opens anything, as etcd binds its peer listeners first: a port another process holds
//! stops the member with the URL named, before it touches its data directory. No SO_REUSEPORT:
//! only the owner core serves peers, and a second member on the same port must fail, not split
//! the port's connections with the first.

use std::net::{SocketAddr, TcpListener, ToSocketAddrs};

use crate::config::Config;
use crate::server::error::ServerError;

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
            let listener =
                basalt_net::retry_while_in_use(|| basalt_net::bind_exclusive(address))
                    .map_err(|e| refused(format!("listen tcp {address}: {}", bind_reason(&e))))?;
            Ok(PeerListener {
                url: url.text.clone(),
                listener,
                secure: url.is_tls(),
            })
        })
        .collect()
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
