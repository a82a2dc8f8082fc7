//! The byte streams peers talk over, and how they are opened: plain TCP today; peer TLS wraps
//! the same futures-io streams later (a `Dialer` that runs a rustls handshake after the TCP
//! connect, and `Transport::serve_stream` for accepted, already decrypted streams).

use std::cell::{Cell, RefCell};
use std::future::{poll_fn, Future};
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::pin::Pin;
use std::task::{Poll, Waker};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncWrite};

use super::error::PeerError;

/// A bidirectional byte stream to or from a peer (TCP, later TLS over TCP).
pub trait PeerIo: AsyncRead + AsyncWrite + Unpin {}

impl<T: AsyncRead + AsyncWrite + Unpin> PeerIo for T {}

/// A peer connection, boxed so the transport does not care what carries it.
pub type PeerStream = Box<dyn PeerIo>;

/// Opens connections to peers.
pub trait Dialer {
    /// Connects to `address` (the handshake is the transport's business, after this).
    fn dial(&self, address: SocketAddr) -> Pin<Box<dyn Future<Output = io::Result<PeerStream>>>>;
}

/// Plain TCP, with Nagle off: a heartbeat must leave at once.
pub struct TcpDialer;

impl Dialer for TcpDialer {
    fn dial(&self, address: SocketAddr) -> Pin<Box<dyn Future<Output = io::Result<PeerStream>>>> {
        Box::pin(async move {
            let stream = glommio::net::TcpStream::connect(address)
                .await
                .map_err(io::Error::from)?;
            stream.set_nodelay(true).map_err(io::Error::from)?;
            Ok(Box::new(stream) as PeerStream)
        })
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

/// Resolves etcd-style peer URLs (`http://host:port`) to socket addresses. Names resolve
/// here, once, when the membership changes (a blocking lookup, rare, and peers are normally
/// given as IP addresses, as etcd's docs advise).
pub(crate) fn resolve_urls(urls: &[String]) -> Result<Vec<SocketAddr>, PeerError> {
    let mut addresses = Vec::new();
    for url in urls {
        let problem = |problem: &str| PeerError::Url {
            url: url.clone(),
            problem: problem.to_string(),
        };
        let host_port = if let Some(rest) = url.strip_prefix("http://") {
            rest
        } else if url.starts_with("https://") {
            return Err(problem("peer TLS is not wired into the peer transport yet"));
        } else {
            return Err(problem("expected http://host:port"));
        };
        let host_port = host_port.trim_end_matches('/');
        if host_port.contains('/') {
            return Err(problem("a peer URL has no path"));
        }
        let resolved = host_port
            .to_socket_addrs()
            .map_err(|error| problem(&error.to_string()))?;
        addresses.extend(resolved);
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
