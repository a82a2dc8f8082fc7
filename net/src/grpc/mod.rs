//! gRPC over HTTP/2: message framing, status, the call halves, routing and dispatch.

pub mod call;
pub mod call_counts;
pub(crate) mod dispatch;
pub mod frame;
pub mod local;
pub mod metadata;
pub mod partial_budget;
pub mod router;
pub mod status;
pub mod timeout;

pub use call::{RequestStream, ResponseSink};
pub use call_counts::{CallKind, GrpcCallCounts, MethodCalls};
pub use frame::MAX_SEND_MESSAGE_BYTES;
pub use local::{LocalCall, LocalEvent};
pub use metadata::Metadata;
pub use router::Router;
pub use status::{Code, Status};
