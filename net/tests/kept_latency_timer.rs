//! Goal: the vendored glommio keeps its latency-ring timer (a preempt timer, or the timer a sleep
//! armed for the next user timer) across executor rounds and sleeps while it fires no later than
//! the timer a pass would arm (`Reactor::wait`). A sleep for a user timer nearer than the kept
//! timer must still wake for the user timer, not when the kept timer fires.
//! Method: executors with a 30 s preempt timer, so the kept timer is always far away; a task
//! sleeps 20 ms and must be back well before the kept timer (5 s bound; it fired after 20 s or
//! 30 s if kept). Once with the preempt timer as the kept one, once with a sleep's timer for a
//! 20 s user timer kept across a wake-up from another executor.

use std::time::{Duration, Instant};

use glommio::channels::shared_channel;
use glommio::timer::sleep;
use glommio::{LocalExecutorBuilder, Placement};

const PREEMPT: Duration = Duration::from_secs(30);
const NEAR: Duration = Duration::from_millis(20);
const BOUND: Duration = Duration::from_secs(5);

#[test]
fn a_sleep_nearer_than_the_kept_preempt_timer_wakes_for_its_own_timer() {
    let slept = LocalExecutorBuilder::new(Placement::Unbound)
        .name("net-test-near-sleep")
        .preempt_timer(PREEMPT)
        .spawn(|| async {
            // The executor's first round armed the preempt timer; the sleep's pass finds it live.
            let start = Instant::now();
            sleep(NEAR).await;
            start.elapsed()
        })
        .expect("an executor starts")
        .join()
        .expect("the executor ends");
    assert!(
        slept < BOUND,
        "a {NEAR:?} sleep took {slept:?}: it waited for the kept {PREEMPT:?} preempt timer"
    );
}

#[test]
fn a_sleep_nearer_than_the_kept_timer_of_an_earlier_sleep_wakes_for_its_own_timer() {
    let (sender, receiver) = shared_channel::new_bounded::<()>(1);
    let waking = LocalExecutorBuilder::new(Placement::Unbound)
        .name("net-test-waker")
        .spawn(move || async move {
            let sender = sender.connect().await;
            // Long enough for the other executor to have gone to sleep.
            sleep(Duration::from_millis(300)).await;
            sender.send(()).await.expect("the sleeper is waiting");
        })
        .expect("an executor starts");
    let sleeping = LocalExecutorBuilder::new(Placement::Unbound)
        .name("net-test-sleeper")
        .preempt_timer(PREEMPT)
        .spawn(move || async move {
            // The next user timer while the executor sleeps: its latency timer is armed for
            // this one, and kept after the wake-up (it fires before the preempt timer would).
            glommio::spawn_local(sleep(Duration::from_secs(20))).detach();
            let receiver = receiver.connect().await;
            receiver.recv().await.expect("the waker sends");
            let start = Instant::now();
            sleep(NEAR).await;
            start.elapsed()
        })
        .expect("an executor starts");
    waking.join().expect("the waker ends");
    let slept = sleeping.join().expect("the sleeper ends");
    assert!(
        slept < BOUND,
        "a {NEAR:?} sleep took {slept:?}: it waited for a kept latency timer (20 s or 30 s away)"
    );
}
