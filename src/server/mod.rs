//! The `basalt` server: opens the member's log and database, starts its raft owner, and serves
//! etcd's gRPC API plus `/health` and `/version` on the client URLs.
//!
//! This first shape runs on one glommio executor: connections, raft, the WAL and the engine
//! share a core. The design's thread-per-core shape (one executor per core accepting on the same
//! port, writes forwarded to the raft owner) builds on the same pieces.

mod apply;
mod convert;
mod kv_service;
mod lease_driver;
mod lease_lessor;
mod lease_service;
mod logging;
mod member;
mod proposal;
mod status_service;
mod watch_hub;
mod watch_service;

use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;

use basalt_engine::Engine;
use basalt_net::{etcd_http, Http1Response, Router, Server, ServerConfig};
use basalt_wal::{Wal, WalOptions};
use glommio::LocalExecutorBuilder;

use crate::config::{Config, Scheme};
use crate::node::RaftTiming;
use logging::Milestones;
use member::{Identity, Member};
use status_service::MemberInfo;

/// The cluster version reported next to the server version (etcd 3.5 reports "3.5.0").
const CLUSTER_VERSION: &str = "3.5.0";

/// Runs the member until the process is stopped; returns a message when it cannot start.
pub fn run(config: Config) -> Result<(), String> {
    let bootstrap = config.bootstrap().map_err(|e| e.to_string())?;
    let identity = Identity {
        cluster_id: bootstrap.cluster_id.0,
        member_id: bootstrap.local_member_id.0,
    };
    let addresses = client_addresses(&config)?;
    LocalExecutorBuilder::default()
        .name("basalt")
        .spawn(move || async move { serve(config, identity, addresses).await })
        .map_err(|e| format!("cannot start the executor: {e}"))?
        .join()
        .map_err(|e| format!("the executor failed: {e}"))?
}

async fn serve(
    config: Config,
    identity: Identity,
    addresses: Vec<SocketAddr>,
) -> Result<(), String> {
    let milestones = Milestones::new(&config);
    let db_dir = config.member.data_dir.join("member").join("snap");
    std::fs::create_dir_all(&db_dir)
        .map_err(|e| format!("cannot create {}: {e}", db_dir.display()))?;
    let db_path = db_dir.join("db");
    let engine =
        Rc::new(Engine::open(&db_path).map_err(|e| format!("cannot open the database: {e}"))?);
    milestones.info(
        "opened backend db",
        &[("path", &db_path.display().to_string())],
    );
    let wal_dir = config.wal_dir();
    let wal = Rc::new(
        Wal::open(&wal_dir, WalOptions::default())
            .await
            .map_err(|e| format!("cannot open the wal: {e}"))?,
    );
    milestones.info(
        "opened write-ahead log",
        &[("wal-dir", &wal_dir.display().to_string())],
    );

    let heartbeat_ms = config.raft.heartbeat_interval.as_millis() as u64;
    let election_ms = config.raft.election_timeout.as_millis() as u64;
    let timing = RaftTiming::from_etcd_flags(heartbeat_ms, election_ms);
    let lessor_config = lease_lessor::LessorConfig {
        ttl_min_s: lease_lessor::LessorConfig::ttl_min_s(
            timing.election_ticks as u64,
            heartbeat_ms,
        ),
        checkpoint_interval_ms: lease_checkpoint_interval_ms()?,
        // etcd retries an expired lease's revoke after its request timeout.
        expired_retry_ms: 5_000 + 2 * election_ms,
    };
    let member = Member::start(
        identity,
        wal,
        engine,
        timing,
        config.raft.heartbeat_interval,
        config.limits.max_request_bytes as usize,
        config.member.snapshot_count,
        lessor_config,
    )
    .await?;
    lease_driver::start(member.clone());
    milestones.info(
        "published local member to cluster through raft",
        &[
            ("local-member-id", &format!("{:x}", identity.member_id)),
            ("cluster-id", &format!("{:x}", identity.cluster_id)),
        ],
    );
    milestones.info(
        "enabled capabilities for version",
        &[("cluster-version", "3.5")],
    );

    let info = Rc::new(MemberInfo {
        name: config.member.name.clone(),
        peer_urls: config
            .urls
            .advertise_peer
            .iter()
            .map(|u| u.text.clone())
            .collect(),
        client_urls: config
            .urls
            .advertise_client
            .iter()
            .map(|u| u.text.clone())
            .collect(),
        version: config.basalt.reported_version.clone(),
        db_path,
    });
    let mut router = Router::new();
    kv_service::register(
        &mut router,
        member.clone(),
        kv_service::KvLimits {
            max_txn_ops: config.limits.max_txn_ops as usize,
        },
    );
    status_service::register(&mut router, member.clone(), info.clone());
    lease_service::register(&mut router, member.clone());
    watch_service::register(&mut router, member.watch_hub());
    let version = config.basalt.reported_version.clone();
    let server_config =
        ServerConfig::for_max_request_bytes(config.limits.max_request_bytes as usize);
    let server = Rc::new(
        Server::new(router, server_config).with_http1(move |request| match request.path() {
            "/health" => Http1Response::json(etcd_http::health_body(true, "")),
            "/version" => Http1Response::json(etcd_http::version_body(&version, CLUSTER_VERSION)),
            _ => Http1Response::not_found(),
        }),
    );

    let mut serving = Vec::new();
    for address in addresses {
        let listener =
            basalt_net::bind(address).map_err(|e| format!("cannot listen on {address}: {e}"))?;
        let server = server.clone();
        serving.push(glommio::spawn_local(
            async move { server.serve(listener).await },
        ));
        milestones.warn(
            "serving insecure client requests; this is strongly discouraged!",
            &[("address", &address.to_string())],
        );
    }
    milestones.info("ready to serve client requests", &[]);
    notify_systemd_ready();
    for task in serving {
        task.await
            .map_err(|e| format!("serving clients failed: {e}"))?;
    }
    Ok(())
}

/// Time between two checkpoints of a lease's remaining TTL: etcd's default (5 minutes), or
/// `BASALT_LEASE_CHECKPOINT_INTERVAL_MS` (tests and operators who want a restart to lose less
/// of a lease's elapsed time).
fn lease_checkpoint_interval_ms() -> Result<u64, String> {
    const DEFAULT_MS: u64 = 5 * 60 * 1000;
    match std::env::var("BASALT_LEASE_CHECKPOINT_INTERVAL_MS") {
        Err(_) => Ok(DEFAULT_MS),
        Ok(text) => match text.parse::<u64>() {
            Ok(ms) if ms > 0 => Ok(ms),
            _ => Err(format!(
                "BASALT_LEASE_CHECKPOINT_INTERVAL_MS must be a positive number of milliseconds, got {text:?}"
            )),
        },
    }
}

/// The socket addresses of `--listen-client-urls` (http only for now).
fn client_addresses(config: &Config) -> Result<Vec<SocketAddr>, String> {
    let mut addresses = Vec::new();
    for url in &config.urls.listen_client {
        if url.scheme != Scheme::Http {
            return Err(format!(
                "listen client URL {} is not served yet: only http:// is supported",
                url.text
            ));
        }
        let resolved = url
            .address
            .to_socket_addrs()
            .map_err(|e| format!("cannot resolve listen client URL {}: {e}", url.text))?
            .next()
            .ok_or_else(|| format!("listen client URL {} resolves to no address", url.text))?;
        addresses.push(resolved);
    }
    Ok(addresses)
}

/// Tells systemd the member is ready when run as a `Type=notify` service (`NOTIFY_SOCKET`).
fn notify_systemd_ready() {
    let Some(socket) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let socket = std::path::PathBuf::from(socket);
    let Ok(datagram) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let _ = datagram.send_to(b"READY=1", socket);
}
