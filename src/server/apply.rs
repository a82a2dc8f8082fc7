//! Applies committed raft entries to the engine: each proposal runs as one MVCC write
//! transaction; the batch of entries of one raft step is committed to the B+tree once, with the
//! raft index it reaches, so a restart replays exactly the entries after the last *durable*
//! one. That commit is unsynced (published to readers, no fdatasync): the WAL already holds the
//! entries durably, and the checkpoint (`Engine::sync`, see `member`) makes the engine durable
//! before the WAL forgets them.

use basalt_engine::{self as engine, Engine};
use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{EtcdStatus, Status};
use raft::prelude::Entry;

use super::convert;
use super::proposal::Proposal;

/// The answer to one applied proposal, for the client that proposed it.
#[derive(Debug)]
pub enum Applied {
    Put(pb::PutResponse),
    DeleteRange(pb::DeleteRangeResponse),
    Txn(pb::TxnResponse),
    Compaction(pb::CompactionResponse),
}

/// One proposal's id and the answer for the client waiting on it.
pub type Answer = (u64, Result<Applied, Status>);

/// What one apply batch produced: the clients' answers and the watch feed's events.
#[derive(Default)]
pub struct AppliedBatch {
    pub answers: Vec<Answer>,
    /// Every change, in revision order.
    pub events: Vec<engine::Event>,
    /// Whether a compaction still has revisions to remove physically.
    pub compaction_pending: bool,
}

/// Applies `entries` (in index order) in one engine commit; returns each proposal's id and
/// answer, and the events. A storage error is returned as `Err`: the member must stop.
pub fn apply_entries(
    engine: &Engine,
    entries: &[Entry],
    header: pb::ResponseHeader,
    compaction_pending: bool,
) -> Result<AppliedBatch, engine::Error> {
    let mut compaction_pending = compaction_pending;
    let mut answers = Vec::with_capacity(entries.len());
    let mut all_events = Vec::new();
    let Some(last) = entries.last() else {
        return Ok(AppliedBatch::default());
    };
    let mut batch = engine.write()?;
    for entry in entries {
        if entry.data.is_empty() {
            continue; // a new leader's empty entry, or a membership change with no data
        }
        let (id, proposal) = match Proposal::decode(&entry.data) {
            Ok(decoded) => decoded,
            Err(reason) => panic!(
                "committed raft entry {} is not a proposal: {reason}",
                entry.index
            ),
        };
        let answer = match proposal {
            Proposal::Put(request) => {
                batch
                    .put(&convert::put_request(&request))
                    .map(|(response, events)| {
                        all_events.extend(events);
                        Applied::Put(convert::put_response(response, header))
                    })
            }
            Proposal::DeleteRange(request) => batch
                .delete_range(&convert::delete_range_request(&request))
                .map(|(response, events)| {
                    all_events.extend(events);
                    Applied::DeleteRange(convert::delete_range_response(response, header))
                }),
            Proposal::Txn(request) => match convert::txn_request(&request) {
                Some(txn) => batch.txn(&txn).map(|(response, events)| {
                    all_events.extend(events);
                    Applied::Txn(convert::txn_response(response, header))
                }),
                None => Err(engine::Error::EmptyKey),
            },
            Proposal::Compaction(request) => batch.compact(request.revision).map(|done| {
                compaction_pending = !done;
                let header = pb::ResponseHeader {
                    revision: batch.current_revision(),
                    ..header
                };
                Applied::Compaction(pb::CompactionResponse {
                    header: Some(header),
                })
            }),
        };
        match answer {
            Ok(applied) => answers.push((id, Ok(applied))),
            Err(error) if is_request_error(&error) => answers.push((id, Err(status_of(&error)))),
            Err(error) => return Err(error),
        }
    }
    // A compaction removes revisions in bounded steps, one step per apply batch, so it never
    // stalls writes for long.
    if compaction_pending {
        compaction_pending = !batch.compact_step(engine::COMPACT_STEP_BUDGET)?;
    }
    batch.set_applied_index(last.index);
    batch.commit_unsynced()?;
    Ok(AppliedBatch {
        answers,
        events: all_events,
        compaction_pending,
    })
}

/// Whether an engine error is the request's fault (answered to the client, nothing changed)
/// rather than the storage's (the member stops).
fn is_request_error(error: &engine::Error) -> bool {
    !matches!(
        error,
        engine::Error::Io { .. }
            | engine::Error::Corrupt { .. }
            | engine::Error::BadFile { .. }
            | engine::Error::Poisoned
    )
}

/// The gRPC status etcd answers an engine request error with.
pub fn status_of(error: &engine::Error) -> Status {
    match error {
        engine::Error::Compacted => EtcdStatus::Compacted.into(),
        engine::Error::FutureRevision => EtcdStatus::FutureRevision.into(),
        engine::Error::KeyNotFound => EtcdStatus::KeyNotFound.into(),
        engine::Error::DuplicateKey => EtcdStatus::DuplicateKey.into(),
        engine::Error::EmptyKey => EtcdStatus::EmptyKey.into(),
        engine::Error::KeyTooLarge { .. } | engine::Error::ValueTooLarge { .. } => {
            EtcdStatus::RequestTooLarge.into()
        }
        other => Status::new(basalt_net::Code::Internal, other.to_string()),
    }
}
