//! One load-generator thread: an epoll loop over its share of the connections. Each loop
//! turn starts a call for every client that is free (all of a connection's new calls go out
//! in one write), waits for sockets, reads and handles whole frames, and records the calls
//! that ended. Latency runs from the turn that wrote a call to the read that ended it (time
//! spent waiting for a `--rate` slot is not latency, as in the etcd-client driver).

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::super::args::Stop;
use super::super::rate_limit::RateLimiter;
use super::super::recorder::Recorder;
use super::connection::{Completion, Connection};
use super::poller::{Poller, Readiness};

/// Size of a connection's receive buffer: a few maximum-size frames.
const INPUT_BYTES: usize = 128 * 1024;
/// Longest a loop turn waits for a socket before it looks again.
const WAIT_LIMIT: Duration = Duration::from_secs(1);

/// Appends the gRPC message of request `sequence`; every request of a run has the same
/// length (fixed key and value sizes), which the send window checks rely on.
pub type MessageFn = dyn Fn(u64, &mut Vec<u8>) + Send + Sync;

/// What every worker of a run shares: the request numbering, the stop rule, what to send,
/// and where to record.
pub struct Plan {
    pub stop: Stop,
    pub recorder: Arc<Recorder>,
    pub sequence_next: AtomicU64,
    pub message: Box<MessageFn>,
    /// Length of every message.
    pub message_len: usize,
    /// `--rate`: the shared schedule of request slots.
    pub limiter: Option<RateLimiter>,
}

impl Plan {
    /// The next request number, or `None` once the run is over (the same rule as the
    /// etcd-client driver: a number is claimed, then checked).
    fn claim(&self) -> Option<u64> {
        let sequence = self.sequence_next.fetch_add(1, Ordering::Relaxed);
        let more = match self.stop {
            Stop::AfterRequests(total) => sequence < total,
            Stop::AfterTime(duration) => self.recorder.started().elapsed() < duration,
        };
        more.then_some(sequence)
    }
}

/// One socket with its HTTP/2 state and the clients that share it.
pub struct Link {
    socket: TcpStream,
    connection: Connection,
    input: Box<[u8]>,
    input_len: usize,
    /// Clients with no call in flight, waiting for their next one.
    clients_idle: Vec<u32>,
    /// Clients whose `--rate` slot came, waiting for room on the connection.
    clients_slotted: Vec<u32>,
    /// Clients waiting for their `--rate` slot: (when it comes, client).
    clients_paced: Vec<(Instant, u32)>,
    /// Clients not yet retired (waiting in one of the lists above, or with a call in flight).
    clients_active: usize,
    broken: bool,
    /// EPOLLOUT is registered (output is waiting for room).
    writing: bool,
}

impl Link {
    /// A link over a connected socket for clients `clients` (numbered within the link).
    pub fn new(socket: TcpStream, connection: Connection, clients: u32) -> io::Result<Self> {
        socket.set_nodelay(true)?;
        socket.set_nonblocking(true)?;
        Ok(Link {
            socket,
            connection,
            input: vec![0; INPUT_BYTES].into_boxed_slice(),
            input_len: 0,
            clients_idle: (0..clients).rev().collect(),
            clients_slotted: Vec::new(),
            clients_paced: Vec::new(),
            clients_active: clients as usize,
            broken: false,
            writing: false,
        })
    }

    fn is_done(&self) -> bool {
        self.clients_active == 0 && self.connection.calls_in_flight() == 0
    }

    /// Starts a call for every idle client that may start one; retires clients once the run
    /// is over or the connection cannot carry calls any more.
    fn issue(&mut self, plan: &Plan, message: &mut Vec<u8>, now: Instant) {
        self.release_paced(now);
        loop {
            // Clients whose `--rate` slot came go first: they hold a slot already.
            let (client, slotted) = match (self.clients_slotted.last(), self.clients_idle.last()) {
                (Some(&client), _) => (client, true),
                (None, Some(&client)) => (client, false),
                (None, None) => return,
            };
            if self.broken || self.connection.is_closing() {
                self.retire_waiting();
                return;
            }
            if self.connection.message_too_large(plan.message_len) {
                plan.recorder.error(format!(
                    "a message of {} bytes is larger than the server's stream window",
                    plan.message_len
                ));
                self.retire_waiting();
                return;
            }
            if !self.connection.can_issue(plan.message_len) {
                return;
            }
            if slotted {
                self.clients_slotted.pop();
            } else {
                self.clients_idle.pop();
                if let Some(limiter) = &plan.limiter {
                    let due = limiter.claim_at(now);
                    if due > now {
                        self.clients_paced.push((due, client));
                        continue;
                    }
                }
            }
            let Some(sequence) = plan.claim() else {
                self.clients_active -= 1;
                continue;
            };
            message.clear();
            (plan.message)(sequence, message);
            assert_eq!(
                message.len(),
                plan.message_len,
                "messages of one run share a length"
            );
            self.connection.issue(client, message, now);
        }
    }

    /// Moves the clients whose `--rate` slot has come to the front of the queue.
    fn release_paced(&mut self, now: Instant) {
        let mut index = 0;
        while index < self.clients_paced.len() {
            if self.clients_paced[index].0 <= now {
                let (_, client) = self.clients_paced.swap_remove(index);
                self.clients_slotted.push(client);
            } else {
                index += 1;
            }
        }
    }

    /// When the next paced client's slot comes, if any waits.
    fn paced_due_next(&self) -> Option<Instant> {
        self.clients_paced.iter().map(|(due, _)| *due).min()
    }

    /// Retires every client without a call in flight (the link can carry no more calls).
    fn retire_waiting(&mut self) {
        let waiting =
            self.clients_idle.len() + self.clients_slotted.len() + self.clients_paced.len();
        self.clients_active -= waiting;
        self.clients_idle.clear();
        self.clients_slotted.clear();
        self.clients_paced.clear();
    }

    /// Writes what the connection has to say, as far as the socket takes it.
    fn flush(&mut self, poller: &Poller, token: usize, completions: &mut Vec<Completion>) {
        if self.broken {
            return;
        }
        let output = self.connection.output();
        let mut written = 0;
        let mut failure = None;
        while written < output.len() {
            match self.socket.write(&output[written..]) {
                Ok(0) => {
                    failure = Some("the socket accepts no more bytes".to_string());
                    break;
                }
                Ok(n) => written += n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    failure = Some(format!("write failed: {error}"));
                    break;
                }
            }
        }
        output.drain(..written);
        let waiting = !output.is_empty();
        if let Some(reason) = failure {
            self.break_down(poller, &reason, completions);
        } else if waiting != self.writing {
            self.writing = waiting;
            if let Err(error) = poller.modify(&self.socket, token, waiting) {
                self.break_down(poller, &format!("epoll: {error}"), completions);
            }
        }
    }

    /// Reads what the socket holds and handles every whole frame in it.
    fn read(&mut self, poller: &Poller, completions: &mut Vec<Completion>) {
        while !self.broken {
            let room = &mut self.input[self.input_len..];
            let room_len = room.len();
            let got = match self.socket.read(room) {
                Ok(0) => {
                    self.break_down(poller, "the server closed the connection", completions);
                    return;
                }
                Ok(n) => n,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => {
                    self.break_down(poller, &format!("read failed: {error}"), completions);
                    return;
                }
            };
            self.input_len += got;
            match self
                .connection
                .receive(&self.input[..self.input_len], completions)
            {
                Ok(used) => {
                    self.input.copy_within(used..self.input_len, 0);
                    self.input_len -= used;
                }
                Err(error) => {
                    self.break_down(poller, &error.0, completions);
                    return;
                }
            }
            // A short read drained the socket: skip the read that would say EAGAIN.
            if got < room_len {
                return;
            }
        }
    }

    /// Records the calls of this link that ended (at `now`) and frees their clients.
    fn settle(
        &mut self,
        completions: &mut Vec<Completion>,
        latencies: &mut Vec<Duration>,
        plan: &Plan,
        now: Instant,
    ) {
        for completion in completions.drain(..) {
            match completion.result {
                Ok(()) => latencies.push(now.saturating_duration_since(completion.sent)),
                Err(message) => plan.recorder.error(message),
            }
            self.clients_idle.push(completion.client);
        }
    }

    fn break_down(&mut self, poller: &Poller, reason: &str, completions: &mut Vec<Completion>) {
        if self.broken {
            return;
        }
        self.broken = true;
        let _ = poller.remove(&self.socket);
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
        self.connection.fail_all(reason, completions);
    }
}

/// Drives `links` until every client retired and every call ended.
pub fn run(mut links: Vec<Link>, plan: &Plan) -> io::Result<()> {
    let mut poller = Poller::new(links.len())?;
    for (token, link) in links.iter().enumerate() {
        poller.add(&link.socket, token, false)?;
    }
    let mut ready: Vec<Readiness> = Vec::with_capacity(links.len());
    let mut completions: Vec<Completion> = Vec::new();
    let mut latencies: Vec<Duration> = Vec::new();
    let mut message = Vec::with_capacity(plan.message_len);
    loop {
        let sent = Instant::now();
        for (token, link) in links.iter_mut().enumerate() {
            link.issue(plan, &mut message, sent);
            link.flush(&poller, token, &mut completions);
            link.settle(&mut completions, &mut latencies, plan, sent);
        }
        if links.iter().all(Link::is_done) {
            return Ok(());
        }
        let paced_due_next = links.iter().filter_map(Link::paced_due_next).min();
        let wait = paced_due_next.map_or(WAIT_LIMIT, |due| {
            // Rounded up to whole milliseconds (epoll's unit): a slot is never taken early.
            let until = due.saturating_duration_since(Instant::now());
            Duration::from_millis(until.as_micros().div_ceil(1000) as u64).min(WAIT_LIMIT)
        });
        ready.clear();
        poller.wait(wait, &mut ready)?;
        let now = Instant::now();
        for readiness in &ready {
            let link = &mut links[readiness.token];
            if readiness.readable {
                link.read(&poller, &mut completions);
            }
            if readiness.writable {
                link.flush(&poller, readiness.token, &mut completions);
            }
            link.settle(&mut completions, &mut latencies, plan, now);
        }
        if !latencies.is_empty() {
            plan.recorder.successes(latencies.drain(..));
        }
    }
}
