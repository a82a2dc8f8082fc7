//! A stop signal for one executor's server: raised once (e.g. on SIGTERM), it makes the accept
//! loop stop and every HTTP/2 connection send GOAWAY and drain its calls.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// A one-shot, executor-local signal; clones share it.
#[derive(Clone, Default)]
pub struct ShutdownSignal {
    state: Rc<RefCell<SignalState>>,
}

#[derive(Default)]
struct SignalState {
    raised: bool,
    /// One slot per waiting future (freed on drop), so polling many times never grows it.
    waiters: Vec<Option<Waker>>,
}

impl ShutdownSignal {
    /// A signal not raised yet.
    pub fn new() -> ShutdownSignal {
        ShutdownSignal::default()
    }

    /// Raises the signal and wakes everything waiting on it; raising twice is harmless.
    pub fn raise(&self) {
        let waiters = {
            let mut state = self.state.borrow_mut();
            state.raised = true;
            std::mem::take(&mut state.waiters)
        };
        for waker in waiters.into_iter().flatten() {
            waker.wake();
        }
    }

    /// True once raised.
    pub fn is_raised(&self) -> bool {
        self.state.borrow().raised
    }

    /// Resolves once the signal is raised.
    pub fn raised(&self) -> Raised {
        Raised {
            signal: self.clone(),
            slot: None,
        }
    }
}

/// The future of [`ShutdownSignal::raised`].
pub struct Raised {
    signal: ShutdownSignal,
    slot: Option<usize>,
}

impl Future for Raised {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut state = this.signal.state.borrow_mut();
        if state.raised {
            return Poll::Ready(());
        }
        let waker = Some(cx.waker().clone());
        match this.slot {
            Some(slot) if slot < state.waiters.len() => state.waiters[slot] = waker,
            _ => {
                let free = state.waiters.iter().position(Option::is_none);
                let slot = match free {
                    Some(slot) => {
                        state.waiters[slot] = waker;
                        slot
                    }
                    None => {
                        state.waiters.push(waker);
                        state.waiters.len() - 1
                    }
                };
                this.slot = Some(slot);
            }
        }
        Poll::Pending
    }
}

impl Drop for Raised {
    fn drop(&mut self) {
        if let Some(slot) = self.slot {
            if let Some(waiter) = self.signal.state.borrow_mut().waiters.get_mut(slot) {
                *waiter = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! Goal: waiters wake on raise, late waiters see it at once, and repeated polls or dropped
    //! waiters do not grow the waiter list.
    use super::*;
    use futures_lite::future;

    #[test]
    fn raise_wakes_waiters_and_slots_are_reused() {
        let signal = ShutdownSignal::new();
        let mut first = Box::pin(signal.raised());
        for _ in 0..3 {
            assert!(future::block_on(future::poll_once(&mut first)).is_none());
        }
        assert_eq!(signal.state.borrow().waiters.len(), 1);
        {
            let mut second = Box::pin(signal.raised());
            assert!(future::block_on(future::poll_once(&mut second)).is_none());
        }
        let mut third = Box::pin(signal.raised());
        assert!(future::block_on(future::poll_once(&mut third)).is_none());
        assert_eq!(
            signal.state.borrow().waiters.len(),
            2,
            "the dropped slot is reused"
        );
        signal.raise();
        assert!(future::block_on(future::poll_once(&mut first)).is_some());
        assert!(future::block_on(future::poll_once(&mut third)).is_some());
        future::block_on(signal.raised());
        assert!(signal.is_raised());
    }
}
