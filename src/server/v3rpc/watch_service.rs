//! etcd's Watch service: one bidirectional stream carries any number of watchers. Requests
//! (create, cancel, progress) are read on the handler's task; a sender task drains the stream's
//! bounded response queue into the HTTP/2 stream (which itself waits for the client's window),
//! the responses waiting at that moment in one send, and after each send lets the stream's
//! lagging watchers catch up.

use std::rc::Rc;
use std::time::Duration;

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{Metadata, RequestStream, ResponseSink, Router};

use crate::server::routing::gateway::Gateway;
use crate::server::watch::watch_hub::{StreamQueue, WatchHub};
use crate::server::watch::watch_limits::TOO_MANY_WATCH_STREAMS;

/// Registers Watch on `router`.
pub fn register(router: &mut Router, hub: Rc<WatchHub>, gateway: Rc<Gateway>) {
    router.streaming(
        "/etcdserverpb.Watch/Watch",
        move |metadata: Metadata,
              mut requests: RequestStream<pb::WatchRequest>,
              mut responses: ResponseSink<pb::WatchResponse>| {
            let hub = hub.clone();
            let gateway = gateway.clone();
            async move {
                // Held while the stream is open: the member's bound on Watch streams.
                let Some(_permit) = hub.limits().try_open_stream() else {
                    return Err(basalt_net::Status::resource_exhausted(
                        TOO_MANY_WATCH_STREAMS,
                    ));
                };
                let (stream, queue) = hub.open_stream();
                // Declared before the sender: a call dropped at its deadline drops (cancels)
                // the sender first, then closes the stream.
                let open = OpenStream {
                    hub: hub.clone(),
                    stream,
                };
                let sender_hub = hub.clone();
                let sender_queue = queue.clone();
                let sender = glommio::spawn_local(async move {
                    let queue = sender_queue;
                    while let Some(batch) = queue.next_batch().await {
                        let result = responses.send_all_encoded(batch).await;
                        queue.sent();
                        if result.is_err() {
                            break; // the client went away
                        }
                        sender_hub.catch_up(stream);
                    }
                });
                let permitted = |create: &pb::WatchCreateRequest| {
                    gateway
                        .caller(&metadata)
                        .and_then(|caller| caller.check_read(&create.key, &create.range_end))
                };
                let result = read_requests(&hub, stream, &queue, &mut requests, &permitted).await;
                // Closed before the sender is awaited: it sends what is queued, then ends.
                drop(open);
                sender.await;
                result
            }
        },
    );
}

/// A stream open in the hub, closed however its call ends: returned, failed, or dropped at its
/// deadline (`grpc-timeout`), which runs none of the handler's remaining code. Left open, its
/// watchers would stay counted against `--max-watchers` and its queue against the member's
/// watch bytes for good.
struct OpenStream {
    hub: Rc<WatchHub>,
    stream: u64,
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.hub.close_stream(self.stream);
    }
}

/// Sends etcd's progress notifications every `interval` on this core (none when zero).
pub fn start_progress_notifier(hub: Rc<WatchHub>, interval: Duration) {
    if interval.is_zero() {
        return;
    }
    glommio::spawn_local(async move {
        loop {
            glommio::timer::sleep(interval).await;
            hub.notify_progress();
        }
    })
    .detach();
}

async fn read_requests(
    hub: &WatchHub,
    stream: u64,
    queue: &StreamQueue,
    requests: &mut RequestStream<pb::WatchRequest>,
    permitted: &dyn Fn(&pb::WatchCreateRequest) -> Result<(), basalt_net::Status>,
) -> Result<(), basalt_net::Status> {
    use pb::watch_request::RequestUnion;
    loop {
        // A client that does not read its responses gets no more requests read either, so
        // the answers to its requests cannot pile up.
        queue.room().await;
        let Some(request) = requests.message().await? else {
            break;
        };
        match request.request_union {
            // Checked at each create with the stream's token and the store of that moment.
            Some(RequestUnion::CreateRequest(create)) => match permitted(&create) {
                Ok(()) => hub.create(stream, &create),
                Err(refused) => hub.refuse_create(stream, &refused.message),
            },
            Some(RequestUnion::CancelRequest(cancel)) => hub.cancel(stream, cancel.watch_id),
            Some(RequestUnion::ProgressRequest(_)) => hub.progress(stream),
            None => {}
        }
    }
    Ok(())
}
