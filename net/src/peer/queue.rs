//! A single-executor queue bounded in items and in bytes, with one consumer. Producers either
//! drop on full (`try_push`: the send queues, raft tolerates loss) or wait for room (`push`:
//! the inboxes, so a slow member slows only the connection that feeds it).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// The queue; share it with `Rc`.
pub(crate) struct BoundedQueue<T> {
    state: RefCell<State<T>>,
}

struct State<T> {
    items: VecDeque<(T, usize)>,
    bytes: usize,
    items_max: usize,
    bytes_max: usize,
    closed: bool,
    consumer: Option<Waker>,
    /// Producers waiting for room: at most one waker per waiting connection task.
    producers: Vec<Waker>,
}

impl<T> BoundedQueue<T> {
    pub fn new(items_max: usize, bytes_max: usize) -> BoundedQueue<T> {
        assert!(
            items_max > 0 && bytes_max > 0,
            "a queue needs room for one item"
        );
        BoundedQueue {
            state: RefCell::new(State {
                items: VecDeque::new(),
                bytes: 0,
                items_max,
                bytes_max,
                closed: false,
                consumer: None,
                producers: Vec::new(),
            }),
        }
    }

    /// Whether an item of `bytes` fits now. An empty queue takes any one item, so an item
    /// larger than the byte bound (checked elsewhere against the frame limit) is not stuck.
    fn fits(state: &State<T>, bytes: usize) -> bool {
        state.items.is_empty()
            || (state.items.len() < state.items_max && state.bytes + bytes <= state.bytes_max)
    }

    /// Queues `item` if it fits, else hands it back (also when closed).
    pub fn try_push(&self, item: T, bytes: usize) -> Result<(), T> {
        let mut state = self.state.borrow_mut();
        if state.closed || !Self::fits(&state, bytes) {
            return Err(item);
        }
        state.items.push_back((item, bytes));
        state.bytes += bytes;
        if let Some(waker) = state.consumer.take() {
            waker.wake();
        }
        Ok(())
    }

    /// Queues `item`, waiting for room; hands it back if the queue is closed.
    pub async fn push(&self, item: T, bytes: usize) -> Result<(), T> {
        let mut item = Some(item);
        poll_fn(|context| {
            let mut state = self.state.borrow_mut();
            if state.closed {
                return Poll::Ready(Err(item.take().unwrap()));
            }
            if !Self::fits(&state, bytes) {
                if !state.producers.iter().any(|w| w.will_wake(context.waker())) {
                    state.producers.push(context.waker().clone());
                }
                return Poll::Pending;
            }
            state.items.push_back((item.take().unwrap(), bytes));
            state.bytes += bytes;
            if let Some(waker) = state.consumer.take() {
                waker.wake();
            }
            Poll::Ready(Ok(()))
        })
        .await
    }

    /// Takes the oldest item, waiting for one; `None` once closed and empty.
    pub async fn pop(&self) -> Option<T> {
        poll_fn(|context| {
            let mut state = self.state.borrow_mut();
            match state.items.pop_front() {
                Some((item, bytes)) => {
                    state.bytes -= bytes;
                    for waker in state.producers.drain(..) {
                        waker.wake();
                    }
                    Poll::Ready(Some(item))
                }
                None if state.closed => Poll::Ready(None),
                None => {
                    state.consumer = Some(context.waker().clone());
                    Poll::Pending
                }
            }
        })
        .await
    }

    /// Waits until an item is queued, the queue is closed, or `kick` is called.
    pub async fn wait(&self) {
        let mut registered = false;
        poll_fn(|context| {
            let mut state = self.state.borrow_mut();
            if !state.items.is_empty() || state.closed || registered && state.consumer.is_none() {
                return Poll::Ready(());
            }
            state.consumer = Some(context.waker().clone());
            registered = true;
            Poll::Pending
        })
        .await
    }

    /// Wakes the consumer's `wait` (e.g. its connection died and it must notice).
    pub fn kick(&self) {
        if let Some(waker) = self.state.borrow_mut().consumer.take() {
            waker.wake();
        }
    }

    /// Moves queued items into `batch`, oldest first, while their bytes stay within
    /// `bytes_max` (always at least one item if any); returns the bytes moved.
    pub fn drain_into(&self, batch: &mut Vec<T>, bytes_max: usize) -> usize {
        let mut state = self.state.borrow_mut();
        let mut moved = 0;
        while let Some((_, bytes)) = state.items.front() {
            if moved > 0 && moved + bytes > bytes_max {
                break;
            }
            let (item, bytes) = state.items.pop_front().unwrap();
            moved += bytes;
            batch.push(item);
        }
        state.bytes -= moved;
        for waker in state.producers.drain(..) {
            waker.wake();
        }
        moved
    }

    /// Drops everything queued; returns how many items were dropped.
    pub fn clear(&self) -> usize {
        let mut state = self.state.borrow_mut();
        let dropped = state.items.len();
        state.items.clear();
        state.bytes = 0;
        for waker in state.producers.drain(..) {
            waker.wake();
        }
        dropped
    }

    /// Refuses further items and wakes everyone; queued items can still be popped.
    pub fn close(&self) {
        let mut state = self.state.borrow_mut();
        state.closed = true;
        if let Some(waker) = state.consumer.take() {
            waker.wake();
        }
        for waker in state.producers.drain(..) {
            waker.wake();
        }
    }

    /// Items queued now.
    pub fn len(&self) -> usize {
        self.state.borrow().items.len()
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;

    use futures_lite::future::{block_on, poll_once};

    use super::*;

    #[test]
    fn bounds_hold_in_items_and_in_bytes() {
        let queue = BoundedQueue::new(3, 100);
        // An empty queue takes one item of any size (the frame limit is checked elsewhere).
        assert!(queue.try_push("big", 500).is_ok());
        assert_eq!(queue.try_push("small", 1), Err("small"));
        assert_eq!(block_on(queue.pop()), Some("big"));
        for item in ["a", "b", "c"] {
            assert!(queue.try_push(item, 10).is_ok());
        }
        assert_eq!(queue.try_push("d", 10), Err("d"), "item bound");
        let mut batch = Vec::new();
        assert_eq!(
            queue.drain_into(&mut batch, 15),
            10,
            "at most the byte budget, at least one"
        );
        assert_eq!(batch, ["a"]);
        assert_eq!(queue.clear(), 2);
        assert_eq!(queue.len(), 0);
    }

    #[test]
    fn a_waiting_producer_proceeds_once_there_is_room_and_close_releases_it() {
        block_on(async {
            let queue = Rc::new(BoundedQueue::new(1, 100));
            queue.push(1, 1).await.unwrap();
            let mut waiting = Box::pin(queue.push(2, 1));
            assert!(
                poll_once(&mut waiting).await.is_none(),
                "full: the producer waits"
            );
            assert_eq!(queue.pop().await, Some(1));
            assert_eq!(poll_once(&mut waiting).await, Some(Ok(())));
            let mut blocked = Box::pin(queue.push(3, 1));
            assert!(poll_once(&mut blocked).await.is_none());
            queue.close();
            assert_eq!(poll_once(&mut blocked).await, Some(Err(3)));
            assert_eq!(queue.pop().await, Some(2), "queued items survive the close");
            assert_eq!(queue.pop().await, None);
        });
    }
}
