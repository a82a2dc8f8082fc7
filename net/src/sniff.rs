//! Telling HTTP/2 (gRPC) from HTTP/1.1 (`/health`, `/version`) on one port by the first bytes.
//!
//! Every HTTP/2 client over cleartext with prior knowledge (all gRPC clients) opens with the
//! 24-byte connection preface; no HTTP/1.1 request can start with it. So: read until the bytes
//! either diverge from the preface (HTTP/1.1) or match all 24 (HTTP/2).

/// The HTTP/2 client connection preface (RFC 9113, section 3.4).
pub const HTTP2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Which protocol a connection speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/2 with prior knowledge: gRPC.
    Http2,
    /// Anything else, served as HTTP/1.1.
    Http1,
}

/// The protocol the first bytes of a connection show, or `None` if they are a strict prefix of
/// the preface and more bytes are needed to decide.
pub fn sniff(first_bytes: &[u8]) -> Option<Protocol> {
    let compared = first_bytes.len().min(HTTP2_PREFACE.len());
    if first_bytes[..compared] != HTTP2_PREFACE[..compared] {
        Some(Protocol::Http1)
    } else if compared == HTTP2_PREFACE.len() {
        Some(Protocol::Http2)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    //! Goal: the decision is right for every split of the first bytes, and comes as early as
    //! the bytes allow (an HTTP/1.1 request is recognised from its first byte).
    use super::*;

    #[test]
    fn preface_in_any_split_is_http2_only_when_whole() {
        for length in 0..HTTP2_PREFACE.len() {
            assert_eq!(sniff(&HTTP2_PREFACE[..length]), None, "length {length}");
        }
        assert_eq!(sniff(HTTP2_PREFACE), Some(Protocol::Http2));
        let mut with_frames = HTTP2_PREFACE.to_vec();
        with_frames.extend_from_slice(&[0, 0, 0, 4, 0, 0, 0, 0, 0]);
        assert_eq!(sniff(&with_frames), Some(Protocol::Http2));
    }

    #[test]
    fn http1_requests_are_recognised_early() {
        assert_eq!(sniff(b"G"), Some(Protocol::Http1));
        assert_eq!(sniff(b"GET /health HTTP/1.1\r\n"), Some(Protocol::Http1));
        // Shares "P" with the preface, diverges at the second byte.
        assert_eq!(sniff(b"P"), None);
        assert_eq!(sniff(b"POST /v3/kv/range HTTP/1.1"), Some(Protocol::Http1));
        // Diverges only at the last byte of the preface.
        let mut almost = HTTP2_PREFACE.to_vec();
        almost[23] = b'X';
        assert_eq!(sniff(&almost), Some(Protocol::Http1));
    }
}
