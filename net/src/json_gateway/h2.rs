//! The gateway over HTTP/2 (`curl --http2-prior-knowledge`, or `https://` with ALPN h2, as
//! Go's net/http serves etcd's gateway): the same routes, JSON and limits as over HTTP/1.1,
//! with the request body read from the h2 stream and the answer sent as DATA frames within
//! the client's flow-control window.

use std::cell::RefCell;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::Poll;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};

use crate::grpc::call::{RequestBody, ResponseState};
use crate::grpc::dispatch::{run_call, CallParts};
use crate::grpc::local::{LocalCall, LocalEvent};
use crate::grpc::status::Status;
use crate::grpc::CallKind;
use crate::http1::Http1Response;
use crate::json_gateway::{
    error_response, find_route, gateway_path, half_closes, CancelOnDrop, JsonGateway,
};

/// What happened next while a call was served.
enum Step {
    Event(LocalEvent),
    /// A chunk of the request body (`None`: the body ended).
    Body(Option<Result<Bytes, h2::Error>>),
    /// The client reset the stream.
    Reset,
}

impl JsonGateway {
    /// Serves one gateway request that came over HTTP/2; every outcome is answered (or the
    /// client is gone).
    pub(crate) async fn serve_h2(
        &self,
        parts: http::request::Parts,
        mut body: RecvStream,
        mut respond: SendResponse<Bytes>,
    ) {
        let path = gateway_path(parts.uri.path()).expect("a gateway path");
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
                let _ = body.flow_control().release_capacity(chunk.len());
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
        let mut sending: Option<SendStream<Bytes>> = None;
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
                        poll_fn(|cx| match sending.as_mut() {
                            Some(stream) => stream.poll_reset(cx).map(|_| ()),
                            None => respond.poll_reset(cx).map(|_| ()),
                        })
                        .await;
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
                    let _ = body.flow_control().release_capacity(chunk.len());
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
                    if sending.is_none() {
                        match respond.send_response(json_head(200), false) {
                            Ok(stream) => sending = Some(stream),
                            Err(_) => return,
                        }
                    }
                    let mut line = Vec::with_capacity(json.len() + 12);
                    line.extend_from_slice(b"{\"result\":");
                    line.extend_from_slice(&json);
                    line.extend_from_slice(b"}\n");
                    let stream = sending.as_mut().expect("set above");
                    if send_data(stream, Bytes::from(line), false).await.is_err() {
                        return;
                    }
                }
                Step::Event(LocalEvent::End(outcome)) => {
                    match (outcome, sending.as_mut()) {
                        (Ok(()), Some(stream)) => {
                            let _ = send_data(stream, Bytes::new(), true).await;
                        }
                        (Err(status), Some(stream)) => {
                            let line = super::errors::stream_error_line(&status);
                            let _ = send_data(stream, Bytes::from(line), true).await;
                        }
                        (Ok(()), None) => {
                            let response = match unary_answer.take() {
                                Some(json) => super::json_response(200, json),
                                None if streaming => super::json_response(200, Vec::new()),
                                None => error_response(&Status::internal(
                                    "the call ended without a response",
                                )),
                            };
                            send_whole(&mut respond, response).await;
                        }
                        (Err(status), None) => {
                            send_whole(&mut respond, error_response(&status)).await;
                        }
                    }
                    return;
                }
            }
        }
    }
}

fn json_head(status: u16) -> http::Response<()> {
    let mut response = http::Response::new(());
    *response.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Sends a whole response (head and body).
async fn send_whole(respond: &mut SendResponse<Bytes>, answer: Http1Response) {
    let mut head = json_head(answer.status);
    head.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(answer.content_type),
    );
    // Failures mean the client is gone.
    if let Ok(mut stream) = respond.send_response(head, answer.body.is_empty()) {
        if !answer.body.is_empty() {
            let _ = send_data(&mut stream, Bytes::from(answer.body), true).await;
        }
    }
}

/// Sends `data` within the client's flow-control window (h2 would otherwise buffer it all).
async fn send_data(
    stream: &mut SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
) -> Result<(), h2::Error> {
    let mut ended = false;
    while !data.is_empty() {
        stream.reserve_capacity(data.len());
        let granted = poll_fn(|cx| match stream.poll_capacity(cx) {
            Poll::Ready(Some(result)) => Poll::Ready(result.map(Some)),
            Poll::Ready(None) => Poll::Ready(Ok(None)),
            Poll::Pending => Poll::Pending,
        })
        .await?;
        let Some(granted) = granted else {
            return Err(h2::Error::from(h2::Reason::CANCEL));
        };
        if granted == 0 {
            continue;
        }
        let chunk = data.split_to(granted.min(data.len()));
        ended = end && data.is_empty();
        stream.send_data(chunk, ended)?;
    }
    if end && !ended {
        // An empty final frame ends the stream when nothing was left to send.
        stream.send_data(Bytes::new(), true)?;
    }
    Ok(())
}
