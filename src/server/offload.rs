//! Blocking engine work on a thread of its own, awaited from an executor without blocking it.
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
    let (sender, receiver) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let _ = sender.send(work());
        })
        .unwrap_or_else(|error| panic!("could not start a thread for {name}: {error}"));
    receiver
        .await
        .unwrap_or_else(|_| panic!("the {name} thread ended without a result"))
}
