//! The routing table: gRPC method path (`/etcdserverpb.KV/Range`) to handler.
//!
//! A router is built once per executor, so handlers may hold `Rc` state and return `!Send`
//! futures; each call runs as its own `spawn_local` task on the connection's executor.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use crate::grpc::call::{RequestBody, RequestStream, ResponseSink, ResponseState};
use crate::grpc::call_counts::{CallKind, GrpcCallCounts, MethodCalls, SharedMessageBytes};
use crate::grpc::metadata::Metadata;
use crate::grpc::status::Status;

/// A boxed, `!Send` future ending a call.
pub type LocalCallFuture = Pin<Box<dyn Future<Output = Result<(), Status>>>>;

/// What the framework hands a handler adapter: the raw request body and response state.
pub(crate) struct RawCall {
    pub(crate) metadata: Metadata,
    pub(crate) body: RequestBody,
    pub(crate) response: Rc<RefCell<ResponseState>>,
    pub(crate) max_receive_message_bytes: usize,
    /// Where the call's message bytes are counted, when the router counts calls.
    pub(crate) message_bytes: Option<SharedMessageBytes>,
}

type RawHandler = Rc<dyn Fn(RawCall) -> LocalCallFuture>;

/// One registered method: its handler, and its place in `methods` (and in `counts`).
pub(crate) struct Route {
    pub(crate) handler: RawHandler,
    method_index: usize,
    /// Whether a call of this method ends by itself (unary, server streaming): a graceful
    /// stop waits for those, not for the client's streams (Watch, LeaseKeepAlive).
    pub(crate) ends_by_itself: bool,
}

/// Method path → handler, for one executor.
#[derive(Default)]
pub struct Router {
    /// One lookup per call finds both the handler and the method's counts.
    routes: HashMap<String, Route>,
    /// Each registered method with its kind and its place in `counts`, in registration order.
    methods: Vec<(String, CallKind)>,
    /// Calls counted per method and outcome, once `count_calls` asked for it.
    counts: Option<Arc<GrpcCallCounts>>,
    /// Calls under way that end by themselves (see `Route::ends_by_itself`), unknown methods
    /// included (they end at once).
    finite_calls_open: Rc<Cell<usize>>,
}

impl Router {
    /// An empty router: every method answers UNIMPLEMENTED.
    pub fn new() -> Router {
        Router::default()
    }

    /// Registers a unary method: one request in, one response (or a status) out.
    pub fn unary<Req, Resp, F, Fut>(&mut self, path: &str, handler: F) -> &mut Router
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        F: Fn(Metadata, Req) -> Fut + 'static,
        Fut: Future<Output = Result<Resp, Status>> + 'static,
    {
        let handler = Rc::new(handler);
        self.unary_holding(path, move |metadata, request| {
            let answer = handler(metadata, request);
            async move { answer.await.map(|response| (response, ())) }
        })
    }

    /// As `unary`, for a handler whose answer comes with something to hold until the answer
    /// has been sent (or the call ended otherwise): e.g. the answer's share of a memory bound,
    /// which the encoded copy and its sending still take.
    pub fn unary_holding<Req, Resp, Held, F, Fut>(&mut self, path: &str, handler: F) -> &mut Router
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        Held: 'static,
        F: Fn(Metadata, Req) -> Fut + 'static,
        Fut: Future<Output = Result<(Resp, Held), Status>> + 'static,
    {
        let handler = Rc::new(handler);
        self.insert(path, CallKind::Unary, move |call: RawCall| {
            let handler = handler.clone();
            Box::pin(async move {
                let mut requests = RequestStream::<Req>::new(
                    call.body,
                    call.max_receive_message_bytes,
                    call.message_bytes.clone(),
                );
                let request = requests.single().await?;
                // A client that resets the call gets no answer: drop the handler, as grpc-go
                // cancels the handler's context, so a waiting call (Lock, Campaign) ends and
                // cleans up instead of acting later for a client that gave up.
                let state = call.response.clone();
                let client_gone = async move {
                    poll_fn(|cx| state.borrow_mut().poll_client_gone(cx)).await;
                    Err(Status::cancelled("context canceled"))
                };
                let (response, held) =
                    futures_lite::future::or(handler(call.metadata, request), client_gone).await?;
                let sent = ResponseSink::<Resp>::new(call.response, call.message_bytes)
                    .send(&response)
                    .await;
                drop(response);
                drop(held);
                sent
            })
        })
    }

    /// Registers a server-streaming method (etcd's Snapshot): one request in, a stream out.
    pub fn server_streaming<Req, Resp, F, Fut>(&mut self, path: &str, handler: F) -> &mut Router
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        F: Fn(Metadata, Req, ResponseSink<Resp>) -> Fut + 'static,
        Fut: Future<Output = Result<(), Status>> + 'static,
    {
        let handler = Rc::new(handler);
        self.insert(path, CallKind::ServerStream, move |call: RawCall| {
            let handler = handler.clone();
            Box::pin(async move {
                let mut requests = RequestStream::<Req>::new(
                    call.body,
                    call.max_receive_message_bytes,
                    call.message_bytes.clone(),
                );
                let request = requests.single().await?;
                let responses = ResponseSink::new(call.response, call.message_bytes);
                handler(call.metadata, request, responses).await
            })
        })
    }

    /// Registers a bidirectional-streaming method (etcd's Watch, LeaseKeepAlive).
    pub fn streaming<Req, Resp, F, Fut>(&mut self, path: &str, handler: F) -> &mut Router
    where
        Req: prost::Message + Default + 'static,
        Resp: prost::Message + 'static,
        F: Fn(Metadata, RequestStream<Req>, ResponseSink<Resp>) -> Fut + 'static,
        Fut: Future<Output = Result<(), Status>> + 'static,
    {
        let handler = Rc::new(handler);
        self.insert(path, CallKind::BidiStream, move |call: RawCall| {
            let requests = RequestStream::new(
                call.body,
                call.max_receive_message_bytes,
                call.message_bytes.clone(),
            );
            Box::pin(handler(
                call.metadata,
                requests,
                ResponseSink::new(call.response, call.message_bytes),
            ))
        })
    }

    /// Counts every call of the methods registered so far, per method and status code (and
    /// times them when `time_calls`); returns the counts for a scrape to read. Call it once,
    /// after registering every method.
    pub fn count_calls(&mut self, time_calls: bool) -> Arc<GrpcCallCounts> {
        assert!(self.counts.is_none(), "calls are counted once per router");
        let counts = Arc::new(GrpcCallCounts::new(&self.methods, time_calls));
        self.counts = Some(counts.clone());
        counts
    }

    /// The counts of the method of `route`, when calls are counted.
    pub(crate) fn counted(&self, route: &Route) -> Option<&MethodCalls> {
        let counts = self.counts.as_ref()?;
        Some(counts.method(route.method_index))
    }

    fn insert(
        &mut self,
        path: &str,
        kind: CallKind,
        handler: impl Fn(RawCall) -> LocalCallFuture + 'static,
    ) -> &mut Router {
        assert!(
            path.starts_with('/') && path[1..].contains('/'),
            "a gRPC method path looks like /package.Service/Method, got {path:?}"
        );
        assert!(
            self.counts.is_none(),
            "method {path} registered after its router's calls began to be counted"
        );
        let route = Route {
            handler: Rc::new(handler),
            method_index: self.methods.len(),
            ends_by_itself: kind != CallKind::BidiStream,
        };
        let previous = self.routes.insert(path.to_string(), route);
        assert!(previous.is_none(), "method {path} registered twice");
        self.methods.push((path.to_string(), kind));
        self
    }

    /// Where calls' message bytes are counted, when calls are counted.
    pub(crate) fn message_bytes(&self) -> Option<SharedMessageBytes> {
        self.counts
            .as_ref()
            .map(|counts| counts.message_bytes_shared())
    }

    /// Counts a call that ends by itself for as long as the guard lives.
    pub(crate) fn enter_finite_call(&self) -> FiniteCallOpen {
        self.finite_calls_open.set(self.finite_calls_open.get() + 1);
        FiniteCallOpen(self.finite_calls_open.clone())
    }

    /// Calls under way that end by themselves (all but Watch and LeaseKeepAlive streams).
    pub fn finite_calls_open(&self) -> usize {
        self.finite_calls_open.get()
    }

    /// The method registered at `path`, if any.
    pub(crate) fn route(&self, path: &str) -> Option<&Route> {
        self.routes.get(path)
    }

    /// True if some method of `service` (`etcdserverpb.KV`) is registered.
    pub(crate) fn has_service(&self, service: &str) -> bool {
        self.routes.keys().any(|path| {
            path[1..]
                .split_once('/')
                .is_some_and(|(name, _)| name == service)
        })
    }
}

/// The status for a path with no handler, worded as grpc-go words it.
pub(crate) fn unimplemented_status(router: &Router, path: &str) -> Status {
    match path.strip_prefix('/').and_then(|rest| rest.split_once('/')) {
        Some((service, method)) if router.has_service(service) => {
            Status::unimplemented(format!("unknown method {method} for service {service}"))
        }
        Some((service, _)) => Status::unimplemented(format!("unknown service {service}")),
        None => Status::unimplemented(format!("malformed method name: {path:?}")),
    }
}

/// One call that ends by itself, counted while it runs (`Router::enter_finite_call`).
pub(crate) struct FiniteCallOpen(Rc<Cell<usize>>);

impl Drop for FiniteCallOpen {
    fn drop(&mut self) {
        self.0.set(self.0.get() - 1);
    }
}
