//! The byte streams peers talk over, and how they are opened: plain TCP, or TLS over it (a
//! rustls handshake after the TCP connect; the listener side is `Transport::serve_tls`).

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncWrite};

use super::error::PeerError;
use crate::tls::rustls::pki_types::ServerName;
use crate::tls::ClientTls;

/// A bidirectional byte stream to or from a peer (TCP, or TLS over TCP).
pub trait PeerIo: AsyncRead + AsyncWrite + Unpin {}

impl<T: AsyncRead + AsyncWrite + Unpin> PeerIo for T {}

/// A peer connection, boxed so the transport does not care what carries it.
pub type PeerStream = Box<dyn PeerIo>;

/// Where one of a peer's URLs points.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerAddress {
    /// The resolved socket address.
    pub socket: SocketAddr,
    /// The URL's host as written (the name a TLS certificate is checked against).
    pub host: String,
    /// Whether the URL is `https://`.
    pub tls: bool,
}

/// Opens connections to peers.
pub trait Dialer {
    /// Connects to `address` (the handshake is the transport's business, after this).
    fn dial(&self, address: &PeerAddress) -> Pin<Box<dyn Future<Output = io::Result<PeerStream>>>>;

    /// Whether it can dial `https://` URLs (a transport without refuses them up front).
    fn supports_tls(&self) -> bool {
        false
    }
}

/// Plain TCP, with Nagle off: a heartbeat must leave at once.
pub struct TcpDialer;

impl TcpDialer {
    async fn connect(socket: SocketAddr) -> io::Result<glommio::net::TcpStream> {
        let stream = glommio::net::TcpStream::connect(socket)
            .await
            .map_err(io::Error::from)?;
        stream.set_nodelay(true).map_err(io::Error::from)?;
        Ok(stream)
    }
}

impl Dialer for TcpDialer {
    fn dial(&self, address: &PeerAddress) -> Pin<Box<dyn Future<Output = io::Result<PeerStream>>>> {
        let address = address.clone();
        Box::pin(async move {
            if address.tls {
                return Err(io::Error::other("an https peer URL needs peer TLS"));
            }
            Ok(Box::new(TcpDialer::connect(address.socket).await?) as PeerStream)
        })
    }
}

/// TCP, then TLS for `https://` URLs (etcd's `--peer-cert-file`, `--peer-key-file`,
/// `--peer-trusted-ca-file`, `--peer-auto-tls` as a [`ClientTls`]); `http://` URLs stay plain,
/// as Go's HTTP transport under etcd's rafthttp does.
pub struct TlsDialer {
    tls: Arc<ClientTls>,
}

impl TlsDialer {
    /// A dialer presenting and checking certificates as `tls` says.
    pub fn new(tls: Arc<ClientTls>) -> TlsDialer {
        TlsDialer { tls }
    }
}

impl Dialer for TlsDialer {
    fn dial(&self, address: &PeerAddress) -> Pin<Box<dyn Future<Output = io::Result<PeerStream>>>> {
        let address = address.clone();
        // The configuration as of this dial (reloaded first if its files changed).
        let connector = address.tls.then(|| self.tls.connector());
        Box::pin(async move {
            let tcp = TcpDialer::connect(address.socket).await?;
            let Some(connector) = connector else {
                return Ok(Box::new(tcp) as PeerStream);
            };
            let name = ServerName::try_from(address.host.clone()).map_err(|error| {
                io::Error::other(format!("peer host {}: {error}", address.host))
            })?;
            let stream = connector.connect(name, tcp).await?;
            Ok(Box::new(stream) as PeerStream)
        })
    }

    fn supports_tls(&self) -> bool {
        true
    }
}

/// Runs `future` for at most `limit`; `None` if time ran out first.
pub(crate) async fn with_timeout<T>(limit: Duration, future: impl Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(future.await) }, async {
        glommio::timer::sleep(limit).await;
        None
    })
    .await
}

/// Resolves etcd-style peer URLs (`http://host:port`, `https://` when `tls_supported`) to
/// addresses. Names resolve here, once, when the membership changes (a blocking lookup, rare,
/// and peers are normally given as IP addresses, as etcd's docs advise).
pub(crate) fn resolve_urls(
    urls: &[String],
    tls_supported: bool,
) -> Result<Vec<PeerAddress>, PeerError> {
    let mut addresses = Vec::new();
    for url in urls {
        let problem = |problem: &str| PeerError::Url {
            url: url.clone(),
            problem: problem.to_string(),
        };
        let (host_port, tls) = if let Some(rest) = url.strip_prefix("http://") {
            (rest, false)
        } else if let Some(rest) = url.strip_prefix("https://") {
            if !tls_supported {
                return Err(problem(
                    "an https peer URL needs peer TLS (--peer-cert-file or --peer-auto-tls)",
                ));
            }
            (rest, true)
        } else {
            return Err(problem("expected http://host:port or https://host:port"));
        };
        let host_port = host_port.trim_end_matches('/');
        if host_port.contains('/') {
            return Err(problem("a peer URL has no path"));
        }
        let Some((host, _port)) = host_port.rsplit_once(':') else {
            return Err(problem("a peer URL needs a port"));
        };
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let resolved = host_port
            .to_socket_addrs()
            .map_err(|error| problem(&error.to_string()))?;
        addresses.extend(resolved.map(|socket| PeerAddress {
            socket,
            host: host.clone(),
            tls,
        }));
    }
    if addresses.is_empty() {
        return Err(PeerError::Url {
            url: urls.join(","),
            problem: "no address to dial".into(),
        });
    }
    Ok(addresses)
}

/// A one-way "stop" signal (an inbound connection the transport closes, or the whole
/// transport shutting down).
#[derive(Default)]
pub(crate) struct Closer {
    closed: Cell<bool>,
    /// The tasks waiting: a few (the accept loop, the inbound connections).
    wakers: RefCell<Vec<Waker>>,
}

impl Closer {
    pub fn close(&self) {
        self.closed.set(true);
        for waker in self.wakers.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Resolves once `close` is called.
    pub async fn closed(&self) {
        poll_fn(|context| {
            if self.closed.get() {
                return Poll::Ready(());
            }
            let mut wakers = self.wakers.borrow_mut();
            if !wakers.iter().any(|waker| waker.will_wake(context.waker())) {
                wakers.push(context.waker().clone());
            }
            Poll::Pending
        })
        .await
    }
}
