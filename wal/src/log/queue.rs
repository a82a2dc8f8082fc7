//! Appending: a record is copied into the pending buffer (waiting while it is full) and its
//! appender waits for the generation that carries it to become durable.

use super::*;

/// Queues one record (waiting while the pending buffer is full) and says which generation will
/// carry it. A metadata record with `checkpoint` advances the checkpoint (never backwards).
pub(super) async fn queue(
    shared: &Shared,
    kind: RecordKind,
    checkpoint: Option<u64>,
    payload: &[u8],
) -> WalResult<Queued> {
    poll_fn(|cx| {
        let mut state = shared.state.borrow_mut();
        let stored = match (kind, checkpoint) {
            (RecordKind::Entry, _) => record_bytes(payload.len()),
            (RecordKind::Metadata, None) => record_bytes(8 + payload.len()),
            (RecordKind::Metadata, Some(_)) => record_bytes(8 + state.queued_metadata.len()),
        };
        if let Some(fault) = &state.stopped {
            return Poll::Ready(Err(WalError::Stopped(fault.clone())));
        }
        if state.closing {
            return Poll::Ready(Err(WalError::Closed));
        }
        if let Some(checkpoint) = checkpoint {
            // Checked here, atomically with queueing: a truncation may have run meanwhile.
            if checkpoint > state.next_index {
                let (first, last) = (state.durable_checkpoint, state.next_index - 1);
                return Poll::Ready(Err(WalError::OutOfRange {
                    index: checkpoint,
                    first,
                    last,
                }));
            }
        }
        let fits = state.pending.is_empty()
            || state.pending.len() + stored <= shared.options.pending_bytes_limit;
        if state.exclusive || !fits {
            shared.space_waiters.register(cx.waker());
            return Poll::Pending;
        }
        let was_empty = state.pending.is_empty();
        let state = &mut *state;
        let index = match kind {
            RecordKind::Entry => {
                let index = state.next_index;
                state.next_index += 1;
                append_unsealed_record(&mut state.pending, kind, index, payload);
                index
            }
            RecordKind::Metadata => {
                let index = state.next_index - 1;
                if let Some(checkpoint) = checkpoint {
                    state.queued_checkpoint = state.queued_checkpoint.max(checkpoint);
                } else {
                    state.queued_metadata = payload.to_vec();
                }
                let encoded = encode_metadata(state.queued_checkpoint, &state.queued_metadata);
                append_unsealed_record(&mut state.pending, kind, index, &encoded);
                index
            }
        };
        if was_empty {
            shared.flusher_waiters.wake_all();
        }
        Poll::Ready(Ok(Queued {
            index,
            generation: state.pending_generation,
        }))
    })
    .await
}

/// Waits until the generation of `queued` is durable, or the log stopped.
pub(super) async fn wait_durable(shared: &Shared, queued: Queued) -> WalResult<()> {
    poll_fn(|cx| {
        let state = shared.state.borrow();
        if state.durable_generation >= queued.generation {
            return Poll::Ready(Ok(()));
        }
        if let Some(fault) = &state.stopped {
            return Poll::Ready(Err((**fault).clone()));
        }
        // Registered on every pending poll, so a changed waker is honoured; stale entries are
        // dropped by the next wake-up.
        shared
            .durable_waiters
            .borrow_mut()
            .push((queued.generation, cx.waker().clone()));
        Poll::Pending
    })
    .await
}
