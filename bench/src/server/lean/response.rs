//! What comes back for a call: the response headers, the gRPC message and the trailers of one
//! stream, and the verdict on them once the stream ends.

/// What one stream has received so far.
#[derive(Default)]
pub struct Response {
    /// The `:status` of the response headers.
    http_status: Option<u16>,
    /// The `grpc-status` of the trailers (or of a trailers-only response).
    grpc_status: Option<u32>,
    grpc_message: Option<String>,
    /// The DATA received: the length-prefixed gRPC message.
    body: Vec<u8>,
}

impl Response {
    /// Notes one decoded header field (response headers or trailers).
    pub fn header(&mut self, name: &[u8], value: &[u8]) {
        match name {
            b":status" => self.http_status = parse_decimal(value).map(|s| s as u16),
            b"grpc-status" => self.grpc_status = parse_decimal(value),
            b"grpc-message" => self.grpc_message = Some(String::from_utf8_lossy(value).into()),
            _ => {}
        }
    }

    /// Appends DATA content.
    pub fn data(&mut self, content: &[u8]) {
        self.body.extend_from_slice(content);
    }

    /// The verdict once the stream ended: `Ok` when the server answered 200 with grpc-status 0
    /// and one well-formed message whose first field is the response header (field 1, as in
    /// every etcd KV response).
    pub fn verdict(&self) -> Result<(), String> {
        if self.http_status != Some(200) {
            return Err(format!("HTTP status {:?}", self.http_status));
        }
        match self.grpc_status {
            Some(0) => {}
            Some(code) => {
                let message = self.grpc_message.as_deref().unwrap_or("");
                return Err(format!("grpc-status {code}: {message}"));
            }
            None => return Err("the response ended without grpc-status".into()),
        }
        let prefix = self.body.get(..5).ok_or("no response message")?;
        if prefix[0] != 0 {
            return Err("compressed response message".into());
        }
        let length = u32::from_be_bytes([prefix[1], prefix[2], prefix[3], prefix[4]]) as usize;
        let message = &self.body[5..];
        if message.len() != length {
            return Err(format!(
                "response message of {} bytes, prefix says {length}",
                message.len()
            ));
        }
        if !starts_with_header_field(message) {
            return Err("response message without a header".into());
        }
        Ok(())
    }
}

/// Whether a protobuf message starts with field 1 as a length-delimited value that fits.
fn starts_with_header_field(message: &[u8]) -> bool {
    let Some((&0x0a, rest)) = message.split_first() else {
        return false;
    };
    let mut length = 0u64;
    for (index, &byte) in rest.iter().enumerate().take(10) {
        length |= u64::from(byte & 0x7f) << (7 * index);
        if byte & 0x80 == 0 {
            return length <= (rest.len() - index - 1) as u64;
        }
    }
    false
}

fn parse_decimal(value: &[u8]) -> Option<u32> {
    std::str::from_utf8(value).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: &[u8], grpc_status: &[u8], body: &[u8]) -> Response {
        let mut response = Response::default();
        response.header(b":status", status);
        response.header(b"content-type", b"application/grpc");
        response.data(body);
        response.header(b"grpc-status", grpc_status);
        response
    }

    // Goal: a 200 with grpc-status 0 and a PutResponse { header { .. } } passes; each way of
    // failing (status, grpc-status with its message, short or headerless message) is an error
    // that says which.
    #[test]
    fn verdicts() {
        let good = [0, 0, 0, 0, 4, 0x0a, 2, 0x08, 0x01];
        assert_eq!(response(b"200", b"0", &good).verdict(), Ok(()));
        assert!(response(b"503", b"0", &good)
            .verdict()
            .unwrap_err()
            .contains("503"));
        let mut failed = response(b"200", b"9", &[]);
        failed.header(b"grpc-message", b"etcdserver: no leader");
        assert_eq!(
            failed.verdict(),
            Err("grpc-status 9: etcdserver: no leader".into())
        );
        let short = [0, 0, 0, 0, 9, 0x0a, 2, 0x08, 0x01];
        assert!(response(b"200", b"0", &short).verdict().is_err());
        let headerless = [0, 0, 0, 0, 2, 0x10, 0x01];
        assert!(response(b"200", b"0", &headerless).verdict().is_err());
        let overlong = [0, 0, 0, 0, 4, 0x0a, 5, 0x08, 0x01];
        assert!(response(b"200", b"0", &overlong).verdict().is_err());
        let mut no_trailers = Response::default();
        no_trailers.header(b":status", b"200");
        no_trailers.data(&good);
        assert!(no_trailers.verdict().is_err());
    }
}
