//! grpc-go's keepalive enforcement (etcd's `--grpc-keepalive-min-time`): a client that pings
//! more often than the policy allows is sent GOAWAY `ENHANCE_YOUR_CALM` and disconnected, so a
//! PING flood cannot keep a core busy answering pings.
//!
//! The rule, as grpc-go's server applies it per connection: a ping that comes sooner than the
//! minimum interval after the previous one is a strike (with no call open, the minimum is two
//! hours: a client has no reason to ping an idle connection); the third strike closes the
//! connection. Any HEADERS or DATA frame the server sends forgives the strikes (the client
//! may be pinging to measure bandwidth while it receives). [`FrameWatch`] sees the frames
//! going both ways on the connection's bytes and feeds the policy.

use std::cell::{Cell, RefCell};
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_lite::{AsyncRead, AsyncWrite};

use crate::sniff::HTTP2_PREFACE;

/// Strikes a connection may collect; one more closes it (grpc-go's `maxPingStrikes`).
const MAX_PING_STRIKES: u32 = 2;

/// Minimum time between a client's pings while it has no call open (grpc-go's
/// `defaultPingTimeout`, applied because etcd never sets `PermitWithoutStream`).
const PING_INTERVAL_WITHOUT_CALLS: Duration = Duration::from_secs(2 * 60 * 60);

/// The minimum ping interval grpc-go enforces when etcd passes no policy
/// (`--grpc-keepalive-min-time=0`): its `defaultKeepalivePolicyMinTime`.
pub const GRPC_DEFAULT_MIN_PING_INTERVAL: Duration = Duration::from_secs(5 * 60);

/// The minimum interval etcd's flag asks for: the flag when above zero, else grpc-go's default.
pub fn min_ping_interval_from_etcd_flag(min_time: Duration) -> Duration {
    if min_time.is_zero() {
        GRPC_DEFAULT_MIN_PING_INTERVAL
    } else {
        min_time
    }
}

/// One connection's ping policing state (sans-IO: the caller passes the time).
#[derive(Debug)]
pub struct PingPolicy {
    min_interval: Duration,
    last_ping_at: Option<Instant>,
    strikes: u32,
    forgiven: bool,
}

impl PingPolicy {
    /// A policy allowing a ping every `min_interval` while calls are open.
    pub fn new(min_interval: Duration) -> PingPolicy {
        PingPolicy {
            min_interval,
            last_ping_at: None,
            strikes: 0,
            forgiven: false,
        }
    }

    /// Counts a client ping at `now` with `calls_open` calls; true when the connection has
    /// pinged too often and must be closed.
    pub fn ping_received(&mut self, now: Instant, calls_open: usize) -> bool {
        let last_ping_at = self.last_ping_at.replace(now);
        if std::mem::take(&mut self.forgiven) {
            self.strikes = 0;
            return false;
        }
        let min_interval = if calls_open == 0 {
            PING_INTERVAL_WITHOUT_CALLS
        } else {
            self.min_interval
        };
        if last_ping_at.is_some_and(|last| now.duration_since(last) < min_interval) {
            self.strikes += 1;
        }
        self.strikes > MAX_PING_STRIKES
    }

    /// The server sent headers or data: the next ping starts the count again.
    pub fn answered(&mut self) {
        self.forgiven = true;
    }
}

/// What a connection's [`FrameWatch`] shares with its serving loop.
#[derive(Debug)]
pub struct PingPolicing {
    policy: RefCell<PingPolicy>,
    /// Calls (streams being served) open on the connection now.
    pub calls_open: Cell<usize>,
    too_many_pings: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

impl PingPolicing {
    /// Policing by `policy` for one connection.
    pub fn new(policy: PingPolicy) -> Rc<PingPolicing> {
        Rc::new(PingPolicing {
            policy: RefCell::new(policy),
            calls_open: Cell::new(0),
            too_many_pings: Cell::new(false),
            waker: RefCell::new(None),
        })
    }

    /// Resolves once the client has pinged too often.
    pub async fn too_many_pings(&self) {
        std::future::poll_fn(|cx| {
            if self.too_many_pings.get() {
                return Poll::Ready(());
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    fn ping_received(&self) {
        let now = Instant::now();
        if self
            .policy
            .borrow_mut()
            .ping_received(now, self.calls_open.get())
        {
            self.too_many_pings.set(true);
            if let Some(waker) = self.waker.borrow_mut().take() {
                waker.wake();
            }
        }
    }
}

/// HTTP/2 frame types the policing looks for (RFC 9113, section 6).
const FRAME_DATA: u8 = 0x0;
const FRAME_HEADERS: u8 = 0x1;
const FRAME_PING: u8 = 0x6;
const FLAG_ACK: u8 = 0x1;
const FRAME_HEADER_BYTES: usize = 9;

/// Follows frame boundaries in one direction of an HTTP/2 byte stream, reporting each frame's
/// type and flags as its 9-byte header completes; payloads are skipped unread.
#[derive(Debug)]
pub struct FrameScanner {
    preface_left_bytes: usize,
    header: [u8; FRAME_HEADER_BYTES],
    header_bytes: usize,
    payload_left_bytes: usize,
}

impl FrameScanner {
    /// A scanner for what a client sends (it opens with the connection preface).
    pub fn client_to_server() -> FrameScanner {
        FrameScanner::after(HTTP2_PREFACE.len())
    }

    /// A scanner for what the server sends (frames from its first byte).
    pub fn server_to_client() -> FrameScanner {
        FrameScanner::after(0)
    }

    fn after(preface_bytes: usize) -> FrameScanner {
        FrameScanner {
            preface_left_bytes: preface_bytes,
            header: [0; FRAME_HEADER_BYTES],
            header_bytes: 0,
            payload_left_bytes: 0,
        }
    }

    /// Consumes `bytes`, calling `on_frame(type, flags)` for each frame header completed.
    /// Work is linear in `bytes` whatever they hold.
    pub fn scan(&mut self, mut bytes: &[u8], mut on_frame: impl FnMut(u8, u8)) {
        while !bytes.is_empty() {
            if self.preface_left_bytes > 0 {
                let skipped = self.preface_left_bytes.min(bytes.len());
                self.preface_left_bytes -= skipped;
                bytes = &bytes[skipped..];
            } else if self.payload_left_bytes > 0 {
                let skipped = self.payload_left_bytes.min(bytes.len());
                self.payload_left_bytes -= skipped;
                bytes = &bytes[skipped..];
            } else {
                let copied = (FRAME_HEADER_BYTES - self.header_bytes).min(bytes.len());
                self.header[self.header_bytes..self.header_bytes + copied]
                    .copy_from_slice(&bytes[..copied]);
                self.header_bytes += copied;
                bytes = &bytes[copied..];
                if self.header_bytes == FRAME_HEADER_BYTES {
                    self.header_bytes = 0;
                    let [a, b, c, kind, flags, ..] = self.header;
                    self.payload_left_bytes = u32::from_be_bytes([0, a, b, c]) as usize;
                    on_frame(kind, flags);
                }
            }
        }
    }
}

/// A connection's stream, watched for the client's PINGs and the server's HEADERS and DATA.
pub struct FrameWatch<S> {
    inner: S,
    policing: Rc<PingPolicing>,
    received: FrameScanner,
    sent: FrameScanner,
}

impl<S> FrameWatch<S> {
    /// Watches `inner` (a server-side HTTP/2 connection from its first byte) for `policing`.
    pub fn new(inner: S, policing: Rc<PingPolicing>) -> FrameWatch<S> {
        FrameWatch {
            inner,
            policing,
            received: FrameScanner::client_to_server(),
            sent: FrameScanner::server_to_client(),
        }
    }

    fn saw_sent(&mut self, bytes: &[u8]) {
        let policing = &self.policing;
        self.sent.scan(bytes, |kind, _| {
            if kind == FRAME_HEADERS || kind == FRAME_DATA {
                policing.policy.borrow_mut().answered();
            }
        });
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for FrameWatch<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffer: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let read = Pin::new(&mut this.inner).poll_read(cx, buffer);
        if let Poll::Ready(Ok(bytes)) = &read {
            let policing = &this.policing;
            this.received.scan(&buffer[..*bytes], |kind, flags| {
                if kind == FRAME_PING && flags & FLAG_ACK == 0 {
                    policing.ping_received();
                }
            });
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for FrameWatch<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(cx, buffer);
        if let Poll::Ready(Ok(bytes)) = &written {
            self.saw_sent(&buffer[..*bytes]);
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write_vectored(cx, buffers);
        if let Poll::Ready(Ok(bytes)) = &written {
            let mut left_bytes = *bytes;
            for buffer in buffers {
                let seen = left_bytes.min(buffer.len());
                self.saw_sent(&buffer[..seen]);
                left_bytes -= seen;
                if left_bytes == 0 {
                    break;
                }
            }
        }
        written
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    //! Goal: the policy strikes, forgives and closes exactly as grpc-go's server, and the
    //! scanner finds every frame header however the bytes are split.
    use super::*;

    #[test]
    fn third_strike_closes_and_sent_data_forgives() {
        let start = Instant::now();
        let at = |millis: u64| start + Duration::from_millis(millis);
        let mut policy = PingPolicy::new(Duration::from_millis(100));
        // The first ping is never a strike; pings at the minimum interval are fine.
        assert!(!policy.ping_received(at(0), 1));
        assert!(!policy.ping_received(at(100), 1));
        assert!(!policy.ping_received(at(200), 1));
        // Two quick pings are two strikes; the third closes.
        assert!(!policy.ping_received(at(201), 1));
        assert!(!policy.ping_received(at(202), 1));
        policy.answered();
        // Forgiven: strikes start again.
        assert!(!policy.ping_received(at(203), 1));
        assert!(!policy.ping_received(at(204), 1));
        assert!(!policy.ping_received(at(205), 1));
        assert!(policy.ping_received(at(206), 1));
    }

    #[test]
    fn without_calls_the_minimum_is_two_hours() {
        let start = Instant::now();
        let mut policy = PingPolicy::new(Duration::from_millis(100));
        let mut closed_at = None;
        for ping in 0..10u64 {
            // A ping a minute with no call open: each after the first is a strike.
            let now = start + Duration::from_secs(60 * ping);
            if policy.ping_received(now, 0) {
                closed_at = Some(ping);
                break;
            }
        }
        assert_eq!(closed_at, Some(3));
    }

    #[test]
    fn etcd_flag_zero_means_grpc_gos_default() {
        assert_eq!(
            min_ping_interval_from_etcd_flag(Duration::ZERO),
            Duration::from_secs(300)
        );
        assert_eq!(
            min_ping_interval_from_etcd_flag(Duration::from_secs(5)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn frames_are_found_in_every_split() {
        let mut stream = HTTP2_PREFACE.to_vec();
        let frames: [(u8, u8, usize); 4] = [(4, 0, 6), (6, 0, 8), (0, 1, 300), (6, 1, 8)];
        for (kind, flags, length) in frames {
            stream.extend_from_slice(&(length as u32).to_be_bytes()[1..]);
            stream.extend_from_slice(&[kind, flags, 0, 0, 0, 1]);
            stream.extend(std::iter::repeat_n(6u8, length));
        }
        for chunk_bytes in 1..=stream.len() {
            let mut scanner = FrameScanner::client_to_server();
            let mut seen = Vec::new();
            for chunk in stream.chunks(chunk_bytes) {
                scanner.scan(chunk, |kind, flags| seen.push((kind, flags)));
            }
            let expected: Vec<(u8, u8)> = frames.iter().map(|f| (f.0, f.1)).collect();
            assert_eq!(seen, expected, "chunk size {chunk_bytes}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
            std::env::var("BASALT_GRPC_PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256)
        ))]

        /// Goal: whatever bytes a client sends, the scanner never panics and finds the same
        /// frames however they are split (it sits on every connection's bytes).
        #[test]
        fn any_bytes_scan_the_same_in_any_split(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
            chunk_bytes in 1usize..64,
        ) {
            let mut whole = Vec::new();
            FrameScanner::client_to_server().scan(&bytes, |kind, flags| whole.push((kind, flags)));
            let mut split = Vec::new();
            let mut scanner = FrameScanner::client_to_server();
            for chunk in bytes.chunks(chunk_bytes) {
                scanner.scan(chunk, |kind, flags| split.push((kind, flags)));
            }
            proptest::prop_assert_eq!(whole, split);
        }
    }
}
