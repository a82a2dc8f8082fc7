//! An in-process gRPC call: the JSON gateway feeds request messages and takes response
//! messages through this exchange instead of an HTTP/2 stream, so the call runs through the
//! same router, handlers, limits and call counts as one from a gRPC client.
//!
//! Both directions are bounded: the gateway waits for room before queueing another request
//! frame, and a handler's `send` waits while `response_bytes_limit` bytes of responses are
//! queued and not yet written to the client.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;

use crate::grpc::frame::FRAME_HEADER_BYTES;
use crate::grpc::status::Status;

/// Request frames queued for the handler at most before the gateway waits.
const REQUEST_FRAMES_MAX: usize = 16;

/// What the gateway sees of the call's response side.
#[derive(Debug, PartialEq, Eq)]
pub enum LocalEvent {
    /// One response message's protobuf bytes.
    Message(Bytes),
    /// The call ended (after every message it sent).
    End(Result<(), Status>),
}

/// The shared state of one in-process call (single-threaded: one executor).
#[derive(Debug)]
struct Exchange {
    requests: VecDeque<Bytes>,
    requests_ended: bool,
    /// The handler waiting for a request frame.
    request_reader: Option<Waker>,
    /// The gateway waiting for room to queue a request frame.
    request_writer: Option<Waker>,
    responses: VecDeque<Bytes>,
    response_bytes: usize,
    response_bytes_limit: usize,
    outcome: Option<Result<(), Status>>,
    /// The gateway waiting for a response event.
    response_reader: Option<Waker>,
    /// The handler waiting for room to queue a response.
    response_writer: Option<Waker>,
    /// The HTTP client went away: every wait of the handler ends with CANCELLED.
    client_gone: bool,
    /// A response was queued (a unary handler's client-gone watch stops then, as for h2).
    responded: bool,
}

fn wake(waker: &mut Option<Waker>) {
    if let Some(waker) = waker.take() {
        waker.wake();
    }
}

/// The gateway's handle on an in-process call.
#[derive(Clone, Debug)]
pub struct LocalCall {
    exchange: Rc<RefCell<Exchange>>,
}

/// The handler's side of the request messages (read by `RequestStream`).
#[derive(Debug)]
pub(crate) struct LocalRequestBody {
    exchange: Rc<RefCell<Exchange>>,
}

/// The handler's side of the responses (written by `ResponseSink` through `ResponseState`).
#[derive(Debug)]
pub(crate) struct LocalResponse {
    exchange: Rc<RefCell<Exchange>>,
}

impl LocalCall {
    /// A new call whose handler may queue up to `response_bytes_limit` bytes of responses
    /// (one message larger than that is still queued alone).
    pub fn new(response_bytes_limit: usize) -> LocalCall {
        LocalCall {
            exchange: Rc::new(RefCell::new(Exchange {
                requests: VecDeque::new(),
                requests_ended: false,
                request_reader: None,
                request_writer: None,
                responses: VecDeque::new(),
                response_bytes: 0,
                response_bytes_limit,
                outcome: None,
                response_reader: None,
                response_writer: None,
                client_gone: false,
                responded: false,
            })),
        }
    }

    pub(crate) fn request_body(&self) -> LocalRequestBody {
        LocalRequestBody {
            exchange: self.exchange.clone(),
        }
    }

    pub(crate) fn response(&self) -> LocalResponse {
        LocalResponse {
            exchange: self.exchange.clone(),
        }
    }

    /// Queues one request message (gRPC-framed), waiting while the handler has not taken the
    /// earlier ones.
    pub async fn send_request(&self, frame: Bytes) {
        poll_fn(|cx| {
            let mut exchange = self.exchange.borrow_mut();
            if exchange.requests.len() >= REQUEST_FRAMES_MAX && !exchange.client_gone {
                exchange.request_writer = Some(cx.waker().clone());
                return Poll::Pending;
            }
            Poll::Ready(())
        })
        .await;
        let mut exchange = self.exchange.borrow_mut();
        exchange.requests.push_back(frame);
        wake(&mut exchange.request_reader);
    }

    /// The client will send no more requests (the handler's stream ends).
    pub fn end_requests(&self) {
        let mut exchange = self.exchange.borrow_mut();
        exchange.requests_ended = true;
        wake(&mut exchange.request_reader);
    }

    /// The HTTP client is gone: the handler's reads and sends fail with CANCELLED.
    pub fn client_gone(&self) {
        let mut exchange = self.exchange.borrow_mut();
        exchange.client_gone = true;
        wake(&mut exchange.request_reader);
        wake(&mut exchange.response_writer);
    }

    /// The next response event: a message (protobuf bytes without the gRPC prefix), then the
    /// call's end.
    pub async fn next_event(&self) -> LocalEvent {
        poll_fn(|cx| {
            let mut exchange = self.exchange.borrow_mut();
            if let Some(frame) = exchange.responses.pop_front() {
                exchange.response_bytes -= frame.len();
                wake(&mut exchange.response_writer);
                return Poll::Ready(LocalEvent::Message(frame.slice(FRAME_HEADER_BYTES..)));
            }
            if let Some(outcome) = exchange.outcome.clone() {
                return Poll::Ready(LocalEvent::End(outcome));
            }
            exchange.response_reader = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl LocalRequestBody {
    /// The next request frame, `None` once the requests ended, or CANCELLED once the client
    /// is gone.
    pub(crate) async fn data(&mut self) -> Result<Option<Bytes>, Status> {
        poll_fn(|cx| {
            let mut exchange = self.exchange.borrow_mut();
            if exchange.client_gone {
                return Poll::Ready(Err(Status::cancelled("context canceled")));
            }
            if let Some(frame) = exchange.requests.pop_front() {
                wake(&mut exchange.request_writer);
                return Poll::Ready(Ok(Some(frame)));
            }
            if exchange.requests_ended {
                return Poll::Ready(Ok(None));
            }
            exchange.request_reader = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl LocalResponse {
    /// Queues one gRPC-framed response, or waits while too many bytes are queued.
    pub(crate) fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        pending: &mut Bytes,
    ) -> Poll<Result<(), Status>> {
        let mut exchange = self.exchange.borrow_mut();
        if exchange.client_gone {
            return Poll::Ready(Err(Status::cancelled("context canceled")));
        }
        if exchange.outcome.is_some() {
            return Poll::Ready(Err(Status::unavailable("grpc: the call has already ended")));
        }
        if exchange.response_bytes > 0
            && exchange.response_bytes + pending.len() > exchange.response_bytes_limit
        {
            exchange.response_writer = Some(cx.waker().clone());
            return Poll::Pending;
        }
        let frame = std::mem::take(pending);
        exchange.response_bytes += frame.len();
        exchange.responses.push_back(frame);
        exchange.responded = true;
        wake(&mut exchange.response_reader);
        Poll::Ready(Ok(()))
    }

    /// Ready once the client is gone before any response was queued (see
    /// `ResponseState::poll_client_gone`).
    pub(crate) fn poll_client_gone(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let mut exchange = self.exchange.borrow_mut();
        if exchange.responded || exchange.outcome.is_some() {
            return Poll::Pending;
        }
        if exchange.client_gone {
            return Poll::Ready(());
        }
        // Shares the writer's waker slot: both run in the handler's task.
        exchange.response_writer = Some(cx.waker().clone());
        Poll::Pending
    }

    /// Ends the call with `outcome` (the first end wins).
    pub(crate) fn end(&mut self, outcome: Result<(), Status>) {
        let mut exchange = self.exchange.borrow_mut();
        if exchange.outcome.is_none() {
            exchange.outcome = Some(outcome);
        }
        wake(&mut exchange.response_reader);
    }
}

#[cfg(test)]
mod tests {
    //! Goal: messages cross in order both ways, the end comes after every message, and a gone
    //! client fails the handler's waits.
    use super::*;
    use futures_lite::future::block_on;

    #[test]
    fn requests_and_responses_cross_in_order() {
        let call = LocalCall::new(64);
        let mut body = call.request_body();
        let mut response = call.response();
        block_on(async {
            call.send_request(Bytes::from_static(b"one")).await;
            call.send_request(Bytes::from_static(b"two")).await;
            call.end_requests();
            assert_eq!(body.data().await.unwrap().unwrap(), "one");
            assert_eq!(body.data().await.unwrap().unwrap(), "two");
            assert_eq!(body.data().await.unwrap(), None);
            let mut frame = Bytes::from_static(b"\0\0\0\0\x01x");
            poll_fn(|cx| response.poll_send(cx, &mut frame))
                .await
                .unwrap();
            response.end(Ok(()));
            assert_eq!(
                call.next_event().await,
                LocalEvent::Message(Bytes::from_static(b"x"))
            );
            assert_eq!(call.next_event().await, LocalEvent::End(Ok(())));
        });
    }

    #[test]
    fn a_gone_client_cancels_reads_and_sends() {
        let call = LocalCall::new(8);
        let mut body = call.request_body();
        let mut response = call.response();
        call.client_gone();
        block_on(async {
            assert!(body.data().await.is_err());
            let mut frame = Bytes::from_static(b"\0\0\0\0\x01x");
            assert!(poll_fn(|cx| response.poll_send(cx, &mut frame))
                .await
                .is_err());
        });
    }
}
