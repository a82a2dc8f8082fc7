//! Whose turn it is to defragment: one defragmentation at a time in the process (they all work
//! on the one database), and a request waits for its turn only while its client waits for it —
//! a request whose client has left (its call future is dropped) leaves the queue and never runs.
//!
//! On a core, waiting requests queue on a semaphore (first come, first served); across cores,
//! the one at the head of its core's queue takes the process-wide flag when it is free, checking
//! again every [`RECHECK_INTERVAL`] (a defragmentation takes far longer than that).

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use glommio::sync::{Semaphore, StaticPermit};

/// How often the head of a core's queue looks at the process-wide flag again.
const RECHECK_INTERVAL: Duration = Duration::from_millis(10);

/// One core's view of the process-wide turn.
#[derive(Clone)]
pub struct DefragTurns {
    /// Set while a defragmentation runs anywhere in the process.
    running: Arc<AtomicBool>,
    /// This core's queue.
    queue: Rc<Semaphore>,
}

/// The right to defragment, held until dropped (the work holds it to its end, even if the
/// client that asked has left by then).
pub struct Turn {
    running: Arc<AtomicBool>,
    _queue: StaticPermit,
}

impl Drop for Turn {
    fn drop(&mut self) {
        let was_running = self.running.swap(false, Ordering::AcqRel);
        assert!(was_running, "a turn ended that was not running");
    }
}

impl DefragTurns {
    /// This core's queue on the flag of the process (a process serves one database).
    pub fn in_this_process() -> DefragTurns {
        static RUNNING: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();
        DefragTurns::new(RUNNING.get_or_init(Default::default).clone())
    }

    /// This core's queue on the process-wide flag `running` (one flag shared by every core).
    pub fn new(running: Arc<AtomicBool>) -> DefragTurns {
        DefragTurns {
            running,
            queue: Rc::new(Semaphore::new(1)),
        }
    }

    /// Waits for the turn. Dropping the future before it is ready gives up the place in line.
    pub async fn wait(&self) -> Turn {
        let permit = self
            .queue
            .acquire_static_permit(1)
            .await
            .expect("the queue's semaphore is never closed");
        while self
            .running
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            glommio::timer::sleep(RECHECK_INTERVAL).await;
        }
        Turn {
            running: self.running.clone(),
            _queue: permit,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use futures_lite::FutureExt;
    use glommio::LocalExecutorBuilder;

    use super::DefragTurns;

    /// Goal: one turn at a time across cores; a waiter dropped while queued never gets a turn
    /// and does not hold up the ones behind it. Method: two "cores" (turn sets on one flag)
    /// on one executor, waiters polled with deadlines.
    #[test]
    fn one_turn_at_a_time_and_a_dropped_waiter_leaves_the_line() {
        LocalExecutorBuilder::default()
            .spawn(|| async {
                let running = Arc::new(AtomicBool::new(false));
                let (core_a, core_b) = (
                    DefragTurns::new(running.clone()),
                    DefragTurns::new(running.clone()),
                );
                let first = core_a.wait().await;
                assert!(running.load(Ordering::Acquire));
                // Same core and another core: both wait while the first turn is held.
                let timed_out = |turns: DefragTurns| async move {
                    async move {
                        turns.wait().await;
                        false
                    }
                    .or(async {
                        glommio::timer::sleep(Duration::from_millis(50)).await;
                        true
                    })
                    .await
                };
                assert!(timed_out(core_a.clone()).await, "a second turn on one core");
                assert!(
                    timed_out(core_b.clone()).await,
                    "a second turn on another core"
                );
                // Those waiters were dropped: they left the line, so the next ones get in.
                drop(first);
                assert!(!running.load(Ordering::Acquire));
                let second = core_b.wait().await;
                drop(second);
                let third = core_a.wait().await;
                drop(third);
                assert!(!running.load(Ordering::Acquire));
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
