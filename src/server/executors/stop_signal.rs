//! SIGTERM and SIGINT: a graceful stop, as etcd's. The signals are blocked in every thread
//! (the mask is set before any thread starts, and threads inherit it) and taken by one thread
//! with `sigwait`, so no code runs in a signal handler. The first signal asks the owner core
//! to stop gracefully (drain every core's client calls, hand leadership over, let the log
//! drain, exit 0); a second one, while that runs, ends the process at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures_channel::oneshot;

use crate::server::error::ServerError;

/// The signals that stop the member.
const STOP_SIGNALS: [libc::c_int; 2] = [libc::SIGTERM, libc::SIGINT];

/// The exit status of a stop forced by a second signal: the graceful stop did not finish.
const FORCED_STOP_STATUS: i32 = 1;

/// SIGTERM and SIGINT, blocked in this thread and every thread it starts from now on.
pub struct StopSignals {
    set: libc::sigset_t,
}

/// The owner core's end: resolves when a stop signal arrives once the member serves.
pub struct StopRequest {
    pub requested: oneshot::Receiver<()>,
    /// Set by the owner when it listens for `requested`: a signal before that (the member is
    /// still starting, nothing to hand over) stops the process at once.
    pub listening: Arc<AtomicBool>,
}

impl StopSignals {
    /// Blocks the stop signals; call before any thread starts, or a thread that does not block
    /// them gets their default action (the process dies without a graceful stop).
    pub fn block() -> Result<StopSignals, ServerError> {
        // SAFETY: sigset_t is plain data, initialised by sigemptyset before any other use.
        let mut set: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` is a valid sigset_t; the signal numbers are valid.
        let blocked = unsafe {
            libc::sigemptyset(&mut set);
            for signal in STOP_SIGNALS {
                libc::sigaddset(&mut set, signal);
            }
            libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut())
        };
        if blocked != 0 {
            return Err(ServerError::Member(format!(
                "cannot block SIGTERM and SIGINT for a graceful stop (error {blocked})"
            )));
        }
        Ok(StopSignals { set })
    }

    /// Starts the thread that waits for the signals; returns the owner core's end.
    pub fn watch(self) -> Result<StopRequest, ServerError> {
        let (sender, requested) = oneshot::channel();
        let listening = Arc::new(AtomicBool::new(false));
        let owner_listening = listening.clone();
        std::thread::Builder::new()
            .name("basalt-signals".into())
            .spawn(move || self.wait(sender, &owner_listening))
            .map_err(|error| ServerError::Executor {
                name: "basalt-signals".into(),
                reason: error.to_string(),
            })?;
        Ok(StopRequest {
            requested,
            listening,
        })
    }

    fn wait(self, sender: oneshot::Sender<()>, listening: &AtomicBool) {
        let milestones = crate::server::logging::milestones();
        let first = self.next_signal();
        milestones.info(
            "received signal; shutting down",
            &[("signal", signal_name(first))],
        );
        if !listening.load(Ordering::Acquire) || sender.send(()).is_err() {
            // Not serving yet: no leadership to hand over, and everything acknowledged is
            // already durable (a write is acknowledged after its fdatasync).
            milestones.info("stopped before serving clients", &[]);
            std::process::exit(0);
        }
        let second = self.next_signal();
        milestones.warn(
            "received a second signal during the graceful stop; stopping at once",
            &[("signal", signal_name(second))],
        );
        std::process::exit(FORCED_STOP_STATUS);
    }

    /// Blocks until one of the stop signals is pending, and takes it.
    fn next_signal(&self) -> libc::c_int {
        loop {
            let mut signal: libc::c_int = 0;
            // SAFETY: `self.set` is an initialised sigset_t and `signal` a valid out pointer.
            if unsafe { libc::sigwait(&self.set, &mut signal) } == 0 {
                return signal;
            }
        }
    }
}

/// The name etcd (Go) logs for a signal.
fn signal_name(signal: libc::c_int) -> &'static str {
    match signal {
        libc::SIGTERM => "terminated",
        libc::SIGINT => "interrupt",
        _ => "unknown",
    }
}
