//! HTTP/2 frames (RFC 9113 §4, §6): the 9-byte header, and the frames the lean client and
//! the lean server write (SETTINGS, WINDOW_UPDATE, PING ACK, HEADERS, DATA) or read apart
//! (SETTINGS, padded DATA and HEADERS).

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Length of a frame header.
pub const HEADER_LEN: usize = 9;
/// SETTINGS_MAX_FRAME_SIZE's initial value: the largest frame a peer must accept.
pub const FRAME_SIZE_DEFAULT: usize = 16_384;
/// The initial flow-control window of a stream and of the connection.
pub const WINDOW_DEFAULT: i64 = 65_535;
/// Largest flow-control window (2^31 - 1).
pub const WINDOW_MAX: i64 = (1 << 31) - 1;

/// DATA frame type.
pub const DATA: u8 = 0x0;
/// HEADERS frame type.
pub const HEADERS: u8 = 0x1;
/// PRIORITY frame type.
pub const PRIORITY: u8 = 0x2;
/// RST_STREAM frame type.
pub const RST_STREAM: u8 = 0x3;
/// SETTINGS frame type.
pub const SETTINGS: u8 = 0x4;
/// PUSH_PROMISE frame type.
pub const PUSH_PROMISE: u8 = 0x5;
/// PING frame type.
pub const PING: u8 = 0x6;
/// GOAWAY frame type.
pub const GOAWAY: u8 = 0x7;
/// WINDOW_UPDATE frame type.
pub const WINDOW_UPDATE: u8 = 0x8;
/// CONTINUATION frame type.
pub const CONTINUATION: u8 = 0x9;

/// END_STREAM flag (DATA, HEADERS).
pub const FLAG_END_STREAM: u8 = 0x1;
/// ACK flag (SETTINGS, PING).
pub const FLAG_ACK: u8 = 0x1;
/// END_HEADERS flag (HEADERS, CONTINUATION).
pub const FLAG_END_HEADERS: u8 = 0x4;
/// PADDED flag (DATA, HEADERS).
pub const FLAG_PADDED: u8 = 0x8;
/// PRIORITY flag (HEADERS).
pub const FLAG_PRIORITY: u8 = 0x20;

/// SETTINGS_HEADER_TABLE_SIZE identifier.
pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
/// SETTINGS_ENABLE_PUSH identifier.
pub const SETTINGS_ENABLE_PUSH: u16 = 0x2;
/// SETTINGS_MAX_CONCURRENT_STREAMS identifier.
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
/// SETTINGS_INITIAL_WINDOW_SIZE identifier.
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
/// SETTINGS_MAX_FRAME_SIZE identifier.
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;

/// A parsed frame header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameHeader {
    /// Payload length in bytes.
    pub length: usize,
    /// The frame type.
    pub kind: u8,
    /// The frame's flags.
    pub flags: u8,
    /// Stream identifier (the reserved bit cleared).
    pub stream_id: u32,
}

impl FrameHeader {
    /// Reads the header at the start of `bytes` (at least `HEADER_LEN` long).
    pub fn parse(bytes: &[u8]) -> FrameHeader {
        FrameHeader {
            length: u32::from_be_bytes([0, bytes[0], bytes[1], bytes[2]]) as usize,
            kind: bytes[3],
            flags: bytes[4],
            stream_id: u32::from_be_bytes([bytes[5], bytes[6], bytes[7], bytes[8]]) & 0x7fff_ffff,
        }
    }
}

/// Appends a frame header.
pub fn write_header(out: &mut Vec<u8>, length: usize, kind: u8, flags: u8, stream_id: u32) {
    assert!(length < 1 << 24, "frame length fits 24 bits");
    out.extend_from_slice(&(length as u32).to_be_bytes()[1..]);
    out.push(kind);
    out.push(flags);
    out.extend_from_slice(&stream_id.to_be_bytes());
}

/// Appends a SETTINGS frame carrying `settings`.
pub fn write_settings(out: &mut Vec<u8>, settings: &[(u16, u32)]) {
    write_header(out, settings.len() * 6, SETTINGS, 0, 0);
    for (id, value) in settings {
        out.extend_from_slice(&id.to_be_bytes());
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// Appends a SETTINGS ACK.
pub fn write_settings_ack(out: &mut Vec<u8>) {
    write_header(out, 0, SETTINGS, FLAG_ACK, 0);
}

/// Appends a WINDOW_UPDATE of `increment` bytes (1..=2^31-1) for `stream_id` (0: connection).
pub fn write_window_update(out: &mut Vec<u8>, stream_id: u32, increment: u32) {
    assert!(increment > 0 && i64::from(increment) <= WINDOW_MAX);
    write_header(out, 4, WINDOW_UPDATE, 0, stream_id);
    out.extend_from_slice(&increment.to_be_bytes());
}

/// Appends the ACK of a PING whose payload was `opaque`.
pub fn write_ping_ack(out: &mut Vec<u8>, opaque: &[u8; 8]) {
    write_header(out, 8, PING, FLAG_ACK, 0);
    out.extend_from_slice(opaque);
}

/// The settings of a SETTINGS payload, or `None` when its length is not a multiple of 6.
pub fn parse_settings(payload: &[u8]) -> Option<impl Iterator<Item = (u16, u32)> + '_> {
    payload.len().is_multiple_of(6).then(|| {
        payload.chunks_exact(6).map(|setting| {
            (
                u16::from_be_bytes([setting[0], setting[1]]),
                u32::from_be_bytes([setting[2], setting[3], setting[4], setting[5]]),
            )
        })
    })
}

/// The content of a DATA or HEADERS payload without its padding (and, for HEADERS, without
/// its priority fields); `None` when the padding is longer than the payload.
pub fn unpadded(kind: u8, flags: u8, payload: &[u8]) -> Option<&[u8]> {
    unpadded_range(kind, flags, payload).map(|range| &payload[range])
}

/// Where `unpadded`'s content lies in `payload`.
pub fn unpadded_range(kind: u8, flags: u8, payload: &[u8]) -> Option<std::ops::Range<usize>> {
    let mut start = 0usize;
    let mut padding = 0usize;
    if flags & FLAG_PADDED != 0 {
        padding = usize::from(*payload.first()?);
        start = 1;
    }
    if kind == HEADERS && flags & FLAG_PRIORITY != 0 {
        start += 5;
    }
    let end = payload.len().checked_sub(padding)?;
    (start <= end).then_some(start..end)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a written header parses back to the same fields, with the reserved bit ignored.
    #[test]
    fn header_round_trips() {
        let mut out = Vec::new();
        write_header(&mut out, 70_000, HEADERS, FLAG_END_HEADERS, 7);
        assert_eq!(out.len(), HEADER_LEN);
        assert_eq!(
            FrameHeader::parse(&out),
            FrameHeader {
                length: 70_000,
                kind: HEADERS,
                flags: FLAG_END_HEADERS,
                stream_id: 7
            }
        );
        out[5] |= 0x80;
        assert_eq!(FrameHeader::parse(&out).stream_id, 7);
    }

    // Goal: SETTINGS and WINDOW_UPDATE carry their fields big-endian; a SETTINGS payload of a
    // wrong length is refused.
    #[test]
    fn settings_and_window_updates_encode() {
        let mut out = Vec::new();
        write_settings(&mut out, &[(SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20)]);
        assert_eq!(out, [0, 0, 6, SETTINGS, 0, 0, 0, 0, 0, 0, 4, 0, 0x10, 0, 0]);
        let settings: Vec<_> = parse_settings(&out[HEADER_LEN..]).unwrap().collect();
        assert_eq!(settings, [(SETTINGS_INITIAL_WINDOW_SIZE, 1 << 20)]);
        assert!(parse_settings(&[0; 5]).is_none());
        out.clear();
        write_window_update(&mut out, 0, 1000);
        assert_eq!(
            out,
            [0, 0, 4, WINDOW_UPDATE, 0, 0, 0, 0, 0, 0, 0, 0x03, 0xe8]
        );
    }

    // Goal: padding and HEADERS priority fields are stripped; a pad length beyond the payload
    // is refused.
    #[test]
    fn padding_and_priority_are_stripped() {
        assert_eq!(unpadded(DATA, 0, b"abc"), Some(&b"abc"[..]));
        assert_eq!(unpadded(DATA, FLAG_PADDED, b"\x02abcxx"), Some(&b"abc"[..]));
        assert_eq!(
            unpadded(
                HEADERS,
                FLAG_PADDED | FLAG_PRIORITY,
                b"\x01\0\0\0\x03\x10hdx"
            ),
            Some(&b"hd"[..])
        );
        assert_eq!(unpadded(DATA, FLAG_PADDED, b"\x09ab"), None);
    }
}
