//! etcd's JSON gateway (grpc-gateway v1 as etcd 3.4 and 3.5 serve it) on the client port:
//! `POST /v3/<service path>` (or `/v3beta/...`) with a JSON request, answered in JSON.
//!
//! Each request becomes an in-process gRPC call through the same router as gRPC clients'
//! calls ([`LocalCall`] + `run_call`), so every service, limit, call count and (later) the auth
//! check applies to both alike. JSON is the protobuf JSON mapping with the .proto's field
//! names (pbjson on the prost types): bytes in base64, 64-bit integers as strings, enums by
//! name, fields at their default value left out.
//!
//! - Unary paths answer one JSON object, or a failure as `{"error","message","code"}` with
//!   grpc-gateway's HTTP status for the gRPC code (`errors`).
//! - Streaming paths (`watch`, `lease/keepalive`, `maintenance/snapshot`, `election/observe`)
//!   answer chunked, one `{"result":{...}}` line per message. A bidirectional call reads one
//!   request per JSON value of the body, as it arrives (a chunked body streams). As in etcd, a
//!   watch stays open after the body ends, until the client goes away, which cancels it; a
//!   lease keep-alive ends with its body.
//! - `Authorization` becomes the call's `token` (and `authorization`) metadata, and
//!   `Grpc-Metadata-<name>` headers become `<name>`, as grpc-gateway forwards them.

pub mod body;
pub mod errors;
mod h2;
pub mod routes;

use std::cell::RefCell;
use std::rc::Rc;

use futures_lite::{AsyncRead, AsyncWrite, AsyncWriteExt};
use http::{HeaderMap, HeaderName, HeaderValue};

use crate::error::NetError;
use crate::grpc::call::ResponseState;
use crate::grpc::dispatch::{run_call, CallParts};
use crate::grpc::local::{LocalCall, LocalEvent};
use crate::grpc::status::Status;
use crate::grpc::{CallKind, Metadata, Router};
use crate::http1::{read_more, write_response, Http1Head, Http1Response};
use body::{BodyDecoder, BodyFraming};
pub use routes::{find_route, gateway_path, Route};

/// The gateway of one server: its router and limits.
pub(crate) struct JsonGateway {
    pub(crate) router: Rc<Router>,
    /// Largest JSON body of a unary call (and largest JSON value of a stream); more is a 413.
    pub(crate) max_body_bytes: usize,
    /// Largest request message after conversion, as for gRPC clients (429 beyond, as etcd).
    pub(crate) max_receive_message_bytes: usize,
    /// Response bytes a call may queue before its handler waits for the client to read.
    pub(crate) response_buffer_bytes: usize,
}

/// Ends the call's handler (CANCELLED on its next read or send) when the HTTP side goes
/// away for any reason, so a watch or a waiting Lock never outlives its client.
struct CancelOnDrop(LocalCall);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.client_gone();
    }
}

/// The metadata a gateway call carries, from the forwarded headers.
fn call_metadata(forwarded: &[(String, String)]) -> Metadata {
    let mut headers = HeaderMap::new();
    let mut insert = |name: &str, value: &str| {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            headers.insert(name, value);
        }
    };
    for (name, value) in forwarded {
        if name == "authorization" {
            // etcd's auth reads `token`, and `authorization` when there is none.
            insert("token", value);
            insert("authorization", value);
        } else if let Some(name) = name.strip_prefix("grpc-metadata-") {
            insert(name, value);
        }
    }
    Metadata::new(headers)
}

/// What happened next while a gateway call was served.
enum Step {
    Event(LocalEvent),
    /// Bytes read from the client (0: it closed the connection).
    Read(Result<usize, NetError>),
}

impl JsonGateway {
    /// Serves one gateway request whose head was parsed (and removed from `buffer`) over
    /// HTTP/1.1; returns whether the connection may serve another request.
    pub(crate) async fn serve_http1<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        buffer: &mut Vec<u8>,
        head: &Http1Head,
        max_head_bytes: usize,
    ) -> Result<bool, NetError> {
        let path = gateway_path(head.request.path()).expect("a gateway path");
        let Some(route) = find_route(path) else {
            // grpc-gateway's answer for a path it does not know.
            return self
                .refuse(
                    stream,
                    buffer,
                    head,
                    Http1Response::text(404, "Not Found\n"),
                )
                .await;
        };
        if head.request.method != "POST" {
            let refusal = Http1Response::text(405, "Method Not Allowed\n");
            return self.refuse(stream, buffer, head, refusal).await;
        }
        if matches!(head.body, BodyFraming::Length(bytes) if bytes > self.max_body_bytes) {
            let response = Http1Response::text(413, "request body too large\n");
            write_response(stream, &response, false).await?;
            return Ok(false);
        }
        let mut decoder = BodyDecoder::new(head.body);
        let mut body = Vec::new();
        decoder
            .decode(buffer, &mut body)
            .map_err(|_| NetError::Http1("bad chunked body".into()))?;
        if head.expect_continue && !decoder.is_done() {
            stream.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").await?;
            stream.flush().await?;
        }

        let call = LocalCall::new(self.response_buffer_bytes);
        let _cancel = CancelOnDrop(call.clone());
        let streaming = route.kind != CallKind::Unary;
        let bidi = route.kind == CallKind::BidiStream;
        if !bidi {
            // One request: the whole body, then the call.
            while !decoder.is_done() {
                if read_more(stream, buffer, self.max_body_bytes + max_head_bytes).await? == 0 {
                    return Ok(false);
                }
                decoder
                    .decode(buffer, &mut body)
                    .map_err(|_| NetError::Http1("bad chunked body".into()))?;
                if body.len() > self.max_body_bytes {
                    let response = Http1Response::text(413, "request body too large\n");
                    write_response(stream, &response, false).await?;
                    return Ok(false);
                }
            }
            match self.read_single(route, &body) {
                Ok(frame) => call.send_request(frame).await,
                Err(status) => {
                    let keep_alive = head.keep_alive;
                    write_response(stream, &error_response(&status), keep_alive).await?;
                    return Ok(keep_alive);
                }
            }
            call.end_requests();
            body.clear();
        } else if !self.send_values(route, &mut body, &call).await {
            return Ok(false);
        }
        let mut requests_ended = !bidi;
        if !requests_ended && decoder.is_done() && half_closes(route) {
            call.end_requests();
            requests_ended = true;
        }

        let state = Rc::new(RefCell::new(ResponseState::local(call.response())));
        let parts = CallParts {
            path: route.method,
            metadata: call_metadata(&head.forwarded),
            body: crate::grpc::call::RequestBody::Local(call.request_body()),
            deadline: None,
            max_receive_message_bytes: self.max_receive_message_bytes,
        };
        let router = self.router.clone();
        // The call runs as its own task, so it ends (and cleans up) on its own after a client
        // that went away made its reads and sends fail.
        glommio::spawn_local(async move { run_call(&router, parts, state).await }).detach();

        let mut unary_answer: Option<Vec<u8>> = None;
        let mut stream_started = false;
        loop {
            // Stop reading the socket once a pipelined next request fills the buffer: it
            // waits for this response anyway.
            let may_read = buffer.len() < max_head_bytes;
            let step =
                futures_lite::future::or(async { Step::Event(call.next_event().await) }, async {
                    if !may_read {
                        return std::future::pending().await;
                    }
                    let limit = buffer.len() + 16 * 1024;
                    Step::Read(read_more(stream, buffer, limit).await)
                })
                .await;
            match step {
                Step::Read(Ok(0)) | Step::Read(Err(_)) => return Ok(false), // the client left
                Step::Read(Ok(_)) => {
                    if decoder.is_done() {
                        continue;
                    }
                    decoder
                        .decode(buffer, &mut body)
                        .map_err(|_| NetError::Http1("bad chunked body".into()))?;
                    if !self.send_values(route, &mut body, &call).await {
                        return Ok(false);
                    }
                    if !requests_ended && decoder.is_done() && half_closes(route) {
                        call.end_requests();
                        requests_ended = true;
                    }
                }
                Step::Event(LocalEvent::Message(message)) => {
                    let json = (route.write_response)(&message)
                        .map_err(|error| NetError::Http1(format!("response to JSON: {error}")))?;
                    if !streaming {
                        unary_answer = Some(json);
                        continue;
                    }
                    if !stream_started {
                        stream_started = true;
                        write_stream_head(stream).await?;
                    }
                    let mut line = Vec::with_capacity(json.len() + 12);
                    line.extend_from_slice(b"{\"result\":");
                    line.extend_from_slice(&json);
                    line.extend_from_slice(b"}\n");
                    write_chunk(stream, &line).await?;
                }
                Step::Event(LocalEvent::End(outcome)) => {
                    // The connection serves another request only if this one's body was
                    // read whole.
                    let keep_alive = head.keep_alive && decoder.is_done();
                    match (outcome, stream_started) {
                        (Ok(()), true) => write_chunk(stream, b"").await?,
                        (Err(status), true) => {
                            write_chunk(stream, &errors::stream_error_line(&status)).await?;
                            write_chunk(stream, b"").await?;
                        }
                        (Ok(()), false) => {
                            let response = match unary_answer.take() {
                                Some(json) => json_response(200, json),
                                // A stream that ended with no message: an empty chunked body.
                                None if streaming => {
                                    write_stream_head(stream).await?;
                                    write_chunk(stream, b"").await?;
                                    return Ok(keep_alive);
                                }
                                None => error_response(&Status::internal(
                                    "the call ended without a response",
                                )),
                            };
                            write_response(stream, &response, keep_alive).await?;
                        }
                        (Err(status), false) => {
                            write_response(stream, &error_response(&status), keep_alive).await?
                        }
                    }
                    stream.flush().await?;
                    return Ok(keep_alive);
                }
            }
        }
    }

    /// The one request of a unary or server-streaming call, from its whole body (an empty
    /// body is an empty request, as grpc-gateway reads it), or INVALID_ARGUMENT.
    fn read_single(&self, route: &Route, body: &[u8]) -> Result<bytes::Bytes, Status> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return crate::grpc::frame::encode_message(&());
        }
        match (route.read_request)(body) {
            Ok(Some((frame, _))) => Ok(frame),
            Ok(None) => Err(Status::invalid_argument("unexpected EOF")),
            Err(message) => Err(Status::invalid_argument(message)),
        }
    }

    /// Sends each whole JSON value at the front of `body` as one request of a bidirectional
    /// call; false if a value grew past the body limit (the connection is dropped then).
    async fn send_values(&self, route: &Route, body: &mut Vec<u8>, call: &LocalCall) -> bool {
        loop {
            match (route.read_request)(body) {
                Ok(Some((frame, used_bytes))) => {
                    body.drain(..used_bytes);
                    call.send_request(frame).await;
                }
                Ok(None) => break,
                // grpc-gateway stops sending on a value it cannot read; the stream stays.
                Err(_) => {
                    body.clear();
                    break;
                }
            }
        }
        body.len() <= self.max_body_bytes
    }

    /// Answers `response` to a request the gateway does not serve, reading its body first when
    /// it is small so the connection can go on.
    async fn refuse<S: AsyncRead + AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        buffer: &mut Vec<u8>,
        head: &Http1Head,
        response: Http1Response,
    ) -> Result<bool, NetError> {
        let mut keep_alive = false;
        if let BodyFraming::Length(bytes) = head.body {
            if bytes <= self.max_body_bytes && !head.expect_continue {
                while buffer.len() < bytes {
                    if read_more(stream, buffer, bytes).await? == 0 {
                        return Ok(false);
                    }
                }
                buffer.drain(..bytes);
                keep_alive = head.keep_alive;
            }
        }
        write_response(stream, &response, keep_alive).await?;
        Ok(keep_alive)
    }
}

/// Whether the end of the body ends the call's request stream. grpc-gateway half-closes the
/// stream at the body's end: etcd's LeaseKeepAlive then ends (one keep-alive per request,
/// as `etcd3gw`'s `refresh` relies on), while etcd's Watch goes on serving its watchers until
/// the client leaves; basalt's Watch ends at a half-close, so the gateway never sends one.
fn half_closes(route: &Route) -> bool {
    route.method != "/etcdserverpb.Watch/Watch"
}

fn json_response(status: u16, body: Vec<u8>) -> Http1Response {
    Http1Response {
        status,
        content_type: "application/json",
        body,
    }
}

fn error_response(status: &Status) -> Http1Response {
    json_response(errors::http_status(status.code), errors::error_body(status))
}

async fn write_stream_head<S: AsyncWrite + Unpin>(stream: &mut S) -> Result<(), NetError> {
    stream
        .write_all(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
              Grpc-Metadata-Content-Type: application/grpc\r\nTransfer-Encoding: chunked\r\n\r\n",
        )
        .await?;
    Ok(())
}

/// Writes one chunk of a chunked response and flushes it (an empty chunk ends the body).
async fn write_chunk<S: AsyncWrite + Unpin>(stream: &mut S, data: &[u8]) -> Result<(), NetError> {
    let mut bytes = format!("{:x}\r\n", data.len()).into_bytes();
    bytes.extend_from_slice(data);
    bytes.extend_from_slice(b"\r\n");
    stream.write_all(&bytes).await?;
    stream.flush().await?;
    Ok(())
}
