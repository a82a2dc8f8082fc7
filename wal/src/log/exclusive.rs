//! Operations that hold the whole log (truncation, reset): appends wait, queued records drain
//! first, and the operation runs to completion even if its caller goes away; a storage fault
//! inside stops the log.

use super::*;

/// Runs a multi-step operation as its own task, so that dropping the caller's future (a timeout,
/// a select) cannot stop it halfway and leave the log held or half-changed.
pub(super) async fn run_to_completion<T: 'static>(
    operation: impl Future<Output = WalResult<T>> + 'static,
) -> WalResult<T> {
    glommio::spawn_local(operation)
        .detach()
        .await
        .unwrap_or(Err(WalError::Closed))
}

/// Runs `operation` holding the log (appends wait, queued records drain first), to completion.
pub(super) async fn exclusively<F, Fut>(shared: Rc<Shared>, operation: F) -> WalResult<()>
where
    F: FnOnce(Rc<Shared>) -> Fut + 'static,
    Fut: Future<Output = WalResult<()>> + 'static,
{
    run_to_completion(async move {
        begin_exclusive(&shared).await?;
        let result = operation(shared.clone()).await;
        end_exclusive(&shared, &result);
        result
    })
    .await
}

/// Marks the log stopped if `result` is a storage fault (fail-stop).
pub(super) fn stop_on_storage_fault<T>(shared: &Shared, result: &WalResult<T>) {
    if let Err(error) = result {
        let mut state = shared.state.borrow_mut();
        if error.is_storage_fault() && state.stopped.is_none() {
            tracing::error!(%error, "wal storage fault: the log stops accepting appends");
            state.stopped = Some(Arc::new(error.clone()));
        }
    }
}

/// Holds the log for a truncation or reset: new appends wait, queued ones drain first.
pub(super) async fn begin_exclusive(shared: &Shared) -> WalResult<()> {
    poll_fn(|cx| {
        let mut state = shared.state.borrow_mut();
        if let Some(fault) = &state.stopped {
            return Poll::Ready(Err(WalError::Stopped(fault.clone())));
        }
        if state.closing {
            return Poll::Ready(Err(WalError::Closed));
        }
        if state.exclusive {
            shared.idle_waiters.register(cx.waker());
            return Poll::Pending;
        }
        state.exclusive = true;
        Poll::Ready(Ok(()))
    })
    .await?;
    let drained = poll_fn(|cx| {
        let state = shared.state.borrow();
        if let Some(fault) = &state.stopped {
            return Poll::Ready(Err(WalError::Stopped(fault.clone())));
        }
        if state.pending.is_empty() && !state.flushing {
            return Poll::Ready(Ok(()));
        }
        shared.idle_waiters.register(cx.waker());
        Poll::Pending
    })
    .await;
    if drained.is_err() {
        end_exclusive(shared, &Ok(()));
    }
    drained
}

/// Releases the log held by `begin_exclusive`; a storage fault in the operation stops it.
pub(super) fn end_exclusive(shared: &Shared, result: &WalResult<()>) {
    shared.state.borrow_mut().exclusive = false;
    stop_on_storage_fault(shared, result);
    shared.space_waiters.wake_all();
    shared.idle_waiters.wake_all();
    wake_durable_waiters(shared);
}

pub(super) async fn truncate_after_exclusive(shared: &Shared, last_kept: u64) -> WalResult<()> {
    let (next_index, checkpoint) = {
        let state = shared.state.borrow();
        (state.next_index, state.durable_checkpoint)
    };
    if last_kept + 1 >= next_index {
        return Ok(());
    }
    if last_kept + 1 < checkpoint {
        return Err(WalError::OutOfRange {
            index: last_kept + 1,
            first: checkpoint,
            last: next_index - 1,
        });
    }
    // Never rewrite old bytes: roll to a new segment that starts at the cut. Recovery lets a
    // later segment override the entries from its first index on.
    roll(shared, last_kept + 1, None).await?;
    sync_tail(shared).await?;
    let overridden = {
        let mut state = shared.state.borrow_mut();
        let fresh = state.segments.pop().expect("roll pushed a segment");
        let mut overridden = Vec::new();
        while state
            .segments
            .last()
            .is_some_and(|s| s.first_index > last_kept)
        {
            overridden.push(state.segments.pop().expect("checked non-empty"));
        }
        if let Some(trimmed) = state.segments.last_mut() {
            let keep = (last_kept + 1 - trimmed.first_index) as usize;
            trimmed.entries.truncate(keep);
        }
        state.segments.push(fresh);
        state.next_index = last_kept + 1;
        state.placed_last_index = last_kept;
        state.durable_last_index = last_kept;
        overridden
    };
    for segment in overridden {
        recycle(shared, segment).await?;
    }
    Ok(())
}

pub(super) async fn reset_exclusive(shared: &Shared, next_index: u64) -> WalResult<()> {
    roll(shared, next_index, Some(next_index)).await?;
    sync_tail(shared).await?;
    let released = {
        let mut state = shared.state.borrow_mut();
        let fresh = state.segments.pop().expect("roll pushed a segment");
        let released = std::mem::take(&mut state.segments);
        state.segments.push(fresh);
        state.next_index = next_index;
        state.placed_last_index = next_index - 1;
        state.durable_last_index = next_index - 1;
        state.queued_checkpoint = next_index;
        state.durable_checkpoint = next_index;
        released
    };
    for segment in released {
        recycle(shared, segment).await?;
    }
    Ok(())
}
