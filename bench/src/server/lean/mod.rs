//! The lean client: a minimal HTTP/2 gRPC client written for the unary workloads (put, range,
//! txn-put), so that the load generator's own CPU cost per request is small next to the
//! server's.
//!
//! The etcd-client path (tonic, hyper and tower on tokio) costs about as much CPU per put as
//! the server it measures; on a shared machine that squeezes every server toward the same
//! figure. This client does only what a unary call needs: pre-encoded request headers
//! (`request`), frames (`frame`), an HPACK decoder for what servers send (`hpack`,
//! `huffman`), one connection's protocol state (`connection`), the verdict on a response
//! (`response`), and one epoll loop per thread (`worker`, `poller`). No TLS, no auth.

mod connection;
mod poller;
mod request;
mod response;
mod worker;

use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use super::args::Stop;
use super::rate_limit::RateLimiter;
use super::recorder::Recorder;
use connection::Connection;
pub use request::{
    grpc_message, put_message, range_request, txn_put_request, RangeFields, PUT_PATH, RANGE_PATH,
    TXN_PATH,
};
pub use worker::MessageFn;
use worker::{Link, Plan};

/// The shape of a lean run.
pub struct Run {
    pub endpoints: Vec<String>,
    /// `--rate`: requests per second over all clients (0: no limit).
    pub rate: u64,
    pub conns: u32,
    pub clients: u32,
    pub threads: usize,
    pub dial_timeout: Duration,
    pub stop: Stop,
}

/// What the calls of a lean run are.
pub struct Calls {
    /// The gRPC method, e.g. `PUT_PATH`.
    pub path: &'static str,
    /// The message of each request.
    pub message: Box<MessageFn>,
}

/// Runs `calls` closed-loop with the lean client, recording into the recorder `start` makes
/// once every connection is dialled (so dialling is not part of the measured run).
///
/// Connection i goes to endpoint i mod the endpoint count; client i uses connection i mod
/// `conns` (as with etcd-client); connection i is driven by thread i mod `threads`.
pub fn run(run: &Run, calls: Calls, start: impl FnOnce() -> Arc<Recorder>) -> Result<(), String> {
    let targets = run
        .endpoints
        .iter()
        .map(|endpoint| resolve(endpoint))
        .collect::<Result<Vec<_>, _>>()?;
    let mut probe = Vec::new();
    (calls.message)(0, &mut probe);
    let message_len = probe.len();
    let threads = run.threads.clamp(1, run.conns as usize);
    let mut shares: Vec<Vec<Link>> = (0..threads).map(|_| Vec::new()).collect();
    for index in 0..run.conns {
        let (address, authority) = &targets[index as usize % targets.len()];
        let socket = TcpStream::connect_timeout(address, run.dial_timeout)
            .map_err(|error| format!("cannot connect to {authority}: {error}"))?;
        let headers = request::call_headers(calls.path, authority);
        let clients = run.clients / run.conns + u32::from(index < run.clients % run.conns);
        let link = Link::new(socket, Connection::new(headers), clients)
            .map_err(|error| format!("cannot set up the socket to {authority}: {error}"))?;
        shares[index as usize % threads].push(link);
    }
    let plan = Plan {
        stop: run.stop,
        recorder: start(),
        sequence_next: AtomicU64::new(0),
        message: calls.message,
        message_len,
        limiter: RateLimiter::new(run.rate),
    };
    std::thread::scope(|scope| {
        let handles: Vec<_> = shares
            .into_iter()
            .map(|links| scope.spawn(|| worker::run(links, &plan)))
            .collect();
        handles.into_iter().try_for_each(|handle| {
            handle
                .join()
                .map_err(|_| "a lean worker panicked".to_string())?
                .map_err(|error| format!("lean worker: {error}"))
        })
    })
}

/// The socket address and the `:authority` of an endpoint (`host:port` or `http://host:port`).
fn resolve(endpoint: &str) -> Result<(SocketAddr, String), String> {
    if endpoint.starts_with("https://") {
        return Err(format!(
            "{endpoint}: the lean client has no TLS; use --client etcd-client"
        ));
    }
    let authority = endpoint.strip_prefix("http://").unwrap_or(endpoint);
    let authority = authority.trim_end_matches('/').to_string();
    let address = authority
        .to_socket_addrs()
        .map_err(|error| format!("cannot resolve {authority}: {error}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolves to no address"))?;
    Ok((address, authority))
}
