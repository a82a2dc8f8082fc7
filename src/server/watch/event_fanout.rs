//! One apply batch's events, encoded once for every watcher they reach.
//!
//! A put watched by a thousand watchers becomes a thousand WatchResponses that differ only in
//! their watch id (and in which of the batch's events each watcher's filter takes, and whether
//! it asked for previous values). Encoding each response whole encodes the same header, key and
//! value a thousand times over — most of a fan-out's CPU, and all of it before the last
//! watcher's event can leave. Here the header is encoded once per batch and each event once per
//! form a watcher asks for (with or without its previous value); a watcher's response is those
//! pieces around its watch id, byte for byte what encoding the whole message gives.

use basalt_engine::{self as engine, EventKind};
use basalt_net::proto::{etcdserverpb as pb, mvccpb};
use bytes::{Bytes, BytesMut};
use prost014::encoding::{encoded_len_varint, int64, key_len, message};

use crate::server::state_machine::convert;

/// WatchResponse's field numbers in etcd's `rpc.proto`. Protobuf writes fields in number
/// order, so a response with events is: header, watch id (absent when 0), events. The test
/// below holds the splice to prost's own encoding of the whole message.
const HEADER_FIELD: u32 = 1;
const WATCH_ID_FIELD: u32 = 2;
const EVENTS_FIELD: u32 = 11;

/// `event` as etcd sends it, with its previous value when `with_prev_kv` (and the apply kept
/// one).
pub fn wire_event(event: &engine::Event, with_prev_kv: bool) -> mvccpb::Event {
    mvccpb::Event {
        r#type: match event.kind {
            EventKind::Put => mvccpb::event::EventType::Put as i32,
            EventKind::Delete => mvccpb::event::EventType::Delete as i32,
        },
        kv: Some(convert::key_value(event.kv.clone())),
        prev_kv: if with_prev_kv {
            event.prev_kv.clone().map(convert::key_value)
        } else {
            None
        },
    }
}

/// The pieces of one batch's responses, encoded as the first watcher needing each asks.
pub struct EventFanOut<'a> {
    events: &'a [engine::Event],
    /// The header field (tag, length, ResponseHeader), shared by every response of the batch.
    header: Bytes,
    /// Per event: its events field (tag, length, Event) without and with its previous value.
    fields: Vec<[Option<Bytes>; 2]>,
}

impl<'a> EventFanOut<'a> {
    pub fn new(events: &'a [engine::Event], header: &pb::ResponseHeader) -> EventFanOut<'a> {
        let mut buffer = BytesMut::with_capacity(message::encoded_len(HEADER_FIELD, header));
        message::encode(HEADER_FIELD, header, &mut buffer);
        EventFanOut {
            events,
            header: buffer.freeze(),
            fields: vec![[None, None]; events.len()],
        }
    }

    /// The encoded WatchResponse for `watch_id` carrying the events at `matching` (indices
    /// into the batch, in order), each with its previous value when `prev_kv`.
    pub fn response(&mut self, watch_id: i64, prev_kv: bool, matching: &[usize]) -> Bytes {
        let length = self.response_len(watch_id, prev_kv, matching);
        let form = usize::from(prev_kv);
        let mut buffer = BytesMut::with_capacity(length);
        buffer.extend_from_slice(&self.header);
        if watch_id != 0 {
            int64::encode(WATCH_ID_FIELD, &watch_id, &mut buffer);
        }
        for &index in matching {
            let field = self.fields[index][form].as_ref();
            buffer.extend_from_slice(field.expect("encoded by response_len"));
        }
        assert_eq!(buffer.len(), length, "a response's length was miscounted");
        buffer.freeze()
    }

    /// The length `response` would have (encoding the events' fields it needs, once), so a
    /// caller can decide on fragments before building it.
    pub fn response_len(&mut self, watch_id: i64, prev_kv: bool, matching: &[usize]) -> usize {
        let watch_id_len = if watch_id == 0 {
            0
        } else {
            key_len(WATCH_ID_FIELD) + encoded_len_varint(watch_id as u64)
        };
        let events_len: usize = matching.iter().map(|&i| self.field(i, prev_kv).len()).sum();
        self.header.len() + watch_id_len + events_len
    }

    /// Event `index`'s field in the form asked for, encoded the first time it is asked for.
    fn field(&mut self, index: usize, prev_kv: bool) -> &Bytes {
        let events = self.events;
        self.fields[index][usize::from(prev_kv)].get_or_insert_with(|| {
            let event = wire_event(&events[index], prev_kv);
            let mut buffer = BytesMut::with_capacity(message::encoded_len(EVENTS_FIELD, &event));
            message::encode(EVENTS_FIELD, &event, &mut buffer);
            buffer.freeze()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost014::Message as _;

    fn event(
        key: &str,
        kind: EventKind,
        revision: i64,
        with_prev: bool,
        value_bytes: usize,
    ) -> engine::Event {
        let kv = |value: Vec<u8>, revision: i64| engine::KeyValue {
            key: key.as_bytes().to_vec(),
            create_revision: 2,
            mod_revision: revision,
            version: revision - 1,
            value,
            lease: 7,
        };
        engine::Event {
            kind,
            kv: kv(vec![b'n'; value_bytes], revision),
            prev_kv: with_prev.then(|| kv(b"old".to_vec(), revision - 1)),
            prev_kv_omitted: false,
        }
    }

    // Goal: every spliced response decodes to, and is byte for byte, the message prost encodes
    // whole — for watch id 0 (absent on the wire), negative and large ids, any subset of the
    // batch's events, with and without previous values, on any order of first use.
    #[test]
    fn a_spliced_response_is_the_whole_message_encoded() {
        // Values from a few bytes to past one- and two-byte length prefixes.
        let events = vec![
            event("a", EventKind::Put, 5, true, 9),
            event("b", EventKind::Delete, 5, true, 0),
            event("c", EventKind::Put, i64::MAX, false, 200),
            event("d", EventKind::Put, 5, true, 20_000),
        ];
        let header = pb::ResponseHeader {
            cluster_id: 0x1234_5678_9abc_def0,
            member_id: 42,
            revision: i64::MAX,
            raft_term: u64::MAX,
        };
        let mut fanout = EventFanOut::new(&events, &header);
        let subsets: [&[usize]; 6] = [&[0], &[1, 2], &[0, 1, 2, 3], &[2], &[3], &[]];
        for watch_id in [0, 1, 127, 128, -1, -2, i64::MAX, i64::MIN] {
            for prev_kv in [false, true] {
                for matching in subsets {
                    let length = fanout.response_len(watch_id, prev_kv, matching);
                    let spliced = fanout.response(watch_id, prev_kv, matching);
                    assert_eq!(spliced.len(), length);
                    let whole = pb::WatchResponse {
                        header: Some(header),
                        watch_id,
                        events: matching
                            .iter()
                            .map(|&i| wire_event(&events[i], prev_kv))
                            .collect(),
                        ..Default::default()
                    };
                    assert_eq!(spliced.as_ref(), whole.encode_to_vec().as_slice());
                    assert_eq!(pb::WatchResponse::decode(spliced).unwrap(), whole);
                }
            }
        }
    }
}
