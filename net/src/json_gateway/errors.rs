//! How the gateway words failures: grpc-gateway v1's HTTP status per gRPC code (as etcd 3.4's
//! gateway answers), its `{"error","message","code"}` body for a failed call, and its
//! `{"error":{"grpc_code",...}}` line for a stream that fails after its first message.

use crate::grpc::status::{Code, Status};

/// The HTTP status grpc-gateway v1 (etcd 3.4, 3.5) answers a failed call with.
pub fn http_status(code: Code) -> u16 {
    match code {
        Code::Ok => 200,
        Code::Cancelled => 408,
        Code::Unknown => 500,
        Code::InvalidArgument => 400,
        Code::DeadlineExceeded => 504,
        Code::NotFound => 404,
        Code::AlreadyExists => 409,
        Code::PermissionDenied => 403,
        Code::Unauthenticated => 401,
        Code::ResourceExhausted => 429,
        Code::FailedPrecondition => 412,
        Code::Aborted => 409,
        Code::OutOfRange => 400,
        Code::Unimplemented => 501,
        Code::Internal => 500,
        Code::Unavailable => 503,
        Code::DataLoss => 500,
    }
}

/// Go's `http.StatusText` for the statuses above.
pub fn status_text(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Request Entity Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Internal Server Error",
    }
}

/// The body of a failed call: `{"error":M,"message":M,"code":N}`.
pub fn error_body(status: &Status) -> Vec<u8> {
    // Field order is Go's struct order, so the bytes match etcd's.
    let message = json_string(&status.message);
    format!(
        r#"{{"error":{message},"message":{message},"code":{}}}"#,
        status.code as u8
    )
    .into_bytes()
}

/// The line a stream ends with when it fails after its first message.
pub fn stream_error_line(status: &Status) -> Vec<u8> {
    let http_code = http_status(status.code);
    format!(
        "{{\"error\":{{\"grpc_code\":{},\"http_code\":{http_code},\"message\":{},\"http_status\":{}}}}}\n",
        status.code as u8,
        json_string(&status.message),
        json_string(status_text(http_code)),
    )
    .into_bytes()
}

fn json_string(text: &str) -> String {
    serde_json::to_string(text).expect("a string always serializes")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_grpc_gateway_v1s() {
        let status = Status::invalid_argument("etcdserver: key is not provided");
        assert_eq!(
            String::from_utf8(error_body(&status)).unwrap(),
            r#"{"error":"etcdserver: key is not provided","message":"etcdserver: key is not provided","code":3}"#
        );
        assert_eq!(
            String::from_utf8(stream_error_line(&Status::new(Code::NotFound, "x"))).unwrap(),
            "{\"error\":{\"grpc_code\":5,\"http_code\":404,\"message\":\"x\",\"http_status\":\"Not Found\"}}\n"
        );
        assert_eq!(http_status(Code::ResourceExhausted), 429);
        assert_eq!(http_status(Code::FailedPrecondition), 412);
    }
}
