//! Shared helpers: run a test on a glommio executor with a deadline, start a transport on a
//! loopback port, wait for conditions with a bound, and capture log lines.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use basalt_net::peer::{Lane, PeerEvent, Transport, TransportConfig};
use glommio::Task;

/// No single test may take longer (a hung transport fails the test instead of the suite).
const TEST_DEADLINE: Duration = Duration::from_secs(120);

/// Runs `test` on a fresh executor, with log lines captured into `Logs`.
pub fn run<F, Fut>(test: F)
where
    F: FnOnce(Logs) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("peer-test")
        .spawn(move || async move {
            let logs = Logs::default();
            let _guard = tracing::subscriber::set_default(Capture(logs.clone()));
            within(TEST_DEADLINE, "the whole test", test(logs)).await;
        })
        .expect("start the test executor")
        .join()
        .expect("the test executor panicked");
}

/// Awaits `future`, panicking if it takes longer than `limit`.
pub async fn within<T>(limit: Duration, what: &str, future: impl Future<Output = T>) -> T {
    let timed = futures_lite::future::or(async { Some(future.await) }, async {
        glommio::timer::sleep(limit).await;
        None
    })
    .await;
    timed.unwrap_or_else(|| panic!("timed out after {limit:?} waiting for {what}"))
}

/// A transport serving a loopback listener.
pub struct Member {
    pub transport: Transport,
    pub url: String,
    pub port: u16,
    serving: Option<Task<()>>,
}

impl Member {
    pub fn start(cluster_id: u64, id: u64) -> Member {
        Member::start_with(TransportConfig::new(cluster_id, id, 1536 * 1024), 0)
    }

    /// Starts on `port` (0: any free one) with `config`.
    pub fn start_with(config: TransportConfig, port: u16) -> Member {
        let listener = basalt_net::bind(format!("127.0.0.1:{port}").parse().unwrap()).unwrap();
        let port = listener.local_addr().unwrap().port();
        let transport = Transport::new(config);
        let accept = transport.clone();
        let serving = glommio::spawn_local(async move { accept.serve(listener).await });
        Member {
            transport,
            url: format!("http://127.0.0.1:{port}"),
            port,
            serving: Some(serving),
        }
    }

    /// Shuts the transport down and waits until its listener is closed.
    pub async fn stop(mut self) {
        self.transport.shutdown();
        within(
            Duration::from_secs(10),
            "the accept loop to end",
            self.serving.take().unwrap(),
        )
        .await;
    }

    /// Makes `other` a peer of this member.
    pub fn dial(&self, other_id: u64, other: &Member) {
        self.transport
            .add_peer(other_id, std::slice::from_ref(&other.url))
            .unwrap();
    }
}

/// Waits (bounded) for the next reachability event of `transport`.
pub async fn next_event(transport: &Transport) -> PeerEvent {
    within(
        Duration::from_secs(10),
        "a peer event",
        transport.next_event(),
    )
    .await
}

/// Log lines (each event's message followed by its fields) seen so far.
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<String>>>);

impl Logs {
    /// Whether a line contains every one of `parts`.
    pub fn contains(&self, parts: &[&str]) -> bool {
        self.0
            .lock()
            .unwrap()
            .iter()
            .any(|line| parts.iter().all(|part| line.contains(part)))
    }

    /// Waits (bounded, polling every few ms) until a line contains every one of `parts`.
    pub async fn wait_for(&self, parts: &[&str]) {
        within(
            Duration::from_secs(10),
            &format!("a log line with {parts:?}"),
            async {
                while !self.contains(parts) {
                    glommio::timer::sleep(Duration::from_millis(5)).await;
                }
            },
        )
        .await;
    }
}

/// A minimal `tracing` subscriber that records each event as one line.
struct Capture(Logs);

struct Line(String);

impl tracing::field::Visit for Line {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0.insert_str(0, &format!("{value:?}"));
        } else {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        let mut line = Line(format!(" level={}", event.metadata().level()));
        event.record(&mut line);
        self.0 .0.lock().unwrap().push(line.0);
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

/// A deterministic pseudo-random sequence (xorshift64*), so a failure replays from its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

/// A frame whose bytes are all derived from `(tag, sequence)`, so the receiver can check it is
/// intact and in its place: 16 bytes of tag and sequence, then a pattern.
pub fn pattern_frame(tag: u64, sequence: u64, length: usize) -> bytes::Bytes {
    let mut frame = Vec::with_capacity(length.max(16));
    frame.extend_from_slice(&tag.to_be_bytes());
    frame.extend_from_slice(&sequence.to_be_bytes());
    let mut state = tag ^ sequence.rotate_left(17) ^ 0x5bd1_e995;
    while frame.len() < length.max(16) {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        frame.push((state >> 56) as u8);
    }
    bytes::Bytes::from(frame)
}

/// Checks a frame made by `pattern_frame` and returns its `(tag, sequence)`.
pub fn check_pattern_frame(frame: &[u8]) -> (u64, u64) {
    assert!(frame.len() >= 16, "frame of {} bytes", frame.len());
    let tag = u64::from_be_bytes(frame[..8].try_into().unwrap());
    let sequence = u64::from_be_bytes(frame[8..16].try_into().unwrap());
    assert!(
        frame == &pattern_frame(tag, sequence, frame.len())[..],
        "frame {tag}/{sequence} of {} bytes arrived damaged",
        frame.len()
    );
    (tag, sequence)
}

/// Sends pattern frames of `length` bytes from `from` to member 2 on the control lane, one
/// every 20 ms from `*sequence` on (as raft's heartbeats would keep coming), until `to`
/// receives one; returns that frame's `(tag, sequence)`. `*sequence` ends after the last sent.
pub async fn send_until_one_arrives(
    from: &Transport,
    to: &Transport,
    sequence: &mut u64,
    length: usize,
) -> (u64, u64) {
    loop {
        let _ = from.send(2, Lane::Control, pattern_frame(0, *sequence, length));
        *sequence += 1;
        let received =
            futures_lite::future::or(async { Some(to.recv(Lane::Control).await) }, async {
                glommio::timer::sleep(Duration::from_millis(20)).await;
                None
            })
            .await;
        if let Some((_, frame)) = received {
            return check_pattern_frame(&frame);
        }
    }
}
