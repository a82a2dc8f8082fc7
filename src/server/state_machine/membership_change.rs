//! A membership change as a raft conf change entry (etcd's MemberAdd / MemberRemove /
//! MemberPromote): raft's `ConfChange` says what changes for raft, its context says who asked
//! (the proposal id the proposer waits on) and what the cluster table records (the member's
//! peer URLs, whether it is a learner).
//!
//! Context layout: 8 bytes proposal id (little-endian; 0 for the bootstrap's entries), 1 byte
//! kind, then etcd's `Member` message (id, peer URLs, is_learner).

use basalt_net::proto::etcdserverpb as pb;
use prost014::Message as _;
use raft::prelude::{ConfChange, ConfChangeType, Entry, EntryType};

/// What a membership change does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipChange {
    /// A new member (a voter, or a learner) with its peer URLs.
    Add {
        member_id: u64,
        peer_urls: Vec<String>,
        learner: bool,
    },
    /// A learner becomes a voter.
    Promote { member_id: u64 },
    /// A member leaves for good.
    Remove { member_id: u64 },
}

const KIND_ADD: u8 = 1;
const KIND_PROMOTE: u8 = 2;
const KIND_REMOVE: u8 = 3;

impl MembershipChange {
    /// The member it concerns.
    pub fn member_id(&self) -> u64 {
        match self {
            MembershipChange::Add { member_id, .. }
            | MembershipChange::Promote { member_id }
            | MembershipChange::Remove { member_id } => *member_id,
        }
    }

    /// raft's conf change for it, its context naming proposal `id`.
    pub fn to_conf_change(&self, id: u64) -> ConfChange {
        let (change_type, kind, record) = match self {
            MembershipChange::Add {
                member_id,
                peer_urls,
                learner,
            } => (
                if *learner {
                    ConfChangeType::AddLearnerNode
                } else {
                    ConfChangeType::AddNode
                },
                KIND_ADD,
                pb::Member {
                    id: *member_id,
                    peer_ur_ls: peer_urls.clone(),
                    is_learner: *learner,
                    ..Default::default()
                },
            ),
            MembershipChange::Promote { member_id } => (
                ConfChangeType::AddNode,
                KIND_PROMOTE,
                pb::Member {
                    id: *member_id,
                    ..Default::default()
                },
            ),
            MembershipChange::Remove { member_id } => (
                ConfChangeType::RemoveNode,
                KIND_REMOVE,
                pb::Member {
                    id: *member_id,
                    ..Default::default()
                },
            ),
        };
        let mut context = Vec::with_capacity(9 + 64);
        context.extend_from_slice(&id.to_le_bytes());
        context.push(kind);
        context.extend_from_slice(&record.encode_to_vec());
        let mut change = ConfChange::default();
        change.set_change_type(change_type);
        change.node_id = self.member_id();
        change.context = context;
        change
    }

    /// The proposal id and change a conf change entry carries; an error for an entry that is
    /// not one of ours (or whose raft change disagrees with its context).
    pub fn from_entry(entry: &Entry) -> Result<(u64, MembershipChange, ConfChange), String> {
        use prost::Message as _;
        if entry.get_entry_type() != EntryType::EntryConfChange {
            return Err(format!(
                "entry {} is not a conf change ({:?})",
                entry.index,
                entry.get_entry_type()
            ));
        }
        let change = ConfChange::decode(entry.data.as_ref())
            .map_err(|e| format!("conf change entry {} does not decode: {e}", entry.index))?;
        let (id, decoded) = Self::from_context(&change.context)?;
        if decoded.to_conf_change(id) != change {
            return Err(format!(
                "conf change entry {}: raft's change and its context disagree",
                entry.index
            ));
        }
        Ok((id, decoded, change))
    }

    fn from_context(context: &[u8]) -> Result<(u64, MembershipChange), String> {
        if context.len() < 9 {
            return Err("conf change context too short".into());
        }
        let id = u64::from_le_bytes(context[..8].try_into().expect("8 bytes"));
        let record = pb::Member::decode(&context[9..])
            .map_err(|e| format!("conf change member does not decode: {e}"))?;
        let change = match context[8] {
            KIND_ADD => MembershipChange::Add {
                member_id: record.id,
                peer_urls: record.peer_ur_ls,
                learner: record.is_learner,
            },
            KIND_PROMOTE => MembershipChange::Promote {
                member_id: record.id,
            },
            KIND_REMOVE => MembershipChange::Remove {
                member_id: record.id,
            },
            kind => return Err(format!("unknown conf change kind {kind}")),
        };
        if change.member_id() == 0 {
            return Err("conf change for member 0".into());
        }
        Ok((id, change))
    }

    /// The bootstrap's entries: one AddNode per initial member at indices 1..=n of term 1, as
    /// etcd's bootstrap writes them, so a member that joins later replays the whole
    /// membership from its first entry (adding a voter raft already has is a no-op).
    pub fn bootstrap_entries(members: &[(u64, Vec<String>)]) -> Vec<Entry> {
        use prost::Message as _;
        members
            .iter()
            .enumerate()
            .map(|(i, (member_id, peer_urls))| {
                let change = MembershipChange::Add {
                    member_id: *member_id,
                    peer_urls: peer_urls.clone(),
                    learner: false,
                }
                .to_conf_change(0);
                let mut entry = Entry::default();
                entry.set_entry_type(EntryType::EntryConfChange);
                entry.index = i as u64 + 1;
                entry.term = 1;
                entry.data = change.encode_to_vec();
                entry
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_through_entries() {
        use prost::Message as _;
        for change in [
            MembershipChange::Add {
                member_id: 7,
                peer_urls: vec!["http://10.0.0.7:2380".into()],
                learner: true,
            },
            MembershipChange::Promote { member_id: 7 },
            MembershipChange::Remove { member_id: 9 },
        ] {
            let mut entry = Entry::default();
            entry.set_entry_type(EntryType::EntryConfChange);
            entry.data = change.to_conf_change(42).encode_to_vec();
            let (id, decoded, _) = MembershipChange::from_entry(&entry).unwrap();
            assert_eq!((id, decoded), (42, change));
        }
        let entries = MembershipChange::bootstrap_entries(&[(1, vec![]), (2, vec![])]);
        assert_eq!(
            entries
                .iter()
                .map(|e| (e.index, e.term))
                .collect::<Vec<_>>(),
            [(1, 1), (2, 1)]
        );
        assert!(MembershipChange::from_entry(&entries[1]).is_ok());
    }
}
