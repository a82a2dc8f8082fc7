//! Goal: the vendored glommio's patch that keeps an unfired preemption timer (`Reactor::wait`)
//! never keeps the timer a sleep armed for the next user timer: after waking early from such a
//! sleep, a busy task must still be told to yield within about one preempt interval, not when
//! that far user timer would have fired.
//! Method: an executor with a 10 ms preempt timer and a user timer 60 s away parks on a shared
//! channel; a second executor wakes it; the woken task spins until `need_preempt`, which must
//! come well before the 60 s user timer (5 s bound; a fresh preempt timer fires after 10 ms).

use std::time::{Duration, Instant};

use glommio::channels::shared_channel;
use glommio::{LocalExecutorBuilder, Placement};

#[test]
fn a_task_woken_from_a_sleep_is_preempted_within_the_preempt_interval() {
    let (sender, receiver) = shared_channel::new_bounded::<()>(1);
    let waking = LocalExecutorBuilder::new(Placement::Unbound)
        .name("net-test-waker")
        .spawn(move || async move {
            let sender = sender.connect().await;
            // Long enough for the other executor to have parked.
            glommio::timer::sleep(Duration::from_millis(300)).await;
            sender.send(()).await.expect("the sleeper is waiting");
        })
        .expect("an executor starts");
    let spun = LocalExecutorBuilder::new(Placement::Unbound)
        .name("net-test-sleeper")
        .preempt_timer(Duration::from_millis(10))
        .spawn(move || async move {
            // The next user timer while this executor sleeps: far away.
            glommio::spawn_local(glommio::timer::sleep(Duration::from_secs(60))).detach();
            let receiver = receiver.connect().await;
            receiver.recv().await.expect("the waker sends");
            let start = Instant::now();
            while !glommio::executor().need_preempt() {
                if start.elapsed() > Duration::from_secs(5) {
                    break;
                }
                std::hint::spin_loop();
            }
            start.elapsed()
        })
        .expect("an executor starts");
    waking.join().expect("the waker ends");
    let spun = spun.join().expect("the sleeper ends");
    assert!(
        spun < Duration::from_secs(5),
        "a busy task was not told to yield for {spun:?} after its executor woke (preempt timer 10 ms)"
    );
}
