//! etcd's Watch service: one bidirectional stream carries any number of watchers. Requests
//! (create, cancel, progress) are read on the handler's task; a sender task drains the stream's
//! bounded response queue into the HTTP/2 stream (which itself waits for the client's window),
//! and after each send lets the stream's lagging watchers catch up.

use std::rc::Rc;
use std::time::Duration;

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{RequestStream, ResponseSink, Router};

use crate::server::watch::watch_hub::{StreamQueue, WatchHub};

/// Registers Watch on `router`.
pub fn register(router: &mut Router, hub: Rc<WatchHub>) {
    router.streaming(
        "/etcdserverpb.Watch/Watch",
        move |_metadata,
              mut requests: RequestStream<pb::WatchRequest>,
              mut responses: ResponseSink<pb::WatchResponse>| {
            let hub = hub.clone();
            async move {
                let (stream, queue) = hub.open_stream();
                let sender_hub = hub.clone();
                let sender_queue = queue.clone();
                let sender = glommio::spawn_local(async move {
                    let queue = sender_queue;
                    while let Some(response) = queue.next().await {
                        if responses.send(&response).await.is_err() {
                            break; // the client went away
                        }
                        sender_hub.catch_up(stream);
                    }
                });
                let result = read_requests(&hub, stream, &queue, &mut requests).await;
                hub.close_stream(stream);
                sender.await;
                result
            }
        },
    );
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
            Some(RequestUnion::CreateRequest(create)) => hub.create(stream, &create),
            Some(RequestUnion::CancelRequest(cancel)) => hub.cancel(stream, cancel.watch_id),
            Some(RequestUnion::ProgressRequest(_)) => hub.progress(stream),
            None => {}
        }
    }
    Ok(())
}
