//! What the records of a member's WAL mean, as text (the server's half of `basalt-util wal
//! dump`): an entry is a raft entry whose data is a proposal; a metadata record holds raft's
//! hard state and the snapshot the log continues from.

use prost::Message as _;
use raft::prelude::{ConfChange, ConfChangeV2, Entry, EntryType};

use crate::node::LogMetadata;
use crate::server::state_machine::proposal::Proposal;
use crate::server::state_machine::proposal_summary::summarize;

/// One entry, read back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryText {
    pub term: u64,
    pub index: u64,
    /// etcd-dump-logs' names: `norm`, `conf`, `confv2`.
    pub entry_type: &'static str,
    /// The proposal's summary (`id=<proposal id> <summary>`), a configuration change, or
    /// empty for the empty entry each new leader appends.
    pub data: String,
}

/// Reads a WAL entry record's payload; `Err` when it is not a raft entry basalt wrote.
pub fn describe_entry(payload: &[u8]) -> Result<EntryText, String> {
    let entry = Entry::decode(payload).map_err(|e| format!("not a raft entry: {e}"))?;
    let (entry_type, data) = match entry.get_entry_type() {
        EntryType::EntryNormal if entry.data.is_empty() => ("norm", String::new()),
        EntryType::EntryNormal => {
            let (id, proposal) = Proposal::decode(&entry.data)?;
            ("norm", format!("id={id:x} {}", summarize(&proposal)))
        }
        EntryType::EntryConfChange => {
            let change = ConfChange::decode(entry.data.as_ref())
                .map_err(|e| format!("not a raft configuration change: {e}"))?;
            (
                "conf",
                format!(
                    "{:?} node_id={:x}",
                    change.get_change_type(),
                    change.node_id
                ),
            )
        }
        EntryType::EntryConfChangeV2 => {
            let change = ConfChangeV2::decode(entry.data.as_ref())
                .map_err(|e| format!("not a raft configuration change: {e}"))?;
            let changes = change
                .changes
                .iter()
                .map(|single| {
                    format!(
                        "{:?} node_id={:x}",
                        single.get_change_type(),
                        single.node_id
                    )
                })
                .collect::<Vec<_>>()
                .join(", ");
            ("confv2", changes)
        }
    };
    Ok(EntryText {
        term: entry.term,
        index: entry.index,
        entry_type,
        data,
    })
}

/// Reads a WAL metadata record's caller metadata (raft's hard state and snapshot metadata).
pub fn describe_metadata(metadata: &[u8]) -> Result<String, String> {
    let metadata = LogMetadata::decode(metadata)?;
    let hard_state = &metadata.hard_state;
    let snapshot = &metadata.snapshot;
    Ok(format!(
        "term={} vote={:x} commit={} snapshot_index={} snapshot_term={}",
        hard_state.term, hard_state.vote, hard_state.commit, snapshot.index, snapshot.term
    ))
}
