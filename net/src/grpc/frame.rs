//! gRPC message framing on an HTTP/2 stream: each message is a 5-byte prefix (1 byte
//! compressed flag, 4 bytes big-endian length) followed by the protobuf bytes.
//!
//! The decoder enforces the receive size limit from the prefix alone, before buffering the
//! body, so a client announcing a huge message is refused after 5 bytes, not after 2 GiB.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::grpc::status::Status;

/// Bytes in a gRPC message prefix: compressed flag (1) + length (4).
pub const FRAME_HEADER_BYTES: usize = 5;

/// The largest message a server sends: grpc-go's limit as etcd sets it (`math.MaxInt32`).
/// Answers are bounded before they are built (see the engine's `ResponseBudget`); this is the
/// last check, so an answer past it is an error for its call, never a panic on a serving core.
pub const MAX_SEND_MESSAGE_BYTES: usize = i32::MAX as usize;

/// Encodes one protobuf message with its gRPC prefix (never compressed); a message over
/// [`MAX_SEND_MESSAGE_BYTES`] is refused with grpc-go's status.
pub fn encode_message<M: prost::Message>(message: &M) -> Result<Bytes, Status> {
    encode_message_within(message, MAX_SEND_MESSAGE_BYTES)
}

fn encode_message_within<M: prost::Message>(message: &M, limit: usize) -> Result<Bytes, Status> {
    let mut buffer = BytesMut::new();
    append_frame(message, limit, &mut buffer)?;
    Ok(buffer.freeze())
}

fn append_frame<M: prost::Message>(
    message: &M,
    limit: usize,
    buffer: &mut BytesMut,
) -> Result<usize, Status> {
    let body_bytes = message.encoded_len();
    append_prefix(body_bytes, limit, buffer)?;
    message
        .encode(buffer)
        .expect("buffer was sized by encoded_len");
    Ok(body_bytes)
}

/// Appends the gRPC frame of a message already encoded (`body`, its protobuf bytes) to
/// `buffer`; returns the body's length. The same limit and status as [`encode_message`].
pub fn encoded_message_into(body: &[u8], buffer: &mut BytesMut) -> Result<usize, Status> {
    append_prefix(body.len(), MAX_SEND_MESSAGE_BYTES, buffer)?;
    buffer.extend_from_slice(body);
    Ok(body.len())
}

/// Checks a body of `body_bytes` against `limit` and appends its prefix, with room reserved
/// for the body.
fn append_prefix(body_bytes: usize, limit: usize, buffer: &mut BytesMut) -> Result<(), Status> {
    if body_bytes > limit {
        return Err(Status::resource_exhausted(format!(
            "grpc: trying to send message larger than max ({body_bytes} vs. {limit})"
        )));
    }
    buffer.reserve(FRAME_HEADER_BYTES + body_bytes);
    buffer.put_u8(0);
    buffer.put_u32(u32::try_from(body_bytes).expect("the limit is below 4 GiB"));
    Ok(())
}

/// Splits a stream of HTTP/2 DATA chunks into gRPC messages, with a size limit.
///
/// Callers alternate `push` (one chunk) and `next_message` (until `None`), so the buffer never
/// holds more than one message under the limit plus one chunk.
#[derive(Debug)]
pub struct FrameDecoder {
    buffer: BytesMut,
    max_message_bytes: usize,
}

impl FrameDecoder {
    /// A decoder that refuses messages longer than `max_message_bytes`.
    pub fn new(max_message_bytes: usize) -> FrameDecoder {
        FrameDecoder {
            buffer: BytesMut::new(),
            max_message_bytes,
        }
    }

    /// Appends a chunk of the stream.
    pub fn push(&mut self, chunk: &[u8]) {
        self.buffer.extend_from_slice(chunk);
    }

    /// Bytes buffered: a partial message, or whole ones not taken yet.
    pub fn buffered_bytes(&self) -> usize {
        self.buffer.len()
    }

    /// True when no partial message is buffered (a stream may end only here).
    pub fn is_empty(&self) -> bool {
        self.buffer.is_empty()
    }

    /// The next whole message's protobuf bytes, `None` if more bytes are needed, or the status
    /// to end the call with (too large: RESOURCE_EXHAUSTED as grpc-go; compressed: INTERNAL).
    pub fn next_message(&mut self) -> Result<Option<Bytes>, Status> {
        if self.buffer.len() < FRAME_HEADER_BYTES {
            return Ok(None);
        }
        let compressed = self.buffer[0];
        let body_bytes = u32::from_be_bytes([
            self.buffer[1],
            self.buffer[2],
            self.buffer[3],
            self.buffer[4],
        ]) as usize;
        if body_bytes > self.max_message_bytes {
            // grpc-go's wording, which etcd clients print as is.
            return Err(Status::resource_exhausted(format!(
                "grpc: received message larger than max ({body_bytes} vs. {})",
                self.max_message_bytes
            )));
        }
        match compressed {
            0 => {}
            // We never advertise grpc-accept-encoding, so a compressed message breaks protocol.
            1 => {
                return Err(Status::internal(
                    "grpc: compressed flag set but no grpc-encoding was negotiated",
                ))
            }
            flag => {
                return Err(Status::internal(format!(
                    "grpc: invalid compressed flag {flag} in message prefix"
                )))
            }
        }
        if self.buffer.len() < FRAME_HEADER_BYTES + body_bytes {
            // Reserve once for the whole body rather than growing chunk by chunk.
            self.buffer
                .reserve(FRAME_HEADER_BYTES + body_bytes - self.buffer.len());
            return Ok(None);
        }
        self.buffer.advance(FRAME_HEADER_BYTES);
        Ok(Some(self.buffer.split_to(body_bytes).freeze()))
    }
}

#[cfg(test)]
mod tests {
    //! Goal: messages come out whole and in order however the stream is chunked, and every
    //! limit or protocol break ends the call with the right status before buffering the body.
    use super::*;
    use crate::grpc::status::Code;
    use crate::proto::etcdserverpb::PutRequest;
    use prost::Message;

    fn put(key: &str, value_bytes: usize) -> PutRequest {
        PutRequest {
            key: key.as_bytes().to_vec(),
            value: vec![7; value_bytes],
            ..Default::default()
        }
    }

    #[test]
    fn prefix_holds_flag_and_big_endian_length() {
        let frame = encode_message(&put("k", 300)).unwrap();
        let body_bytes = put("k", 300).encoded_len();
        assert_eq!(frame[0], 0);
        assert_eq!(&frame[1..5], &(body_bytes as u32).to_be_bytes());
        assert_eq!(frame.len(), FRAME_HEADER_BYTES + body_bytes);
    }

    #[test]
    fn messages_survive_every_chunking() {
        // Method: three messages back to back, fed in chunks of every size from 1 to the whole.
        let messages = [put("a", 0), put("bb", 1000), put("ccc", 17)];
        let mut stream = Vec::new();
        for message in &messages {
            stream.extend_from_slice(&encode_message(message).unwrap());
        }
        for chunk_bytes in 1..=stream.len() {
            let mut decoder = FrameDecoder::new(4096);
            let mut decoded = Vec::new();
            for chunk in stream.chunks(chunk_bytes) {
                decoder.push(chunk);
                while let Some(body) = decoder.next_message().unwrap() {
                    decoded.push(PutRequest::decode(body).unwrap());
                }
            }
            assert_eq!(decoded, messages, "chunk size {chunk_bytes}");
            assert!(decoder.is_empty());
        }
    }

    #[test]
    fn message_over_the_send_limit_is_refused_with_grpc_gos_status() {
        let message = put("k", 300);
        let bytes = prost::Message::encoded_len(&message);
        assert!(super::encode_message_within(&message, bytes).is_ok());
        let status = super::encode_message_within(&message, bytes - 1).unwrap_err();
        assert_eq!(status.code, Code::ResourceExhausted);
        assert_eq!(
            status.message,
            format!(
                "grpc: trying to send message larger than max ({bytes} vs. {})",
                bytes - 1
            )
        );
    }

    #[test]
    fn empty_message_is_a_message() {
        let mut decoder = FrameDecoder::new(16);
        decoder.push(&[0, 0, 0, 0, 0]);
        assert_eq!(decoder.next_message().unwrap(), Some(Bytes::new()));
        assert_eq!(decoder.next_message().unwrap(), None);
    }

    #[test]
    fn oversized_message_is_refused_from_its_prefix() {
        let mut decoder = FrameDecoder::new(1024);
        decoder.push(&[0, 0, 0, 4, 1]); // announces 1025 bytes, sends none of them
        let status = decoder.next_message().unwrap_err();
        assert_eq!(status.code, Code::ResourceExhausted);
        assert_eq!(
            status.message,
            "grpc: received message larger than max (1025 vs. 1024)"
        );
    }

    #[test]
    fn message_at_the_limit_is_accepted() {
        let mut decoder = FrameDecoder::new(3);
        decoder.push(&[0, 0, 0, 0, 3, 1, 2, 3]);
        assert_eq!(
            decoder.next_message().unwrap().unwrap().as_ref(),
            &[1, 2, 3]
        );
    }

    #[test]
    fn compressed_or_bad_flag_is_internal() {
        for flag in [1u8, 2, 255] {
            let mut decoder = FrameDecoder::new(16);
            decoder.push(&[flag, 0, 0, 0, 1, 9]);
            assert_eq!(decoder.next_message().unwrap_err().code, Code::Internal);
        }
    }

    #[test]
    fn partial_message_is_not_empty() {
        let mut decoder = FrameDecoder::new(16);
        decoder.push(&[0, 0, 0]);
        assert_eq!(decoder.next_message().unwrap(), None);
        assert!(!decoder.is_empty());
    }

    proptest::proptest! {
            // BASALT_GRPC_PROPTEST_CASES=100000 for a soak (README).
            #![proptest_config(proptest::prelude::ProptestConfig::with_cases(
                std::env::var("BASALT_GRPC_PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(512)
            ))]

            /// Goal: no byte stream panics the decoder or makes it buffer past one message under
            /// the limit plus one chunk, and a refused prefix is refused before its body arrives.
            /// Method: arbitrary bytes (often starting like a real prefix) in arbitrary chunks.
            #[test]
            fn any_byte_stream_is_decoded_or_refused_within_the_limit(
                flag in 0u8..3,
                length in proptest::prelude::any::<u32>(),
                rest in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
                chunk_bytes in 1usize..300,
                limit in 0usize..1024,
            ) {
                let mut stream = vec![flag];
                stream.extend_from_slice(&length.to_be_bytes());
                stream.extend_from_slice(&rest);
                let mut decoder = FrameDecoder::new(limit);
                'feed: for chunk in stream.chunks(chunk_bytes) {
                    decoder.push(chunk);
                    proptest::prop_assert!(decoder.buffer.len() <= FRAME_HEADER_BYTES + limit + chunk_bytes);
                    loop {
                        match decoder.next_message() {
                            Ok(Some(body)) => proptest::prop_assert!(body.len() <= limit),
                            Ok(None) => break,
                            Err(_) => break 'feed,
                        }
                    }
                }
            }

            /// Goal: streams of real etcd requests, mutated (bytes replaced, inserted, removed,
            /// cut short), are split into messages or refused without a panic, and every message
            /// that comes out decodes as the etcd request types or fails to, without a panic or
            /// work beyond the bytes given. Method: 1 to 4 framed Put, Range, Txn and Watch
            /// requests, up to 8 mutations, fed in chunks of any size.
            #[test]
            fn mutated_request_streams_decode_or_fail_cleanly(
                keys in proptest::collection::vec(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40), 1..5),
                mutations in proptest::collection::vec(
                    (0u8..4, proptest::prelude::any::<usize>(), proptest::prelude::any::<u8>()),
                    0..8,
                ),
                chunk_bytes in 1usize..200,
            ) {
                use crate::proto::etcdserverpb::{RangeRequest, TxnRequest, WatchRequest};
                let mut stream = Vec::new();
                for (index, key) in keys.iter().enumerate() {
                    let framed = match index % 4 {
                        0 => encode_message(&PutRequest { key: key.clone(), value: key.repeat(3), ..Default::default() }),
                        1 => encode_message(&RangeRequest { key: key.clone(), range_end: vec![0], limit: 7, ..Default::default() }),
                        2 => encode_message(&TxnRequest {
                            compare: Vec::new(),
                            success: vec![crate::proto::etcdserverpb::RequestOp {
                                request: Some(crate::proto::etcdserverpb::request_op::Request::RequestPut(
                                    PutRequest { key: key.clone(), ..Default::default() },
                                )),
                            }],
                            failure: Vec::new(),
                        }),
                        _ => encode_message(&WatchRequest::default()),
                    };
                    stream.extend_from_slice(&framed.unwrap());
                }
                for (kind, at, byte) in mutations {
                    let at = at % (stream.len() + 1);
                    match kind {
                        0 if at < stream.len() => stream[at] = byte,
                        1 => stream.insert(at, byte),
                        2 if at < stream.len() => { stream.remove(at); }
                        _ => stream.truncate(at),
                    }
                }
                let limit = 4096;
                let mut decoder = FrameDecoder::new(limit);
                let mut decoded_bytes = 0;
                'feed: for chunk in stream.chunks(chunk_bytes) {
                    decoder.push(chunk);
                    loop {
                        match decoder.next_message() {
                            Ok(Some(body)) => {
                                decoded_bytes += body.len();
                                let _ = PutRequest::decode(body.clone());
                                let _ = RangeRequest::decode(body.clone());
                                let _ = TxnRequest::decode(body.clone());
                                let _ = WatchRequest::decode(body);
                            }
                            Ok(None) => break,
                            Err(_) => break 'feed,
                        }
                    }
                }
                proptest::prop_assert!(decoded_bytes <= stream.len());
            }
    }
}
