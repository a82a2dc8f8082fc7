//! `--listen-metrics-urls`: `/metrics` and `/health` on listeners of their own, as etcd serves
//! them (for a Prometheus or a kubelet probe that must not share the client port's load or its
//! client certificates). Served by the raft owner's core: a scrape is a few hundred
//! microseconds every few seconds, and `/health` asks the member anyway.

use std::rc::Rc;
use std::sync::Arc;

use basalt_net::{Http1Response, Router, Server, ServerConfig, ServerTls};
use glommio::net::TcpListener;

use super::client_api::ClientListener;
use crate::server::error::ServerError;
use crate::server::metrics::exposition::metrics_response;
use crate::server::metrics::ServerMetrics;
use crate::server::routing::gateway::Gateway;
use crate::server::v3rpc::{health_service, probe_service};

/// The metrics server, bound to every metrics address.
pub struct BoundMetricsListeners {
    server: Rc<Server>,
    listeners: Vec<(TcpListener, Option<Arc<ServerTls>>)>,
}

/// Builds the metrics server and binds its listeners (none when no metrics URL was given).
pub fn bind(
    addresses: &[ClientListener],
    tls: Option<Arc<ServerTls>>,
    gateway: Rc<Gateway>,
    metrics: Arc<ServerMetrics>,
    max_request_bytes: usize,
) -> Result<BoundMetricsListeners, ServerError> {
    // No gRPC here: an empty router answers every method UNIMPLEMENTED.
    let server = Rc::new(
        Server::new(
            Router::new(),
            ServerConfig {
                // etcd serves the gateway on client URLs only.
                json_gateway: false,
                ..ServerConfig::for_max_request_bytes(max_request_bytes)
            },
        )
        .with_http1_async(move |request| {
            let (gateway, metrics) = (gateway.clone(), metrics.clone());
            Box::pin(async move {
                match request.path() {
                    "/metrics" => metrics_response(&metrics),
                    "/health" => health_service::health(&gateway, &request).await,
                    path if probe_service::serves(path) => {
                        probe_service::answer(&gateway, &request).await
                    }
                    _ => Http1Response::not_found(),
                }
            })
        }),
    );
    let mut listeners = Vec::with_capacity(addresses.len());
    for &ClientListener {
        address,
        tls: is_tls,
    } in addresses
    {
        // One listener per address, on the owner core: claimed, so a port another server
        // listens on is refused rather than shared (see `basalt_net::claim`).
        let refused = |source| ServerError::Listen { address, source };
        basalt_net::claim(address).map_err(refused)?;
        let listener = basalt_net::bind(address).map_err(refused)?;
        let tls = if is_tls {
            assert!(tls.is_some(), "an https metrics listener without its TLS");
            tls.clone()
        } else {
            None
        };
        listeners.push((listener, tls));
    }
    Ok(BoundMetricsListeners { server, listeners })
}

impl BoundMetricsListeners {
    /// The server, for the graceful stop (see `client_stop`).
    pub fn server(&self) -> Rc<Server> {
        self.server.clone()
    }

    /// Serves every metrics listener; returns only when one fails (as etcd, whose member ends
    /// when any of its listeners does). With no listener it never returns.
    pub async fn serve(self) -> Result<(), ServerError> {
        let serving: Vec<_> = self
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
        for task in serving {
            task.await.map_err(ServerError::Serving)?;
        }
        std::future::pending().await
    }
}
