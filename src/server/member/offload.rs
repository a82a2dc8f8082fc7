//! Blocking engine work off the executor, awaited without blocking it: on a thread of its own
//! ([`on_own_thread`], [`start_own_thread`]), or on the executor's blocking thread
//! ([`on_blocking_thread`]).
//!
//! glommio gives each executor one blocking thread with a first-in-first-out queue, shared by
//! everything `spawn_blocking` hands it (large range scans, up to ~1 s each under a Kubernetes
//! LIST load). An engine sync that a checkpoint waits on — and with it every write, since the
//! persister awaits the checkpoint — must not queue behind those, so it gets a thread of its
//! own (a thread per call: they come once a second at most, or per checkpoint).

use futures_channel::oneshot;

/// Runs `work` on a new thread named `name`; waits for its result without blocking this
/// executor. A panic on that thread is re-raised here (fail-stop).
pub async fn on_own_thread<R: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> R + Send + 'static,
) -> R {
    start_own_thread(name, work).await
}

/// Starts `work` on a new thread named `name` at once (not when first polled, unlike
/// [`on_own_thread`]), so the caller can go on meanwhile; the future yields its result. A panic
/// on that thread is re-raised where the future is awaited (fail-stop); a future dropped
/// unawaited lets the thread run to its end.
pub fn start_own_thread<R: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> R + Send + 'static,
) -> impl std::future::Future<Output = R> + 'static {
    let (sender, receiver) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = sender.send(work());
        })
        .unwrap_or_else(|error| panic!("could not start a thread for {name}: {error}"));
    let name = name.to_string();
    async move {
        receiver
            .await
            .unwrap_or_else(|_| panic!("the {name} thread ended without a result"))
    }
}

/// Runs `work` on this executor's blocking thread (see `glommio::executor().spawn_blocking`),
/// unless the caller has stopped waiting by the time the thread gets to it: a large range whose
/// client went away (its handler is dropped on RST_STREAM) is then skipped instead of scanned.
/// Work that has started runs to its end; its result is dropped, on that thread, if nobody
/// waits for it any more. (The result comes back over a oneshot, not as glommio's return
/// value: glommio keeps that in a `MaybeUninit` that is never dropped when its waiter is, so a
/// large answer — and any memory hold it carries — would leak.)
pub async fn on_blocking_thread<R: Send + 'static>(
    work: impl FnOnce() -> R + Send + 'static,
) -> Option<R> {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Marks the call abandoned when the waiting future is dropped (or has finished).
    struct Waiting(Arc<AtomicBool>);
    impl Drop for Waiting {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }

    let abandoned = Arc::new(AtomicBool::new(false));
    let waiting = Waiting(abandoned.clone());
    let (sender, receiver) = oneshot::channel();
    glommio::executor()
        .spawn_blocking(move || {
            if !abandoned.load(Ordering::Acquire) {
                // Fails (and drops the result here) when the receiver is gone.
                let _ = sender.send(work());
            }
        })
        .await;
    drop(waiting);
    receiver.await.ok()
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{mpsc, Arc};
    use std::task::{Context, Waker};
    use std::time::Duration;

    use glommio::LocalExecutorBuilder;

    use super::on_blocking_thread;

    #[test]
    fn work_whose_caller_left_while_queued_is_skipped() {
        LocalExecutorBuilder::default()
            .spawn(|| async {
                // Occupy the one blocking thread until told to go on.
                let (go, wait) = mpsc::channel::<()>();
                let (started, is_started) = mpsc::channel::<()>();
                let blocker = glommio::spawn_local(on_blocking_thread(move || {
                    started.send(()).unwrap();
                    wait.recv_timeout(Duration::from_secs(10)).unwrap();
                }));
                is_started.recv_timeout(Duration::from_secs(10)).unwrap();
                // Queue work behind it (one poll hands it to the thread), then stop waiting.
                let ran = Arc::new(AtomicBool::new(false));
                {
                    let ran = ran.clone();
                    let queued = on_blocking_thread(move || ran.store(true, Ordering::SeqCst));
                    let mut queued = std::pin::pin!(queued);
                    let mut context = Context::from_waker(Waker::noop());
                    assert!(queued.as_mut().poll(&mut context).is_pending());
                }
                go.send(()).unwrap();
                assert_eq!(blocker.await, Some(()));
                // Work queued after the skipped one runs, so the thread has passed it.
                assert_eq!(on_blocking_thread(|| 7).await, Some(7));
                assert!(!ran.load(Ordering::SeqCst), "skipped work ran");
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn work_whose_caller_waits_runs() {
        LocalExecutorBuilder::default()
            .spawn(|| async { assert_eq!(on_blocking_thread(|| 42).await, Some(42)) })
            .unwrap()
            .join()
            .unwrap();
    }
}
