//! The client-facing server of one core: etcd's gRPC services plus `/health` and `/version`,
//! on one SO_REUSEPORT listener per client URL. Every core builds the same one over its own
//! `Gateway`, and a connection is served wholly on one core: the one that accepted it, or the
//! owner core when a client core hands it a connection (`basalt_net::handoff`).

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use basalt_net::handoff::{ConnectionShares, HandedOff, OWNER};
use basalt_net::{
    etcd_http, Http1Response, Keepalive, NetError, Router, Server, ServerConfig, ServerTls,
};
use glommio::channels::shared_channel::{ConnectedSender, SharedReceiver};
use glommio::net::TcpListener;
use glommio::Task;

use crate::server::error::ServerError;
use crate::server::metrics::exposition::metrics_response;
use crate::server::metrics::ServerMetrics;
use crate::server::routing::gateway::Gateway;
use crate::server::state_machine::auth_hub::AuthHub;
use crate::server::v3rpc::defragment_turn::DefragTurns;
use crate::server::v3rpc::kv_service::{self, KvLimits};
use crate::server::v3rpc::status_service::{self, MemberInfo};
use crate::server::v3rpc::{
    auth_service, cluster_service, defragment_service, downgrade_service, election_service,
    lease_service, lock_service, maintenance_service, snapshot_service, watch_service,
};
use crate::server::v3rpc::{health_service, probe_service};
use crate::server::watch::watch_limits::WatchLimits;

/// The cluster version reported next to the server version (etcd 3.5 reports "3.5.0").
pub const CLUSTER_VERSION: &str = "3.5.0";

/// One `--listen-client-urls` listener.
#[derive(Clone, Copy, Debug)]
pub struct ClientListener {
    pub address: SocketAddr,
    /// `https://`: connections are served inside TLS.
    pub tls: bool,
}

/// What every core's server is configured with (one copy per core; the TLS configuration is
/// shared, and each handshake runs on the core of its connection).
#[derive(Clone)]
pub struct ClientApiSettings {
    pub listeners: Vec<ClientListener>,
    /// `--listen-metrics-urls`: `/metrics` and `/health` only, served by the owner core.
    pub metrics_listeners: Vec<ClientListener>,
    /// The TLS of the https listeners (`None` when every listener is http).
    pub tls: Option<Arc<ServerTls>>,
    pub kv_limits: KvLimits,
    pub max_request_bytes: usize,
    /// `--max-concurrent-streams`: calls one connection may have open at once.
    pub max_concurrent_streams: u32,
    /// `--enable-grpc-gateway`: etcd's JSON gateway on the client listeners.
    pub json_gateway: bool,
    /// `--grpc-keepalive-interval` and `--grpc-keepalive-timeout` (`None`: no pings).
    pub keepalive: Option<Keepalive>,
    /// `--grpc-keepalive-min-time`, as grpc-go enforces it (zero: grpc-go's default).
    pub min_ping_interval: std::time::Duration,
    pub info: MemberInfo,
    /// The auth store, tokens and bcrypt cost, shared by every core.
    pub auth: Arc<AuthHub>,
    /// `--experimental-watch-progress-notify-interval` (zero: no progress notifications).
    pub watch_progress_notify_interval: Duration,
    /// `--max-watchers` and `--max-watch-streams`, counted over every core.
    pub watch_limits: Arc<WatchLimits>,
    /// What `/metrics` reports; each core's server adds its gRPC call counts.
    pub metrics: Arc<ServerMetrics>,
    /// Client connections each core serves, for placing new ones.
    pub connection_shares: Arc<ConnectionShares>,
}

/// The server of one core, bound to every client address.
pub struct BoundClientApi {
    server: Rc<Server>,
    /// Each listener, with the TLS it serves (`None`: plaintext).
    listeners: Vec<(TcpListener, Option<Arc<ServerTls>>)>,
    /// On the owner core: the tasks serving the client cores' channels of connections handed
    /// to it.
    handed_off: Vec<Task<Result<(), NetError>>>,
}

/// Builds the owner core's server over `gateway` and binds its listeners, each after
/// [`basalt_net::claim`]: an address another server (another process) listens on is refused
/// instead of shared. The client cores [`bind`] after this one, and hand this core a new
/// connection while it serves none ([`BoundClientApi::take_handed_off`]).
pub fn bind_owner(
    gateway: Rc<Gateway>,
    settings: &ClientApiSettings,
) -> Result<BoundClientApi, ServerError> {
    let bound = bind_listeners(gateway, settings, true)?;
    bound
        .server
        .place(settings.connection_shares.clone(), OWNER, None);
    Ok(bound)
}

/// Builds client core `core`'s server over `gateway` and binds its listeners, joining the
/// owner's; it hands the owner new connections over `to_owner` (see `basalt_net::handoff`).
pub fn bind(
    gateway: Rc<Gateway>,
    settings: &ClientApiSettings,
    core: usize,
    to_owner: ConnectedSender<HandedOff>,
) -> Result<BoundClientApi, ServerError> {
    assert_ne!(core, OWNER, "the owner core binds with bind_owner");
    let bound = bind_listeners(gateway, settings, false)?;
    bound
        .server
        .place(settings.connection_shares.clone(), core, Some(to_owner));
    Ok(bound)
}

fn bind_listeners(
    gateway: Rc<Gateway>,
    settings: &ClientApiSettings,
    claim: bool,
) -> Result<BoundClientApi, ServerError> {
    let server = Rc::new(build_server(gateway, settings));
    let mut listeners = Vec::new();
    for &ClientListener { address, tls } in &settings.listeners {
        let refused = |source| ServerError::Listen { address, source };
        if claim {
            basalt_net::claim(address).map_err(refused)?;
        }
        let listener = basalt_net::bind(address).map_err(refused)?;
        let tls = if tls {
            let shared = settings.tls.clone();
            assert!(shared.is_some(), "an https listener without its TLS");
            shared
        } else {
            None
        };
        listeners.push((listener, tls));
    }
    Ok(BoundClientApi {
        server,
        listeners,
        handed_off: Vec::new(),
    })
}

/// This core's server: etcd's services over `gateway`, and the plain HTTP/1.1 paths.
fn build_server(gateway: Rc<Gateway>, settings: &ClientApiSettings) -> Server {
    let mut router = Router::new();
    kv_service::register(&mut router, gateway.clone(), settings.kv_limits.clone());
    let info = Rc::new(settings.info.clone());
    status_service::register(&mut router, gateway.clone(), info.clone());
    maintenance_service::register(&mut router, gateway.clone());
    downgrade_service::register(&mut router);
    defragment_service::register(&mut router, gateway.clone(), DefragTurns::in_this_process());
    lease_service::register(&mut router, gateway.clone(), settings.kv_limits.quota);
    lock_service::register(&mut router, gateway.clone(), settings.kv_limits.quota);
    election_service::register(&mut router, gateway.clone(), settings.kv_limits.quota);
    snapshot_service::register(&mut router, gateway.clone());
    cluster_service::register(&mut router, gateway.clone(), info);
    auth_service::register(&mut router, gateway.clone());
    let hub = gateway.watch_hub();
    // etcd fragments a watch response at --max-request-bytes for watchers that accept it.
    hub.set_fragment_bytes(settings.max_request_bytes);
    hub.set_limits(settings.watch_limits.clone());
    hub.set_slow_watchers(settings.metrics.add_slow_watchers());
    watch_service::start_progress_notifier(hub.clone(), settings.watch_progress_notify_interval);
    watch_service::register(&mut router, hub, gateway.clone());
    let calls = router.count_calls(settings.metrics.times_grpc_calls());
    settings.metrics.add_grpc_calls(calls);
    let version = settings.info.version.clone();
    let metrics = settings.metrics.clone();
    let server_config = ServerConfig {
        max_concurrent_streams_per_connection: settings.max_concurrent_streams,
        keepalive: settings.keepalive,
        min_ping_interval: settings.min_ping_interval,
        json_gateway: settings.json_gateway,
        ..ServerConfig::for_max_request_bytes(settings.max_request_bytes)
    };
    Server::new(router, server_config).with_http1_async(move |request| {
        let (gateway, version, metrics) = (gateway.clone(), version.clone(), metrics.clone());
        Box::pin(async move {
            match request.path() {
                "/health" => health_service::health(&gateway, &request).await,
                path if probe_service::serves(path) => {
                    probe_service::answer(&gateway, &request).await
                }
                "/metrics" => metrics_response(&metrics),
                "/version" => {
                    Http1Response::json(etcd_http::version_body(&version, CLUSTER_VERSION))
                }
                _ => Http1Response::not_found(),
            }
        })
    })
}

impl BoundClientApi {
    /// The server, for the graceful stop (see `client_stop`).
    pub fn server(&self) -> Rc<Server> {
        self.server.clone()
    }

    /// On the owner core: serves the connections a client core hands it over `handed_off`,
    /// from now on (the client core connects its end before it binds).
    pub fn take_handed_off(&mut self, handed_off: SharedReceiver<HandedOff>) {
        let server = self.server.clone();
        self.handed_off.push(glommio::spawn_local(async move {
            server.serve_handed_off(handed_off.connect().await).await
        }));
    }

    /// Serves every listener (and, on the owner core, every handoff channel); returns only when
    /// one fails. A listener closed by the graceful stop ends without an error, and this waits
    /// on: the stop decides when the process ends.
    pub async fn serve(self) -> Result<(), ServerError> {
        let mut serving: Vec<_> = self
            .listeners
            .into_iter()
            .map(|(listener, tls)| {
                let server = self.server.clone();
                glommio::spawn_local(async move {
                    match tls {
                        Some(tls) => server.serve_tls(listener, tls).await,
                        None => server.serve(listener).await,
                    }
                })
            })
            .collect();
        serving.extend(self.handed_off);
        for task in serving {
            task.await.map_err(ServerError::Serving)?;
        }
        std::future::pending().await
    }
}
