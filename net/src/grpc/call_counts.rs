//! Counts of gRPC calls per method and outcome, as go-grpc-prometheus records them for etcd
//! (`grpc_server_started_total`, `grpc_server_handled_total`, and with `--metrics=extensive`
//! `grpc_server_handling_seconds`).
//!
//! `grpc_server_handling_seconds`), and the bytes of the messages themselves, as etcd's codec
//! records them (`etcd_network_client_grpc_received_bytes_total` / `_sent_bytes_total`).
//!
//! Each executor's router has its own counts, so a call touches only its own core's cache
//! lines; a scrape sums the routers' counts.

use std::sync::Arc;
use std::time::Duration;

use basalt_metrics::{CacheLinePadded, Counter, Histogram, DEFAULT_SECONDS_BUCKETS};

use crate::grpc::status::Code;

/// Number of gRPC status codes (0 through 16).
const CODES: usize = 17;

/// How a method streams, as go-grpc-prometheus' `grpc_type` label names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallKind {
    /// One request, one response.
    Unary,
    /// One request, a stream of responses (Snapshot).
    ServerStream,
    /// Streams both ways (Watch, LeaseKeepAlive).
    BidiStream,
}

impl CallKind {
    /// The `grpc_type` label value.
    pub fn label(self) -> &'static str {
        match self {
            CallKind::Unary => "unary",
            CallKind::ServerStream => "server_stream",
            CallKind::BidiStream => "bidi_stream",
        }
    }
}

/// The counts of one method on one executor.
#[derive(Debug)]
pub struct MethodCalls {
    /// `etcdserverpb.KV` of `/etcdserverpb.KV/Range`.
    pub service: String,
    /// `Range` of `/etcdserverpb.KV/Range`.
    pub method: String,
    /// How the method streams.
    pub kind: CallKind,
    started: Counter,
    /// One count per status code the calls ended with.
    handled: [Counter; CODES],
    /// Seconds from the call's start to its end (only when asked for: it reads the clock twice
    /// per call).
    handling_seconds: Option<Histogram>,
}

impl MethodCalls {
    /// Calls begun.
    pub fn started(&self) -> u64 {
        self.started.get()
    }

    /// Calls that ended with `code`.
    pub fn handled(&self, code: Code) -> u64 {
        self.handled[code as usize].get()
    }

    /// Seconds per call, when `--metrics=extensive` asked for it.
    pub fn handling_seconds(&self) -> Option<&Histogram> {
        self.handling_seconds.as_ref()
    }

    pub(crate) fn record_start(&self) {
        self.started.inc();
    }

    pub(crate) fn record_end(&self, code: Code, took: Option<Duration>) {
        self.handled[code as usize].inc();
        if let (Some(histogram), Some(took)) = (&self.handling_seconds, took) {
            histogram.observe_duration(took);
        }
    }

    pub(crate) fn times_calls(&self) -> bool {
        self.handling_seconds.is_some()
    }
}

/// The bytes of the gRPC messages one executor received and sent: each message's protobuf
/// body, without the 5-byte frame prefix, as etcd's codec counts what it unmarshals and
/// marshals. Received counts every message decoded, sent every message encoded for sending.
#[derive(Debug, Default)]
pub struct MessageBytes {
    received: Counter,
    sent: Counter,
}

impl MessageBytes {
    /// Bytes of request messages received.
    pub fn received(&self) -> u64 {
        self.received.get()
    }

    /// Bytes of response messages sent.
    pub fn sent(&self) -> u64 {
        self.sent.get()
    }

    pub(crate) fn record_received(&self, body_bytes: usize) {
        self.received.add(body_bytes as u64);
    }

    pub(crate) fn record_sent(&self, body_bytes: usize) {
        self.sent.add(body_bytes as u64);
    }
}

/// One executor's message byte counts, as each call holds them.
pub(crate) type SharedMessageBytes = Arc<CacheLinePadded<MessageBytes>>;

/// Every registered method's counts on one executor, in registration order, and the bytes of
/// its messages.
#[derive(Debug)]
pub struct GrpcCallCounts {
    methods: Vec<CacheLinePadded<MethodCalls>>,
    /// Shared with each call's request stream and response sink (an `Arc` clone per call, on
    /// this executor only).
    message_bytes: SharedMessageBytes,
}

impl GrpcCallCounts {
    /// Counts for these `(path, kind)` methods; `time_calls` adds the handling histogram.
    pub(crate) fn new(methods: &[(String, CallKind)], time_calls: bool) -> GrpcCallCounts {
        let methods = methods
            .iter()
            .map(|(path, kind)| {
                let (service, method) = split_path(path);
                CacheLinePadded(MethodCalls {
                    service: service.to_string(),
                    method: method.to_string(),
                    kind: *kind,
                    started: Counter::new(),
                    handled: std::array::from_fn(|_| Counter::new()),
                    handling_seconds: time_calls.then(|| Histogram::new(&DEFAULT_SECONDS_BUCKETS)),
                })
            })
            .collect();
        GrpcCallCounts {
            methods,
            message_bytes: Arc::new(CacheLinePadded(MessageBytes::default())),
        }
    }

    /// The bytes of the messages received and sent.
    pub fn message_bytes(&self) -> &MessageBytes {
        &self.message_bytes
    }

    pub(crate) fn message_bytes_shared(&self) -> SharedMessageBytes {
        self.message_bytes.clone()
    }

    /// Every method's counts.
    pub fn methods(&self) -> impl Iterator<Item = &MethodCalls> {
        self.methods.iter().map(|padded| &padded.0)
    }

    pub(crate) fn method(&self, index: usize) -> &MethodCalls {
        &self.methods[index]
    }
}

/// `("etcdserverpb.KV", "Range")` of `/etcdserverpb.KV/Range` (the router checked the shape).
fn split_path(path: &str) -> (&str, &str) {
    let trimmed = path.trim_start_matches('/');
    trimmed.split_once('/').unwrap_or((trimmed, ""))
}

/// go-grpc-prometheus' `grpc_code` label: Go's names of the codes.
pub fn code_label(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "Canceled",
        Code::Unknown => "Unknown",
        Code::InvalidArgument => "InvalidArgument",
        Code::DeadlineExceeded => "DeadlineExceeded",
        Code::NotFound => "NotFound",
        Code::AlreadyExists => "AlreadyExists",
        Code::PermissionDenied => "PermissionDenied",
        Code::ResourceExhausted => "ResourceExhausted",
        Code::FailedPrecondition => "FailedPrecondition",
        Code::Aborted => "Aborted",
        Code::OutOfRange => "OutOfRange",
        Code::Unimplemented => "Unimplemented",
        Code::Internal => "Internal",
        Code::Unavailable => "Unavailable",
        Code::DataLoss => "DataLoss",
        Code::Unauthenticated => "Unauthenticated",
    }
}

/// Every code, in number order.
pub const ALL_CODES: [Code; CODES] = [
    Code::Ok,
    Code::Cancelled,
    Code::Unknown,
    Code::InvalidArgument,
    Code::DeadlineExceeded,
    Code::NotFound,
    Code::AlreadyExists,
    Code::PermissionDenied,
    Code::ResourceExhausted,
    Code::FailedPrecondition,
    Code::Aborted,
    Code::OutOfRange,
    Code::Unimplemented,
    Code::Internal,
    Code::Unavailable,
    Code::DataLoss,
    Code::Unauthenticated,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_sits_at_its_number() {
        for (number, code) in ALL_CODES.iter().enumerate() {
            assert_eq!(*code as usize, number);
            assert_eq!(Code::from_u32(number as u32), *code);
        }
    }

    #[test]
    fn a_method_path_splits_into_service_and_method() {
        assert_eq!(
            split_path("/etcdserverpb.KV/Range"),
            ("etcdserverpb.KV", "Range")
        );
    }
}
