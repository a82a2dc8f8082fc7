//! Applies committed raft entries to the engine: each proposal runs as one MVCC write
//! transaction; the batch of entries of one raft step is committed to the B+tree once, with the
//! raft index it reaches, so a restart replays exactly the entries after the last *durable*
//! one. That commit is unsynced (published to readers, no fdatasync): the WAL already holds the
//! entries durably, and the checkpoint (`Engine::sync`, see `member::raft_member`) makes the
//! engine durable before the WAL forgets them.

use basalt_engine::{self as engine, Engine, ResponseBudget};
use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{EtcdStatus, Status};
use raft::prelude::Entry;

use super::auth_hub::AuthHub;
use super::auth_store::AuthState;
use super::cluster_state::ClusterState;
use super::convert;
use super::membership_change::MembershipChange;
use super::proposal::Proposal;
use super::write_cost;

/// The answer to one applied proposal, for the client that proposed it.
#[derive(Debug)]
pub enum Applied {
    Put(pb::PutResponse),
    DeleteRange(pb::DeleteRangeResponse),
    Txn(pb::TxnResponse),
    Compaction(pb::CompactionResponse),
    /// Its header is filled by the service.
    Alarm(pb::AlarmResponse),
    MemberUpdate,
    MemberAttributes,
    /// A membership change (MemberAdd / Remove / Promote) applied.
    Membership,
    LeaseGrant(pb::LeaseGrantResponse),
    LeaseRevoke(pb::LeaseRevokeResponse),
    /// Internal lease proposals (checkpoints, expiries): nothing to report.
    LeaseInternal,
    /// An auth store change: the header of its response.
    Auth(pb::ResponseHeader),
}

/// A change to the set of leases, for the lessor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaseApplied {
    Granted { id: i64, ttl: i64 },
    Revoked { id: i64 },
    Checkpointed { id: i64, remaining_ttl: i64 },
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
    /// Compactions that asked to be answered once physically done (etcd's `physical`), and
    /// are not yet: their answers wait for the member's compactor.
    pub physical_compactions: Vec<u64>,
    /// Lease changes, in order.
    pub leases: Vec<LeaseApplied>,
    /// Membership changes the cluster table accepted, in order: raft must apply them too.
    pub conf_changes: Vec<(MembershipChange, raft::prelude::ConfChange)>,
    /// Members whose peer URLs changed (`None`: removed), in order, for the peer transport.
    pub peer_changes: Vec<(u64, Option<Vec<String>>)>,
}

/// How one apply batch runs, beside its entries.
#[derive(Clone, Copy, Debug)]
pub struct ApplyOptions {
    /// A physical compaction is still under way from an earlier batch.
    pub compaction_pending: bool,
    /// A Compaction removes at most this many revisions per batch
    /// (`--experimental-compaction-batch-limit`, 1,000 by default): steps of 10,000 in apply
    /// batches held a Kubernetes events load's applies for 40–65 ms, every write waiting on them.
    pub compaction_step_revisions: usize,
    /// The events must carry each put's previous value (a watcher on this core wants
    /// `prev_kv`); without, a put skips that lookup unless its own request needs it.
    pub events_prev_kv: bool,
}

/// Applies `entries` (in index order) in one engine commit; returns each proposal's id and
/// answer, and the events. A storage error is returned as `Err`: the member must stop.
pub fn apply_entries(
    engine: &Engine,
    entries: &[Entry],
    header: pb::ResponseHeader,
    options: ApplyOptions,
    cluster: &mut ClusterState,
    auth_hub: &AuthHub,
) -> Result<AppliedBatch, engine::Error> {
    let ApplyOptions {
        compaction_pending,
        compaction_step_revisions,
        events_prev_kv,
    } = options;
    let mut physical_compactions = Vec::new();
    let mut compaction_pending = compaction_pending;
    let mut answers = Vec::with_capacity(entries.len());
    let mut all_events = Vec::new();
    let mut leases = Vec::new();
    let mut conf_changes = Vec::new();
    let mut peer_changes = Vec::new();
    let Some(last) = entries.last() else {
        return Ok(AppliedBatch::default());
    };
    let mut batch = engine.write()?;
    batch.set_events_prev_kv(events_prev_kv);
    // The auth store as of this batch; cloned once if an entry changes it, published after
    // the commit.
    let mut auth = auth_hub.state();
    let mut auth_changed = false;
    let mut token_effects = Vec::new();
    for entry in entries {
        if entry.get_entry_type() != raft::prelude::EntryType::EntryNormal {
            // A membership change (the member checked it decodes before applying).
            let (id, change, conf_change) = MembershipChange::from_entry(entry)
                .unwrap_or_else(|reason| panic!("committed {reason}"));
            match cluster.apply_membership_change(&mut batch, &change, id == 0)? {
                Ok(changed) => {
                    if changed {
                        match &change {
                            MembershipChange::Add {
                                member_id,
                                peer_urls,
                                ..
                            } => peer_changes.push((*member_id, Some(peer_urls.clone()))),
                            MembershipChange::Remove { member_id } => {
                                peer_changes.push((*member_id, None))
                            }
                            MembershipChange::Promote { .. } => {}
                        }
                        conf_changes.push((change, conf_change));
                    }
                    answers.push((id, Ok(Applied::Membership)));
                }
                Err(refused) => answers.push((id, Err(refused))),
            }
            continue;
        }
        if entry.data.is_empty() {
            continue; // a new leader's empty entry
        }
        let (id, proposal) = match Proposal::decode(&entry.data) {
            Ok(decoded) => decoded,
            Err(reason) => panic!(
                "committed raft entry {} is not a proposal: {reason}",
                entry.index
            ),
        };
        let (proposal, caller) = match proposal {
            Proposal::AsUser {
                user,
                auth_revision,
                inner,
            } => (*inner, Some((user, auth_revision))),
            proposal => (proposal, None),
        };
        if let Some((user, revision)) = &caller {
            if let Some(refused) = refused_by_auth(&auth, user, *revision) {
                answers.push((id, Err(refused)));
                continue;
            }
        }
        if let Some(refused) = refused_by_alarm(cluster, &proposal) {
            answers.push((id, Err(refused)));
            continue;
        }
        let answer = match proposal {
            Proposal::Alarm(request) => {
                let response = cluster.alarms.apply(&mut batch, &request)?;
                answers.push((id, Ok(Applied::Alarm(response))));
                continue;
            }
            Proposal::Auth(request) => {
                // etcd's authApplier: every auth change needs root once auth is on.
                let user = caller.as_ref().map_or("", |(user, _)| user.as_str());
                if let Err(refused) = auth.check_admin(user) {
                    answers.push((id, Err(refused.into())));
                    continue;
                }
                let state = std::sync::Arc::make_mut(&mut auth);
                let outcome = state.apply(&mut batch, &request, &mut token_effects)?;
                auth_changed = true;
                let header = pb::ResponseHeader {
                    revision: batch.current_revision(),
                    ..header
                };
                answers.push((
                    id,
                    outcome.map(|()| Applied::Auth(header)).map_err(Into::into),
                ));
                continue;
            }
            Proposal::AsUser { .. } => {
                answers.push((
                    id,
                    Err(Status::internal("etcdserver: nested as-user proposal")),
                ));
                continue;
            }
            Proposal::MemberAttributes(published) => {
                cluster.apply_member_attributes(&mut batch, &published)?;
                answers.push((id, Ok(Applied::MemberAttributes)));
                continue;
            }
            Proposal::MemberUpdate(request) => {
                let outcome = cluster.apply_member_update(&mut batch, &request)?;
                if outcome.is_ok() {
                    peer_changes.push((request.id, Some(request.peer_ur_ls.clone())));
                }
                answers.push((id, outcome.map(|()| Applied::MemberUpdate)));
                continue;
            }
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
                Some(txn) => {
                    // A write txn's ranges are read here, on the owner core, at apply: bound
                    // their answer as a read's (see kv_service) so 128 full-range reads beside
                    // one put cannot allocate until the process dies. The writes apply either
                    // way; only the answer is refused, as etcd's send of it would fail.
                    let mut budget = ResponseBudget::new(basalt_net::MAX_SEND_MESSAGE_BYTES);
                    batch
                        .txn_within(&txn, &mut budget)
                        .and_then(|(response, events)| {
                            all_events.extend(events);
                            budget.check()?;
                            Ok(Applied::Txn(convert::txn_response(response, header)))
                        })
                }
                None => Err(engine::Error::EmptyKey),
            },
            Proposal::Compaction(request) => batch
                .compact_within(request.revision, compaction_step_revisions)
                .map(|done| {
                    compaction_pending = !done;
                    if !done && request.physical {
                        physical_compactions.push(id);
                    }
                    let header = pb::ResponseHeader {
                        revision: batch.current_revision(),
                        ..header
                    };
                    Applied::Compaction(pb::CompactionResponse {
                        header: Some(header),
                    })
                }),
            Proposal::LeaseGrant(request) => batch.grant_lease(request.id, request.ttl).map(|()| {
                leases.push(LeaseApplied::Granted {
                    id: request.id,
                    ttl: request.ttl,
                });
                Applied::LeaseGrant(pb::LeaseGrantResponse {
                    header: Some(pb::ResponseHeader {
                        revision: batch.current_revision(),
                        ..header
                    }),
                    id: request.id,
                    ttl: request.ttl,
                    error: String::new(),
                })
            }),
            Proposal::LeaseRevoke(request) => batch.revoke_lease(request.id).map(|events| {
                all_events.extend(events);
                leases.push(LeaseApplied::Revoked { id: request.id });
                Applied::LeaseRevoke(pb::LeaseRevokeResponse {
                    header: Some(pb::ResponseHeader {
                        revision: batch.current_revision(),
                        ..header
                    }),
                })
            }),
            Proposal::LeaseExpire(ids) => {
                let mut result = Ok(Applied::LeaseInternal);
                for id in ids {
                    match batch.revoke_lease(id) {
                        Ok(events) => {
                            all_events.extend(events);
                            leases.push(LeaseApplied::Revoked { id });
                        }
                        // Revoked by a client (or an earlier expiry) since it was proposed.
                        Err(engine::Error::LeaseNotFound) => {}
                        Err(error) => {
                            result = Err(error);
                            break;
                        }
                    }
                }
                result
            }
            Proposal::LeaseCheckpoint(request) => {
                let mut result = Ok(Applied::LeaseInternal);
                for checkpoint in &request.checkpoints {
                    if let Err(error) =
                        batch.checkpoint_lease(checkpoint.id, checkpoint.remaining_ttl)
                    {
                        result = Err(error);
                        break;
                    }
                    leases.push(LeaseApplied::Checkpointed {
                        id: checkpoint.id,
                        remaining_ttl: checkpoint.remaining_ttl,
                    });
                }
                result
            }
        };
        match answer {
            Ok(applied) => answers.push((id, Ok(applied))),
            Err(error) if is_request_error(&error) => answers.push((id, Err(status_of(&error)))),
            Err(error) => return Err(error),
        }
    }
    // The rest of a compaction is the member's compactor's work (see `compaction_step`).
    batch.set_applied_index(last.index);
    // Deferred: the answers can be told at once, and the page writes follow them (every read
    // view publishes the batch first, so none can miss it).
    batch.commit_deferred()?;
    if auth_changed {
        auth_hub.publish(auth, &token_effects);
    }
    Ok(AppliedBatch {
        answers,
        events: all_events,
        compaction_pending,
        physical_compactions,
        leases,
        conf_changes,
        peer_changes,
    })
}

/// One step of a pending compaction, in an engine commit of its own: up to
/// `step_revisions` revisions. Returns whether the compaction is done. Like etcd's
/// compactor, the member runs one step every few milliseconds, writes or not, so a compaction
/// finishes (and a following defragment finds its space) on an idle cluster too.
pub fn compaction_step(engine: &Engine, step_revisions: usize) -> Result<bool, engine::Error> {
    let mut batch = engine.write()?;
    let done = batch.compact_step(step_revisions)?;
    batch.commit_unsynced()?;
    Ok(done)
}

/// etcd's check of a client write's auth header at apply: with auth on, a write from nobody
/// is refused, and so is one whose permissions were checked against an older auth store.
fn refused_by_auth(auth: &AuthState, user: &str, revision: u64) -> Option<Status> {
    if !auth.is_enabled() {
        return None;
    }
    if user.is_empty() || revision == 0 {
        return Some(EtcdStatus::UserEmpty.into());
    }
    if revision < auth.revision() {
        return Some(EtcdStatus::AuthOldRevision.into());
    }
    None
}

/// What a raised alarm refuses at apply, as etcd's appliers do: with NOSPACE ("capped"), a Put
/// and a Txn that puts; with CORRUPT, every write. Entries proposed before the alarm was
/// raised are refused too, so every member answers them alike.
fn refused_by_alarm(cluster: &ClusterState, proposal: &Proposal) -> Option<Status> {
    use pb::AlarmType;
    let writes = matches!(
        proposal,
        Proposal::Put(_)
            | Proposal::DeleteRange(_)
            | Proposal::Txn(_)
            | Proposal::Compaction(_)
            | Proposal::LeaseGrant(_)
            | Proposal::LeaseRevoke(_)
    );
    if writes && cluster.alarms.is_raised(AlarmType::Corrupt) {
        return Some(EtcdStatus::Corrupt.into());
    }
    if cluster.alarms.is_raised(AlarmType::Nospace) {
        let grows = match proposal {
            Proposal::Put(_) | Proposal::LeaseGrant(_) => true,
            Proposal::Txn(request) => write_cost::txn_cost(request) > 0,
            _ => false,
        };
        if grows {
            return Some(EtcdStatus::NoSpace.into());
        }
    }
    None
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
        engine::Error::LeaseNotFound => EtcdStatus::LeaseNotFound.into(),
        engine::Error::LeaseExists => EtcdStatus::LeaseExists.into(),
        engine::Error::KeyTooLarge { .. } | engine::Error::ValueTooLarge { .. } => {
            EtcdStatus::RequestTooLarge.into()
        }
        engine::Error::ResponseTooLarge { .. } | engine::Error::ResponseMemoryFull { .. } => {
            Status::new(basalt_net::Code::ResourceExhausted, error.to_string())
        }
        other => Status::new(basalt_net::Code::Internal, other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::state_machine::auth_store::AuthRequest;
    use crate::server::state_machine::auth_tokens::Tokens;

    fn as_user(user: &str, auth_revision: u64, inner: Proposal) -> Proposal {
        Proposal::AsUser {
            user: user.into(),
            auth_revision,
            inner: Box::new(inner),
        }
    }

    fn put(key: &str) -> Proposal {
        Proposal::Put(pb::PutRequest {
            key: key.into(),
            value: b"v".to_vec(),
            ..Default::default()
        })
    }

    /// Goal: apply refuses, as etcd's auth applier, a write whose caller is nobody once auth
    /// is on, and one checked against an auth store that changed before it applied; a write
    /// checked against the current store goes through, and auth changes need root.
    #[test]
    fn writes_checked_against_another_auth_store_are_refused_at_apply() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().join("db")).unwrap();
        let mut cluster = ClusterState::load(&engine, (1, Vec::new()), false).unwrap();
        let hub = AuthHub::new(
            Tokens::from_flag("simple", std::time::Duration::from_secs(60)).unwrap(),
            4,
            false,
        );
        let proposals = [
            as_user(
                "",
                1,
                Proposal::Auth(AuthRequest::UserAdd(pb::AuthUserAddRequest {
                    name: "root".into(),
                    hashed_password: "hash".into(),
                    ..Default::default()
                })),
            ),
            as_user(
                "",
                2,
                Proposal::Auth(AuthRequest::UserGrantRole(pb::AuthUserGrantRoleRequest {
                    user: "root".into(),
                    role: "root".into(),
                })),
            ),
            as_user(
                "",
                3,
                Proposal::Auth(AuthRequest::Enable(Default::default())),
            ),
            // Checked before the grant: the store moved on since.
            as_user("root", 2, put("stale")),
            as_user("", 0, put("nobody")),
            as_user("root", 3, put("current")),
            // Auth on: the next change needs root.
            as_user(
                "",
                0,
                Proposal::Auth(AuthRequest::RoleAdd(pb::AuthRoleAddRequest {
                    name: "r".into(),
                })),
            ),
        ];
        let entries: Vec<Entry> = proposals
            .iter()
            .enumerate()
            .map(|(i, proposal)| Entry {
                index: i as u64 + 1,
                data: proposal.encode(i as u64 + 1),
                ..Default::default()
            })
            .collect();
        let batch = apply_entries(
            &engine,
            &entries,
            pb::ResponseHeader::default(),
            ApplyOptions {
                compaction_pending: false,
                compaction_step_revisions: 1_000,
                events_prev_kv: true,
            },
            &mut cluster,
            &hub,
        )
        .unwrap();
        let outcomes: Vec<Result<(), String>> = batch
            .answers
            .into_iter()
            .map(|(_, answer)| answer.map(drop).map_err(|status| status.message))
            .collect();
        assert_eq!(
            outcomes,
            [
                Ok(()),
                Ok(()),
                Ok(()),
                Err("etcdserver: revision of auth store is old".to_string()),
                Err("etcdserver: user name is empty".to_string()),
                Ok(()),
                Err("etcdserver: user name is empty".to_string()),
            ]
        );
        assert!(hub.state().is_enabled());
        assert_eq!(hub.state().revision(), 3);
    }
}
