//! A request for one task on this executor to run soon: raised any number of times before the
//! task gets to it, it runs once (the pump after a burst of calls, the publish of a deferred
//! commit after a batch's answers).

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

#[derive(Default)]
pub(super) struct TaskSignal {
    /// Raised and not yet taken by the task.
    raised: Cell<bool>,
    /// The task, parked until the signal is raised.
    parked: RefCell<Option<Waker>>,
}

impl TaskSignal {
    /// Raises the signal; wakes the task if it is parked on it.
    pub(super) fn raise(&self) {
        if !self.raised.replace(true) {
            if let Some(task) = self.parked.borrow_mut().take() {
                task.wake();
            }
        }
    }

    /// Lowers the signal if it is raised (a raise from before this no longer counts).
    pub(super) fn lower(&self) {
        self.raised.set(false);
    }

    /// Waits until the signal is raised, and lowers it.
    pub(super) async fn taken(&self) {
        poll_fn(|context| {
            if self.raised.get() {
                return Poll::Ready(());
            }
            *self.parked.borrow_mut() = Some(context.waker().clone());
            Poll::Pending
        })
        .await;
        self.raised.set(false);
    }
}
