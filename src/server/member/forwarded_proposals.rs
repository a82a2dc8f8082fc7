//! Forwarded proposals, merged: a follower sends each run of client writes to its leader as one
//! message rather than one message per write.

use prost::Message as _;

/// Merges each run of proposals a follower forwards to its leader into one message. raft-rs
/// forwards every `propose` call as a MsgPropose of its own, so a pump that carries many client
/// writes would send (and the leader decode and step) one message per write; the leader takes
/// a MsgPropose of many entries the same way (it appends them all, or drops them all as it
/// would drop each). Only adjacent messages merge, so nothing overtakes another message to the
/// same member; only normal entries merge (a conf change keeps a message of its own), and a
/// merged message's entries stay within `MESSAGE_ENTRIES_BYTES_MAX` encoded, as raft's appends
/// do (one larger entry still goes alone), so a frame never outgrows the peer's limit.
pub fn coalesce(messages: Vec<raft::prelude::Message>) -> Vec<raft::prelude::Message> {
    use raft::prelude::{EntryType, MessageType};
    let mergeable = |message: &raft::prelude::Message| {
        message.get_msg_type() == MessageType::MsgPropose
            && message
                .entries
                .iter()
                .all(|entry| entry.get_entry_type() == EntryType::EntryNormal)
    };
    // Each entry as the message encodes it: its field tag (one byte) and length prefix too,
    // which for tiny proposals are as large as the entry (review: without them a merge of
    // many small proposals outgrew the bound).
    let entries_bytes = |message: &raft::prelude::Message| -> usize {
        message
            .entries
            .iter()
            .map(|entry| {
                let len = entry.encoded_len();
                1 + prost::length_delimiter_len(len) + len
            })
            .sum()
    };
    let mut merged: Vec<raft::prelude::Message> = Vec::with_capacity(messages.len());
    let mut last_bytes = 0;
    // Whether the last message is mergeable, known when it was pushed: asking again would scan
    // its growing entries once per message (quadratic in the pump's proposals).
    let mut last_mergeable = false;
    for message in messages {
        let bytes = entries_bytes(&message);
        let this_mergeable = mergeable(&message);
        if let Some(last) = merged.last_mut() {
            if last_mergeable
                && this_mergeable
                && last.to == message.to
                && last.from == message.from
                && last.term == message.term
                && last_bytes + bytes <= basalt_net::peer::MESSAGE_ENTRIES_BYTES_MAX
            {
                last.entries.extend(message.entries);
                last_bytes += bytes;
                continue;
            }
        }
        last_bytes = bytes;
        last_mergeable = this_mergeable;
        merged.push(message);
    }
    merged
}

#[cfg(test)]
mod tests {
    use raft::prelude::{Entry, EntryType, Message, MessageType};

    use super::coalesce;

    fn message(kind: MessageType, to: u64, data: &[&[u8]]) -> Message {
        let mut message = Message::default();
        message.set_msg_type(kind);
        message.from = 1;
        message.to = to;
        message.entries = data
            .iter()
            .map(|data| Entry {
                data: data.to_vec(),
                ..Entry::default()
            })
            .collect();
        message
    }

    fn shape(messages: &[Message]) -> Vec<(MessageType, u64, usize)> {
        messages
            .iter()
            .map(|m| (m.get_msg_type(), m.to, m.entries.len()))
            .collect()
    }

    /// Adjacent forwarded proposals to one member merge, in order; a message in between, another
    /// member, a conf change or the byte bound each start a new message.
    #[test]
    fn adjacent_forwarded_proposals_merge_and_nothing_overtakes() {
        let mut conf_change = message(MessageType::MsgPropose, 2, &[b"c"]);
        conf_change.entries[0].set_entry_type(EntryType::EntryConfChange);
        let merged = coalesce(vec![
            message(MessageType::MsgPropose, 2, &[b"a"]),
            message(MessageType::MsgPropose, 2, &[b"b", b"c"]),
            message(MessageType::MsgHeartbeatResponse, 2, &[]),
            message(MessageType::MsgPropose, 2, &[b"d"]),
            message(MessageType::MsgPropose, 3, &[b"e"]),
            conf_change,
            message(MessageType::MsgPropose, 3, &[b"f"]),
        ]);
        assert_eq!(
            shape(&merged),
            [
                (MessageType::MsgPropose, 2, 3),
                (MessageType::MsgHeartbeatResponse, 2, 0),
                (MessageType::MsgPropose, 2, 1),
                (MessageType::MsgPropose, 3, 1),
                (MessageType::MsgPropose, 2, 1),
                (MessageType::MsgPropose, 3, 1),
            ]
        );
        let data: Vec<&[u8]> = merged[0].entries.iter().map(|e| &e.data[..]).collect();
        assert_eq!(data, [b"a", b"b", b"c"], "entries keep their order");

        let big = vec![0u8; basalt_net::peer::MESSAGE_ENTRIES_BYTES_MAX / 2];
        let merged = coalesce(vec![
            message(MessageType::MsgPropose, 2, &[&big]),
            message(MessageType::MsgPropose, 2, &[&big]),
            message(MessageType::MsgPropose, 2, &[b"x"]),
        ]);
        assert_eq!(
            shape(&merged),
            [
                (MessageType::MsgPropose, 2, 1),
                (MessageType::MsgPropose, 2, 2),
            ],
            "a merged message stays within the entry byte bound"
        );
    }

    /// Many tiny proposals (entries as small as their framing) merge into messages whose
    /// encoded entries, framing included, stay within the bound.
    #[test]
    fn tiny_proposals_merge_within_the_bound_with_their_framing() {
        use prost::Message as _;
        // Each entry is 3 bytes encoded and 5 framed: a quarter of the bound in proposals is
        // 0.75 of it unframed (one message, without the framing counted) and 1.25 framed.
        let count = basalt_net::peer::MESSAGE_ENTRIES_BYTES_MAX / 4;
        let merged = coalesce(
            (0..count)
                .map(|_| message(MessageType::MsgPropose, 2, &[b"x"]))
                .collect(),
        );
        assert!(merged.len() > 1, "{count} proposals cannot fit one message");
        for message in &merged {
            let entries_only = Message {
                entries: message.entries.clone(),
                ..Message::default()
            };
            assert!(
                entries_only.encoded_len() <= basalt_net::peer::MESSAGE_ENTRIES_BYTES_MAX,
                "{} bytes of entries in one message",
                entries_only.encoded_len()
            );
        }
        let total: usize = merged.iter().map(|m| m.entries.len()).sum();
        assert_eq!(total, count, "no proposal lost");
    }
}
