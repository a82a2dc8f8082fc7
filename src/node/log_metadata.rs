//! What the write-ahead log's metadata slot holds for raft: the hard state (term, vote, commit)
//! and the metadata of the snapshot the log starts after (its index, term and membership).
//! Both are written together, atomically, in the same batches as the entries.

use prost::Message as _;
use raft::prelude::{HardState, SnapshotMetadata};

/// Raft's durable metadata, as stored in the WAL's metadata slot.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LogMetadata {
    pub hard_state: HardState,
    /// The snapshot (engine checkpoint) the log continues from; index 0 for a new member.
    pub snapshot: SnapshotMetadata,
}

/// Format version byte, so a later layout can be told apart.
const FORMAT_VERSION: u8 = 1;

impl LogMetadata {
    /// Encodes as: version byte, u32 length of the hard state, hard state, snapshot metadata.
    pub fn encode(&self) -> Vec<u8> {
        let hard_state = self.hard_state.encode_to_vec();
        let snapshot = self.snapshot.encode_to_vec();
        let mut out = Vec::with_capacity(5 + hard_state.len() + snapshot.len());
        out.push(FORMAT_VERSION);
        out.extend_from_slice(&(hard_state.len() as u32).to_le_bytes());
        out.extend_from_slice(&hard_state);
        out.extend_from_slice(&snapshot);
        out
    }

    /// Decodes what `encode` wrote; an empty slot (a log never written) is the default.
    pub fn decode(bytes: &[u8]) -> Result<LogMetadata, String> {
        if bytes.is_empty() {
            return Ok(LogMetadata::default());
        }
        if bytes[0] != FORMAT_VERSION {
            return Err(format!("unknown raft metadata format version {}", bytes[0]));
        }
        let length_bytes = bytes.get(1..5).ok_or("raft metadata too short")?;
        let length = u32::from_le_bytes(length_bytes.try_into().expect("4 bytes")) as usize;
        let hard_state_bytes = bytes
            .get(5..5 + length)
            .ok_or("raft metadata hard state truncated")?;
        let hard_state =
            HardState::decode(hard_state_bytes).map_err(|e| format!("raft hard state: {e}"))?;
        let snapshot = SnapshotMetadata::decode(&bytes[5 + length..])
            .map_err(|e| format!("raft snapshot metadata: {e}"))?;
        Ok(LogMetadata {
            hard_state,
            snapshot,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_round_trips_and_rejects_damage() {
        let mut metadata = LogMetadata::default();
        metadata.hard_state.term = 7;
        metadata.hard_state.vote = 2;
        metadata.hard_state.commit = 99;
        metadata.snapshot.index = 50;
        metadata.snapshot.term = 6;
        metadata.snapshot.mut_conf_state().voters = vec![1, 2, 3];
        let bytes = metadata.encode();
        assert_eq!(LogMetadata::decode(&bytes), Ok(metadata));
        assert_eq!(LogMetadata::decode(&[]), Ok(LogMetadata::default()));
        assert!(LogMetadata::decode(&[9]).is_err());
        assert!(LogMetadata::decode(&bytes[..3]).is_err());
    }
}
