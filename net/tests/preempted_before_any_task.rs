//! Goal: an executor whose round is preempted before any task ran neither parks with the task
//! still queued nor spins without running it. The vendored glommio's `run_task_queues` used to
//! answer "nothing ran" then: the executor parked, the reactor found nothing to wake (a preempt
//! timer's completion wakes no task) and slept until its next timer, here never. Answering "ran"
//! without running a task instead made it spin at 100 % CPU when every round was preempted.
//! Method: an executor with a tiny preempt timer runs a task that only yields, with no timer and
//! no other executor to wake it. With 1 ns the timer has fired before every round's first check
//! (on the 2-core VM: upstream parks for good, and "ran" alone never runs the task); with 10 µs
//! it fires there now and then (upstream parked within 20 000 yields). The task must finish; the
//! 60 s bound is for a hang, not a speed: each run takes about a second or less.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};

/// Runs a task that yields until `done` says so, on an executor with the given preempt timer;
/// fails if the task is not done within 60 s.
fn finishes_with_preempt_timer(preempt: Duration, mut done: impl FnMut() -> bool + Send + 'static) {
    let (done_sender, done_receiver) = mpsc::channel();
    let executor = LocalExecutorBuilder::new(Placement::Unbound)
        .name("net-test-preempted")
        .preempt_timer(preempt)
        .spawn(move || async move {
            while !done() {
                futures_lite::future::yield_now().await;
            }
            let _ = done_sender.send(());
        })
        .expect("an executor starts");
    let finished = done_receiver.recv_timeout(Duration::from_secs(60));
    assert!(
        finished.is_ok(),
        "an executor with a runnable task stopped running it (preempt timer {preempt:?})"
    );
    executor.join().expect("the executor ends");
}

#[test]
fn an_executor_preempted_before_every_round_still_runs_its_task() {
    let mut yields = 0_u32;
    finishes_with_preempt_timer(Duration::from_nanos(1), move || {
        yields += 1;
        yields > 20_000
    });
}

#[test]
fn an_executor_preempted_now_and_then_before_a_round_never_parks_with_its_task_queued() {
    let mut started = None;
    finishes_with_preempt_timer(Duration::from_micros(10), move || {
        started.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(1)
    });
}
