//! A graceful stop's first step, on every core: the client servers stop as etcd's
//! (`embed.Etcd.Close` → `stopServers`, before `EtcdServer.Stop` hands leadership over).
//! Every core closes its listeners (new connections are refused); then every connection is
//! sent GOAWAY (new calls go elsewhere) and the calls under way finish, while the member still
//! commits their proposals. Watch and lease keep-alive streams, which a client ends only when
//! told, do not hold the stop: once no call that ends by itself has been under way for
//! [`STREAMS_ONLY_GRACE`], the connections left are closed, as Debian's etcd 3.4 closes them
//! at once (it stops in under 2 s with a watch open). At etcd's bound (its request timeout)
//! whatever is still open is closed anyway, as grpc-go's `Stop` after `GracefulStop`.
//!
//! The owner core orders each client core over a link of one-shot channels (one message each
//! way per step, so nothing queues), and waits for its answer at most until the bound plus
//! [`ANSWER_GRACE`]: a core that does not answer does not hold the stop.

use std::rc::Rc;
use std::time::{Duration, Instant};

use basalt_net::Server;
use futures_channel::oneshot;

/// How often a core looks whether its listeners are closed or its connections are gone.
const DRAIN_POLL: Duration = Duration::from_millis(2);

/// How long no call that ends by itself (unary, Snapshot) must have been under way before the
/// connections left, carrying only streams, are closed. A call a client sent before it saw
/// the GOAWAY arrives within a round trip and restarts the wait.
const STREAMS_ONLY_GRACE: Duration = Duration::from_secs(1);

/// How long past the bound the owner waits for a core's answer (a core busy with a long
/// task answers late), and a core for its closed connections to be gone.
const ANSWER_GRACE: Duration = Duration::from_millis(500);

/// The servers one core stops: its client server, and on the owner core the metrics server.
pub struct CoreServers(Vec<Rc<Server>>);

/// The owner's end of one client core's stop link.
pub struct StopOrders {
    /// Step 1: stop accepting; carries the bound of the whole stop.
    stop_accepting: oneshot::Sender<Instant>,
    accepting_stopped: oneshot::Receiver<()>,
    /// Step 2: GOAWAY and drain until the bound.
    drain: oneshot::Sender<()>,
    /// The connections the core had to close at the bound.
    drained: oneshot::Receiver<usize>,
}

/// A client core's end of its stop link.
pub struct StopFollower {
    stop_accepting: oneshot::Receiver<Instant>,
    accepting_stopped: oneshot::Sender<()>,
    drain: oneshot::Receiver<()>,
    drained: oneshot::Sender<usize>,
}

/// A stop link: the owner's end and the client core's end.
pub fn link() -> (StopOrders, StopFollower) {
    let (stop_accepting, stop_accepting_receiver) = oneshot::channel();
    let (accepting_stopped_sender, accepting_stopped) = oneshot::channel();
    let (drain, drain_receiver) = oneshot::channel();
    let (drained_sender, drained) = oneshot::channel();
    (
        StopOrders {
            stop_accepting,
            accepting_stopped,
            drain,
            drained,
        },
        StopFollower {
            stop_accepting: stop_accepting_receiver,
            accepting_stopped: accepting_stopped_sender,
            drain: drain_receiver,
            drained: drained_sender,
        },
    )
}

/// What the client servers' stop came to, over every core.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct StopOutcome {
    /// Connections closed by the stop: carrying only streams, or still open at the bound.
    pub connections_closed: usize,
    /// Client cores that did not answer in time (their connections end with the process).
    pub cores_unanswered: usize,
}

impl CoreServers {
    /// The servers of one core.
    pub fn new(servers: Vec<Rc<Server>>) -> CoreServers {
        CoreServers(servers)
    }

    /// Step 1: closes every listener, waiting (at most until `deadline`) until they are.
    async fn stop_accepting(&self, deadline: Instant) {
        for server in &self.0 {
            server.stop_accepting();
        }
        self.wait_until(deadline, |server| server.listeners_open() == 0)
            .await;
    }

    /// Step 2: GOAWAY on every connection, then waits until they are gone, or carry only
    /// streams (no call that ends by itself for [`STREAMS_ONLY_GRACE`]), or `deadline` passes,
    /// and closes the rest; how many it closed.
    async fn drain(&self, deadline: Instant) -> usize {
        for server in &self.0 {
            server.shutdown_signal().raise();
        }
        let mut streams_only_since: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if now >= deadline || self.0.iter().all(|server| server.connections_open() == 0) {
                break;
            }
            if self.0.iter().all(|server| server.finite_calls_open() == 0) {
                let since = *streams_only_since.get_or_insert(now);
                if now - since >= STREAMS_ONLY_GRACE {
                    break;
                }
            } else {
                streams_only_since = None;
            }
            glommio::timer::sleep(DRAIN_POLL).await;
        }
        let left: usize = self.0.iter().map(|server| server.connections_open()).sum();
        if left > 0 {
            for server in &self.0 {
                server.close_connections();
            }
            // Closing is dropping each connection's task: it takes one turn of this core.
            self.wait_until(Instant::now() + ANSWER_GRACE, |server| {
                server.connections_open() == 0
            })
            .await;
        }
        left
    }

    async fn wait_until(&self, deadline: Instant, done: impl Fn(&Server) -> bool) {
        while !self.0.iter().all(|server| done(server)) && Instant::now() < deadline {
            glommio::timer::sleep(DRAIN_POLL).await;
        }
    }
}

/// On a client core: carries out the owner's two steps on this core's servers. Ends when
/// the stop is carried out, or without a word when the owner is gone (the process ends).
pub async fn follow(follower: StopFollower, servers: CoreServers) {
    let Ok(deadline) = follower.stop_accepting.await else {
        return;
    };
    servers.stop_accepting(deadline).await;
    let _ = follower.accepting_stopped.send(());
    if follower.drain.await.is_err() {
        return;
    }
    let closed = servers.drain(deadline).await;
    let _ = follower.drained.send(closed);
}

/// On the owner core: stops the client servers of every core, its own (`own`) included, and
/// returns once every connection has ended, or `bound` has passed and the rest were closed.
pub async fn stop_every_core(
    own: &CoreServers,
    cores: Vec<StopOrders>,
    bound: Duration,
) -> StopOutcome {
    let deadline = Instant::now() + bound;
    let answer_deadline = deadline + ANSWER_GRACE;
    let mut outcome = StopOutcome::default();
    // Step 1 everywhere first: no client told to go away reconnects into a listener about to
    // close (the kernel resets the connections queued on a closing listener).
    let mut waiting = Vec::with_capacity(cores.len());
    for core in cores {
        // A core whose end is gone has failed, and its error ends the process.
        let _ = core.stop_accepting.send(deadline);
        waiting.push((core.accepting_stopped, core.drain, core.drained));
    }
    own.stop_accepting(deadline).await;
    let mut stopped = Vec::with_capacity(waiting.len());
    for (accepting_stopped, drain, drained) in waiting {
        match answer_before(answer_deadline, accepting_stopped).await {
            Some(()) => stopped.push((drain, drained)),
            None => outcome.cores_unanswered += 1,
        }
    }
    // Step 2 everywhere.
    let mut draining = Vec::with_capacity(stopped.len());
    for (drain, drained) in stopped {
        let _ = drain.send(());
        draining.push(drained);
    }
    outcome.connections_closed += own.drain(deadline).await;
    for drained in draining {
        match answer_before(answer_deadline, drained).await {
            Some(closed) => outcome.connections_closed += closed,
            None => outcome.cores_unanswered += 1,
        }
    }
    outcome
}

/// The answer on `receiver`, if it comes before `deadline`.
async fn answer_before<T>(deadline: Instant, receiver: oneshot::Receiver<T>) -> Option<T> {
    let left = deadline.saturating_duration_since(Instant::now());
    futures_lite::future::or(async { receiver.await.ok() }, async {
        glommio::timer::sleep(left).await;
        None
    })
    .await
}
