//! Goal: polling a glommio shared channel again and again without an item (or a free slot)
//! arriving never piles up clones of the polling task's waker. Each clone is a reference to the
//! task, counted in an `i16`; a client core's watch follower, whose doorbell `recv` races a
//! 100 ms idle timer, once leaked one clone per timer round until the count overflowed and the
//! executor panicked (`Waker invariant broken`).
//! Method: one task polls a fresh `recv` (then a fresh `send` into a full channel) 40 000 times,
//! more than `i16::MAX`, each future dropped after one `Pending` poll, as a `select` against a
//! timer does; then the other executor sends (receives) one item and the task must still be
//! woken for it. With a clone kept per poll the 32 768th poll panics the executor.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

use glommio::channels::shared_channel;
use glommio::{LocalExecutorBuilder, Placement};

/// More polls than an `i16` reference count can hold.
const POLLS: usize = 40_000;

#[test]
fn repeated_recv_polls_do_not_pile_up_waker_clones() {
    let (sender, receiver) = shared_channel::new_bounded::<u32>(1);
    let (ready_sender, ready_receiver) = shared_channel::new_bounded::<()>(1);
    let sending = LocalExecutorBuilder::new(Placement::Unbound)
        .name("net-test-sender")
        .spawn(move || async move {
            let sender = sender.connect().await;
            let ready = ready_receiver.connect().await;
            ready.recv().await.expect("the receiver polled");
            sender.send(7).await.expect("the receiver is connected");
        })
        .expect("an executor starts");
    let receiving = LocalExecutorBuilder::new(Placement::Unbound)
        .name("net-test-receiver")
        .spawn(move || async move {
            let receiver = receiver.connect().await;
            let ready = ready_sender.connect().await;
            poll_fn(|cx| {
                for _ in 0..POLLS {
                    let mut recv = pin!(receiver.recv());
                    assert!(recv.as_mut().poll(cx).is_pending(), "nothing was sent yet");
                }
                Poll::Ready(())
            })
            .await;
            ready.send(()).await.expect("the sender is connected");
            receiver.recv().await
        })
        .expect("an executor starts");
    sending.join().expect("the sender ends");
    let received = receiving
        .join()
        .expect("the receiver survives 40 000 polls");
    assert_eq!(received, Some(7));
}

#[test]
fn repeated_send_polls_into_a_full_channel_do_not_pile_up_waker_clones() {
    let (sender, receiver) = shared_channel::new_bounded::<u32>(1);
    let (ready_sender, ready_receiver) = shared_channel::new_bounded::<()>(1);
    let sending = LocalExecutorBuilder::new(Placement::Unbound)
        .name("net-test-sender")
        .spawn(move || async move {
            let sender = sender.connect().await;
            let ready = ready_sender.connect().await;
            sender.try_send(1).expect("the channel has room for one");
            poll_fn(|cx| {
                for _ in 0..POLLS {
                    let mut send = pin!(sender.send(2));
                    assert!(send.as_mut().poll(cx).is_pending(), "the channel is full");
                }
                Poll::Ready(())
            })
            .await;
            ready.send(()).await.expect("the receiver is connected");
            sender.send(2).await.expect("the receiver frees the slot")
        })
        .expect("an executor starts");
    let receiving = LocalExecutorBuilder::new(Placement::Unbound)
        .name("net-test-receiver")
        .spawn(move || async move {
            let receiver = receiver.connect().await;
            let ready = ready_receiver.connect().await;
            ready.recv().await.expect("the sender polled");
            let first = receiver.recv().await;
            let second = receiver.recv().await;
            (first, second)
        })
        .expect("an executor starts");
    sending.join().expect("the sender survives 40 000 polls");
    assert_eq!(
        receiving.join().expect("the receiver ends"),
        (Some(1), Some(2))
    );
}
