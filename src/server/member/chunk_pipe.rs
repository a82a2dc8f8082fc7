//! A bounded queue of items between this executor and a thread of its own (a snapshot's disk
//! reader or writer): the executor's side awaits, the thread's side blocks, so the network and
//! the disk overlap while neither gets more than `capacity` items ahead. When either side goes
//! away the other's next send or receive says so.

use futures_channel::mpsc;
use futures_lite::future::{block_on, poll_fn};
use futures_lite::StreamExt as _;

/// The sending half of a chunk pipe.
pub struct PipeSender<T>(mpsc::Sender<T>);

/// The receiving half of a chunk pipe.
pub struct PipeReceiver<T>(mpsc::Receiver<T>);

/// A pipe holding at most `capacity` items in flight (futures' channel keeps one more slot per
/// sender: that one is counted here).
pub fn pipe<T>(capacity: usize) -> (PipeSender<T>, PipeReceiver<T>) {
    assert!(capacity >= 1, "a pipe holds at least one item");
    let (sender, receiver) = mpsc::channel(capacity - 1);
    (PipeSender(sender), PipeReceiver(receiver))
}

impl<T> PipeSender<T> {
    /// Queues `item`, waiting for room; `false` if the receiver is gone.
    pub async fn send(&mut self, item: T) -> bool {
        if poll_fn(|cx| self.0.poll_ready(cx)).await.is_err() {
            return false;
        }
        self.0.start_send(item).is_ok()
    }

    /// [`PipeSender::send`] for a thread that may block.
    pub fn send_blocking(&mut self, item: T) -> bool {
        block_on(self.send(item))
    }
}

impl<T> PipeReceiver<T> {
    /// The next item; `None` once the sender is gone and the pipe is empty.
    pub async fn recv(&mut self) -> Option<T> {
        self.0.next().await
    }

    /// [`PipeReceiver::recv`] for a thread that may block.
    pub fn recv_blocking(&mut self) -> Option<T> {
        block_on(self.recv())
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future as _;

    use super::*;

    #[test]
    fn a_thread_and_a_task_pass_items_in_order_and_the_bound_holds() {
        let (mut sender, mut receiver) = pipe::<u32>(2);
        // Two fit without a receiver; a third waits for room.
        assert!(sender.send_blocking(1));
        assert!(sender.send_blocking(2));
        {
            let mut third = std::pin::pin!(sender.send(3));
            let mut context = std::task::Context::from_waker(std::task::Waker::noop());
            assert!(
                third.as_mut().poll(&mut context).is_pending(),
                "the bound holds"
            );
            assert_eq!(receiver.recv_blocking(), Some(1));
            assert!(block_on(third));
        }
        // A thread blocks on the full pipe until this side makes room.
        let thread = std::thread::spawn(move || {
            assert!(sender.send_blocking(4));
        });
        assert_eq!(receiver.recv_blocking(), Some(2));
        assert_eq!(receiver.recv_blocking(), Some(3));
        assert_eq!(receiver.recv_blocking(), Some(4));
        thread.join().unwrap();
        assert_eq!(receiver.recv_blocking(), None, "the sender is gone");
    }

    #[test]
    fn a_sender_learns_that_the_receiver_left() {
        let (mut sender, receiver) = pipe::<u32>(1);
        drop(receiver);
        assert!(!sender.send_blocking(1));
    }
}
