//! A call's request metadata: the HTTP/2 request headers a gRPC client sent with the call.
//!
//! etcd reads some of it: the auth `token`, `hasleader` (require-leader watches and calls).

use std::sync::Arc;

use http::HeaderMap;

/// The request headers of one call, and what the connection knows of its client.
#[derive(Clone, Debug, Default)]
pub struct Metadata {
    headers: HeaderMap,
    peer_common_name: Option<Arc<str>>,
}

impl Metadata {
    /// Metadata from request headers.
    pub fn new(headers: HeaderMap) -> Metadata {
        Metadata {
            headers,
            peer_common_name: None,
        }
    }

    /// The same, on a TLS connection whose client presented a verified certificate with
    /// this subject common name.
    pub fn with_peer_common_name(mut self, name: Option<Arc<str>>) -> Metadata {
        self.peer_common_name = name;
        self
    }

    /// The subject CN of the client's verified TLS certificate, if any.
    pub fn peer_common_name(&self) -> Option<&str> {
        self.peer_common_name.as_deref()
    }

    /// The value of header `name` (lower case, as on the wire), if present and valid text.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// All request headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.headers
    }
}
