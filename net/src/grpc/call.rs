//! The two halves of a gRPC call as a handler sees them: the stream of request messages and
//! the sink for response messages.
//!
//! Both halves are bounded. Requests: the decoder refuses messages over the size limit, and
//! HTTP/2 flow-control capacity is released as the stream's chunks are read, so a handler that
//! stops reading stops the client (the stream window fills), and the connection's
//! [`PartialMessageBudget`] caps what all its calls' decoders hold together. (Holding credit
//! until whole messages are taken would cap partial messages per connection too, but can
//! deadlock a connection whose concurrent large calls are all partial when its window runs
//! out.) Responses: `send` waits for HTTP/2 send
//! capacity (the client's window, capped per stream by `max_send_buffer_size`), so a client that
//! never reads its stream makes `send` wait; it cannot grow our memory or stall other streams.

use std::cell::RefCell;
use std::future::poll_fn;
use std::marker::PhantomData;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};

use crate::grpc::call_counts::SharedMessageBytes;
use crate::grpc::frame::{encode_message, encoded_message_into, FrameDecoder, FRAME_HEADER_BYTES};
use crate::grpc::local::{LocalRequestBody, LocalResponse};
use crate::grpc::partial_budget::PartialMessageBudget;
use crate::grpc::status::{Code, Status};
use crate::http2::driver::{RecvHalf, SendHalf};

/// Where a call's request bytes come from: an HTTP/2 stream, or the JSON gateway in process.
pub(crate) enum RequestBody {
    /// The stream, and its connection's budget for partly received messages.
    H2(RecvHalf, Rc<PartialMessageBudget>),
    Local(LocalRequestBody),
}

/// The request messages of one call, decoded on demand.
pub struct RequestStream<M> {
    body: RequestBody,
    decoder: FrameDecoder,
    /// Bytes of this call counted in its connection's budget (what its decoder holds).
    budget_held_bytes: usize,
    body_ended: bool,
    /// Where the bytes of each received message are counted, when calls are counted.
    message_bytes: Option<SharedMessageBytes>,
    message_type: PhantomData<fn() -> M>,
}

impl<M> Drop for RequestStream<M> {
    fn drop(&mut self) {
        if let RequestBody::H2(_, budget) = &self.body {
            budget
                .change(self.budget_held_bytes, 0)
                .expect("shrinking is never refused");
        }
    }
}

impl<M: prost::Message + Default> RequestStream<M> {
    pub(crate) fn new(
        body: RequestBody,
        max_message_bytes: usize,
        message_bytes: Option<SharedMessageBytes>,
    ) -> RequestStream<M> {
        RequestStream {
            body,
            decoder: FrameDecoder::new(max_message_bytes),
            budget_held_bytes: 0,
            body_ended: false,
            message_bytes,
            message_type: PhantomData,
        }
    }

    /// The next request message, `None` once the client has half-closed its side, or the
    /// status the call must end with (limit broken, malformed protobuf, client reset).
    pub async fn message(&mut self) -> Result<Option<M>, Status> {
        loop {
            let next = self.decoder.next_message()?;
            if let RequestBody::H2(_, budget) = &self.body {
                // Taking a message shrinks the holding (never refused).
                let held_bytes = self.decoder.buffered_bytes();
                budget.change(self.budget_held_bytes, held_bytes)?;
                self.budget_held_bytes = held_bytes;
            }
            if let Some(body) = next {
                if let Some(counts) = &self.message_bytes {
                    counts.record_received(body.len());
                }
                return M::decode(body).map(Some).map_err(|error| {
                    Status::invalid_argument(format!("grpc: error unmarshalling request: {error}"))
                });
            }
            if self.body_ended {
                if !self.decoder.is_empty() {
                    return Err(Status::internal(
                        "grpc: request stream ended in the middle of a message",
                    ));
                }
                return Ok(None);
            }
            match &mut self.body {
                RequestBody::H2(body, budget) => match body.data().await {
                    None => self.body_ended = true,
                    Some(Ok(chunk)) => {
                        // Credit goes back as chunks arrive (see the module's comment); the
                        // connection's budget bounds what its calls buffer instead.
                        body.release_capacity(chunk.len());
                        let held_bytes = self.decoder.buffered_bytes() + chunk.len();
                        budget.change(self.budget_held_bytes, held_bytes)?;
                        self.budget_held_bytes = held_bytes;
                        self.decoder.push(&chunk);
                    }
                    Some(Err(error)) => return Err(Status::from(error)),
                },
                RequestBody::Local(body) => match body.data().await? {
                    None => self.body_ended = true,
                    Some(frame) => self.decoder.push(&frame),
                },
            }
        }
    }

    /// The one request message of a unary or server-streaming call.
    pub(crate) async fn single(&mut self) -> Result<M, Status> {
        let Some(message) = self.message().await? else {
            return Err(Status::internal(
                "grpc: client sent no request message for a unary call",
            ));
        };
        if self.message().await?.is_some() {
            return Err(Status::internal(
                "grpc: client sent more than one request message for a unary call",
            ));
        }
        Ok(message)
    }
}

/// The response side of one call: sends response messages, then the framework ends the call
/// with trailers once the handler returns.
pub struct ResponseSink<M> {
    state: Rc<RefCell<ResponseState>>,
    /// Where the bytes of each sent message are counted, when calls are counted.
    message_bytes: Option<SharedMessageBytes>,
    message_type: PhantomData<fn(M)>,
}

impl<M: prost::Message> ResponseSink<M> {
    pub(crate) fn new(
        state: Rc<RefCell<ResponseState>>,
        message_bytes: Option<SharedMessageBytes>,
    ) -> ResponseSink<M> {
        ResponseSink {
            state,
            message_bytes,
            message_type: PhantomData,
        }
    }

    /// Sends one response message; waits while the client's flow-control window is full.
    /// Fails with CANCELLED once the client has reset the stream, or UNAVAILABLE once the call
    /// has ended (a task that outlived its handler).
    pub async fn send(&mut self, message: &M) -> Result<(), Status> {
        let mut pending = encode_message(message)?;
        // Counted once encoded, as etcd's codec counts what it marshals.
        self.count_sent(pending.len() - FRAME_HEADER_BYTES);
        // The RefCell is borrowed only inside each poll, never across an await, so a sink held
        // by a helper task and the framework's end-of-call trailers never overlap.
        poll_fn(|cx| self.state.borrow_mut().poll_send(cx, &mut pending)).await
    }

    /// Sends messages already encoded (`bodies`, each the protobuf bytes of one `M`) in order
    /// as one write: their gRPC frames back to back in one buffer, so HTTP/2 sees one send
    /// (flow control, framing, its stream lock) instead of one per message. A watch stream
    /// fanning one put out to a hundred watchers sends a hundred small responses at once,
    /// encoded when they were queued (a put's event once for all its watchers), so nothing is
    /// encoded a second time here. The caller vouches that each body is an encoded `M`. Each
    /// is checked against the send limit and counted as `send` would.
    /// The JSON gateway's in-process calls take one message per send, so they get them so.
    /// The bodies are dropped once framed, so a send waiting on a slow client holds their
    /// bytes once, not twice.
    pub async fn send_all_encoded(&mut self, bodies: Vec<Bytes>) -> Result<(), Status>
    where
        M: Default,
    {
        debug_assert!(
            bodies.iter().all(|body| M::decode(body.as_ref()).is_ok()),
            "a body that is not an encoded message of this call's type"
        );
        if matches!(*self.state.borrow(), ResponseState::Local(_)) {
            for body in bodies {
                let mut frame = BytesMut::with_capacity(FRAME_HEADER_BYTES + body.len());
                self.count_sent(encoded_message_into(&body, &mut frame)?);
                drop(body);
                self.send_frames(frame).await?;
            }
            return Ok(());
        }
        let total: usize = bodies.iter().map(|b| FRAME_HEADER_BYTES + b.len()).sum();
        let mut frames = BytesMut::with_capacity(total);
        for body in &bodies {
            self.count_sent(encoded_message_into(body, &mut frames)?);
        }
        drop(bodies);
        self.send_frames(frames).await
    }

    fn count_sent(&self, body_bytes: usize) {
        if let Some(counts) = &self.message_bytes {
            counts.record_sent(body_bytes);
        }
    }

    /// Sends gRPC frames already built, as one write.
    async fn send_frames(&mut self, frames: BytesMut) -> Result<(), Status> {
        let mut pending = frames.freeze();
        poll_fn(|cx| self.state.borrow_mut().poll_send(cx, &mut pending)).await
    }
}

/// The response of one call: over HTTP/2 (headers once, then DATA, then trailers), or to
/// the JSON gateway in process.
pub(crate) enum ResponseState {
    H2(H2Response),
    Local(LocalResponse),
}

impl ResponseState {
    pub(crate) fn new(respond: SendHalf) -> ResponseState {
        ResponseState::H2(H2Response {
            respond,
            headers_sent: false,
            ended: false,
        })
    }

    pub(crate) fn local(response: LocalResponse) -> ResponseState {
        ResponseState::Local(response)
    }

    fn poll_send(&mut self, cx: &mut Context<'_>, pending: &mut Bytes) -> Poll<Result<(), Status>> {
        match self {
            ResponseState::H2(h2) => h2.poll_send(cx, pending),
            ResponseState::Local(local) => local.poll_send(cx, pending),
        }
    }

    /// Ready once the client has gone away before any response was sent: nobody waits for
    /// this call's answer any more (see `H2Response::poll_client_gone`).
    pub(crate) fn poll_client_gone(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            ResponseState::H2(h2) => h2.poll_client_gone(cx),
            ResponseState::Local(local) => local.poll_client_gone(cx),
        }
    }

    /// Ends the call with its outcome.
    pub(crate) fn end(&mut self, outcome: Result<(), Status>) {
        match self {
            ResponseState::H2(h2) => h2.end(outcome),
            ResponseState::Local(local) => local.end(outcome),
        }
    }

    /// Answers a request that is not gRPC at all with a plain HTTP status (e.g. 415).
    pub(crate) fn end_with_http_status(&mut self, status: http::StatusCode) {
        match self {
            ResponseState::H2(h2) => h2.end_with_http_status(status),
            ResponseState::Local(local) => local.end(Err(Status::internal(format!(
                "not a gRPC call: HTTP {status}"
            )))),
        }
    }
}

/// The HTTP/2 response of one call: headers once, then DATA, then trailers.
pub(crate) struct H2Response {
    respond: SendHalf,
    headers_sent: bool,
    ended: bool,
}

/// A gRPC response's content type.
const GRPC_CONTENT_TYPE: (&str, &str) = ("content-type", "application/grpc");

impl H2Response {
    fn poll_send(&mut self, cx: &mut Context<'_>, pending: &mut Bytes) -> Poll<Result<(), Status>> {
        if self.ended {
            return Poll::Ready(Err(Status::unavailable("grpc: the call has already ended")));
        }
        if !self.headers_sent {
            self.respond
                .send_headers(200, &[GRPC_CONTENT_TYPE], false)
                .map_err(Status::from)?;
            self.headers_sent = true;
        }
        // The stream's send buffer is bounded: a client that does not read makes this wait.
        self.respond.poll_send(cx, pending).map_err(Status::from)
    }

    /// Ready once the client has reset the stream (or the connection failed) before any
    /// response was sent: nobody waits for this call's answer any more. Pending for good once
    /// a response is under way, so only unary calls (which send after their handler) use it;
    /// it shares the stream's send waker, so it must run in the task that sends.
    fn poll_client_gone(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.headers_sent || self.ended {
            return Poll::Pending;
        }
        self.respond.poll_reset(cx).map(|_| ())
    }

    /// Ends the call: trailers after a body, or a trailers-only response if nothing was sent.
    fn end(&mut self, outcome: Result<(), Status>) {
        if self.ended {
            return;
        }
        self.ended = true;
        let (code, message) = match &outcome {
            Ok(()) => (Code::Ok, ""),
            Err(status) => (status.code, status.message.as_str()),
        };
        let encoded = Status::encode_message(message);
        let mut fields = Vec::with_capacity(3);
        if !self.headers_sent {
            fields.push(GRPC_CONTENT_TYPE);
        }
        fields.push(("grpc-status", Status::code_text(code)));
        if let Some(encoded) = &encoded {
            fields.push(("grpc-message", encoded.as_str()));
        }
        // Failures here mean the client is gone; there is no one left to tell.
        let _ = if self.headers_sent {
            self.respond.send_trailers(&fields)
        } else {
            self.respond.send_headers(200, &fields, true)
        };
    }

    /// Answers a request that is not gRPC at all with a plain HTTP status (e.g. 415).
    fn end_with_http_status(&mut self, status: http::StatusCode) {
        self.ended = true;
        let _ = self.respond.send_headers(status.as_u16(), &[], true);
    }
}
