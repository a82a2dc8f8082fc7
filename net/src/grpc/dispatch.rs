//! Serving one HTTP/2 request as a gRPC call: check it is gRPC, find the handler, run it, and
//! end the call with trailers whatever the handler did.

use std::cell::RefCell;
use std::rc::Rc;

use crate::grpc::call::{RequestBody, ResponseState};
use crate::grpc::metadata::Metadata;
use crate::grpc::partial_budget::PartialMessageBudget;
use crate::grpc::router::{unimplemented_status, RawCall, Router};
use crate::grpc::status::{Code, Status};
use crate::grpc::timeout::parse_grpc_timeout;
use crate::http1::{Http1Handler, Http1Request};
use crate::http2::driver::{AcceptedCall, SendHalf};
use crate::http2::server_connection::RequestHead;
use crate::json_gateway::{gateway_path, JsonGateway};

/// What a call over HTTP/2 takes from its connection.
pub(crate) struct CallConnection {
    /// The verified client certificate's common name (TLS with client certificates).
    pub(crate) peer_common_name: Option<std::sync::Arc<str>>,
    /// The connection's budget for partly received request messages.
    pub(crate) partial_budget: Rc<PartialMessageBudget>,
}

/// Runs one call to its end; never fails (every outcome is sent to the client). Plain GETs
/// over HTTP/2 (`curl --http2-prior-knowledge .../health`) go to the HTTP/1.1 callback.
pub(crate) async fn serve_call(
    router: &Router,
    http_handler: &Http1Handler,
    gateway: Option<&JsonGateway>,
    call: AcceptedCall,
    max_receive_message_bytes: usize,
    connection: CallConnection,
) {
    let AcceptedCall {
        head,
        body,
        mut respond,
    } = call;
    let content_type = head.headers.get(http::header::CONTENT_TYPE);
    let path = head.path.split('?').next().unwrap_or_default();
    // The JSON gateway's paths over HTTP/2 (anything but a gRPC call to them).
    if let Some(gateway) = gateway {
        let grpc =
            content_type.is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"));
        if !grpc && gateway_path(path).is_some() {
            // Boxed, as the plain GET below: a call future holds the largest of its paths'
            // states, and every gRPC call's future is moved into its task and its box.
            Box::pin(gateway.serve_h2(head, body, respond)).await;
            return;
        }
    }
    if head.method == http::Method::GET {
        Box::pin(serve_plain_get(http_handler, &head, &mut respond)).await;
        return;
    }
    let response = Rc::new(RefCell::new(ResponseState::new(respond)));

    // gRPC is POST with content-type application/grpc[+proto|;...]; anything else is not a
    // gRPC call and gets a plain HTTP error, as grpc-go does.
    let is_grpc = head.method == http::Method::POST
        && content_type
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("application/grpc"));
    if !is_grpc {
        let status = if head.method == http::Method::POST {
            http::StatusCode::UNSUPPORTED_MEDIA_TYPE
        } else {
            http::StatusCode::METHOD_NOT_ALLOWED
        };
        response.borrow_mut().end_with_http_status(status);
        return;
    }
    if let Some(encoding) = head.headers.get("grpc-encoding") {
        if encoding != "identity" {
            let status = Status::unimplemented(format!(
                "grpc: Decompressor is not installed for grpc-encoding {encoding:?}"
            ));
            response.borrow_mut().end(Err(status));
            return;
        }
    }

    let deadline = head
        .headers
        .get("grpc-timeout")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_grpc_timeout);
    let call = CallParts {
        path,
        metadata: Metadata::new(head.headers).with_peer_common_name(connection.peer_common_name),
        body: RequestBody::H2(body, connection.partial_budget),
        deadline,
        max_receive_message_bytes,
    };
    run_call(router, call, response).await;
}

/// What a call is started with, whichever way it came in.
pub(crate) struct CallParts<'a> {
    /// The gRPC method path (`/etcdserverpb.KV/Range`).
    pub(crate) path: &'a str,
    pub(crate) metadata: Metadata,
    pub(crate) body: RequestBody,
    /// The client's `grpc-timeout`, if any.
    pub(crate) deadline: Option<std::time::Duration>,
    pub(crate) max_receive_message_bytes: usize,
}

/// Runs one call through the router to its end (counted, bounded by its deadline) and ends
/// the response with the outcome. gRPC calls over HTTP/2 and the JSON gateway's in-process
/// calls both come through here, so every service and every limit applies to both alike.
pub(crate) async fn run_call(
    router: &Router,
    call: CallParts<'_>,
    response: Rc<RefCell<ResponseState>>,
) {
    let path = call.path;
    let route = router.route(path);
    // A graceful stop waits for the calls that end by themselves.
    let _finite = route
        .is_none_or(|route| route.ends_by_itself)
        .then(|| router.enter_finite_call());
    let counted = route.and_then(|route| router.counted(route));
    let started = counted
        .filter(|method| method.times_calls())
        .map(|_| std::time::Instant::now());
    if let Some(method) = counted {
        method.record_start();
    }
    let outcome = match route {
        Some(route) => {
            let handler = &route.handler;
            let raw = RawCall {
                metadata: call.metadata,
                body: call.body,
                response: response.clone(),
                max_receive_message_bytes: call.max_receive_message_bytes,
                message_bytes: router.message_bytes(),
            };
            let handled = handler(raw);
            match call.deadline {
                // Past the client's deadline nobody waits for the answer: drop the handler.
                Some(deadline) => {
                    futures_lite::future::or(handled, async move {
                        glommio::timer::sleep(deadline).await;
                        Err(Status::new(
                            Code::DeadlineExceeded,
                            "context deadline exceeded",
                        ))
                    })
                    .await
                }
                None => handled.await,
            }
        }
        None => Err(unimplemented_status(router, path)),
    };
    if let Some(method) = counted {
        let code = outcome
            .as_ref()
            .map_or_else(|status| status.code, |()| Code::Ok);
        method.record_end(code, started.map(|at| at.elapsed()));
    }
    response.borrow_mut().end(outcome);
}

/// Answers a plain GET over HTTP/2 with the HTTP/1.1 callback's response.
async fn serve_plain_get(http_handler: &Http1Handler, head: &RequestHead, respond: &mut SendHalf) {
    let request = Http1Request {
        method: head.method.to_string(),
        target: head.path.clone(),
    };
    let answer = http_handler(request).await;
    let fields = [("content-type", answer.content_type)];
    // Failures mean the client is gone.
    if respond
        .send_headers(answer.status, &fields, answer.body.is_empty())
        .is_ok()
        && !answer.body.is_empty()
    {
        let _ = respond.send_data(answer.body.into(), true).await;
    }
}
