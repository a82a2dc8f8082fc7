//! The replicated state beside the key space that the apply step keeps: alarms, and the
//! membership — each member's peer URLs (MemberAdd, MemberUpdate), which members are learners,
//! which were removed. Loaded from the engine's cluster table at start, changed only by
//! committed raft entries, in the same engine commit as the entry, so the table holds the
//! membership as of the engine's applied index (and raft's membership at start is read from
//! it).

use std::collections::{BTreeMap, BTreeSet};

use basalt_engine::{self as engine, Engine, WriteBatch};
use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{EtcdStatus, Status};
use prost014::Message as _;

use super::alarm::AlarmSet;
use super::membership_change::MembershipChange;

const MEMBER_PREFIX: &[u8] = b"member/";
/// Records of the attributes each member published: its name and client URLs.
const ATTRIBUTES_PREFIX: &[u8] = b"attributes/";
/// Markers of the members that are learners (empty records).
const LEARNER_PREFIX: &[u8] = b"learner/";
/// Markers of the members removed for good (empty records): they may never come back.
const REMOVED_PREFIX: &[u8] = b"removed/";
/// etcd's `--experimental-max-learners` default: at most one learner at a time.
const LEARNERS_LIMIT: usize = 1;

/// Alarms and member attributes, as of the last applied entry (cloned to other cores).
#[derive(Clone, Debug)]
pub struct ClusterState {
    pub alarms: AlarmSet,
    /// Members of the cluster: id → peer URLs.
    peer_urls: BTreeMap<u64, Vec<String>>,
    /// What members published about themselves: id → (name, client URLs). A member that has
    /// not started yet has none (etcd lists it with an empty name).
    attributes: BTreeMap<u64, (String, Vec<String>)>,
    /// Members that are learners (a subset of `peer_urls`' keys).
    learners: BTreeSet<u64>,
    /// Members removed for good.
    removed: BTreeSet<u64>,
    /// Whether the table records the membership (else it is only `local`, from the flags).
    recorded: bool,
    /// A one-member cluster's member, known from the flags but not stored in the table: the
    /// first membership change stores it too, else a restart would load a membership without
    /// it (the member it added alone).
    unstored_local: Option<u64>,
}

impl ClusterState {
    /// The state stored in `engine`; `local` (this member and its configured peer URLs) is the
    /// membership until a MemberUpdate stored other URLs, as etcd keeps the URLs it stored over
    /// the `--initial-advertise-peer-urls` of a restart.
    /// A member joining a running cluster (`joining`) starts with no membership at all until
    /// it applies the cluster's from the log.
    pub fn load(
        engine: &Engine,
        local: (u64, Vec<String>),
        joining: bool,
    ) -> Result<ClusterState, String> {
        let alarms = AlarmSet::load(engine)?;
        let mut peer_urls = BTreeMap::new();
        let view = engine.read().map_err(|e| e.to_string())?;
        for (key, record) in view
            .cluster_records(MEMBER_PREFIX)
            .map_err(|e| e.to_string())?
        {
            let stored = pb::MemberUpdateRequest::decode(record.as_slice())
                .map_err(|e| format!("the member record {key:?} does not decode: {e}"))?;
            peer_urls.insert(stored.id, stored.peer_ur_ls);
        }
        let id_of = |key: &[u8], prefix: &[u8]| -> Result<u64, String> {
            let bytes: [u8; 8] = key[prefix.len()..]
                .try_into()
                .map_err(|_| format!("the cluster record {key:?} has no member id"))?;
            Ok(u64::from_be_bytes(bytes))
        };
        let mut learners = BTreeSet::new();
        for (key, _) in view
            .cluster_records(LEARNER_PREFIX)
            .map_err(|e| e.to_string())?
        {
            learners.insert(id_of(&key, LEARNER_PREFIX)?);
        }
        let mut removed = BTreeSet::new();
        for (key, _) in view
            .cluster_records(REMOVED_PREFIX)
            .map_err(|e| e.to_string())?
        {
            removed.insert(id_of(&key, REMOVED_PREFIX)?);
        }
        let mut recorded = !peer_urls.is_empty() || !removed.is_empty();
        let mut unstored_local = None;
        if !recorded && !joining {
            unstored_local = Some(local.0);
            // A one-member cluster (from before the bootstrap recorded members, or new): its
            // membership is itself. Only a joining member learns it from the log; counting this
            // one as unrecorded made it refuse its own log when the bootstrap entry and the
            // entries after it were applied in separate batches.
            peer_urls.insert(local.0, local.1);
            recorded = true;
        }
        let mut attributes = BTreeMap::new();
        for (key, record) in view
            .cluster_records(ATTRIBUTES_PREFIX)
            .map_err(|e| e.to_string())?
        {
            let stored = pb::Member::decode(record.as_slice())
                .map_err(|e| format!("the member attributes {key:?} do not decode: {e}"))?;
            attributes.insert(stored.id, (stored.name, stored.client_ur_ls));
        }
        Ok(ClusterState {
            alarms,
            peer_urls,
            attributes,
            learners,
            removed,
            recorded,
            unstored_local,
        })
    }

    /// Removes every stored member record: a database restored from a snapshot belongs to a
    /// new cluster, whose members come from the restore's `--initial-cluster`. Returns how
    /// many were removed.
    pub fn forget_members(engine: &Engine, batch: &mut WriteBatch<'_>) -> Result<usize, String> {
        let view = engine.read().map_err(|e| e.to_string())?;
        let stored = view
            .cluster_records(MEMBER_PREFIX)
            .map_err(|e| e.to_string())?;
        let published = view
            .cluster_records(ATTRIBUTES_PREFIX)
            .map_err(|e| e.to_string())?;
        let learners = view
            .cluster_records(LEARNER_PREFIX)
            .map_err(|e| e.to_string())?;
        let removed = view
            .cluster_records(REMOVED_PREFIX)
            .map_err(|e| e.to_string())?;
        for (key, _) in stored
            .iter()
            .chain(&published)
            .chain(&learners)
            .chain(&removed)
        {
            batch
                .delete_cluster_record(key)
                .map_err(|e| e.to_string())?;
        }
        Ok(stored.len())
    }

    /// Stores the initial members' peer URLs in `engine` (a new member of a multi-member
    /// cluster, before its log starts; every initial member stores the same).
    pub fn record_initial_members(
        engine: &Engine,
        members: &[(u64, Vec<String>)],
    ) -> Result<(), String> {
        let mut batch = engine.write().map_err(|e| e.to_string())?;
        for (id, peer_urls) in members {
            let record = pb::MemberUpdateRequest {
                id: *id,
                peer_ur_ls: peer_urls.clone(),
            };
            batch
                .put_cluster_record(&member_key(*id), &record.encode_to_vec())
                .map_err(|e| e.to_string())?;
        }
        batch.commit().map_err(|e| e.to_string())?;
        // Durable before the log's first write: a restart finds a written log and does not
        // record them again, so they must not be lost to a power cut. Start-up only, so the
        // sync may block.
        engine.sync().map(|_| ()).map_err(|e| e.to_string())
    }

    /// Every member and its peer URLs, by ID.
    pub fn members(&self) -> impl Iterator<Item = (u64, &[String])> {
        self.peer_urls
            .iter()
            .map(|(id, urls)| (*id, urls.as_slice()))
    }

    /// The name and client URLs member `id` published, if it has.
    pub fn attributes(&self, id: u64) -> Option<(&str, &[String])> {
        self.attributes
            .get(&id)
            .map(|(name, urls)| (name.as_str(), urls.as_slice()))
    }

    /// Applies a member's published name and client URLs (a member no longer in the cluster
    /// is skipped, as etcd skips attributes of a removed member).
    pub fn apply_member_attributes(
        &mut self,
        batch: &mut WriteBatch<'_>,
        published: &pb::Member,
    ) -> Result<(), engine::Error> {
        if !self.peer_urls.contains_key(&published.id) {
            return Ok(());
        }
        let record = pb::Member {
            id: published.id,
            name: published.name.clone(),
            client_ur_ls: published.client_ur_ls.clone(),
            ..Default::default()
        };
        let mut key = ATTRIBUTES_PREFIX.to_vec();
        key.extend_from_slice(&published.id.to_be_bytes());
        batch.put_cluster_record(&key, &record.encode_to_vec())?;
        self.attributes.insert(
            published.id,
            (published.name.clone(), published.client_ur_ls.clone()),
        );
        Ok(())
    }

    /// Whether the table records a membership (a member that joins has none until it applies
    /// the cluster's first entries).
    pub fn is_recorded(&self) -> bool {
        self.recorded
    }

    /// Whether member `id` is a learner.
    pub fn is_learner(&self, id: u64) -> bool {
        self.learners.contains(&id)
    }

    /// Whether member `id` was removed for good.
    pub fn is_removed(&self, id: u64) -> bool {
        self.removed.contains(&id)
    }

    /// raft's membership as the table records it: voters and learners.
    pub fn conf_state(&self) -> raft::prelude::ConfState {
        let mut conf_state = raft::prelude::ConfState::default();
        for id in self.peer_urls.keys() {
            if self.learners.contains(id) {
                conf_state.learners.push(*id);
            } else {
                conf_state.voters.push(*id);
            }
        }
        conf_state
    }

    /// Voting members, and how many of them have started (published their name: etcd's
    /// `IsStarted`), leaving out `except`.
    fn voters_started(&self, except: Option<u64>) -> (usize, usize) {
        let voters = self
            .peer_urls
            .keys()
            .filter(|id| !self.learners.contains(id) && Some(**id) != except);
        voters.fold((0, 0), |(members, started), id| {
            let is_started = self
                .attributes
                .get(id)
                .is_some_and(|(name, _)| !name.is_empty());
            (members + 1, started + usize::from(is_started))
        })
    }

    /// etcd's `--strict-reconfig-check` rule for a change (`IsReadyToAddVotingMember`,
    /// `IsReadyToRemoveVotingMember`, `IsReadyToPromoteMember`): after it, the started voting
    /// members still form a quorum. Learners never count, and changing one is always allowed.
    pub fn keeps_started_quorum(&self, change: &MembershipChange) -> bool {
        let (members, started) = match change {
            MembershipChange::Add { learner: true, .. } => return true,
            MembershipChange::Remove { member_id } if self.learners.contains(member_id) => {
                return true
            }
            MembershipChange::Add { .. } => {
                let (members, started) = self.voters_started(None);
                if started == 1 && members == 1 {
                    // A second member for a one-member cluster (etcd's restore recipe).
                    return true;
                }
                (members + 1, started)
            }
            MembershipChange::Remove { member_id } => self.voters_started(Some(*member_id)),
            MembershipChange::Promote { .. } => {
                // The learner counts as a started voter after it.
                let (members, started) = self.voters_started(None);
                (members + 1, started + 1)
            }
        };
        // A quorum of `members`: more than half.
        started > members / 2
    }

    /// Applies a committed membership change as etcd validates it
    /// (`ValidateConfigurationChange`), deterministically on every member; `Ok(Ok(true))` when
    /// raft must apply it, `Ok(Ok(false))` when it changes nothing (the bootstrap's entries,
    /// replayed on members that recorded the initial membership before their log began).
    pub fn apply_membership_change(
        &mut self,
        batch: &mut WriteBatch<'_>,
        change: &MembershipChange,
        bootstrap: bool,
    ) -> Result<Result<bool, Status>, engine::Error> {
        let id = change.member_id();
        if self.removed.contains(&id) {
            return Ok(Err(EtcdStatus::MemberNotFound.into()));
        }
        match change {
            MembershipChange::Add {
                peer_urls, learner, ..
            } => {
                if let Some(urls) = self.peer_urls.get(&id) {
                    let same = urls == peer_urls && self.learners.contains(&id) == *learner;
                    return Ok(if bootstrap && same {
                        Ok(false)
                    } else {
                        Err(EtcdStatus::MemberExists.into())
                    });
                }
                let taken = self
                    .peer_urls
                    .values()
                    .flatten()
                    .any(|u| peer_urls.contains(u));
                if taken {
                    return Ok(Err(EtcdStatus::PeerUrlExists.into()));
                }
                if *learner && self.learners.len() >= LEARNERS_LIMIT {
                    return Ok(Err(EtcdStatus::TooManyLearners.into()));
                }
                let record = pb::MemberUpdateRequest {
                    id,
                    peer_ur_ls: peer_urls.clone(),
                };
                batch.put_cluster_record(&member_key(id), &record.encode_to_vec())?;
                if *learner {
                    batch.put_cluster_record(&prefixed(LEARNER_PREFIX, id), &[])?;
                    self.learners.insert(id);
                }
                self.peer_urls.insert(id, peer_urls.clone());
            }
            MembershipChange::Promote { .. } => {
                if !self.peer_urls.contains_key(&id) {
                    return Ok(Err(EtcdStatus::MemberNotFound.into()));
                }
                if !self.learners.contains(&id) {
                    return Ok(Err(EtcdStatus::MemberNotLearner.into()));
                }
                batch.delete_cluster_record(&prefixed(LEARNER_PREFIX, id))?;
                self.learners.remove(&id);
            }
            MembershipChange::Remove { .. } => {
                if !self.peer_urls.contains_key(&id) {
                    return Ok(Err(EtcdStatus::MemberNotFound.into()));
                }
                batch.delete_cluster_record(&member_key(id))?;
                batch.delete_cluster_record(&prefixed(ATTRIBUTES_PREFIX, id))?;
                batch.delete_cluster_record(&prefixed(LEARNER_PREFIX, id))?;
                batch.put_cluster_record(&prefixed(REMOVED_PREFIX, id), &[])?;
                self.peer_urls.remove(&id);
                self.attributes.remove(&id);
                self.learners.remove(&id);
                self.removed.insert(id);
            }
        }
        if let Some(local) = self.unstored_local.take() {
            if let Some(urls) = self.peer_urls.get(&local) {
                let record = pb::MemberUpdateRequest {
                    id: local,
                    peer_ur_ls: urls.clone(),
                };
                batch.put_cluster_record(&member_key(local), &record.encode_to_vec())?;
            }
        }
        self.recorded = true;
        tracing::info!(
            member_id = format!("{id:x}"),
            ?change,
            "applied a membership change"
        );
        Ok(Ok(true))
    }

    /// The peer URLs of member `id`, if it is a member.
    pub fn peer_urls(&self, id: u64) -> Option<&[String]> {
        self.peer_urls.get(&id).map(Vec::as_slice)
    }

    /// Applies a committed MemberUpdate as etcd validates a ConfChangeUpdateNode: the member
    /// must exist, and no other member may already use one of the new peer URLs.
    pub fn apply_member_update(
        &mut self,
        batch: &mut WriteBatch<'_>,
        request: &pb::MemberUpdateRequest,
    ) -> Result<Result<(), Status>, engine::Error> {
        if !self.peer_urls.contains_key(&request.id) {
            return Ok(Err(EtcdStatus::MemberNotFound.into()));
        }
        let taken = self
            .peer_urls
            .iter()
            .filter(|(id, _)| **id != request.id)
            .flat_map(|(_, urls)| urls)
            .any(|url| request.peer_ur_ls.contains(url));
        if taken {
            return Ok(Err(EtcdStatus::PeerUrlExists.into()));
        }
        batch.put_cluster_record(&member_key(request.id), &request.encode_to_vec())?;
        self.peer_urls
            .insert(request.id, request.peer_ur_ls.clone());
        tracing::info!(
            member_id = format!("{:x}", request.id),
            peer_urls = ?request.peer_ur_ls,
            "updated member peer URLs"
        );
        Ok(Ok(()))
    }
}

/// The cluster-table key of member `id`'s record.
fn member_key(id: u64) -> Vec<u8> {
    prefixed(MEMBER_PREFIX, id)
}

fn prefixed(prefix: &[u8], id: u64) -> Vec<u8> {
    let mut key = prefix.to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(member_id: u64, port: u16, learner: bool) -> MembershipChange {
        MembershipChange::Add {
            member_id,
            peer_urls: vec![format!("http://127.0.0.1:{port}")],
            learner,
        }
    }

    /// Applies `change` in an engine commit of its own; etcd's refusal message if refused.
    fn apply(
        engine: &Engine,
        cluster: &mut ClusterState,
        change: &MembershipChange,
    ) -> Result<bool, String> {
        let mut batch = engine.write().unwrap();
        let outcome = cluster
            .apply_membership_change(&mut batch, change, false)
            .unwrap();
        batch.commit().unwrap();
        outcome.map_err(|status| status.message.to_string())
    }

    fn start(cluster: &mut ClusterState, engine: &Engine, id: u64) {
        let mut batch = engine.write().unwrap();
        let published = pb::Member {
            id,
            name: format!("m{id}"),
            ..Default::default()
        };
        cluster
            .apply_member_attributes(&mut batch, &published)
            .unwrap();
        batch.commit().unwrap();
    }

    /// Goal: a one-member cluster that grows (MemberAdd on a member started alone) keeps
    /// itself in its stored membership: a reload sees both members.
    #[test]
    fn a_one_member_cluster_stores_itself_with_its_first_change() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().join("db")).unwrap();
        let local = (1, vec!["http://10.0.0.1:2380".to_string()]);
        let mut cluster = ClusterState::load(&engine, local.clone(), false).unwrap();
        assert_eq!(apply(&engine, &mut cluster, &add(2, 2, false)), Ok(true));
        let reloaded = ClusterState::load(&engine, (9, Vec::new()), false).unwrap();
        let members: Vec<(u64, Vec<String>)> = reloaded
            .members()
            .map(|(id, urls)| (id, urls.to_vec()))
            .collect();
        assert_eq!(members[0], local);
        assert_eq!(members.len(), 2);
    }

    /// Goal: membership changes are validated as etcd's ValidateConfigurationChange validates
    /// them, recorded in the cluster table (a reload sees the same membership and raft conf
    /// state), and a removed ID never comes back.
    #[test]
    fn membership_changes_are_validated_recorded_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().join("db")).unwrap();
        let mut cluster = ClusterState::load(&engine, (1, Vec::new()), true).unwrap();
        assert!(!cluster.is_recorded());
        assert_eq!(apply(&engine, &mut cluster, &add(1, 1, false)), Ok(true));
        assert_eq!(apply(&engine, &mut cluster, &add(2, 2, false)), Ok(true));
        let exists = "etcdserver: member ID already exist";
        assert_eq!(
            apply(&engine, &mut cluster, &add(2, 9, false)),
            Err(exists.into())
        );
        let taken = "etcdserver: Peer URLs already exists";
        assert_eq!(
            apply(&engine, &mut cluster, &add(3, 2, false)),
            Err(taken.into())
        );
        assert_eq!(apply(&engine, &mut cluster, &add(3, 3, true)), Ok(true));
        let too_many = "etcdserver: too many learner members in cluster";
        assert_eq!(
            apply(&engine, &mut cluster, &add(4, 4, true)),
            Err(too_many.into())
        );
        let not_learner = "etcdserver: can only promote a learner member";
        let promote = |member_id| MembershipChange::Promote { member_id };
        assert_eq!(
            apply(&engine, &mut cluster, &promote(1)),
            Err(not_learner.into())
        );
        let conf_state = ClusterState::load(&engine, (9, Vec::new()), false)
            .unwrap()
            .conf_state();
        assert_eq!(
            (conf_state.voters, conf_state.learners),
            (vec![1, 2], vec![3])
        );
        assert_eq!(apply(&engine, &mut cluster, &promote(3)), Ok(true));
        let remove = MembershipChange::Remove { member_id: 2 };
        assert_eq!(apply(&engine, &mut cluster, &remove), Ok(true));
        let not_found = "etcdserver: member not found";
        assert_eq!(apply(&engine, &mut cluster, &remove), Err(not_found.into()));
        assert_eq!(
            apply(&engine, &mut cluster, &add(2, 2, false)),
            Err(not_found.into())
        );
        let reloaded = ClusterState::load(&engine, (9, Vec::new()), false).unwrap();
        let conf_state = reloaded.conf_state();
        assert_eq!(
            (conf_state.voters, conf_state.learners),
            (vec![1, 3], vec![])
        );
        assert!(reloaded.is_removed(2) && reloaded.is_recorded());
        // The bootstrap's entry for a member already recorded changes nothing.
        let mut batch = engine.write().unwrap();
        let replayed = cluster
            .apply_membership_change(&mut batch, &add(1, 1, false), true)
            .unwrap();
        assert_eq!(replayed.ok(), Some(false));
    }

    /// Goal: `--strict-reconfig-check` follows etcd's IsReadyTo* rules: started voting members
    /// must remain a quorum after the change; learners never count.
    #[test]
    fn strict_reconfig_check_counts_started_voters() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().join("db")).unwrap();
        let mut cluster = ClusterState::load(&engine, (1, Vec::new()), true).unwrap();
        for id in 1..=3 {
            apply(&engine, &mut cluster, &add(id, id as u16, false)).unwrap();
            start(&mut cluster, &engine, id);
        }
        // 3 started of 4, then of 5: a quorum; 3 of 6 is not.
        assert!(cluster.keeps_started_quorum(&add(4, 4, false)));
        apply(&engine, &mut cluster, &add(4, 4, false)).unwrap();
        assert!(cluster.keeps_started_quorum(&add(5, 5, false)));
        apply(&engine, &mut cluster, &add(5, 5, false)).unwrap();
        assert!(!cluster.keeps_started_quorum(&add(6, 6, false)));
        assert!(cluster.keeps_started_quorum(&add(6, 6, true)));
        // Removing a started voter leaves 2 started of 4.
        assert!(!cluster.keeps_started_quorum(&MembershipChange::Remove { member_id: 1 }));
        assert!(cluster.keeps_started_quorum(&MembershipChange::Remove { member_id: 5 }));
        // A one-member cluster may take a second member; it may not remove its only one.
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().join("db")).unwrap();
        let mut alone = ClusterState::load(&engine, (1, Vec::new()), false).unwrap();
        start(&mut alone, &engine, 1);
        assert!(alone.keeps_started_quorum(&add(2, 2, false)));
        assert!(!alone.keeps_started_quorum(&MembershipChange::Remove { member_id: 1 }));
    }
}
