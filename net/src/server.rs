//! The server of one executor: accepts connections on its own SO_REUSEPORT listener, tells
//! gRPC (HTTP/2) from HTTP/1.1 by the first bytes, and serves each connection on this core.
//!
//! Thread-per-core: each executor builds its own `Server` (with its own `Router`, so handlers
//! hold `Rc` state) and binds its own listener on the same address; the kernel spreads
//! connections over the listeners. A connection lives on the executor that accepted it, and
//! every call on it runs as a `spawn_local` task there. With TLS, the handshake and every
//! record's encryption are that connection's work on that core too; executors share only the
//! read-mostly `ServerTls`.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, IntoRawFd};
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};
use glommio::net::{TcpListener, TcpStream};

use crate::config::{Keepalive, ServerConfig};
use crate::deadline::within;
use crate::error::NetError;
use crate::grpc::dispatch::{serve_call, CallConnection};
use crate::grpc::partial_budget::PartialMessageBudget;
use crate::grpc::Router;
use crate::handoff::{ConnectionShares, HandedOff, Served, OWNER};
use crate::http1::{
    serve_http1_with_gateway, Http1Answer, Http1Handler, Http1Request, Http1Response, Http1Timeouts,
};
use crate::http2::driver::{Driver, DriverEnd};
use crate::http2::server_connection::{reason, Limits, ServerConnection};
use crate::json_gateway::JsonGateway;
use crate::ping_policy::{FrameWatch, PingPolicing, PingPolicy};
use crate::read_activity::ReadActivity;
use crate::rewind::Rewind;
use crate::shutdown::ShutdownSignal;
use crate::sniff::{sniff, Protocol, HTTP2_PREFACE};
use crate::tls::ServerTls;

/// How long the accept loop backs off after a failed accept (e.g. out of file descriptors),
/// so it does not spin while the condition lasts.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// One executor's server: routes, the HTTP/1.1 callback and limits.
pub struct Server {
    router: Rc<Router>,
    /// etcd's JSON gateway over the same router (`None`: `--enable-grpc-gateway=false`).
    json_gateway: Option<JsonGateway>,
    http1_handler: Box<Http1Handler>,
    config: ServerConfig,
    connections_open: Rc<Cell<usize>>,
    /// Accept loops running now (each holds its listener open).
    listeners_open: Rc<Cell<usize>>,
    /// GOAWAY and drain (also stops accepting).
    shutdown: ShutdownSignal,
    /// Stops accepting only: a graceful stop closes every core's listeners before any
    /// connection is told to go away, so a client that reconnects finds no listener rather
    /// than one about to close with its connection still queued (the kernel resets those).
    accepting_stopped: ShutdownSignal,
    /// Closes every connection at once: a graceful stop's bound has passed.
    closing: ShutdownSignal,
    /// Where this executor's connections are counted, and its link for handing new ones to
    /// the owner (see [`crate::handoff`]); unset, it serves whatever it accepts.
    placement: RefCell<Option<Placement>>,
}

/// This executor's place among the process's executors.
struct Placement {
    shares: Arc<ConnectionShares>,
    executor: usize,
    /// On a client core: the channel to the owner, until it stops accepting.
    to_owner: Option<ConnectedSender<HandedOff>>,
}

/// Counts one open thing (a connection, an accept loop holding its listener) for as long as
/// it lives, also when its task is dropped.
struct OpenCount(Rc<Cell<usize>>);

impl OpenCount {
    fn enter(count: &Rc<Cell<usize>>) -> OpenCount {
        count.set(count.get() + 1);
        OpenCount(count.clone())
    }
}

impl Drop for OpenCount {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}

/// Binds a listener for this executor. SO_REUSEPORT lets every executor bind the same address;
/// SO_REUSEADDR lets a restarted member (or basalt replacing etcd in place) bind the port while
/// the previous process's connections linger in TIME_WAIT — Go, hence etcd, sets it too, and
/// without it a restart right after a kill fails with "address already in use" for a minute.
/// Port 0 picks a free port; read it back with `local_addr`.
pub fn bind(address: SocketAddr) -> Result<TcpListener, NetError> {
    let socket = bound_socket(address, true)?;
    socket.listen(LISTEN_BACKLOG)?;
    // SAFETY: the descriptor is a bound, listening TCP socket that `into_raw_fd` gave up, so the
    // listener becomes its only owner (what glommio's own `bind` does with its socket).
    Ok(unsafe { TcpListener::from_raw_fd(socket.into_raw_fd()) })
}

/// Binds a listener no other socket can share: SO_REUSEADDR (a restart binds while old
/// connections linger in TIME_WAIT) but no SO_REUSEPORT, so a port another process listens on
/// fails with `AddrInUse` instead of silently splitting its connections with it. For a
/// listener one executor serves alone (the peer port); bind it on any thread, then
/// [`adopt_listener`] it on the executor that serves it.
pub fn bind_exclusive(address: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = bound_socket(address, false)?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(socket.into())
}

/// A TCP socket bound to `address`, not yet listening: SO_REUSEADDR always (connections
/// lingering in TIME_WAIT must not keep a restart from binding), SO_REUSEPORT when asked.
fn bound_socket(address: SocketAddr, reuse_port: bool) -> io::Result<socket2::Socket> {
    let domain = socket2::Domain::for_address(address);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&address.into())?;
    Ok(socket)
}

/// The listener of [`bind_exclusive`], served by the calling executor.
pub fn adopt_listener(listener: std::net::TcpListener) -> TcpListener {
    // SAFETY: the descriptor is a bound, listening TCP socket that `into_raw_fd` gave up, so the
    // glommio listener becomes its only owner (as in `bind`).
    unsafe { TcpListener::from_raw_fd(listener.into_raw_fd()) }
}

/// Checks that no socket listens on `address` yet, before this process's first [`bind`] of it.
///
/// SO_REUSEPORT lets any socket of the same user that sets it join a port's listeners, another
/// process's too: a second server started on the port (a member started twice, or a test's
/// free port handed out again while the member owning it restarts) would bind with no error,
/// and the kernel would split new connections between the two servers. etcd (Go sets no
/// SO_REUSEPORT) refuses to start with "address already in use"; so does a caller that claims
/// first. The check binds a socket without SO_REUSEPORT (with SO_REUSEADDR, as [`bind`] and Go,
/// so connections lingering in TIME_WAIT do not count) and closes it at once: another process
/// could still take the address in the microseconds before the caller binds it. Port 0 (a
/// fresh port for each bind) is not checked.
///
/// A port in use is tried again for [`PORT_RELEASE_WAIT`] (see [`retry_while_in_use`]).
pub fn claim(address: SocketAddr) -> Result<(), NetError> {
    if address.port() == 0 {
        return Ok(());
    }
    retry_while_in_use(|| bound_socket(address, false))?;
    Ok(())
}

/// How long a bind waits for a port in use to come free. A process restarted right after a
/// kill -9 (or one that execs itself, as a snapshot install does) finds its old listener still
/// open for a moment: the kernel closes the sockets a dead process's io_uring rings hold when
/// it tears the rings down, after the process has been reaped (seen on this machine: a few
/// milliseconds, under load longer). A port another live process holds is reported after this
/// wait.
pub const PORT_RELEASE_WAIT: Duration = Duration::from_secs(2);

/// Pause between two binds while waiting for a port to come free.
const PORT_RETRY_PAUSE: Duration = Duration::from_millis(10);

/// Runs `bind` until it does not fail with "address in use", for at most
/// [`PORT_RELEASE_WAIT`]; blocks the calling thread meanwhile (start-up only).
pub fn retry_while_in_use<T>(mut bind: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    let deadline = Instant::now() + PORT_RELEASE_WAIT;
    loop {
        match bind() {
            Err(error) if error.kind() == io::ErrorKind::AddrInUse && Instant::now() < deadline => {
                std::thread::sleep(PORT_RETRY_PAUSE)
            }
            bound => return bound,
        }
    }
}

/// Pending connections the kernel queues per listener (glommio's and Go's default is the
/// kernel's limit; 1024 matches glommio's own `bind`).
const LISTEN_BACKLOG: i32 = 1024;

impl Server {
    /// A server for `router`; HTTP/1.1 requests get 404 until `with_http1` is called.
    pub fn new(router: Router, config: ServerConfig) -> Server {
        let router = Rc::new(router);
        let json_gateway = config.json_gateway.then(|| JsonGateway {
            router: router.clone(),
            max_body_bytes: config.json_gateway_max_body_bytes(),
            max_receive_message_bytes: config.max_receive_message_bytes,
            response_buffer_bytes: config.max_send_buffer_bytes_per_stream,
        });
        Server {
            router,
            json_gateway,
            http1_handler: Box::new(|_: Http1Request| -> Http1Answer {
                Box::pin(async { Http1Response::not_found() })
            }),
            config,
            connections_open: Rc::new(Cell::new(0)),
            listeners_open: Rc::new(Cell::new(0)),
            shutdown: ShutdownSignal::new(),
            accepting_stopped: ShutdownSignal::new(),
            closing: ShutdownSignal::new(),
            placement: RefCell::new(None),
        }
    }

    /// Counts this executor's connections in `shares` as `executor`'s; a client core also gets
    /// `to_owner`, over which it hands the owner a new connection while the owner serves none
    /// (see [`crate::handoff`]).
    pub fn place(
        &self,
        shares: Arc<ConnectionShares>,
        executor: usize,
        to_owner: Option<ConnectedSender<HandedOff>>,
    ) {
        assert!(
            (executor == OWNER) == to_owner.is_none(),
            "only client cores hand connections to the owner"
        );
        *self.placement.borrow_mut() = Some(Placement {
            shares,
            executor,
            to_owner,
        });
    }

    /// Sets the callback answering plain HTTP/1.1 requests (`/health`, `/version`) at once.
    pub fn with_http1(self, handler: impl Fn(&Http1Request) -> Http1Response + 'static) -> Server {
        self.with_http1_async(move |request| {
            let response = handler(&request);
            Box::pin(async move { response })
        })
    }

    /// Sets the callback answering plain HTTP/1.1 requests with a future (a health check that
    /// reads the cluster's state).
    pub fn with_http1_async(
        mut self,
        handler: impl Fn(Http1Request) -> Http1Answer + 'static,
    ) -> Server {
        self.http1_handler = Box::new(handler);
        self
    }

    /// Calls under way that end by themselves: all but the clients' Watch and LeaseKeepAlive
    /// streams, which a graceful stop need not wait for.
    pub fn finite_calls_open(&self) -> usize {
        self.router.finite_calls_open()
    }

    /// Connections this server is serving now.
    pub fn connections_open(&self) -> usize {
        self.connections_open.get()
    }

    /// Listeners this server accepts on now; a listener is closed once its count is gone.
    pub fn listeners_open(&self) -> usize {
        self.listeners_open.get()
    }

    /// The signal that stops this server: raise it to stop accepting and to make every
    /// HTTP/2 connection send GOAWAY and drain its calls (and every HTTP/1.1 connection close
    /// once it has no request under way).
    pub fn shutdown_signal(&self) -> ShutdownSignal {
        self.shutdown.clone()
    }

    /// Stops accepting and closes the listeners; the connections are served on.
    pub fn stop_accepting(&self) {
        self.accepting_stopped.raise();
        self.stop_handing_off();
    }

    /// Closes every connection at once, with its calls (a graceful stop whose bound has
    /// passed, as grpc-go's `Stop` after `GracefulStop`); stops accepting too.
    pub fn close_connections(&self) {
        self.accepting_stopped.raise();
        self.closing.raise();
        self.stop_handing_off();
    }

    /// Accepts and serves plaintext connections (an `http://` listen URL) until the shutdown
    /// signal is raised; each connection is its own task on this executor and drains after this
    /// returns (see `connections_open`).
    pub async fn serve(self: Rc<Self>, listener: TcpListener) -> Result<(), NetError> {
        self.serve_listener(listener, None).await
    }

    /// Like [`serve`](Server::serve), for an `https://` listen URL: every connection does the
    /// TLS handshake (bounded by `handshake_timeout`) with `tls`'s current configuration, then
    /// is served exactly as a plaintext one. One `ServerTls` is shared by every executor; one
    /// `Server` may serve plaintext and TLS listeners side by side.
    pub async fn serve_tls(
        self: Rc<Self>,
        listener: TcpListener,
        tls: Arc<ServerTls>,
    ) -> Result<(), NetError> {
        self.serve_listener(listener, Some(tls)).await
    }

    async fn serve_listener(
        self: Rc<Self>,
        listener: TcpListener,
        tls: Option<Arc<ServerTls>>,
    ) -> Result<(), NetError> {
        let open = OpenCount::enter(&self.listeners_open);
        let mut stop = pin!(futures_lite::future::or(
            self.shutdown.raised(),
            self.accepting_stopped.raised()
        ));
        let mut limit_reached = false;
        loop {
            let accepted =
                futures_lite::future::or(async { Some(listener.accept().await) }, async {
                    stop.as_mut().await;
                    None
                })
                .await;
            let Some(accepted) = accepted else {
                // Closed before it stops counting: `listeners_open` at 0 means closed. The
                // owner's handoff loop waits for this core's end of the channel to close (see
                // `serve_handed_off`): closed by `stop_accepting`, and here for a shutdown.
                drop(listener);
                self.stop_handing_off();
                drop(open);
                return Ok(());
            };
            let stream = match accepted {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::warn!(%error, "accept failed; backing off");
                    glommio::timer::sleep(ACCEPT_ERROR_BACKOFF).await;
                    continue;
                }
            };
            if self.connections_open.get() >= self.config.max_connections_per_executor {
                // Once per episode, not once per refused connection: a flood must not
                // become a log flood.
                if !limit_reached {
                    tracing::warn!(
                        limit = self.config.max_connections_per_executor,
                        "connection limit reached; closing new connections until below it"
                    );
                }
                limit_reached = true;
                drop(stream);
                continue;
            }
            limit_reached = false;
            let Some((stream, served)) = self.hand_off(stream, &tls) else {
                continue;
            };
            self.start_connection(stream, tls.clone(), served);
        }
    }

    /// Serves the connections a client core hands this executor (the owner) over `from`, until
    /// that core closes its end, which it does when it stops accepting (so the owner's own
    /// stop of accepting does not end this: the client core may still be handing it
    /// connections). Counted as a listener: the graceful stop waits for it to end as for an
    /// accept loop, so every connection handed over before the client cores stopped accepting
    /// is this executor's, and drained with its others, by then. The shutdown (the drain) or the
    /// close of every connection ends it anyway, after taking what is queued; a client core
    /// that still hands one over then finds the channel closed and serves it itself.
    pub async fn serve_handed_off(
        self: Rc<Self>,
        from: ConnectedReceiver<HandedOff>,
    ) -> Result<(), NetError> {
        let open = OpenCount::enter(&self.listeners_open);
        let mut stop = pin!(futures_lite::future::or(
            self.shutdown.raised(),
            self.closing.raised()
        ));
        loop {
            let handed = futures_lite::future::or(from.recv(), async {
                stop.as_mut().await;
                None
            })
            .await;
            let Some(HandedOff {
                socket,
                tls,
                served,
            }) = handed
            else {
                drop(from);
                drop(open);
                return Ok(());
            };
            if self.connections_open.get() >= self.config.max_connections_per_executor {
                tracing::warn!(
                    limit = self.config.max_connections_per_executor,
                    "connection limit reached; closing a connection handed to this core"
                );
                continue;
            }
            // SAFETY: `socket` is an accepted TCP socket's own descriptor (a copy the client
            // core made), given up here so the stream becomes its only owner.
            let stream = unsafe { TcpStream::from_raw_fd(socket.into_raw_fd()) };
            self.start_connection(stream, tls, Some(served));
        }
    }

    /// Closes this client core's end of the handoff channel: what it accepts from now on it
    /// serves itself, and the owner's handoff loop ends once it has taken what is queued.
    fn stop_handing_off(&self) {
        if let Some(placement) = self.placement.borrow_mut().as_mut() {
            placement.to_owner = None;
        }
    }

    /// Hands a connection this client core accepted to the owner when the owner should serve
    /// it (answers `None`), or answers it back with its count here. A handoff that fails (the
    /// owner's queue is full or gone, or the descriptor cannot be copied) leaves the
    /// connection here.
    fn hand_off(
        &self,
        stream: TcpStream,
        tls: &Option<Arc<ServerTls>>,
    ) -> Option<(TcpStream, Option<Served>)> {
        let placement = self.placement.borrow();
        let Some(placement) = placement.as_ref() else {
            return Some((stream, None));
        };
        let served_here = || placement.shares.serve(placement.executor);
        let Some(to_owner) = &placement.to_owner else {
            return Some((stream, Some(served_here())));
        };
        if !placement.shares.owner_takes_next() {
            return Some((stream, Some(served_here())));
        }
        // glommio's stream gives up no descriptor; a copy travels and the original closes here.
        // SAFETY: the descriptor is the stream's, open for as long as `stream` lives here.
        let borrowed = unsafe { BorrowedFd::borrow_raw(stream.as_raw_fd()) };
        let socket = match borrowed.try_clone_to_owned() {
            Ok(socket) => socket,
            Err(error) => {
                tracing::debug!(%error, "cannot copy an accepted socket; serving it here");
                return Some((stream, Some(served_here())));
            }
        };
        let handed = HandedOff {
            socket,
            tls: tls.clone(),
            served: placement.shares.serve(OWNER),
        };
        match to_owner.try_send(handed) {
            Ok(()) => None,
            // Dropping the copy (and its count) leaves the original to be served here.
            Err(_) => Some((stream, Some(served_here()))),
        }
    }

    /// Serves `stream` on this executor as its own task, counted while it lives.
    fn start_connection(
        self: &Rc<Self>,
        stream: TcpStream,
        tls: Option<Arc<ServerTls>>,
        served: Option<Served>,
    ) {
        let server = self.clone();
        let open = OpenCount::enter(&self.connections_open);
        glommio::spawn_local(async move {
            let _open = (open, served);
            let peer = stream.peer_addr().ok();
            let closing = server.closing.clone();
            let served = futures_lite::future::or(server.serve_connection(stream, tls), async {
                closing.raised().await;
                Err(NetError::Closed)
            });
            if let Err(error) = served.await {
                tracing::debug!(?peer, %error, "connection ended with an error");
            }
        })
        .detach();
    }

    /// Serves one accepted connection to its end: the TLS handshake first when `tls` is given,
    /// then gRPC or HTTP/1.1 by the first bytes, in TLS or not.
    pub async fn serve_connection(
        self: Rc<Self>,
        stream: TcpStream,
        tls: Option<Arc<ServerTls>>,
    ) -> Result<(), NetError> {
        // gRPC is request/response with small frames: Nagle would add up to 40 ms per reply.
        stream.set_nodelay(true)?;
        let Some(tls) = tls else {
            return self.serve_stream(stream, None).await;
        };
        let peer = stream.peer_addr().ok();
        // The acceptor carries the current configuration (reloaded if its files changed);
        // the handshake's work is this connection's, on this core.
        let handshake = within(self.config.handshake_timeout, tls.acceptor().accept(stream));
        let stream = match handshake.await {
            Some(Ok(stream)) => stream,
            Some(Err(error)) => {
                // etcd's line for a refused handshake; a client that just went away is not
                // worth a warning.
                if error.kind() == std::io::ErrorKind::UnexpectedEof {
                    tracing::debug!(remote_addr = ?peer, %error, "rejected connection on {} endpoint", tls.endpoint());
                } else {
                    tracing::warn!(remote_addr = ?peer, %error, "rejected connection on {} endpoint", tls.endpoint());
                }
                return Err(NetError::TlsHandshake(error));
            }
            None => return Err(NetError::Timeout("the TLS handshake")),
        };
        // A verified client certificate's subject CN: etcd's auth takes it as the user of a
        // call that carries no token (under --client-cert-auth).
        let peer_common_name = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|leaf| crate::tls::x509::subject_common_name(leaf).ok().flatten())
            .map(Arc::<str>::from);
        self.serve_stream(stream, peer_common_name).await
    }

    /// Serves a connection (plaintext or decrypted TLS) from its first byte: the first bytes
    /// tell HTTP/2 from HTTP/1.1 whatever ALPN said, so a TLS client that sent no ALPN is
    /// served as one that did.
    async fn serve_stream<S>(
        self: Rc<Self>,
        mut stream: S,
        peer_common_name: Option<Arc<str>>,
    ) -> Result<(), NetError>
    where
        S: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        // A client that connects and says nothing holds a connection slot: bound that time.
        let sniffed = within(self.config.handshake_timeout, sniff_protocol(&mut stream)).await;
        let (protocol, first_bytes) = match sniffed {
            Some(result) => result?,
            None => return Err(NetError::Timeout("waiting for the first bytes")),
        };
        let Some(protocol) = protocol else {
            return Ok(()); // closed before saying anything
        };
        let mut stream = Rewind::new(first_bytes, stream);
        match protocol {
            Protocol::Http2 => self.serve_http2(stream, peer_common_name).await,
            Protocol::Http1 => {
                let served = serve_http1_with_gateway(
                    &mut stream,
                    &*self.http1_handler,
                    self.config.http1_max_request_bytes,
                    self.json_gateway.as_ref(),
                    Some(Http1Timeouts {
                        head: self.config.http1_head_timeout,
                        idle: self.config.http1_idle_timeout,
                    }),
                    Some(&self.shutdown),
                )
                .await;
                // In TLS, close_notify tells the client the response ended by design, not
                // by truncation; in plaintext this half-closes the socket.
                let _ = within(self.config.handshake_timeout, stream.close()).await;
                served
            }
        }
    }

    async fn serve_http2<S>(
        self: Rc<Self>,
        stream: Rewind<S>,
        peer_common_name: Option<Arc<str>>,
    ) -> Result<(), NetError>
    where
        S: AsyncRead + AsyncWrite + Unpin + 'static,
    {
        let config = &self.config;
        let policing = PingPolicing::new(PingPolicy::new(config.min_ping_interval));
        let partial_budget = Rc::new(PartialMessageBudget::new(
            config.max_partial_message_bytes_per_connection,
        ));
        let stream = ReadActivity::new(FrameWatch::new(stream, policing.clone()));
        let last_read = stream.last_read();
        let limits = Limits {
            max_concurrent_streams: config.max_concurrent_streams_per_connection,
            stream_window: config.stream_window_bytes,
            connection_window: config.connection_window_bytes,
            max_frame_size: config.max_frame_bytes,
            max_header_list_size: config.max_header_list_bytes,
            max_send_buffer_per_stream: config.max_send_buffer_bytes_per_stream,
        };
        // The preface is read through the stream (`Rewind` replays the sniffed bytes), so the
        // ping policing's frame watch sees the connection from its first byte.
        let mut driver = Driver::new(stream, limits, &[]);
        let connection = driver.connection().clone();
        let mut shutdown = pin!(self.shutdown.raised());
        // Its own task (cancelled when this function returns and drops it), so the loop below
        // polls a join handle per step instead of a timer: polling a glommio timer reads the
        // clock and re-registers it (a B-tree removal and insertion) each time.
        let mut keepalive_lost = glommio::spawn_local(keepalive_lost(
            connection.clone(),
            config.keepalive,
            last_read,
        ));
        let mut draining = false;
        // Driving the connection is what reads and writes every call's frames (and the
        // keepalive pings' answers): call tasks only queue them, this loop moves them.
        loop {
            let accepted = async { ConnectionEvent::Accepted(driver.next().await) };
            let lost = async {
                futures_lite::future::or(
                    async {
                        (&mut keepalive_lost).await;
                        ConnectionEvent::KeepaliveLost
                    },
                    async {
                        policing.too_many_pings().await;
                        ConnectionEvent::TooManyPings
                    },
                )
                .await
            };
            let event = if draining {
                futures_lite::future::or(accepted, lost).await
            } else {
                let raised = async {
                    shutdown.as_mut().await;
                    ConnectionEvent::Shutdown
                };
                futures_lite::future::or(accepted, futures_lite::future::or(lost, raised)).await
            };
            match event {
                ConnectionEvent::Accepted(Ok(())) => {}
                ConnectionEvent::Accepted(Err(DriverEnd::Closed)) => return Ok(()),
                ConnectionEvent::Accepted(Err(DriverEnd::Protocol(error))) => {
                    return Err(error.into())
                }
                ConnectionEvent::Accepted(Err(DriverEnd::Io(error))) => return Err(error.into()),
                ConnectionEvent::Shutdown => {
                    // GOAWAY: no new calls; the ones in flight finish, then the driver ends.
                    connection.borrow_mut().go_away_gracefully();
                    draining = true;
                    continue;
                }
                // Dropping the connection closes the socket and ends its calls, as grpc-go
                // closes a transport whose keepalive ping went unanswered.
                ConnectionEvent::KeepaliveLost => {
                    connection.borrow_mut().close();
                    return Err(NetError::Timeout("a keepalive ping's answer"));
                }
                // grpc-go's answer to a ping flood: GOAWAY ENHANCE_YOUR_CALM, then the close
                // (once the GOAWAY is written, or the bound passes).
                ConnectionEvent::TooManyPings => {
                    // The debug data grpc-go's client reads to double its keepalive time.
                    connection
                        .borrow_mut()
                        .go_away(reason::ENHANCE_YOUR_CALM, b"too_many_pings");
                    connection.borrow_mut().close();
                    let _ = within(config.handshake_timeout, driver.next()).await;
                    return Err(NetError::Http2Policy("too many pings"));
                }
            }
            while let Some(call) = driver.accept() {
                let server = self.clone();
                let peer_common_name = peer_common_name.clone();
                let partial_budget = partial_budget.clone();
                let call_open = CallOpen::enter(&policing);
                glommio::spawn_local(async move {
                    let _call_open = call_open;
                    serve_call(
                        &server.router,
                        &*server.http1_handler,
                        server.json_gateway.as_ref(),
                        call,
                        server.config.max_receive_message_bytes,
                        CallConnection {
                            peer_common_name,
                            partial_budget,
                        },
                    )
                    .await;
                })
                .detach();
            }
        }
    }
}

/// What ended one wait of a connection's loop.
enum ConnectionEvent<T> {
    /// The driver returned: new calls, or the end of the connection.
    Accepted(T),
    /// The server is shutting down.
    Shutdown,
    /// The client did not answer a keepalive ping in time.
    KeepaliveLost,
    /// The client pinged more often than the ping policy allows.
    TooManyPings,
}

/// Counts one call in its connection's ping policing for as long as it is served.
struct CallOpen(Rc<PingPolicing>);

impl CallOpen {
    fn enter(policing: &Rc<PingPolicing>) -> CallOpen {
        policing.calls_open.set(policing.calls_open.get() + 1);
        CallOpen(policing.clone())
    }
}

impl Drop for CallOpen {
    fn drop(&mut self) {
        self.0.calls_open.set(self.0.calls_open.get() - 1);
    }
}

/// Resolves when the client stays silent through a keepalive ping and its timeout (or the
/// connection fails under the ping); never, when keepalive is off. As grpc-go's server: a ping
/// goes out only after a whole interval in which nothing was read, and the connection is
/// dropped only if nothing at all was read while the answer was awaited: a busy client whose
/// pong waits behind a large response is not cut off.
async fn keepalive_lost(
    connection: Rc<RefCell<ServerConnection>>,
    keepalive: Option<Keepalive>,
    last_read: Rc<Cell<Instant>>,
) {
    let Some(keepalive) = keepalive else {
        return std::future::pending().await;
    };
    let mut pings_sent = 0u64;
    loop {
        glommio::timer::sleep(keepalive.interval).await;
        if last_read.get().elapsed() < keepalive.interval {
            continue;
        }
        pings_sent += 1;
        connection.borrow_mut().send_ping(pings_sent.to_be_bytes());
        let mut pong = pin!(poll_fn(|cx| connection.borrow_mut().poll_pong(cx)));
        let mut waiting_since = Instant::now();
        loop {
            match within(keepalive.timeout, pong.as_mut()).await {
                Some(true) => break,
                Some(false) => return,
                None if last_read.get() > waiting_since => waiting_since = Instant::now(),
                None => return,
            }
        }
    }
}

/// Reads until the first bytes tell the protocol: (protocol, bytes read), or no protocol if
/// the client closed first.
async fn sniff_protocol<S: AsyncRead + Unpin>(
    stream: &mut S,
) -> Result<(Option<Protocol>, Vec<u8>), NetError> {
    let mut first_bytes = Vec::with_capacity(HTTP2_PREFACE.len());
    loop {
        if let Some(protocol) = sniff(&first_bytes) {
            return Ok((Some(protocol), first_bytes));
        }
        let mut chunk = [0u8; HTTP2_PREFACE.len()];
        let wanted_bytes = HTTP2_PREFACE.len() - first_bytes.len();
        let read_bytes = stream.read(&mut chunk[..wanted_bytes]).await?;
        if read_bytes == 0 {
            return Ok((None, first_bytes));
        }
        first_bytes.extend_from_slice(&chunk[..read_bytes]);
    }
}
