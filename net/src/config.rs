//! The server's limits, with etcd's defaults where etcd has one.

use std::time::Duration;

/// etcd's default `--max-request-bytes` (1.5 MiB).
pub const ETCD_MAX_REQUEST_BYTES: usize = 1536 * 1024;

/// What etcd adds to `--max-request-bytes` for gRPC's own framing when it sets grpc-go's
/// receive limit (`grpcOverheadBytes` = 512 KiB).
pub const GRPC_OVERHEAD_BYTES: usize = 512 * 1024;

/// Time an HTTP/1.1 request head has to arrive whole, from its first byte: etcd's
/// `ReadHeaderTimeout` on its client HTTP server (5 minutes). A slowloris client that trickles
/// a header byte at a time is cut off at this deadline, however steadily it sends.
pub const HTTP1_HEAD_TIMEOUT: Duration = Duration::from_secs(5 * 60);

/// Time an HTTP/1.1 keep-alive connection may wait for its next request. etcd sets none (Go's
/// `IdleTimeout` falls back to its unset `ReadTimeout`), so an idle socket holds a connection
/// slot forever there; 2 minutes is above the 90 s after which Go's and most clients' pools
/// drop idle connections themselves, so a pooled client closes first and never races a
/// request against our close.
pub const HTTP1_IDLE_TIMEOUT: Duration = Duration::from_secs(2 * 60);

/// Limits for one server; every queue and buffer a client can fill has one here.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Largest gRPC request message accepted; bigger gets RESOURCE_EXHAUSTED.
    pub max_receive_message_bytes: usize,
    /// HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS: streams (calls) open at once per connection;
    /// more are refused with REFUSED_STREAM by the HTTP/2 layer.
    pub max_concurrent_streams_per_connection: u32,
    /// Connections served at once per executor; more are closed right after accept.
    pub max_connections_per_executor: usize,
    /// HTTP/2 stream flow-control window: bytes a client may send on one call before we read.
    pub stream_window_bytes: u32,
    /// HTTP/2 connection flow-control window: bytes in flight over all calls of a connection.
    pub connection_window_bytes: u32,
    /// HTTP/2 SETTINGS_MAX_FRAME_SIZE we accept.
    pub max_frame_bytes: u32,
    /// HTTP/2 SETTINGS_MAX_HEADER_LIST_SIZE: header bytes per request.
    pub max_header_list_bytes: u32,
    /// Response bytes buffered per stream waiting for the client's window; a sender waits
    /// beyond it, so a client that never reads holds at most this much of our memory.
    pub max_send_buffer_bytes_per_stream: usize,
    /// Request bytes all calls of one connection may hold partly received (or received and
    /// not yet taken by their handlers); the call whose chunk would pass it is ended with
    /// RESOURCE_EXHAUSTED (see `grpc::partial_budget`).
    pub max_partial_message_bytes_per_connection: usize,
    /// HTTP/1.1: head plus body bytes of one request (the JSON gateway's bodies excepted).
    pub http1_max_request_bytes: usize,
    /// HTTP/1.1: time from a request's first byte until its head (and, for the plain
    /// endpoints, its small body) is read whole; past it the connection is closed unanswered.
    pub http1_head_timeout: Duration,
    /// HTTP/1.1: time a connection may wait for the first byte of its next request.
    pub http1_idle_timeout: Duration,
    /// Serve etcd's JSON gateway (`/v3/...`) on this server (`--enable-grpc-gateway`).
    pub json_gateway: bool,
    /// Time a new connection has for each step of its start: the TLS handshake, showing its
    /// protocol, the HTTP/2 handshake.
    pub handshake_timeout: Duration,
    /// Minimum time between a client's HTTP/2 pings while it has calls open (etcd's
    /// `--grpc-keepalive-min-time`, see [`crate::ping_policy`]); a client pinging faster is
    /// sent GOAWAY ENHANCE_YOUR_CALM and disconnected.
    pub min_ping_interval: Duration,
    /// HTTP/2 keepalive pings to each client (etcd's `--grpc-keepalive-interval` and
    /// `--grpc-keepalive-timeout`); `None`: no pings.
    pub keepalive: Option<Keepalive>,
}

/// Server-to-client HTTP/2 pings: one every `interval`; a connection whose client does not
/// answer within `timeout` is closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Time between two pings.
    pub interval: Duration,
    /// Time the client has to answer one.
    pub timeout: Duration,
}

impl Keepalive {
    /// etcd's rule: its flags apply when both are above zero; otherwise etcd passes none and
    /// grpc-go pings with its own defaults (2 h, 20 s), so basalt does the same.
    pub fn from_etcd_flags(interval: Duration, timeout: Duration) -> Keepalive {
        if interval.is_zero() || timeout.is_zero() {
            return Keepalive {
                interval: Duration::from_secs(2 * 60 * 60),
                timeout: Duration::from_secs(20),
            };
        }
        Keepalive { interval, timeout }
    }
}

impl ServerConfig {
    /// Defaults, with the gRPC receive limit set as etcd sets it for `--max-request-bytes`.
    pub fn for_max_request_bytes(max_request_bytes: usize) -> ServerConfig {
        let defaults = ServerConfig::default();
        let max_receive_message_bytes = max_request_bytes + GRPC_OVERHEAD_BYTES;
        ServerConfig {
            max_receive_message_bytes,
            // Always room for a few of the largest messages at once.
            max_partial_message_bytes_per_connection: defaults
                .max_partial_message_bytes_per_connection
                .max(max_receive_message_bytes.saturating_mul(4)),
            ..defaults
        }
    }
}

impl ServerConfig {
    /// Largest JSON body the gateway reads for one request (and largest JSON value of a
    /// streamed body): twice the gRPC receive limit, as base64 makes bytes a third larger and
    /// JSON adds names. A body under it whose protobuf is over the receive limit gets the
    /// same RESOURCE_EXHAUSTED (HTTP 429) etcd answers; a body over it gets a 413.
    pub fn json_gateway_max_body_bytes(&self) -> usize {
        self.max_receive_message_bytes.saturating_mul(2)
    }
}

impl Default for ServerConfig {
    fn default() -> ServerConfig {
        ServerConfig {
            max_receive_message_bytes: ETCD_MAX_REQUEST_BYTES + GRPC_OVERHEAD_BYTES,
            // The basalt server sets this from --max-concurrent-streams (etcd's default is
            // unlimited); this default bounds a hostile client's tasks for other embedders.
            max_concurrent_streams_per_connection: 1024,
            max_connections_per_executor: 16 * 1024,
            stream_window_bytes: 1024 * 1024,
            connection_window_bytes: 8 * 1024 * 1024,
            max_frame_bytes: 16 * 1024,
            max_header_list_bytes: 16 * 1024,
            max_send_buffer_bytes_per_stream: 256 * 1024,
            // Room for a few dozen concurrent calls of etcd's largest request (2 MiB with
            // gRPC's overhead) interleaved on one connection, as a client multiplexing
            // large writes (kube-apiserver) may have in flight; a connection holding more
            // is more likely parking data than writing it.
            max_partial_message_bytes_per_connection: 64 * 1024 * 1024,
            http1_max_request_bytes: 64 * 1024,
            http1_head_timeout: HTTP1_HEAD_TIMEOUT,
            http1_idle_timeout: HTTP1_IDLE_TIMEOUT,
            json_gateway: true,
            handshake_timeout: Duration::from_secs(10),
            // etcd's default --grpc-keepalive-min-time.
            min_ping_interval: Duration::from_secs(5),
            // etcd's defaults: a ping every 2 hours, 20 seconds to answer it.
            keepalive: Some(Keepalive::from_etcd_flags(
                Duration::from_secs(2 * 60 * 60),
                Duration::from_secs(20),
            )),
        }
    }
}
