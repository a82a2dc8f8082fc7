//! A list of tasks waiting for a condition on the log's executor. Waiters re-check their
//! condition when woken, so a spurious wake-up is harmless. A waiter registers once per poll that
//! finds its condition false, and `wake_all` empties the list, so the list never holds more
//! entries than there are polls since the last wake-up.

use std::cell::RefCell;
use std::task::Waker;

/// Tasks waiting for one kind of change (space in the queue, a finished batch, a spare segment).
#[derive(Default)]
pub struct WaitList {
    wakers: RefCell<Vec<Waker>>,
}

impl WaitList {
    /// Registers the current task to be woken by the next `wake_all`.
    pub fn register(&self, waker: &Waker) {
        self.wakers.borrow_mut().push(waker.clone());
    }

    /// Wakes every registered task.
    pub fn wake_all(&self) {
        let wakers = std::mem::take(&mut *self.wakers.borrow_mut());
        for waker in wakers {
            waker.wake();
        }
    }
}
