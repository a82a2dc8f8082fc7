//! A client workload that runs while a test disturbs a cluster (restarts, membership
//! changes): writers that record every put the cluster acknowledged, and readers that check
//! each linearizable read against those acknowledgements.
//!
//! Writer `w` puts `w/<w>/<seq>` = `<seq>` with a fresh `seq` per attempt (a put that failed
//! may still take effect later, so it is never retried under the same key: a key's value never
//! changes and no check depends on what an unacknowledged put did). Each writer is sequential
//! and prefers its own member (`endpoints[w % n]`); after a failure it tries the next member,
//! and returns home after a success, as a client with several endpoints fails over.
//!
//! A reader takes, just before it sends a read, the newest acknowledged key of one writer and
//! the highest revision of any acknowledged put; the linearizable read must return that key
//! with its value, in a response whose revision is at least that high. Anything else is a
//! stale read.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use etcd_client::{Client, ConnectOptions};

/// Bound on one put or get: a member that is down or electing answers within it or is
/// skipped (etcd's request timeout is 7 s; a shorter one keeps failover brisk).
const REQUEST_LIMIT: Duration = Duration::from_secs(3);
/// Pause after a failed request, so a down member is not hammered.
const RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Stale reads kept for the report (the first ones say what went wrong).
const VIOLATIONS_KEPT: usize = 20;

/// Client endpoints (`127.0.0.1:port`) the workload uses; a test edits the list as members
/// join and leave (a writer never targets a member after it left the list).
pub type Endpoints = Arc<Mutex<Vec<String>>>;

/// Writers and readers running against a cluster.
pub struct Workload {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

struct Shared {
    endpoints: Endpoints,
    stop: AtomicBool,
    /// Per writer, the sequence numbers of its acknowledged puts, in order.
    acked: Vec<Mutex<Vec<u64>>>,
    /// Per writer, 1 + its newest acknowledged sequence number (0: none yet).
    newest_acked: Vec<AtomicU64>,
    /// The highest header revision of any acknowledged put.
    acked_revision: AtomicI64,
    gaps: Mutex<GapClock>,
    reads_checked: AtomicU64,
    violations: Mutex<Vec<String>>,
}

/// The longest time with no put acknowledged by anyone.
struct GapClock {
    started: Instant,
    last_ack: Instant,
    longest: Duration,
    /// When the longest gap began, from the start of the workload.
    longest_from: Duration,
}

impl GapClock {
    fn tick(&mut self, now: Instant) {
        let gap = now - self.last_ack;
        if gap > self.longest {
            self.longest = gap;
            self.longest_from = self.last_ack - self.started;
        }
        self.last_ack = now;
    }
}

/// What the workload saw, once stopped.
pub struct Outcome {
    /// Per writer, its acknowledged sequence numbers.
    pub acked: Vec<Vec<u64>>,
    /// The longest time with no acknowledged put (up to the stop too).
    pub longest_gap: Duration,
    /// When that gap began, from the start of the workload.
    pub longest_gap_from: Duration,
    /// Linearizable reads checked against the acknowledgements.
    pub reads_checked: u64,
    /// Stale reads (the first few).
    pub violations: Vec<String>,
}

impl Workload {
    /// Starts `writers` writers and `readers` readers on `endpoints`.
    pub fn start(endpoints: Endpoints, writers: usize, readers: usize) -> Workload {
        assert!(writers > 0 && !endpoints.lock().unwrap().is_empty());
        let now = Instant::now();
        let shared = Arc::new(Shared {
            endpoints,
            stop: AtomicBool::new(false),
            acked: (0..writers).map(|_| Mutex::new(Vec::new())).collect(),
            newest_acked: (0..writers).map(|_| AtomicU64::new(0)).collect(),
            acked_revision: AtomicI64::new(0),
            gaps: Mutex::new(GapClock {
                started: now,
                last_ack: now,
                longest: Duration::ZERO,
                longest_from: Duration::ZERO,
            }),
            reads_checked: AtomicU64::new(0),
            violations: Mutex::new(Vec::new()),
        });
        let mut threads = Vec::new();
        for writer in 0..writers {
            let shared = shared.clone();
            threads.push(thread::spawn(move || run(write_loop(shared, writer))));
        }
        for reader in 0..readers {
            let shared = shared.clone();
            threads.push(thread::spawn(move || run(read_loop(shared, reader))));
        }
        Workload { shared, threads }
    }

    /// Puts acknowledged so far, over every writer.
    pub fn acked_count(&self) -> usize {
        self.shared
            .acked
            .iter()
            .map(|acked| acked.lock().unwrap().len())
            .sum()
    }

    /// Waits at most `limit` until `more` puts beyond those acknowledged now are acknowledged:
    /// the cluster takes writes.
    pub fn wait_for_more_acks(&self, more: usize, limit: Duration, what: &str) {
        let target = self.acked_count() + more;
        let deadline = Instant::now() + limit;
        while self.acked_count() < target {
            assert!(
                Instant::now() < deadline,
                "fewer than {more} puts acknowledged within {limit:?} {what}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stale reads seen so far (the first few).
    pub fn violations(&self) -> Vec<String> {
        self.shared.violations.lock().unwrap().clone()
    }

    /// Stops every client (each finishes its request in flight, bounded by REQUEST_LIMIT).
    pub fn stop(self) -> Outcome {
        // The time since the last acknowledgement counts up to now, not up to when the
        // clients have finished their requests in flight.
        self.shared.gaps.lock().unwrap().tick(Instant::now());
        self.shared.stop.store(true, Ordering::SeqCst);
        for thread in self.threads {
            thread.join().expect("a workload client panicked");
        }
        let shared = &self.shared;
        let gaps = shared.gaps.lock().unwrap();
        Outcome {
            acked: shared
                .acked
                .iter()
                .map(|acked| acked.lock().unwrap().clone())
                .collect(),
            longest_gap: gaps.longest,
            longest_gap_from: gaps.longest_from,
            reads_checked: shared.reads_checked.load(Ordering::SeqCst),
            violations: shared.violations.lock().unwrap().clone(),
        }
    }
}

impl Outcome {
    /// Every acknowledged put: key and value.
    pub fn expected(&self) -> BTreeMap<String, String> {
        let mut expected = BTreeMap::new();
        for (writer, seqs) in self.acked.iter().enumerate() {
            for &seq in seqs {
                expected.insert(key(writer, seq), seq.to_string());
            }
        }
        expected
    }

    /// The run's verdict: prints its counts, then asserts no read saw stale data, enough
    /// reads were checked to mean anything, and every member in `endpoints` holds every
    /// acknowledged put.
    pub fn assert_nothing_lost_or_stale(&self, endpoints: &[String]) {
        eprintln!(
            "{} puts acknowledged, {} reads checked, longest write gap {:?}",
            self.expected().len(),
            self.reads_checked,
            self.longest_gap
        );
        assert!(self.violations.is_empty(), "{:#?}", self.violations);
        assert!(self.reads_checked >= 30, "too few reads to mean anything");
        for endpoint in endpoints {
            self.assert_all_acknowledged_on(endpoint);
        }
    }

    /// Asserts that a linearizable read of everything the writers wrote, through `endpoint`
    /// alone, holds every acknowledged put with its value.
    pub fn assert_all_acknowledged_on(&self, endpoint: &str) {
        let held = run(async {
            let mut client = connect(endpoint).await.expect("connect");
            let read = tokio::time::timeout(
                Duration::from_secs(30),
                client.get("w/", Some(etcd_client::GetOptions::new().with_prefix())),
            )
            .await
            .expect("the read finished in time")
            .expect("read every written key");
            read.kvs()
                .iter()
                .map(|kv| {
                    (
                        kv.key_str().unwrap().to_string(),
                        kv.value_str().unwrap().to_string(),
                    )
                })
                .collect::<HashMap<String, String>>()
        });
        let expected = self.expected();
        let wrong: Vec<String> = expected
            .iter()
            .filter(|(key, value)| held.get(*key) != Some(value))
            .map(|(key, value)| format!("{key}={value} (held {:?})", held.get(key)))
            .take(10)
            .collect();
        assert!(
            wrong.is_empty(),
            "{endpoint} lost acknowledged puts (of {}): {wrong:?}",
            expected.len()
        );
    }
}

/// Writer `writer`'s key for sequence number `seq`.
fn key(writer: usize, seq: u64) -> String {
    format!("w/{writer}/{seq:08}")
}

/// Runs `future` on a runtime of this thread's own.
pub fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(future)
}

/// A client of `endpoint` alone, every request bounded by REQUEST_LIMIT.
pub async fn connect(endpoint: &str) -> Result<Client, etcd_client::Error> {
    connect_within(endpoint, REQUEST_LIMIT).await
}

/// A client of `endpoint` alone, every request bounded by `limit` (a `hashkv` over a big
/// database takes longer than a put).
pub async fn connect_within(endpoint: &str, limit: Duration) -> Result<Client, etcd_client::Error> {
    let options = ConnectOptions::new()
        .with_connect_timeout(REQUEST_LIMIT)
        .with_timeout(limit);
    Client::connect([endpoint], Some(options)).await
}

/// One client per endpoint, made on first use; the member a caller should use next.
struct Clients {
    home: usize,
    failures_in_a_row: usize,
    clients: HashMap<String, Client>,
}

impl Clients {
    fn new(home: usize) -> Clients {
        Clients {
            home,
            failures_in_a_row: 0,
            clients: HashMap::new(),
        }
    }

    /// The endpoint to use now and a client of it: home, or the next one after failures.
    async fn next(&mut self, shared: &Shared) -> Option<(String, Client)> {
        let endpoint = {
            let endpoints = shared.endpoints.lock().unwrap();
            endpoints[(self.home + self.failures_in_a_row) % endpoints.len()].clone()
        };
        if !self.clients.contains_key(&endpoint) {
            match connect(&endpoint).await {
                Ok(client) => {
                    self.clients.insert(endpoint.clone(), client);
                }
                Err(_) => {
                    self.failed().await;
                    return None;
                }
            }
        }
        let client = self.clients[&endpoint].clone();
        Some((endpoint, client))
    }

    fn succeeded(&mut self) {
        self.failures_in_a_row = 0;
    }

    async fn failed(&mut self) {
        self.failures_in_a_row += 1;
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

async fn write_loop(shared: Arc<Shared>, writer: usize) {
    let mut clients = Clients::new(writer);
    for seq in 0u64.. {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Some((_, mut client)) = clients.next(&shared).await else {
            continue;
        };
        let put = tokio::time::timeout(
            REQUEST_LIMIT,
            client.put(key(writer, seq), seq.to_string(), None),
        )
        .await;
        match put {
            Ok(Ok(response)) => {
                let revision = response.header().expect("put header").revision();
                // Order matters for the readers: the key is recorded as acknowledged only
                // after the revision that covers it.
                shared.acked_revision.fetch_max(revision, Ordering::SeqCst);
                shared.acked[writer].lock().unwrap().push(seq);
                shared.newest_acked[writer].store(seq + 1, Ordering::SeqCst);
                shared.gaps.lock().unwrap().tick(Instant::now());
                clients.succeeded();
            }
            _ => clients.failed().await,
        }
    }
}

async fn read_loop(shared: Arc<Shared>, reader: usize) {
    let writers = shared.acked.len();
    let mut clients = Clients::new(reader);
    for round in 0usize.. {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let writer = round % writers;
        // Taken before the read is sent: the read must observe at least these.
        let newest = shared.newest_acked[writer].load(Ordering::SeqCst);
        let revision_floor = shared.acked_revision.load(Ordering::SeqCst);
        if newest == 0 {
            tokio::time::sleep(RETRY_PAUSE).await;
            continue;
        }
        let Some((endpoint, mut client)) = clients.next(&shared).await else {
            continue;
        };
        let seq = newest - 1;
        let read = tokio::time::timeout(REQUEST_LIMIT, client.get(key(writer, seq), None)).await;
        let Ok(Ok(response)) = read else {
            clients.failed().await;
            continue;
        };
        clients.succeeded();
        let revision = response.header().expect("range header").revision();
        let value = response.kvs().first().map(|kv| kv.value().to_vec());
        if value.as_deref() != Some(seq.to_string().as_bytes()) || revision < revision_floor {
            let mut violations = shared.violations.lock().unwrap();
            if violations.len() < VIOLATIONS_KEPT {
                violations.push(format!(
                    "stale read through {endpoint}: {} read {:?} at revision {revision}, \
                     after it was acknowledged and revision {revision_floor} too",
                    key(writer, seq),
                    value.map(|v| String::from_utf8_lossy(&v).into_owned()),
                ));
            }
        }
        shared.reads_checked.fetch_add(1, Ordering::SeqCst);
    }
}
