//! The peer protocol's bytes: the handshake a dialer opens each connection with, the listener's
//! answer, and the 5-byte header in front of every frame. All integers are big-endian.
//!
//! ```text
//! dialer → listener   hello:  "BSLTPEER" | version u16 | lane u8 | 0u8 | cluster u64 | from u64 | to u64
//! listener → dialer   answer: 0u8 | 4u16 | the listener's frame limit u32    (accepted)
//!                          or 1u8 | reason length u16 | reason (UTF-8)     (refused)
//! then, either way    frame:  kind u8 | length u32 | payload
//! ```

use futures_lite::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::error::{PeerError, Refusal};
use super::lane::Lane;

/// What opens every peer connection, so a stray client (or an etcd peer speaking rafthttp) is
/// told apart at the first bytes.
pub(crate) const MAGIC: [u8; 8] = *b"BSLTPEER";

/// The protocol version this build speaks; a listener refuses any other.
pub(crate) const PROTOCOL_VERSION: u16 = 1;

/// The hello's size on the wire.
pub(crate) const HELLO_BYTES: usize = 8 + 2 + 1 + 1 + 8 + 8 + 8;

/// The longest refusal reason a listener sends (etcd's reasons are a few dozen bytes); a
/// dialer refuses a longer one unread, so an answer never makes it allocate much.
pub(crate) const REFUSAL_REASON_BYTES_MAX: usize = 256;

/// The frame header's size on the wire: kind and payload length.
pub(crate) const FRAME_HEADER_BYTES: usize = 5;

/// What a frame carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// dialer → listener on a framed lane: one opaque message.
    Data,
    /// dialer → listener on the control lane: 8 bytes the listener echoes back (round trip).
    Ping,
    /// listener → dialer: the echo of a ping.
    Pong,
    /// dialer → listener on a snapshot connection: the caller's description of the snapshot.
    SnapshotHeader,
    /// dialer → listener: one chunk of the snapshot.
    SnapshotChunk,
    /// dialer → listener: the end, with the stream's total length (u64) and crc32 (u32).
    SnapshotEnd,
    /// dialer → listener: the sender gave up; the stream is void.
    SnapshotAbort,
    /// listener → dialer: the receiver holds the whole snapshot.
    SnapshotDone,
    /// listener → dialer: the receiver failed the stream; the payload says why (UTF-8).
    SnapshotFailed,
}

impl FrameKind {
    fn to_wire(self) -> u8 {
        match self {
            FrameKind::Data => 0,
            FrameKind::Ping => 1,
            FrameKind::SnapshotHeader => 2,
            FrameKind::SnapshotChunk => 3,
            FrameKind::SnapshotEnd => 4,
            FrameKind::SnapshotAbort => 5,
            FrameKind::Pong => 16,
            FrameKind::SnapshotDone => 17,
            FrameKind::SnapshotFailed => 18,
        }
    }

    fn from_wire(byte: u8) -> Option<FrameKind> {
        Some(match byte {
            0 => FrameKind::Data,
            1 => FrameKind::Ping,
            2 => FrameKind::SnapshotHeader,
            3 => FrameKind::SnapshotChunk,
            4 => FrameKind::SnapshotEnd,
            5 => FrameKind::SnapshotAbort,
            16 => FrameKind::Pong,
            17 => FrameKind::SnapshotDone,
            18 => FrameKind::SnapshotFailed,
            _ => return None,
        })
    }
}

/// The first bytes of a connection: who dials whom, in which cluster, for which lane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Hello {
    pub cluster_id: u64,
    pub from: u64,
    pub to: u64,
    pub lane: Lane,
}

impl Hello {
    pub fn encode(&self) -> [u8; HELLO_BYTES] {
        let mut bytes = [0u8; HELLO_BYTES];
        bytes[..8].copy_from_slice(&MAGIC);
        bytes[8..10].copy_from_slice(&PROTOCOL_VERSION.to_be_bytes());
        bytes[10] = self.lane.to_wire();
        bytes[12..20].copy_from_slice(&self.cluster_id.to_be_bytes());
        bytes[20..28].copy_from_slice(&self.from.to_be_bytes());
        bytes[28..36].copy_from_slice(&self.to.to_be_bytes());
        bytes
    }

    /// Reads a hello. A connection that is not a basalt peer is an `Err(Protocol)`; a basalt
    /// peer of another version is `Ok(Err(refusal))`, so the listener can tell it why.
    #[cfg(test)]
    pub async fn read(
        reader: &mut (impl AsyncRead + Unpin),
    ) -> Result<Result<Hello, Refusal>, PeerError> {
        match read_magic(reader).await? {
            Magic::Peer => Hello::read_after_magic(reader).await,
            Magic::Other(_) => Err(PeerError::Protocol(
                "the connection does not open with basalt's peer handshake".into(),
            )),
        }
    }

    /// Reads the rest of a hello once `read_magic` found the magic.
    pub async fn read_after_magic(
        reader: &mut (impl AsyncRead + Unpin),
    ) -> Result<Result<Hello, Refusal>, PeerError> {
        let mut bytes = [0u8; HELLO_BYTES];
        bytes[..8].copy_from_slice(&MAGIC);
        reader.read_exact(&mut bytes[8..]).await?;
        let version = u16::from_be_bytes([bytes[8], bytes[9]]);
        if version != PROTOCOL_VERSION {
            return Ok(Err(Refusal::IncompatibleVersion));
        }
        let Some(lane) = Lane::from_wire(bytes[10]) else {
            return Err(PeerError::Protocol(format!("unknown lane {}", bytes[10])));
        };
        let word = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().unwrap());
        Ok(Ok(Hello {
            lane,
            cluster_id: word(12),
            from: word(20),
            to: word(28),
        }))
    }
}

/// What a connection's first bytes are.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Magic {
    /// Basalt's peer magic: a hello follows.
    Peer,
    /// Something else (an HTTP/1.1 request to the peer port, say): the bytes read so far,
    /// to put back in front of the stream.
    Other(Vec<u8>),
}

/// Reads until the first bytes either are the peer magic or diverge from it. Decides at the
/// first divergent byte, so a short HTTP request is never waited on for bytes it will not send.
pub(crate) async fn read_magic(reader: &mut (impl AsyncRead + Unpin)) -> Result<Magic, PeerError> {
    let mut read = [0u8; 8];
    let mut filled = 0;
    while filled < MAGIC.len() {
        let bytes = reader.read(&mut read[filled..]).await?;
        if bytes == 0 {
            return Err(PeerError::Protocol(format!(
                "the connection closed after {filled} bytes of the handshake"
            )));
        }
        filled += bytes;
        if read[..filled] != MAGIC[..filled] {
            return Ok(Magic::Other(read[..filled].to_vec()));
        }
    }
    Ok(Magic::Peer)
}

/// Writes the listener's answer: accepted (with the largest frame payload this listener
/// reads, so a sender with a larger limit drops such a frame rather than losing the
/// connection over it), or refused with the reason's text.
pub(crate) async fn write_answer(
    writer: &mut (impl AsyncWrite + Unpin),
    answer: Result<usize, &Refusal>,
) -> std::io::Result<()> {
    let mut bytes = Vec::with_capacity(3 + REFUSAL_REASON_BYTES_MAX);
    match answer {
        Ok(frame_bytes_max) => {
            let limit = u32::try_from(frame_bytes_max).unwrap_or(u32::MAX);
            bytes.extend_from_slice(&[0, 0, 4]);
            bytes.extend_from_slice(&limit.to_be_bytes());
        }
        Err(refusal) => {
            let reason = refusal.to_string();
            let reason = &reason.as_bytes()[..reason.len().min(REFUSAL_REASON_BYTES_MAX)];
            bytes.push(1);
            bytes.extend_from_slice(&(reason.len() as u16).to_be_bytes());
            bytes.extend_from_slice(reason);
        }
    }
    writer.write_all(&bytes).await?;
    writer.flush().await
}

/// Reads the listener's answer: the listener's frame limit when accepted, the refusal
/// otherwise.
pub(crate) async fn read_answer(reader: &mut (impl AsyncRead + Unpin)) -> Result<usize, PeerError> {
    let mut head = [0u8; 3];
    reader.read_exact(&mut head).await?;
    let payload_bytes = u16::from_be_bytes([head[1], head[2]]) as usize;
    match head[0] {
        0 if payload_bytes == 4 => {
            let mut limit = [0u8; 4];
            reader.read_exact(&mut limit).await?;
            Ok(u32::from_be_bytes(limit) as usize)
        }
        1 if payload_bytes <= REFUSAL_REASON_BYTES_MAX => {
            let mut reason = vec![0u8; payload_bytes];
            reader.read_exact(&mut reason).await?;
            Err(PeerError::Refused(Refusal::from_reason(
                &String::from_utf8_lossy(&reason),
            )))
        }
        status => Err(PeerError::Protocol(format!(
            "malformed handshake answer (status {status}, payload of {payload_bytes} bytes)"
        ))),
    }
}

/// Encodes a frame header in front of a payload of `payload_bytes`.
pub(crate) fn frame_header(kind: FrameKind, payload_bytes: usize) -> [u8; FRAME_HEADER_BYTES] {
    let length = u32::try_from(payload_bytes).expect("frame payloads are limited far below 4 GiB");
    let mut header = [0u8; FRAME_HEADER_BYTES];
    header[0] = kind.to_wire();
    header[1..].copy_from_slice(&length.to_be_bytes());
    header
}

/// Reads a frame header; `Ok(None)` at a clean end of stream (between frames). The length is
/// checked against `payload_bytes_max` here, before anyone allocates for the payload.
pub(crate) async fn read_frame_header(
    reader: &mut (impl AsyncRead + Unpin),
    payload_bytes_max: usize,
) -> Result<Option<(FrameKind, usize)>, PeerError> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    let first = reader.read(&mut header[..1]).await?;
    if first == 0 {
        return Ok(None);
    }
    reader.read_exact(&mut header[1..]).await?;
    let Some(kind) = FrameKind::from_wire(header[0]) else {
        return Err(PeerError::Protocol(format!(
            "unknown frame kind {}",
            header[0]
        )));
    };
    let length = u32::from_be_bytes(header[1..].try_into().unwrap()) as usize;
    if length > payload_bytes_max {
        return Err(PeerError::FrameTooLarge {
            bytes: length,
            limit: payload_bytes_max,
        });
    }
    Ok(Some((kind, length)))
}

/// Reads a payload of `length` bytes (already checked against its limit).
pub(crate) async fn read_payload(
    reader: &mut (impl AsyncRead + Unpin),
    length: usize,
) -> Result<Vec<u8>, PeerError> {
    let mut payload = vec![0u8; length];
    reader.read_exact(&mut payload).await?;
    Ok(payload)
}

#[cfg(test)]
mod tests {
    use futures_lite::future::block_on;
    use futures_lite::io::Cursor;

    use super::*;

    #[test]
    fn hello_round_trips_and_strangers_are_told_apart() {
        let hello = Hello {
            cluster_id: 0xdead_beef,
            from: 1,
            to: u64::MAX,
            lane: Lane::Append,
        };
        let bytes = hello.encode();
        assert_eq!(
            block_on(Hello::read(&mut Cursor::new(bytes))).unwrap(),
            Ok(hello)
        );

        let mut newer = bytes;
        newer[9] = 2;
        assert_eq!(
            block_on(Hello::read(&mut Cursor::new(newer))).unwrap(),
            Err(Refusal::IncompatibleVersion)
        );
        let mut stranger = bytes;
        stranger[..8].copy_from_slice(b"POST /ra");
        assert!(matches!(
            block_on(Hello::read(&mut Cursor::new(stranger))),
            Err(PeerError::Protocol(_))
        ));
        let mut bad_lane = bytes;
        bad_lane[10] = 9;
        assert!(block_on(Hello::read(&mut Cursor::new(bad_lane))).is_err());
        // A hello cut short is an error, never a panic.
        assert!(block_on(Hello::read(&mut Cursor::new(&bytes[..20]))).is_err());
    }

    #[test]
    fn answers_carry_the_refusal_reason() {
        for refusal in [
            None,
            Some(Refusal::ClusterIdMismatch),
            Some(Refusal::WrongReceiver),
            Some(Refusal::Removed),
            Some(Refusal::IncompatibleVersion),
            Some(Refusal::Other("something newer".into())),
        ] {
            let mut bytes = Cursor::new(Vec::new());
            let answer = match refusal.as_ref() {
                None => Ok(1234),
                Some(refusal) => Err(refusal),
            };
            block_on(write_answer(&mut bytes, answer)).unwrap();
            let read = block_on(read_answer(&mut Cursor::new(bytes.into_inner())));
            match (&refusal, read) {
                (None, Ok(1234)) => {}
                (Some(sent), Err(PeerError::Refused(received))) => assert_eq!(sent, &received),
                (sent, read) => panic!("{sent:?} read back as {read:?}"),
            }
        }
        // A reason longer than the limit is refused unread.
        let mut long = vec![1u8];
        long.extend_from_slice(&(REFUSAL_REASON_BYTES_MAX as u16 + 1).to_be_bytes());
        assert!(matches!(
            block_on(read_answer(&mut Cursor::new(long))),
            Err(PeerError::Protocol(_))
        ));
    }

    #[test]
    fn frame_headers_are_checked_before_allocation() {
        let header = frame_header(FrameKind::Data, 1000);
        let read = |limit| block_on(read_frame_header(&mut Cursor::new(header), limit));
        assert_eq!(read(1000).unwrap(), Some((FrameKind::Data, 1000)));
        assert!(matches!(
            read(999),
            Err(PeerError::FrameTooLarge {
                bytes: 1000,
                limit: 999
            })
        ));
        let huge = [0u8, 0xff, 0xff, 0xff, 0xff];
        assert!(block_on(read_frame_header(&mut Cursor::new(huge), 1 << 20)).is_err());
        assert_eq!(
            block_on(read_frame_header(&mut Cursor::new([0u8; 0]), 10)).unwrap(),
            None
        );
        // A header cut short is an error (the peer died mid-frame), not a clean end.
        assert!(block_on(read_frame_header(&mut Cursor::new([0u8, 0]), 10)).is_err());
        assert!(block_on(read_frame_header(&mut Cursor::new([99u8, 0, 0, 0, 0]), 10)).is_err());
    }
}
