//! The gateway over HTTP/2 (`curl --http2-prior-knowledge`, or `https://` with ALPN h2, as
//! Go's net/http serves etcd's gateway): the same routes, JSON and limits as over HTTP/1.1,
//! with the request body read from the h2 stream and the answer sent as DATA frames within
//! the client's flow-control window.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;

use bytes::Bytes;

use crate::grpc::call::{RequestBody, ResponseState};
use crate::grpc::dispatch::{run_call, CallParts};
use crate::grpc::local::{LocalCall, LocalEvent};
use crate::grpc::status::Status;
use crate::grpc::CallKind;
use crate::http1::Http1Response;
use crate::http2::driver::{RecvHalf, SendHalf};
use crate::http2::server_connection::{RequestHead, StreamError};
use crate::json_gateway::{
    error_response, find_route, gateway_path, half_closes, CancelOnDrop, JsonGateway,
};

/// What happened next while a call was served.
enum Step {
    Event(LocalEvent),
    /// A chunk of the request body (`None`: the body ended).
    Body(Option<Result<Bytes, StreamError>>),
    /// The client reset the stream.
    Reset,
}

impl JsonGateway {
    /// Serves one gateway request that came over HTTP/2; every outcome is answered (or the
    /// client is gone).
    pub(crate) async fn serve_h2(
        &self,
        parts: RequestHead,
        mut body: RecvHalf,
        mut respond: SendHalf,
    ) {
        let path = parts.path.split('?').next().unwrap_or_default();
        let path = gateway_path(path).expect("a gateway path");
        let Some(route) = find_route(path) else {
            send_whole(&mut respond, Http1Response::text(404, "Not Found\n")).await;
            return;
        };
        if parts.method != http::Method::POST {
            send_whole(
                &mut respond,
                Http1Response::text(405, "Method Not Allowed\n"),
            )
            .await;
            return;
        }
        let too_large = || Http1Response::text(413, "request body too large\n");
        let announced = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.parse::<usize>().ok());
        if announced.is_some_and(|bytes| bytes > self.max_body_bytes) {
            send_whole(&mut respond, too_large()).await;
            return;
        }
        let forwarded: Vec<(String, String)> = parts
            .headers
            .iter()
            .filter(|(name, _)| {
                name.as_str() == "authorization" || name.as_str().starts_with("grpc-metadata-")
            })
            .filter_map(|(name, value)| {
                Some((name.as_str().to_string(), value.to_str().ok()?.to_string()))
            })
            .collect();

        let call = LocalCall::new(self.response_buffer_bytes);
        let _cancel = CancelOnDrop(call.clone());
        let bidi = route.kind == CallKind::BidiStream;
        let streaming = route.kind != CallKind::Unary;
        let mut buffered = Vec::new();
        let mut body_ended = false;
        if !bidi {
            while let Some(chunk) = body.data().await {
                let Ok(chunk) = chunk else { return };
                body.release_capacity(chunk.len());
                buffered.extend_from_slice(&chunk);
                if buffered.len() > self.max_body_bytes {
                    send_whole(&mut respond, too_large()).await;
                    return;
                }
            }
            body_ended = true;
            let request = match self.read_single(route, &buffered) {
                Ok(frame) => frame,
                Err(status) => {
                    send_whole(&mut respond, error_response(&status)).await;
                    return;
                }
            };
            call.send_request(request).await;
            call.end_requests();
        }
        let mut requests_ended = !bidi;

        let state = Rc::new(RefCell::new(ResponseState::local(call.response())));
        let call_parts = CallParts {
            path: route.method,
            metadata: super::call_metadata(&forwarded),
            body: RequestBody::Local(call.request_body()),
            deadline: None,
            max_receive_message_bytes: self.max_receive_message_bytes,
        };
        let router = self.router.clone();
        glommio::spawn_local(async move { run_call(&router, call_parts, state).await }).detach();

        let mut unary_answer: Option<Vec<u8>> = None;
        let mut sending = false;
        loop {
            let step = futures_lite::future::or(
                async { Step::Event(call.next_event().await) },
                futures_lite::future::or(
                    async {
                        if body_ended {
                            return std::future::pending().await;
                        }
                        Step::Body(body.data().await)
                    },
                    async {
                        poll_fn(|cx| respond.poll_reset(cx)).await;
                        Step::Reset
                    },
                ),
            )
            .await;
            match step {
                Step::Reset | Step::Body(Some(Err(_))) => return, // the client left
                Step::Body(None) => {
                    body_ended = true;
                    if !requests_ended && half_closes(route) {
                        call.end_requests();
                        requests_ended = true;
                    }
                }
                Step::Body(Some(Ok(chunk))) => {
                    body.release_capacity(chunk.len());
                    buffered.extend_from_slice(&chunk);
                    if !self.send_values(route, &mut buffered, &call).await {
                        return;
                    }
                }
                Step::Event(LocalEvent::Message(message)) => {
                    let Ok(json) = (route.write_response)(&message) else {
                        return;
                    };
                    if !streaming {
                        unary_answer = Some(json);
                        continue;
                    }
                    if !sending {
                        if respond
                            .send_headers(200, &[JSON_CONTENT_TYPE], false)
                            .is_err()
                        {
                            return;
                        }
                        sending = true;
                    }
                    let mut line = Vec::with_capacity(json.len() + 12);
                    line.extend_from_slice(b"{\"result\":");
                    line.extend_from_slice(&json);
                    line.extend_from_slice(b"}\n");
                    if respond.send_data(Bytes::from(line), false).await.is_err() {
                        return;
                    }
                }
                Step::Event(LocalEvent::End(outcome)) => {
                    match (outcome, sending) {
                        (Ok(()), true) => {
                            let _ = respond.send_data(Bytes::new(), true).await;
                        }
                        (Err(status), true) => {
                            let line = super::errors::stream_error_line(&status);
                            let _ = respond.send_data(Bytes::from(line), true).await;
                        }
                        (Ok(()), false) => {
                            let response = match unary_answer.take() {
                                Some(json) => super::json_response(200, json),
                                None if streaming => super::json_response(200, Vec::new()),
                                None => error_response(&Status::internal(
                                    "the call ended without a response",
                                )),
                            };
                            send_whole(&mut respond, response).await;
                        }
                        (Err(status), false) => {
                            send_whole(&mut respond, error_response(&status)).await;
                        }
                    }
                    return;
                }
            }
        }
    }
}

/// The gateway's content type.
const JSON_CONTENT_TYPE: (&str, &str) = ("content-type", "application/json");

/// Sends a whole response (head and body).
async fn send_whole(respond: &mut SendHalf, answer: Http1Response) {
    let fields = [("content-type", answer.content_type)];
    // Failures mean the client is gone.
    if respond
        .send_headers(answer.status, &fields, answer.body.is_empty())
        .is_ok()
        && !answer.body.is_empty()
    {
        let _ = respond.send_data(Bytes::from(answer.body), true).await;
    }
}
