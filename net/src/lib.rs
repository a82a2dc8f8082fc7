//! basalt-net: etcd's v3 protobuf types and an HTTP/2 + gRPC server on glommio sockets.
//!
//! The server binary builds, on each executor, a [`Router`] of etcd methods, wraps it in a
//! [`Server`] with an HTTP/1.1 callback for `/health` and `/version`, binds a listener with
//! [`bind`] (SO_REUSEPORT: same address on every executor) and awaits [`Server::serve`].
//! An `https://` listener is served with [`Server::serve_tls`] instead (see [`tls`]).
//!
//! ```no_run
//! use std::rc::Rc;
//! use basalt_net::proto::etcdserverpb::{PutRequest, PutResponse, WatchRequest, WatchResponse};
//! use basalt_net::{etcd_http, EtcdStatus, Http1Response, Metadata, RequestStream,
//!                  ResponseSink, Router, Server, ServerConfig};
//!
//! // On each executor (inside its LocalExecutor future):
//! async fn serve_this_core() -> Result<(), basalt_net::NetError> {
//!     let mut router = Router::new();
//!     router.unary("/etcdserverpb.KV/Put", |_metadata, request: PutRequest| async move {
//!         if request.key.is_empty() {
//!             return Err(EtcdStatus::EmptyKey.into());
//!         }
//!         Ok(PutResponse::default())
//!     });
//!     router.streaming(
//!         "/etcdserverpb.Watch/Watch",
//!         |metadata: Metadata,
//!          mut requests: RequestStream<WatchRequest>,
//!          mut responses: ResponseSink<WatchResponse>| async move {
//!             let _require_leader = metadata.get("hasleader") == Some("true");
//!             while let Some(_request) = requests.message().await? {
//!                 responses.send(&WatchResponse::default()).await?;
//!             }
//!             Ok(())
//!         },
//!     );
//!     let server = Server::new(router, ServerConfig::for_max_request_bytes(1536 * 1024))
//!         .with_http1(|request| match request.path() {
//!             "/health" => Http1Response::json(etcd_http::health_body(true, "")),
//!             "/version" => Http1Response::json(etcd_http::version_body("3.5.17", "3.5.0")),
//!             _ => Http1Response::not_found(),
//!         });
//!     let listener = basalt_net::bind("127.0.0.1:2379".parse().unwrap())?;
//!     let server = Rc::new(server);
//!     let _stop = server.shutdown_signal(); // raise() on SIGTERM
//!     server.serve(listener).await
//! }
//! ```

#![warn(missing_docs)]

pub mod config;
mod deadline;
pub mod error;
pub mod etcd_http;
pub mod etcd_status;
pub mod grpc;
pub mod handoff;
pub mod http1;
pub mod http2;
pub mod json_gateway;
pub mod peer;
pub mod ping_policy;
#[allow(missing_docs)]
pub mod proto;
pub mod read_activity;
pub mod rewind;
pub mod server;
pub mod shutdown;
pub mod sniff;
pub mod tls;

pub use config::{Keepalive, ServerConfig};
pub use error::NetError;
pub use etcd_status::EtcdStatus;
pub use grpc::{
    Code, Metadata, RequestStream, ResponseSink, Router, Status, MAX_SEND_MESSAGE_BYTES,
};
pub use http1::{Http1Answer, Http1Request, Http1Response};
pub use server::{adopt_listener, bind, bind_exclusive, claim, retry_while_in_use, Server};
pub use shutdown::ShutdownSignal;
pub use tls::{ServerTls, TlsError};
