//! Whether entry data is a proposal apply can decode, without decoding it when it is a plain
//! put.
//!
//! The leader checks every forwarded proposal before raft takes it (`refused_message`): one that
//! did not decode would stop every member at apply. Decoding a put to check it allocates its key
//! and value only to drop them, and apply decodes it again: 2.5–4 % of a leader's CPU under a
//! put load spread over three members. So a put in the canonical encoding is checked by walking
//! its fields in place. The walk only ever answers "decodes" or "not sure": anything unusual
//! (an unknown field, a group, a 10-byte varint, another kind) goes to the full decode, so the
//! walk can never refuse what the decoder would accept, nor accept what it would refuse.

use super::proposal::{Proposal, KIND_PUT, PROPOSAL_HEADER_BYTES};

const WIRE_VARINT: u64 = 0;
const WIRE_LENGTH_DELIMITED: u64 = 2;

/// Whether `data` decodes as a proposal (`Proposal::decode(data).is_ok()`, cheaper for puts).
pub fn decodes_as_proposal(data: &[u8]) -> bool {
    if data.len() >= PROPOSAL_HEADER_BYTES
        && data[8] == KIND_PUT
        && is_canonical_put(&data[PROPOSAL_HEADER_BYTES..])
    {
        return true;
    }
    Proposal::decode(data).is_ok()
}

/// True only if `body` is a PutRequest made of its own fields with their declared wire types
/// (key = 1 and value = 2 bytes; lease = 3, prev_kv = 4, ignore_value = 5, ignore_lease = 6
/// varints), every varint at most 9 bytes and every length within the body: a message the
/// protobuf decoder accepts. False means "not sure", never "bad".
fn is_canonical_put(mut body: &[u8]) -> bool {
    while !body.is_empty() {
        let Some(key) = short_varint(&mut body) else {
            return false;
        };
        let (field, wire_type) = (key >> 3, key & 7);
        match (field, wire_type) {
            (1 | 2, WIRE_LENGTH_DELIMITED) => {
                let Some(length) = short_varint(&mut body) else {
                    return false;
                };
                let Some(rest) = usize::try_from(length)
                    .ok()
                    .and_then(|length| body.get(length..))
                else {
                    return false;
                };
                body = rest;
            }
            (3..=6, WIRE_VARINT) => {
                if short_varint(&mut body).is_none() {
                    return false;
                }
            }
            _ => return false,
        }
    }
    true
}

/// A varint of at most 9 bytes (any such is valid for the decoder), taken off the front.
fn short_varint(buf: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, &byte) in buf.iter().enumerate().take(9) {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *buf = &buf[i + 1..];
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_net::proto::etcdserverpb as pb;
    use proptest::prelude::*;
    use proptest::strategy::ValueTree;

    fn put(key: &[u8], value: &[u8], lease: i64, flags: bool) -> Proposal {
        Proposal::Put(pb::PutRequest {
            key: key.to_vec(),
            value: value.to_vec(),
            lease,
            prev_kv: flags,
            ignore_value: flags,
            ignore_lease: flags,
        })
    }

    #[test]
    fn encoded_puts_take_the_walk() {
        for proposal in [
            put(b"k", b"v", 0, false),
            put(b"", b"", 0, false),
            put(&[0xff; 300], &[1; 70_000], i64::MAX, true),
            put(b"k", b"v", -1, true),
        ] {
            let data = proposal.encode(7);
            let body = &data[PROPOSAL_HEADER_BYTES..];
            // A negative lease is a 10-byte varint: the walk is not sure, the decoder says yes.
            let negative = matches!(&proposal, Proposal::Put(r) if r.lease < 0);
            assert_eq!(is_canonical_put(body), !negative, "{proposal:?}");
            assert!(decodes_as_proposal(&data));
        }
    }

    #[test]
    fn torn_and_foreign_data_is_refused() {
        let data = put(b"key", b"value", 5, true).encode(1);
        for cut in PROPOSAL_HEADER_BYTES + 1..data.len() {
            assert_eq!(
                decodes_as_proposal(&data[..cut]),
                Proposal::decode(&data[..cut]).is_ok(),
                "cut at {cut}"
            );
        }
        // A put whose key field claims more bytes than there are.
        let mut long = data.clone();
        long[PROPOSAL_HEADER_BYTES + 1] = 0x7f;
        assert!(!decodes_as_proposal(&long));
        // Key with a varint wire type: the decoder refuses it, so must the check.
        let mut wrong_type = data[..PROPOSAL_HEADER_BYTES].to_vec();
        wrong_type.extend_from_slice(&[0x08, 0x01]);
        assert!(!decodes_as_proposal(&wrong_type));
        assert!(!decodes_as_proposal(&[1, 2, 3]));
    }

    /// `value` as a varint of exactly `bytes` bytes (at least its shortest form's): longer
    /// forms are overlong encodings, which the decoder accepts. From 10 bytes on, `top`
    /// replaces the 10th byte's value bits (the decoder accepts only 0 or 1 there), and an 11th
    /// byte makes the varint too long.
    fn varint_of_length(value: u64, bytes: usize, top: u8) -> Vec<u8> {
        let shortest = (1..=10)
            .find(|n| *n == 10 || value >> (7 * n) == 0)
            .unwrap();
        let bytes = bytes.max(shortest);
        let mut out = Vec::with_capacity(bytes);
        let mut rest = value;
        for index in 0..bytes {
            let mut byte = (rest & 0x7f) as u8;
            rest >>= 7;
            if index == 9 {
                byte = top & 0x7f;
            }
            if index + 1 < bytes {
                byte |= 0x80;
            }
            out.push(byte);
        }
        out
    }

    /// One field of a generated body: any field number and wire type (mostly a put's own),
    /// keys and varints in any length up to 11 bytes, lengths that may overrun the body.
    fn field() -> impl Strategy<Value = Vec<u8>> {
        (
            prop_oneof![4 => 1u64..=6, 1 => 0u64..=8, 1 => any::<u64>()],
            prop_oneof![3 => Just(0u64), 3 => Just(2u64), 1 => 0u64..=7],
            1usize..=3,
            (any::<u64>(), 1usize..=11, 0u8..=3),
            0usize..=6,
            0usize..=2,
        )
            .prop_map(
                |(number, wire_type, key_bytes, (value, value_bytes, top), length, short)| {
                    let mut out = varint_of_length(number << 3 | wire_type, key_bytes, 0);
                    match wire_type {
                        WIRE_LENGTH_DELIMITED => {
                            out.extend(varint_of_length(length as u64, value_bytes.min(3), 0));
                            out.extend(std::iter::repeat_n(b'x', length.saturating_sub(short)));
                        }
                        WIRE_VARINT => out.extend(varint_of_length(value, value_bytes, top)),
                        _ => out.extend(std::iter::repeat_n(0u8, length % 3)),
                    }
                    out
                },
            )
    }

    /// Goal: the walk answers as the decoder on bodies built from fields at the edges of the
    /// varint rules (overlong keys and varints, 9-, 10- and 11-byte varints, a 10th byte above
    /// 1, field number 0, foreign wire types, lengths past the end), and these bodies reach all
    /// three outcomes: the walk accepts, the walk defers and the decoder accepts, both refuse.
    /// Method: a deterministic runner generates bodies and counts the outcomes; a walk that
    /// accepted what the decoder refuses fails at once.
    #[test]
    fn structured_bodies_reach_every_outcome_and_the_walk_agrees_with_the_decoder() {
        let mut runner = proptest::test_runner::TestRunner::deterministic();
        let bodies = proptest::collection::vec(field(), 0..5);
        let (mut walked, mut deferred, mut refused) = (0, 0, 0);
        for _ in 0..20_000 {
            let fields = bodies.new_tree(&mut runner).unwrap().current();
            let body = fields.concat();
            let mut data = vec![0u8; 8];
            data.push(KIND_PUT);
            data.extend_from_slice(&body);
            let decodes = Proposal::decode(&data).is_ok();
            if is_canonical_put(&body) {
                assert!(
                    decodes,
                    "the walk accepted a body the decoder refuses: {body:02x?}"
                );
                walked += 1;
            } else if decodes {
                deferred += 1;
            } else {
                refused += 1;
            }
            assert_eq!(decodes_as_proposal(&data), decodes, "{body:02x?}");
        }
        eprintln!("walked {walked}, deferred {deferred}, refused {refused}");
        for (outcome, count) in [
            ("walked", walked),
            ("deferred", deferred),
            ("refused", refused),
        ] {
            assert!(count >= 200, "only {count} of 20 000 bodies {outcome}");
        }
    }

    proptest! {
        /// The walk accepts nothing the decoder refuses, on any body behind a put's header.
        #[test]
        fn the_walk_never_accepts_what_the_decoder_refuses(
            body in proptest::collection::vec(any::<u8>(), 0..64)
        ) {
            let mut data = vec![0u8; 8];
            data.push(KIND_PUT);
            data.extend_from_slice(&body);
            if is_canonical_put(&body) {
                prop_assert!(Proposal::decode(&data).is_ok());
            }
            prop_assert_eq!(decodes_as_proposal(&data), Proposal::decode(&data).is_ok());
        }

        /// Mutations of real puts: the check answers as the decoder does.
        #[test]
        fn mutated_puts_answer_as_the_decoder(
            key in proptest::collection::vec(any::<u8>(), 0..20),
            value in proptest::collection::vec(any::<u8>(), 0..200),
            lease in any::<i64>(),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
        ) {
            let mut data = put(&key, &value, lease, lease % 2 == 0).encode(3);
            let at = PROPOSAL_HEADER_BYTES + at.index(data.len() - PROPOSAL_HEADER_BYTES);
            data[at] = byte;
            prop_assert_eq!(decodes_as_proposal(&data), Proposal::decode(&data).is_ok());
        }
    }
}
