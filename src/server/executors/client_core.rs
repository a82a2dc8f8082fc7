//! An executor that is not the raft owner: it accepts its own share of client connections
//! (handing the owner its share, `basalt_net::handoff`),
//! serves reads from the shared engine, forwards writes and read points to the owner over its
//! link, and feeds its own watchers from the engine when the owner rings its doorbell.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use basalt_engine::Engine;
use basalt_net::handoff::HandedOff;
use futures_channel::oneshot;
use glommio::channels::shared_channel::{SharedReceiver, SharedSender};

use super::client_api::{self, ClientApiSettings};
use super::client_stop::{self, CoreServers, StopFollower};
use crate::server::error::ServerError;
use crate::server::metrics::OwnerLinkDepth;
use crate::server::routing::gateway::Gateway;
use crate::server::routing::owner_link::{OwnerCall, RemoteOwner};
use crate::server::state_machine::header::HeaderSource;
use crate::server::watch::watch_hub::WatchHub;
use crate::server::watch::watcher_presence::WatcherPresence;

/// Lagging watchers catch up at least this often even when no write rings the doorbell (the
/// owner's ticker does the same for its own watchers).
const IDLE_CATCH_UP_INTERVAL: Duration = Duration::from_millis(100);

/// This core's ends of its link to the raft owner.
pub struct ClientCoreLinks {
    pub calls: SharedSender<OwnerCall>,
    /// `/metrics`: the link's depth, counted on both ends.
    pub depth: Arc<OwnerLinkDepth>,
    pub doorbell: SharedReceiver<()>,
    /// This core's watchers, counted for the owner (which rings only while there are some).
    pub watchers: WatcherPresence,
    /// The owner's header source, sent once the member has started.
    pub started: oneshot::Receiver<HeaderSource>,
    /// Told once this core listens on every client address.
    pub bound: oneshot::Sender<()>,
    /// The owner's orders for a graceful stop of this core's client server.
    pub stop: StopFollower,
    /// This core's index among the executors (the owner is 0).
    pub core: usize,
    /// Where this core hands the owner its share of new connections.
    pub to_owner: SharedSender<HandedOff>,
}

/// Runs one client core until its server fails or the process ends.
pub async fn serve(
    links: ClientCoreLinks,
    engine: Arc<Engine>,
    settings: ClientApiSettings,
) -> Result<(), ServerError> {
    let headers = links
        .started
        .await
        .map_err(|_| ServerError::PeerExecutorFailed)?;
    let calls = links.calls.connect().await;
    let gateway = Gateway::remote(
        RemoteOwner::new(calls, links.depth),
        engine,
        headers,
        settings.auth.clone(),
        links.watchers,
    );
    glommio::spawn_local(follow_owner(gateway.watch_hub(), links.doorbell)).detach();
    let api = client_api::bind(
        gateway,
        &settings,
        links.core,
        links.to_owner.connect().await,
    )?;
    glommio::spawn_local(client_stop::follow(
        links.stop,
        CoreServers::new(vec![api.server()]),
    ))
    .detach();
    // The owner logs "ready to serve client requests" once every core listens; a dropped
    // owner means the process is ending anyway.
    let _ = links.bound.send(());
    api.serve().await
}

/// Publishes what the owner applied to this core's watchers, each time it rings (and lets
/// lagging watchers catch up when it is quiet).
async fn follow_owner(hub: Rc<WatchHub>, doorbell: SharedReceiver<()>) {
    let doorbell = doorbell.connect().await;
    loop {
        let go_on = {
            let mut ring = pin!(doorbell.recv());
            let mut idle = pin!(glommio::timer::sleep(IDLE_CATCH_UP_INTERVAL));
            poll_fn(|cx| {
                if let Poll::Ready(item) = ring.as_mut().poll(cx) {
                    return Poll::Ready(item.is_some());
                }
                if idle.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(true);
                }
                Poll::Pending
            })
            .await
        };
        if !go_on {
            return; // the owner is gone
        }
        while hub.publish_from_engine() {
            glommio::yield_if_needed().await;
        }
        hub.catch_up_all();
    }
}
