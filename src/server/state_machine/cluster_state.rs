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

/// Alarms and member attributes, as of the last applied entry (cloned to other cores).
#[derive(Clone, Debug)]
pub struct ClusterState {
    pub alarms: AlarmSet,
    /// Members of the cluster: id → peer URLs. One member until clustering exists.
    peer_urls: BTreeMap<u64, Vec<String>>,
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
        Ok(ClusterState { alarms, peer_urls })
    }

    /// Removes every stored member record: a database restored from a snapshot belongs to a
    /// new cluster, whose members come from the restore's `--initial-cluster`. Returns how
    /// many were removed.
    pub fn forget_members(engine: &Engine, batch: &mut WriteBatch<'_>) -> Result<usize, String> {
        let view = engine.read().map_err(|e| e.to_string())?;
        let stored = view
            .cluster_records(MEMBER_PREFIX)
            .map_err(|e| e.to_string())?;
        for (key, _) in &stored {
            batch
                .delete_cluster_record(key)
                .map_err(|e| e.to_string())?;
        }
        Ok(stored.len())
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
        let mut key = MEMBER_PREFIX.to_vec();
        key.extend_from_slice(&request.id.to_be_bytes());
        batch.put_cluster_record(&key, &request.encode_to_vec())?;
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
