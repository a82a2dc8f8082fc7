//! One event writer: creates events and now and then updates one it created, each write a
//! guarded Txn the way kube-apiserver's etcd3 store does it:
//! create = `If mod_revision(key) == 0 Then Put(key, value, lease) Else Get(key)`,
//! update = `If mod_revision(key) == last Then Put(key, value, lease) Else Get(key)`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use etcd_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp, TxnOpResponse};

use super::history::{WriteKind, WriteOutcome, WriteRecord};
use super::lease_pool::LeasePool;
use super::objects::{object_key, object_value};
use crate::server::keys::mix;
use crate::server::rate_limit::RateLimiter;
use crate::server::recorder::Recorder;

/// Objects a writer remembers as candidates for updates (the most recent ones).
const UPDATE_CANDIDATES_LIMIT: usize = 1000;
/// Writes kept for the verifier over the whole run; writers stop at this limit.
pub const HISTORY_WRITES_LIMIT: usize = 5_000_000;

/// What all writers of a run share.
pub struct WriterShared {
    pub run_id: String,
    pub namespaces: u32,
    pub val_size: usize,
    pub update_ratio: f64,
    pub duration: Duration,
    pub leases: LeasePool,
    pub limiter: Option<RateLimiter>,
    pub recorder: Arc<Recorder>,
    pub writes: Mutex<Vec<WriteRecord>>,
    /// Set when the history limit is reached: every writer stops.
    pub history_full: AtomicBool,
}

impl WriterShared {
    fn keep(&self, record: WriteRecord) {
        let mut writes = self.writes.lock().expect("writes lock");
        if writes.len() >= HISTORY_WRITES_LIMIT {
            self.history_full.store(true, Ordering::Relaxed);
            return;
        }
        writes.push(record);
    }
}

/// Runs writer number `writer` until the run's duration is over.
pub async fn run_writer(shared: Arc<WriterShared>, mut client: Client, writer: u32) {
    let started = shared.recorder.started();
    let mut candidates: VecDeque<(String, i64, u64)> = VecDeque::new();
    let mut sequence = 0u64;
    while started.elapsed() < shared.duration && !shared.history_full.load(Ordering::Relaxed) {
        if let Some(limiter) = &shared.limiter {
            limiter.wait().await;
        }
        let draw = (mix(((writer as u64) << 40) ^ sequence) >> 11) as f64 / (1u64 << 53) as f64;
        let update = !candidates.is_empty() && draw < shared.update_ratio;
        let (chosen, key, guard_revision, count) = if update {
            let index = (mix(sequence) % candidates.len() as u64) as usize;
            let (key, revision, count) = &candidates[index];
            (Some(index), key.clone(), *revision, count + 1)
        } else {
            let key = object_key(&shared.run_id, shared.namespaces, writer, sequence);
            (None, key, 0, 1)
        };
        sequence += 1;
        let kind = if update {
            WriteKind::Update
        } else {
            WriteKind::Create
        };
        let lease = match shared.leases.lease_for_object(&mut client).await {
            Ok(lease) => lease,
            Err(error) => {
                shared.recorder.error(format!("lease grant: {error}"));
                continue;
            }
        };
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key.as_bytes(),
                CompareOp::Equal,
                guard_revision,
            )])
            .and_then([TxnOp::put(
                key.as_bytes(),
                object_value(&key, count, shared.val_size),
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(key.as_bytes(), None)]);
        let sent = Instant::now();
        let outcome = match client.txn(txn).await {
            Ok(response) => {
                shared.recorder.success(sent.elapsed());
                let revision = response.header().map_or(0, |header| header.revision());
                if response.succeeded() {
                    remember(&mut candidates, chosen, &key, revision, count);
                    WriteOutcome::Applied { revision }
                } else {
                    // Resynchronise with what the server holds, as kube's retry loop does.
                    if let Some(current) = current_mod_revision(&response.op_responses()) {
                        remember(&mut candidates, chosen, &key, current, count);
                    }
                    WriteOutcome::GuardFailed
                }
            }
            Err(error) => {
                shared.recorder.error(error);
                WriteOutcome::Unknown
            }
        };
        shared.keep(WriteRecord { key, kind, outcome });
    }
}

/// The key's mod_revision from the Else branch's Get, if it exists.
fn current_mod_revision(responses: &[TxnOpResponse]) -> Option<i64> {
    responses.iter().find_map(|response| match response {
        TxnOpResponse::Get(get) => get.kvs().first().map(|kv| kv.mod_revision()),
        _ => None,
    })
}

/// Records the key's latest revision among the update candidates: in place for an update
/// (`chosen` is its index), appended for a create (bounded, oldest dropped).
fn remember(
    candidates: &mut VecDeque<(String, i64, u64)>,
    chosen: Option<usize>,
    key: &str,
    revision: i64,
    count: u64,
) {
    if let Some(index) = chosen {
        candidates[index].1 = revision;
        candidates[index].2 = count;
        return;
    }
    if candidates.len() == UPDATE_CANDIDATES_LIMIT {
        candidates.pop_front();
    }
    candidates.push_back((key.to_string(), revision, count));
}
