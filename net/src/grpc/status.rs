//! gRPC status: the code and message every call ends with, and how they travel in headers.
//!
//! Handlers return `Result<_, Status>`; the engine's errors map to a `Status` once, at the edge
//! (the server's service layer), and this module turns a `Status` into `grpc-status` /
//! `grpc-message` trailers. Messages are percent-encoded as the gRPC HTTP/2 spec requires
//! (bytes outside printable ASCII, and '%' itself), so any text survives the trip.

use http::header::HeaderName;
use http::{HeaderMap, HeaderValue};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, CONTROLS};

use crate::http2::server_connection::StreamError;

/// Bytes the gRPC spec asks to percent-encode in `grpc-message`: non-printable ASCII and '%'
/// (non-ASCII bytes are always encoded by `percent_encoding`).
const GRPC_MESSAGE_ENCODE_SET: &AsciiSet = &CONTROLS.add(b'%');

/// The `grpc-status` trailer's name.
const GRPC_STATUS: HeaderName = HeaderName::from_static("grpc-status");

/// The `grpc-message` trailer's name.
const GRPC_MESSAGE: HeaderName = HeaderName::from_static("grpc-message");

/// Each code's number as `grpc-status` carries it, indexed by the code.
const STATUS_TEXTS: [&str; 17] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
];

/// gRPC status codes, with the numbers of the gRPC spec.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Code {
    /// The call succeeded.
    Ok = 0,
    /// The call was cancelled, typically by the client.
    Cancelled = 1,
    /// An error with no better code.
    Unknown = 2,
    /// The request is wrong whatever the server's state.
    InvalidArgument = 3,
    /// The deadline passed before the call finished.
    DeadlineExceeded = 4,
    /// Something the request names does not exist.
    NotFound = 5,
    /// Something the request creates exists already.
    AlreadyExists = 6,
    /// The caller may not do this.
    PermissionDenied = 7,
    /// A limit or quota was hit (message size, space).
    ResourceExhausted = 8,
    /// The system is not in a state that allows the call.
    FailedPrecondition = 9,
    /// The call was aborted (e.g. a conflict).
    Aborted = 10,
    /// A value is past the valid range (e.g. a future revision).
    OutOfRange = 11,
    /// The method is not served.
    Unimplemented = 12,
    /// An invariant broke, on the wire or in the server.
    Internal = 13,
    /// The service cannot serve now; retrying may help.
    Unavailable = 14,
    /// Unrecoverable data loss or corruption.
    DataLoss = 15,
    /// The caller has no valid credentials.
    Unauthenticated = 16,
}

impl Code {
    /// The code for a number read off the wire; unknown numbers are `Unknown`, as the spec says.
    pub fn from_u32(number: u32) -> Code {
        match number {
            0 => Code::Ok,
            1 => Code::Cancelled,
            3 => Code::InvalidArgument,
            4 => Code::DeadlineExceeded,
            5 => Code::NotFound,
            6 => Code::AlreadyExists,
            7 => Code::PermissionDenied,
            8 => Code::ResourceExhausted,
            9 => Code::FailedPrecondition,
            10 => Code::Aborted,
            11 => Code::OutOfRange,
            12 => Code::Unimplemented,
            13 => Code::Internal,
            14 => Code::Unavailable,
            15 => Code::DataLoss,
            16 => Code::Unauthenticated,
            _ => Code::Unknown,
        }
    }
}

/// The outcome of a gRPC call that did not succeed: a code and a human-readable message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct Status {
    /// The gRPC code.
    pub code: Code,
    /// The message for humans (sent percent-encoded in `grpc-message`).
    pub message: String,
}

impl Status {
    /// A status with this code and message.
    pub fn new(code: Code, message: impl Into<String>) -> Status {
        Status {
            code,
            message: message.into(),
        }
    }

    /// INVALID_ARGUMENT: the request itself is wrong (malformed protobuf, empty key, ...).
    pub fn invalid_argument(message: impl Into<String>) -> Status {
        Status::new(Code::InvalidArgument, message)
    }

    /// RESOURCE_EXHAUSTED: the request broke a limit (message size, ...).
    pub fn resource_exhausted(message: impl Into<String>) -> Status {
        Status::new(Code::ResourceExhausted, message)
    }

    /// UNIMPLEMENTED: no handler for the method, or a feature we do not speak.
    pub fn unimplemented(message: impl Into<String>) -> Status {
        Status::new(Code::Unimplemented, message)
    }

    /// INTERNAL: the protocol was broken in a way the client cannot fix by changing arguments.
    pub fn internal(message: impl Into<String>) -> Status {
        Status::new(Code::Internal, message)
    }

    /// CANCELLED: the client went away or reset the stream.
    pub fn cancelled(message: impl Into<String>) -> Status {
        Status::new(Code::Cancelled, message)
    }

    /// UNAVAILABLE: the server cannot serve this now (shutting down, stream closed).
    pub fn unavailable(message: impl Into<String>) -> Status {
        Status::new(Code::Unavailable, message)
    }

    /// Writes `grpc-status` and `grpc-message` (percent-encoded) into `headers`.
    ///
    /// Every call ends here: the name and the status text are static, so the usual
    /// trailer (`grpc-status: 0`) costs no parse of a name and no allocation of a value.
    pub fn write_headers(code: Code, message: &str, headers: &mut HeaderMap) {
        headers.insert(
            GRPC_STATUS,
            HeaderValue::from_static(Status::code_text(code)),
        );
        if let Some(encoded) = Status::encode_message(message) {
            // Percent-encoding leaves only visible ASCII, so this cannot fail.
            let value = HeaderValue::from_str(&encoded).expect("percent-encoded header value");
            headers.insert(GRPC_MESSAGE, value);
        }
    }

    /// `grpc-status`'s value for `code`: its number.
    pub(crate) fn code_text(code: Code) -> &'static str {
        STATUS_TEXTS[code as usize]
    }

    /// `grpc-message`'s value for `message` (percent-encoded), or none for an empty message.
    pub(crate) fn encode_message(message: &str) -> Option<String> {
        (!message.is_empty())
            .then(|| utf8_percent_encode(message, GRPC_MESSAGE_ENCODE_SET).to_string())
    }

    /// Reads `grpc-status` and `grpc-message` back from headers (for tests and clients).
    pub fn from_headers(headers: &HeaderMap) -> Option<(Code, String)> {
        let code = headers
            .get("grpc-status")?
            .to_str()
            .ok()?
            .parse::<u32>()
            .ok()?;
        let message = headers
            .get("grpc-message")
            .and_then(|value| value.to_str().ok())
            .map(|text| percent_decode_str(text).decode_utf8_lossy().into_owned())
            .unwrap_or_default();
        Some((Code::from_u32(code), message))
    }
}

impl From<StreamError> for Status {
    fn from(error: StreamError) -> Status {
        Status::cancelled(format!("stream closed by client: {error}"))
    }
}

#[cfg(test)]
mod tests {
    //! Goal: a status survives a trip through headers byte for byte, whatever its text.
    use super::*;

    #[test]
    fn message_with_special_characters_round_trips() {
        let text = "etcdserver: key not found: 100% \"ümlaut\"\n\ttab";
        let mut headers = HeaderMap::new();
        Status::write_headers(Code::NotFound, text, &mut headers);
        let raw = headers.get("grpc-message").unwrap().to_str().unwrap();
        assert!(raw.bytes().all(|b| (0x20..=0x7e).contains(&b)), "{raw}");
        assert!(raw.contains("100%25"), "'%' itself is encoded: {raw}");
        assert_eq!(
            Status::from_headers(&headers),
            Some((Code::NotFound, text.to_string()))
        );
    }

    #[test]
    fn ok_has_no_message_and_unknown_numbers_are_unknown() {
        let mut headers = HeaderMap::new();
        Status::write_headers(Code::Ok, "", &mut headers);
        assert_eq!(headers.get("grpc-status").unwrap(), "0");
        assert!(headers.get("grpc-message").is_none());
        assert_eq!(Code::from_u32(99), Code::Unknown);
        assert_eq!(Code::from_u32(8), Code::ResourceExhausted);
    }

    #[test]
    fn every_code_is_written_as_its_number() {
        // The status texts are a table indexed by the code: each must read back as itself.
        for number in 0..=16u32 {
            let code = Code::from_u32(number);
            assert_eq!(code as u32, number, "Code::from_u32 covers {number}");
            let mut headers = HeaderMap::new();
            Status::write_headers(code, "", &mut headers);
            assert_eq!(headers.get("grpc-status").unwrap(), &number.to_string());
            assert_eq!(Status::from_headers(&headers), Some((code, String::new())));
        }
    }
}
