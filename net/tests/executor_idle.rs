//! Goal: `executor().idle()` (a basalt patch to the vendored glommio) returns only once the
//! executor has nothing else to run, without waiting for a timer that is not due; an executor
//! whose only task waits there still finishes (it does not park for good). The raft core relies
//! on this to write out a deferred commit after the next WAL write is on its way, not before
//! it. (That the write was submitted by then follows from the loop's order, `poll_io` before
//! every round; no test here can see an SQE leave the ring.)

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};

/// Runs `body` on a fresh executor; fails if it has not finished in 60 s (a hang).
fn on_executor<F, Fut>(body: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    let (done_sender, done_receiver) = std::sync::mpsc::channel();
    let executor = LocalExecutorBuilder::new(Placement::Unbound)
        .name("net-test-idle")
        .spawn(move || async move {
            body().await;
            let _ = done_sender.send(());
        })
        .expect("an executor starts");
    assert!(
        done_receiver.recv_timeout(Duration::from_secs(60)).is_ok(),
        "the executor did not finish"
    );
    executor.join().expect("the executor ends");
}

#[test]
fn an_idle_waiter_runs_after_every_runnable_task() {
    on_executor(|| async {
        let log = Rc::new(RefCell::new(Vec::new()));
        let waiter = {
            let log = log.clone();
            glommio::spawn_local(async move {
                glommio::executor().idle().await;
                log.borrow_mut().push("idle");
            })
        };
        let busy = {
            let log = log.clone();
            glommio::spawn_local(async move {
                // Stays runnable for many rounds: each yield queues it again at once.
                for _ in 0..1_000 {
                    futures_lite::future::yield_now().await;
                }
                log.borrow_mut().push("busy done");
            })
        };
        busy.await;
        waiter.await;
        assert_eq!(*log.borrow(), ["busy done", "idle"]);
    });
}

#[test]
fn an_idle_waiter_does_not_wait_for_a_timer_not_yet_due() {
    on_executor(|| async {
        // A timer set now, due in 20 ms: the executor is idle long before it fires, and the
        // waiter must return in that gap, not after it.
        let started = Instant::now();
        let timer = glommio::spawn_local(glommio::timer::sleep(Duration::from_millis(20)));
        glommio::executor().idle().await;
        let idle_after = started.elapsed();
        timer.await;
        assert!(
            idle_after < Duration::from_millis(20),
            "idle waited for a timer ({idle_after:?})"
        );
    });
}

#[test]
fn a_lone_idle_waiter_returns_and_the_executor_goes_on() {
    on_executor(|| async {
        for _ in 0..100 {
            glommio::executor().idle().await;
        }
        // The executor still sleeps and wakes normally afterwards.
        glommio::timer::sleep(Duration::from_millis(5)).await;
    });
}
