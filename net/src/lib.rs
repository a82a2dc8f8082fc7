//! basalt-net: etcd's v3 protobuf types and an HTTP/2 + gRPC server on glommio sockets.
//!
//! The server binary builds, on each executor, a [`Router`] of etcd methods, wraps it in a
//! [`Server`] with an HTTP/1.1 callback for `/health` and `/version`, binds a listener with
//! [`bind`] (SO_REUSEPORT: same address on every executor) and awaits [`Server::serve`].

pub mod config;
pub mod error;
pub mod etcd_http;
pub mod grpc;
pub mod http1;
pub mod proto;
pub mod rewind;
pub mod server;
pub mod shutdown;
pub mod sniff;

pub use config::ServerConfig;
pub use error::NetError;
pub use grpc::{Code, RequestStream, ResponseSink, Router, Status};
pub use http1::{Http1Request, Http1Response};
pub use server::{bind, Server};
pub use shutdown::ShutdownSignal;
