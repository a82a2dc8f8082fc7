//! The replicated state beside the key space that the apply step keeps: alarms, and the peer
//! URLs of the members (changed by MemberUpdate). Loaded from the engine's cluster table at
//! start, changed only by committed raft entries, in the same engine commit as the entry.

use std::collections::BTreeMap;

use basalt_engine::{self as engine, Engine, WriteBatch};
use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{EtcdStatus, Status};
use prost014::Message as _;

use super::alarm::AlarmSet;

const MEMBER_PREFIX: &[u8] = b"member/";
/// Records of the attributes each member published: its name and client URLs.
const ATTRIBUTES_PREFIX: &[u8] = b"attributes/";

/// Alarms and member attributes, as of the last applied entry (cloned to other cores).
#[derive(Clone, Debug)]
pub struct ClusterState {
    pub alarms: AlarmSet,
    /// Members of the cluster: id → peer URLs.
    peer_urls: BTreeMap<u64, Vec<String>>,
    /// What members published about themselves: id → (name, client URLs). A member that has
    /// not started yet has none (etcd lists it with an empty name).
    attributes: BTreeMap<u64, (String, Vec<String>)>,
}

impl ClusterState {
    /// The state stored in `engine`; `local` (this member and its configured peer URLs) is the
    /// membership until a MemberUpdate stored other URLs, as etcd keeps the URLs it stored over
    /// the `--initial-advertise-peer-urls` of a restart.
    pub fn load(engine: &Engine, local: (u64, Vec<String>)) -> Result<ClusterState, String> {
        let alarms = AlarmSet::load(engine)?;
        let mut peer_urls = BTreeMap::from([local]);
        let view = engine.read().map_err(|e| e.to_string())?;
        for (key, record) in view
            .cluster_records(MEMBER_PREFIX)
            .map_err(|e| e.to_string())?
        {
            let stored = pb::MemberUpdateRequest::decode(record.as_slice())
                .map_err(|e| format!("the member record {key:?} does not decode: {e}"))?;
            peer_urls.insert(stored.id, stored.peer_ur_ls);
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
        for (key, _) in stored.iter().chain(&published) {
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
    let mut key = MEMBER_PREFIX.to_vec();
    key.extend_from_slice(&id.to_be_bytes());
    key
}
