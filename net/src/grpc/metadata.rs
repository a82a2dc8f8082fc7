//! A call's request metadata: the HTTP/2 request headers a gRPC client sent with the call.
//!
//! etcd reads some of it: the auth `token`, `hasleader` (require-leader watches and calls).

use http::HeaderMap;

/// The request headers of one call.
#[derive(Clone, Debug, Default)]
pub struct Metadata {
    headers: HeaderMap,
}

impl Metadata {
    /// Metadata from request headers.
    pub fn new(headers: HeaderMap) -> Metadata {
        Metadata { headers }
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
