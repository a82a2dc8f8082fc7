//! The crate's one error type: what can go wrong serving a connection.
//!
//! Call-level failures are not errors of this kind: they travel to the client as a gRPC
//! [`Status`](crate::grpc::Status). `NetError` is for the connection itself (socket, HTTP/2
//! protocol, a malformed HTTP/1.1 request) and is logged by the accept loop, never sent.

use std::io;

/// What can go wrong serving a connection.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    /// A socket operation failed.
    #[error("socket: {0}")]
    Io(#[from] io::Error),
    /// The client broke the HTTP/2 protocol; it was sent GOAWAY with the error's code.
    #[error("{0}")]
    Http2(#[from] crate::http2::server_connection::ConnectionError),
    /// A glommio operation (bind, accept) failed.
    #[error("glommio: {0}")]
    Glommio(String),
    /// The client took too long for a step with a deadline (first bytes, handshake).
    #[error("timed out waiting for {0}")]
    Timeout(&'static str),
    /// The TLS handshake failed (plaintext client, refused or missing client certificate, no
    /// common version or cipher suite, ...).
    #[error("TLS handshake: {0}")]
    TlsHandshake(io::Error),
    /// The client broke a policy of the HTTP/2 connection (pinged too often) and was sent
    /// GOAWAY.
    #[error("http/2: closed the connection: {0}")]
    Http2Policy(&'static str),
    /// An HTTP/1.1 request could not be parsed or broke a limit.
    #[error("http/1.1: {0}")]
    Http1(String),
    /// The server closed the connection with its calls: a graceful stop's bound had passed.
    #[error("closed by the server's stop")]
    Closed,
}

impl<T: std::fmt::Debug> From<glommio::GlommioError<T>> for NetError {
    fn from(error: glommio::GlommioError<T>) -> Self {
        NetError::Glommio(error.to_string())
    }
}
