//! The executor that owns the raft group: it opens the write-ahead log, starts the member,
//! serves the other cores' links, and serves its own share of client connections (with the
//! connection a client core hands it while it serves none, `basalt_net::handoff`).

use std::rc::Rc;
use std::sync::Arc;

use basalt_engine::Engine;
use basalt_net::handoff::HandedOff;
use basalt_net::proto::etcdserverpb as pb;
use basalt_wal::{Wal, WalOptions};
use futures_channel::oneshot;
use glommio::channels::shared_channel::{SharedReceiver, SharedSender};

use super::client_api::{self, ClientApiSettings};
use super::client_stop::{self, CoreServers, StopOrders};
use super::metrics_listener;
use super::peer_listener::PeerListener;
use super::stop_signal::StopRequest;
use crate::config::Config;
use crate::node::RaftOptions;
use crate::server::error::ServerError;
use crate::server::member::applier::{CompactionPacing, Doorbell};
use crate::server::member::auto_compaction_driver;
use crate::server::member::lease_driver;
use crate::server::member::peer_link;
use crate::server::member::raft_member::{Member, MembershipOptions};
use crate::server::member::snapshot_installer;
use crate::server::metrics::OwnerLinkDepth;
use crate::server::routing::gateway::Gateway;
use crate::server::routing::owner_link::{serve_link, OwnerCall};
use crate::server::state_machine::header::{HeaderSource, Identity};
use crate::server::state_machine::lease_lessor::LessorConfig;
use crate::server::watch::watcher_presence::WatcherPresence;

/// The owner's ends of one client core's link.
pub struct OwnerLinks {
    pub calls: SharedReceiver<OwnerCall>,
    /// `/metrics`: the link's depth, counted on both ends.
    pub depth: Arc<OwnerLinkDepth>,
    pub doorbell: SharedSender<()>,
    /// Whether that core has watchers (it is rung only then).
    pub watchers: WatcherPresence,
    pub started: oneshot::Sender<HeaderSource>,
    pub bound: oneshot::Receiver<()>,
    /// Orders that core's client server to stop, on a graceful stop.
    pub stop: StopOrders,
    /// The connections that core hands this one (see `basalt_net::handoff`).
    pub handed_off: SharedReceiver<HandedOff>,
}

/// The owner's ends of the process's other threads: the client cores' links and the stop
/// signal.
pub struct OwnerEnds {
    pub links: Vec<OwnerLinks>,
    pub stop: StopRequest,
}

/// What the owner core needs to talk to the other members: its bound peer listeners, and for
/// a member that just joined a running cluster, the members it was told about.
pub struct Peers {
    pub listeners: Vec<PeerListener>,
    pub joined: Vec<(u64, Vec<String>)>,
}

/// Runs the raft owner until its server fails, a stop signal has been carried out, or the
/// process ends.
pub async fn serve(
    config: Config,
    identity: Identity,
    initial_members: Vec<(u64, Vec<String>)>,
    peers: Peers,
    engine: Arc<Engine>,
    ends: OwnerEnds,
    settings: ClientApiSettings,
) -> Result<(), ServerError> {
    let OwnerEnds { links, stop } = ends;
    let milestones = crate::server::logging::milestones();
    let wal_dir = config.wal_dir();
    let wal = Rc::new(
        Wal::open(&wal_dir, WalOptions::default())
            .await
            .map_err(|source| ServerError::OpenWal {
                path: wal_dir.clone(),
                source,
            })?,
    );
    settings.metrics.add_wal(wal.metrics());
    let db_dir = config.member.data_dir.join("member").join("snap");
    if let Some(index) = snapshot_installer::finish_pending_log_reset(&db_dir, &wal)
        .await
        .map_err(ServerError::Member)?
    {
        milestones.info(
            "installed a raft snapshot",
            &[("index", &index.to_string())],
        );
    }
    if wal.metadata().is_empty() && wal.last_index() < wal.first_index() {
        // Before the log's first write: from now on this data directory is this member.
        crate::server::member::identity_file::store(&config.member.data_dir, identity)
            .map_err(ServerError::Member)?;
    }
    milestones.info(
        "opened write-ahead log",
        &[("wal-dir", &wal_dir.display().to_string())],
    );
    let heartbeat_ms = config.raft.heartbeat_interval.as_millis() as u64;
    let election_ms = config.raft.election_timeout.as_millis() as u64;
    let timing = RaftOptions::from_etcd_flags(heartbeat_ms, election_ms, config.cluster.pre_vote);
    let lessor_config = LessorConfig {
        ttl_min_s: LessorConfig::ttl_min_s(timing.election_ticks as u64, heartbeat_ms),
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
        config
            .urls
            .advertise_peer
            .iter()
            .map(|u| u.text.clone())
            .collect(),
        initial_members,
        MembershipOptions {
            joining: config.cluster.state == crate::config::ClusterState::Existing,
            strict_reconfig_check: config.cluster.strict_reconfig_check,
        },
        lessor_config,
        CompactionPacing::from_config(&config.compaction),
        settings.metrics.clone(),
        settings.auth.clone(),
    )
    .await
    .map_err(ServerError::Member)?;
    // Every member serves --listen-peer-urls, a one-member cluster too: it grows by MemberAdd.
    let tls = crate::server::peer_tls::peer_tls(&config, &milestones)?;
    let served: Vec<(String, Option<std::net::SocketAddr>, bool)> = peers
        .listeners
        .iter()
        .map(|peer| (peer.url.clone(), peer.local_address(), peer.secure))
        .collect();
    peer_link::start(
        &member,
        identity.cluster_id,
        config.limits.max_request_bytes as usize,
        peers
            .listeners
            .into_iter()
            .map(|peer| (peer.listener, peer.secure))
            .collect(),
        tls.as_ref(),
        &peers.joined,
        db_dir,
    )
    .map_err(ServerError::Member)?;
    for (url, address, secure) in &served {
        let what = if *secure {
            "serving peer traffic securely"
        } else {
            "serving peer traffic"
        };
        let address = address.map_or_else(|| url.clone(), |address| address.to_string());
        milestones.info(what, &[("address", &address), ("url", url)]);
    }
    lease_driver::start(member.clone());
    auto_compaction_driver::start(member.clone(), config.compaction.auto);
    // As etcd serves only once it has applied what its log holds (it publishes itself through
    // raft first): a read index round, then apply reaching it, replays every committed entry
    // the engine had not made durable before a crash.
    while let Err(status) = member.wait_linearizable().await {
        if member.is_stopped() {
            return Err(ServerError::Member(format!(
                "it stopped while replaying its log: {}",
                status.message
            )));
        }
        tracing::warn!(?status, "still replaying the log before serving");
    }
    publish_attributes(&member, identity, &settings).await?;
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

    let stopping = member.clone();
    let request_timeout = member.request_timeout();
    let gateway = Gateway::on_owner(member.clone());
    let metrics_listeners = metrics_listener::bind(
        &settings.metrics_listeners,
        settings.tls.clone(),
        gateway.clone(),
        settings.metrics.clone(),
        settings.max_request_bytes,
    )?;
    // This core binds the client addresses first, each right after claiming it, and only then
    // lets the client cores bind theirs (they join this core's listeners): a port another
    // server listens on stops the member here, as etcd's "address already in use".
    let mut api = client_api::bind_owner(gateway, &settings)?;
    // etcd closes its metrics listeners with its client servers, before the member stops.
    let own_servers = CoreServers::new(vec![api.server(), metrics_listeners.server()]);
    let mut bound = Vec::with_capacity(links.len());
    let mut stop_orders = Vec::with_capacity(links.len());
    for link in links {
        stop_orders.push(link.stop);
        api.take_handed_off(link.handed_off);
        let serving = member.clone();
        let depth = link.depth.clone();
        glommio::spawn_local(async move {
            let calls = link.calls.connect().await;
            serve_link(serving, calls, depth).await;
        })
        .detach();
        let ringing = member.clone();
        let watchers = link.watchers;
        glommio::spawn_local(async move {
            ringing.add_doorbell(Doorbell {
                ring: link.doorbell.connect().await,
                watchers,
            });
        })
        .detach();
        // A client core that already failed dropped its receiver; its error ends the process.
        let _ = link.started.send(member.headers());
        bound.push(link.bound);
    }
    for core in bound {
        core.await.map_err(|_| ServerError::PeerExecutorFailed)?;
    }
    for listener in &settings.listeners {
        let address = listener.address.to_string();
        if listener.tls {
            milestones.info("serving client traffic securely", &[("address", &address)]);
        } else {
            milestones.warn(
                "serving insecure client requests; this is strongly discouraged!",
                &[("address", &address)],
            );
        }
    }
    for listener in &settings.metrics_listeners {
        milestones.info(
            "serving metrics",
            &[("address", &listener.address.to_string())],
        );
    }
    milestones.info("ready to serve client requests", &[]);
    notify_systemd_ready();
    stop.listening
        .store(true, std::sync::atomic::Ordering::Release);
    let graceful_stop = async {
        if stop.requested.await.is_err() {
            // The signal thread is gone (it never ends without sending): serve on.
            return futures_lite::future::pending().await;
        }
        // As etcd's Close: the client servers first (every core), bounded by the request
        // timeout, while the member still commits the calls under way; then the member.
        let outcome =
            client_stop::stop_every_core(&own_servers, stop_orders, request_timeout).await;
        milestones.info(
            "stopped serving client traffic",
            &[
                (
                    "connections-closed",
                    &outcome.connections_closed.to_string(),
                ),
                ("cores-unanswered", &outcome.cores_unanswered.to_string()),
            ],
        );
        stopping
            .quiesce_for_stop(2 * config.raft.election_timeout)
            .await;
        milestones.info(
            "closed etcd server",
            &[
                ("name", &config.member.name),
                ("data-dir", &config.member.data_dir.display().to_string()),
            ],
        );
        Ok(())
    };
    let serving = futures_lite::future::or(api.serve(), metrics_listeners.serve());
    futures_lite::future::or(graceful_stop, serving).await
}

/// Publishes this member's name and client URLs through raft when the cluster does not
/// record them yet (first start, or changed flags), as etcd publishes them at every start, so
/// every member lists them. Retried until it applies: clients are served only after it.
async fn publish_attributes(
    member: &Rc<Member>,
    identity: Identity,
    settings: &ClientApiSettings,
) -> Result<(), ServerError> {
    let (name, client_urls) = (&settings.info.name, &settings.info.client_urls);
    let recorded = member.cluster().attributes(identity.member_id).is_some_and(
        |(stored_name, stored_urls)| stored_name == name && stored_urls == client_urls.as_slice(),
    );
    if recorded {
        return Ok(());
    }
    let attributes = pb::Member {
        id: identity.member_id,
        name: name.clone(),
        client_ur_ls: client_urls.clone(),
        ..Default::default()
    };
    while let Err(status) = member.propose_write(attributes.clone()).await {
        if member.is_stopped() {
            return Err(ServerError::Member(format!(
                "it stopped while publishing its attributes: {}",
                status.message
            )));
        }
        tracing::warn!(?status, "still publishing the member's attributes");
        glommio::timer::sleep(std::time::Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Time between two checkpoints of a lease's remaining TTL: etcd's default (5 minutes), or
/// `BASALT_LEASE_CHECKPOINT_INTERVAL_MS` (tests and operators who want a restart to lose less
/// of a lease's elapsed time).
fn lease_checkpoint_interval_ms() -> Result<u64, ServerError> {
    const DEFAULT_MS: u64 = 5 * 60 * 1000;
    const NAME: &str = "BASALT_LEASE_CHECKPOINT_INTERVAL_MS";
    match std::env::var(NAME) {
        Err(_) => Ok(DEFAULT_MS),
        Ok(text) => match text.parse::<u64>() {
            Ok(ms) if ms > 0 => Ok(ms),
            _ => Err(ServerError::Environment {
                name: NAME,
                value: text,
                reason: "must be a positive number of milliseconds",
            }),
        },
    }
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
