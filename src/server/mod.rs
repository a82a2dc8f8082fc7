//! The `basalt` server: opens the member's database and log, starts one glommio executor per
//! core, and serves etcd's gRPC API plus `/health` and `/version` on the client URLs.
//!
//! Thread per core: every executor accepts its own connections on the client port
//! (SO_REUSEPORT; a client core hands executor 0 a connection while executor 0 serves none,
//! `basalt_net::handoff`) and serves their reads from the shared engine and their watchers from
//! its own hub. Executor 0 owns the raft group (WAL, apply, the engine's writer); the others send it
//! their writes and read points over bounded cross-core links, and it rings their doorbells
//! after each apply so their watchers read the new events from the engine.
//!
//! The folders are layers, top to bottom; a layer imports only from the layers below it (and
//! from `crate::config`, `crate::node`, the engine, the WAL and `basalt_net`):
//!
//! - `executors`: the owner core, the client cores and their listeners; they wire the rest.
//! - `v3rpc`: etcd's gRPC services (as etcd's `v3rpc`), written against a `Gateway`.
//! - `routing`: the `Gateway` every core's services use, and the link to the owner core.
//! - `member`: the raft member on the owner core: node loop, log writer, lease and compaction
//!   drivers.
//! - `watch`: watchers and the feed that reaches them.
//! - `state_machine`: what raft replicates and how it applies: proposals, apply, cluster state
//!   and alarms, compaction policy, the lessor, response headers.

pub mod error;
mod executors;
pub mod fail_stop;
mod io_uring_check;
mod logging;
mod member;
pub use member::data_dir_lock;
pub mod metrics;
mod peer_tls;
pub mod restore;
mod routing;
mod state_machine;
mod v3rpc;
pub mod wal_records;
mod watch;

use std::net::ToSocketAddrs;
use std::num::NonZeroUsize;
use std::sync::mpsc;
use std::sync::Arc;

use basalt_engine::Engine;
use futures_channel::oneshot;
use glommio::channels::shared_channel;
use glommio::{LocalExecutorBuilder, Placement};

use basalt_net::tls::TlsPolicy;
use basalt_net::ServerTls;

use crate::config::{Config, Scheme};
use crate::server::watch::watcher_presence::WatcherPresence;
pub use error::ServerError;
use executors::client_api::{ClientApiSettings, ClientListener};
use executors::client_core::{self, ClientCoreLinks};
use executors::owner_core::{self, OwnerLinks};
use logging::Milestones;
use metrics::{MemberFacts, MetricsLevel, ServerMetrics};
use routing::owner_link;
use state_machine::auth_hub::AuthHub;
use state_machine::auth_tokens::Tokens;
use state_machine::header::Identity;
use v3rpc::status_service::MemberInfo;
use v3rpc::{kv_service, quota};

/// How long the process waits, once an executor ended because another had failed, for that
/// other's error (sent as it ends, within milliseconds).
const FAILURE_CAUSE_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// How long a joining member asks the running members for the member list before giving up.
const JOIN_ASK_LIMIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs the member until the process is stopped; returns a message when it cannot start.
pub fn run(config: Config) -> Result<(), ServerError> {
    // First, before any thread starts: every thread inherits the blocked signals.
    let stop_signals = executors::stop_signal::StopSignals::block()?;
    let bootstrap = config.bootstrap()?;
    let derived = Identity {
        cluster_id: bootstrap.cluster_id.0,
        member_id: bootstrap.local_member_id.0,
    };
    let milestones = logging::install(&config)?;
    io_uring_check::check_io_uring()?;
    // Before the data directory is touched, as etcd binds its peer listeners first.
    let peer_listeners = executors::peer_listener::bind_all(&config)?;
    // A stored identity counts once the log has been written; a first start that failed
    // before writing it takes the flags again (the owner stores them before its first write).
    let log_written = std::fs::read_dir(config.wal_dir()).is_ok_and(|mut dir| dir.next().is_some());
    let joining = config.cluster.state == crate::config::ClusterState::Existing;
    let mut joined_peers = Vec::new();
    let identity =
        match member::identity_file::load(&config.member.data_dir).map_err(ServerError::Member)? {
            Some(stored) if log_written => stored,
            _ if joining => {
                // etcd's join: the running members say who this member is (it was added with
                // MemberAdd) and which cluster it joins.
                let asked: Vec<String> = bootstrap
                    .members
                    .iter()
                    .filter(|member| member.name != config.member.name)
                    .flat_map(|member| member.peer_urls.iter().map(|url| url.text.clone()))
                    .collect();
                let advertised: Vec<String> = config
                    .urls
                    .advertise_peer
                    .iter()
                    .map(|url| url.text.clone())
                    .collect();
                let joined = member::join::fetch_cluster(&asked, &advertised, JOIN_ASK_LIMIT)
                    .map_err(ServerError::Member)?;
                joined_peers = joined.members;
                Identity {
                    cluster_id: joined.cluster_id,
                    member_id: joined.member_id,
                }
            }
            _ => derived,
        };
    if (identity.member_id, identity.cluster_id) != (derived.member_id, derived.cluster_id) {
        // As etcd: the bootstrap flags only matter to a data directory's first start.
        milestones.warn(
            "the data directory keeps the identity it was bootstrapped with; --initial-cluster \
             and --initial-cluster-token are ignored",
            &[
                ("local-member-id", &format!("{:x}", identity.member_id)),
                ("cluster-id", &format!("{:x}", identity.cluster_id)),
            ],
        );
    }
    let initial_members: Vec<(u64, Vec<String>)> = bootstrap
        .members
        .iter()
        .map(|member| {
            let urls = member.peer_urls.iter().map(|url| url.text.clone());
            (member.id.0, urls.collect())
        })
        .collect();
    let listeners = listeners_of(&config.urls.listen_client)?;
    let metrics_listeners = listeners_of(&config.urls.listen_metrics)?;
    // A second server started on a running member's directory is refused before it changes
    // anything there (`--auto-tls` writes its certificate below). A directory that does not
    // exist yet is made, and locked, only once the flags have passed their checks.
    let early_data_dir_lock = if config.member.data_dir.join("member").is_dir() {
        Some(member::data_dir_lock::lock(&config.member.data_dir).map_err(ServerError::Member)?)
    } else {
        None
    };
    let tls = client_tls(&config, &milestones)?;
    let auth = AuthHub::new(
        Tokens::from_flag(&config.auth.token, config.auth.token_ttl)
            .map_err(ServerError::AuthToken)?,
        config.auth.bcrypt_cost,
        config.client_tls.client_cert_auth,
    );
    let data_dir_lock = match early_data_dir_lock {
        Some(lock) => lock,
        None => {
            member::data_dir_lock::lock(&config.member.data_dir).map_err(ServerError::Member)?
        }
    };
    // Held until the process exits, not only until `run` returns: `run` returns as soon as one
    // executor ends, while the others may still be writing.
    std::mem::forget(data_dir_lock);
    // The engine opens before any executor starts: every core reads it.
    let db_dir = config.member.data_dir.join("member").join("snap");
    std::fs::create_dir_all(&db_dir).map_err(|source| ServerError::CreateDir {
        path: db_dir.clone(),
        source,
    })?;
    // A raft snapshot received before a restart is swapped in before the engine opens (its
    // log half follows once the WAL is open, in the owner core).
    member::snapshot_installer::finish_pending_swap(&db_dir).map_err(ServerError::Member)?;
    let db_path = db_dir.join("db");
    let engine = Arc::new(
        Engine::open(&db_path).map_err(|source| ServerError::OpenDatabase {
            path: db_path.clone(),
            source,
        })?,
    );
    milestones.info(
        "opened backend db",
        &[("path", &db_path.display().to_string())],
    );
    log_backend_quota(&milestones, &config);

    let cores = config
        .basalt
        .cores
        .map_or_else(available_cores, NonZeroUsize::get);
    let settings = ClientApiSettings {
        listeners,
        metrics_listeners,
        tls,
        kv_limits: kv_service::KvLimits {
            max_txn_ops: config.limits.max_txn_ops as usize,
            quota: backend_quota(&config),
            read_memory: basalt_engine::ResponseMemory::new(
                v3rpc::read_memory::read_memory_limit_bytes(),
            ),
        },
        max_request_bytes: config.limits.max_request_bytes as usize,
        max_concurrent_streams: config.limits.max_concurrent_streams,
        json_gateway: config.observability.grpc_gateway,
        min_ping_interval: basalt_net::ping_policy::min_ping_interval_from_etcd_flag(
            config.keepalive.min_time,
        ),
        keepalive: Some(basalt_net::Keepalive::from_etcd_flags(
            config.keepalive.interval,
            config.keepalive.timeout,
        )),
        info: member_info(&config),
        auth,
        watch_progress_notify_interval: config.experimental.watch_progress_notify_interval,
        watch_limits: crate::server::watch::watch_limits::WatchLimits::new(
            usize::try_from(config.basalt.max_watchers).unwrap_or(usize::MAX),
            usize::try_from(config.basalt.max_watch_streams).unwrap_or(usize::MAX),
            crate::server::watch::watch_limits::queued_bytes_limit(),
        ),
        metrics: Arc::new(ServerMetrics::new(
            metrics_level(&config),
            member_facts(&config, identity),
            engine.clone(),
        )),
        connection_shares: basalt_net::handoff::ConnectionShares::new(cores),
    };

    settings
        .metrics
        .add_watch_counts(settings.watch_limits.clone());
    settings
        .metrics
        .add_connection_shares(settings.connection_shares.clone());
    let placements = placements(cores, config.basalt.pin_cores);
    let (ended, first_end) = mpsc::channel::<Result<(), ServerError>>();
    let mut owner_links = Vec::with_capacity(cores - 1);
    let mut executors = Vec::with_capacity(cores);
    for (core, placement) in placements.iter().enumerate().skip(1) {
        let (calls_sender, calls) = shared_channel::new_bounded(owner_link::CALL_QUEUE_LIMIT);
        let depth = settings.metrics.add_owner_link(core);
        // Capacity 1: a ring pending is as good as many.
        let (doorbell, doorbell_receiver) = shared_channel::new_bounded(1);
        let watchers = WatcherPresence::default();
        let (started, started_receiver) = oneshot::channel();
        let (bound_sender, bound) = oneshot::channel();
        let (stop_orders, stop_follower) = executors::client_stop::link();
        let (to_owner, handed_off) =
            shared_channel::new_bounded(basalt_net::handoff::HANDOFF_QUEUE_LIMIT);
        owner_links.push(OwnerLinks {
            calls,
            depth: depth.clone(),
            doorbell,
            watchers: watchers.clone(),
            started,
            bound,
            stop: stop_orders,
            handed_off,
        });
        let links = ClientCoreLinks {
            calls: calls_sender,
            depth,
            doorbell: doorbell_receiver,
            watchers,
            started: started_receiver,
            bound: bound_sender,
            stop: stop_follower,
            core,
            to_owner,
        };
        let (engine, settings, ended) = (engine.clone(), settings.clone(), ended.clone());
        let name = format!("basalt-core-{core}");
        let handle = LocalExecutorBuilder::new(placement.clone())
            .name(&name)
            .spawn(move || async move {
                let _ = ended.send(client_core::serve(links, engine, settings).await);
            })
            .map_err(|e| ServerError::Executor {
                name: name.clone(),
                reason: e.to_string(),
            })?;
        executors.push((name, handle));
    }
    let owner_ended = ended.clone();
    let stop = stop_signals.watch()?;
    let handle = LocalExecutorBuilder::new(placements[0].clone())
        .name("basalt-raft")
        .spawn(move || async move {
            let result = owner_core::serve(
                config,
                identity,
                initial_members,
                owner_core::Peers {
                    listeners: peer_listeners,
                    joined: joined_peers,
                },
                engine,
                owner_core::OwnerEnds {
                    links: owner_links,
                    stop,
                },
                settings,
            )
            .await;
            let _ = owner_ended.send(result);
        })
        .map_err(|e| ServerError::Executor {
            name: "basalt-raft".to_string(),
            reason: e.to_string(),
        })?;
    executors.push(("basalt-raft".to_string(), handle));
    drop(ended);
    // Servers run until the process is stopped: the first executor to end decides. One that
    // ended only because another had failed (its link was dropped) is not the cause: the
    // other's own error follows, e.g. the owner's "address already in use".
    let mut first = first_end.recv().map_err(|_| ());
    while let Ok(Err(ServerError::PeerExecutorFailed)) = first {
        match first_end.recv_timeout(FAILURE_CAUSE_WAIT) {
            Ok(next) => first = Ok(next),
            // The failed one never said why (it never ran): what this one said stands.
            Err(mpsc::RecvTimeoutError::Timeout) => break,
            Err(mpsc::RecvTimeoutError::Disconnected) => first = Err(()),
        }
    }
    match first {
        Ok(result) => result,
        // Every executor ended without a word: they failed to start (glommio builds the
        // executor, its io_uring rings included, on the new thread). Their own errors say why,
        // e.g. too little locked memory (RLIMIT_MEMLOCK) for the rings.
        Err(_) => Err(executors
            .into_iter()
            .find_map(|(name, handle)| match handle.join() {
                Err(error) => Some(ServerError::Executor {
                    name,
                    reason: explain_executor_error(&error.to_string()),
                }),
                Ok(()) => None,
            })
            .unwrap_or(ServerError::PeerExecutorFailed)),
    }
}

/// glommio's reason, with what to do about the one an operator meets: its io_uring rings need
/// locked memory, and many systems allow a process only 64 KiB of it by default.
fn explain_executor_error(reason: &str) -> String {
    if reason.contains("MemLockLimit") {
        format!(
            "{reason}: the locked-memory limit is too low for its io_uring rings; raise it \
             (`ulimit -l`, systemd's LimitMEMLOCK=, docker's --ulimit memlock=) to at least 512 KiB \
             (glommio's minimum, whatever --cores), or to unlimited"
        )
    } else {
        reason.to_string()
    }
}

/// Cores this process may run on.
fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, NonZeroUsize::get)
}

/// Where each executor runs: left to the kernel, unless `--pin-cores` pins them one per CPU
/// the process may use (while there are enough CPUs). Pinned, every member on a machine puts
/// its raft core on the first CPU of the set: three members on loopback (2 CPUs) piled their
/// busiest threads on one CPU and put 44-46 k/s, against 56-61 k/s left to the kernel
/// (`bench/cpu-per-put.sh`); a lone member was no slower unpinned.
fn placements(cores: usize, pin: bool) -> Vec<Placement> {
    let allowed = allowed_cpus();
    (0..cores)
        .map(|core| match allowed.get(core) {
            Some(&cpu) if pin && cores <= allowed.len() => Placement::Fixed(cpu),
            _ => Placement::Unbound,
        })
        .collect()
}

/// The CPUs in this process's affinity mask (empty when it cannot be read).
fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data; sched_getaffinity writes at most its size into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let size = std::mem::size_of::<libc::cpu_set_t>();
    // SAFETY: `set` is a valid, writable cpu_set_t of `size` bytes; pid 0 is this thread.
    if unsafe { libc::sched_getaffinity(0, size, &mut set) } != 0 {
        return Vec::new();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, the bit count of `set`.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// What MemberList and Status report about this member.
fn member_info(config: &Config) -> MemberInfo {
    MemberInfo {
        name: config.member.name.clone(),
        client_urls: config
            .urls
            .advertise_client
            .iter()
            .map(|u| u.text.clone())
            .collect(),
        version: config.basalt.reported_version.clone(),
    }
}

/// `--metrics`.
fn metrics_level(config: &Config) -> MetricsLevel {
    if config.observability.extensive_metrics {
        MetricsLevel::Extensive
    } else {
        MetricsLevel::Basic
    }
}

/// What `/metrics` reports about this member as constant labels and gauges.
fn member_facts(config: &Config, identity: Identity) -> MemberFacts {
    MemberFacts {
        member_id: identity.member_id,
        server_version: config.basalt.reported_version.clone(),
        cluster_version: executors::client_api::CLUSTER_VERSION.to_string(),
        quota_backend_bytes: backend_quota(config).limit_bytes.unwrap_or(0),
    }
}

/// `--quota-backend-bytes` as the KV service enforces it.
fn backend_quota(config: &Config) -> quota::Quota {
    quota::Quota {
        limit_bytes: match config.limits.quota_backend {
            crate::config::BackendQuota::Bytes(bytes) => Some(bytes),
            crate::config::BackendQuota::Disabled => None,
        },
    }
}

/// etcd logs the quota it enforces at start; operators grep for it.
fn log_backend_quota(milestones: &Milestones, config: &Config) {
    match config.limits.quota_backend {
        crate::config::BackendQuota::Bytes(bytes) => milestones.info(
            "enabled backend quota",
            &[
                ("quota-name", "v3-applier"),
                ("quota-size-bytes", &bytes.to_string()),
            ],
        ),
        crate::config::BackendQuota::Disabled => {
            milestones.info("disabled backend quota", &[("quota-name", "v3-applier")])
        }
    }
}

/// The listeners of `--listen-client-urls` or `--listen-metrics-urls`: each address, and
/// whether it serves TLS.
fn listeners_of(urls: &[crate::config::Url]) -> Result<Vec<ClientListener>, ServerError> {
    let mut listeners = Vec::new();
    for url in urls {
        let refused = |reason: String| ServerError::ClientUrl {
            url: url.text.clone(),
            reason,
        };
        if !matches!(url.scheme, Scheme::Http | Scheme::Https) {
            return Err(refused(
                "not served yet: only http:// and https:// are".to_string(),
            ));
        }
        let resolved = url
            .address
            .to_socket_addrs()
            .map_err(|e| refused(format!("cannot resolve it: {e}")))?
            .next()
            .ok_or_else(|| refused("it resolves to no address".to_string()))?;
        listeners.push(ClientListener {
            address: resolved,
            tls: url.is_tls(),
        });
    }
    Ok(listeners)
}

/// The TLS of the https client URLs, as etcd builds it: `--cipher-suites` and the version
/// bounds are checked whether or not any URL uses TLS (etcd checks them at start); then the
/// given certificate and key (with client certificates verified per `--trusted-ca-file`,
/// `--client-cert-auth`, `--client-crl-file`, `--client-cert-allowed-hostname`), or with
/// `--auto-tls` a self-signed certificate in `<data-dir>/fixtures/client`.
fn client_tls(
    config: &Config,
    milestones: &Milestones,
) -> Result<Option<Arc<ServerTls>>, ServerError> {
    let policy = TlsPolicy::from_etcd_flags(
        &config.tls.cipher_suites,
        &config.tls.min_version,
        config.tls.max_version.as_deref().unwrap_or(""),
    )?;
    let settings = &config.client_tls;
    // https metrics URLs are served with the client certificate, as etcd serves them.
    let tls_urls: Vec<&crate::config::Url> = config
        .urls
        .listen_client
        .iter()
        .chain(&config.urls.listen_metrics)
        .filter(|url| url.is_tls())
        .collect();
    if tls_urls.is_empty() {
        if settings.has_certificate() {
            milestones.warn(
                "scheme is http or unix while key and cert files are present; ignoring key and \
                 cert files",
                &[],
            );
        }
        return Ok(None);
    }
    let tls = match (&settings.cert_file, &settings.key_file) {
        (Some(cert_file), Some(key_file)) => {
            if settings.auto_tls {
                milestones.warn("ignoring client auto TLS since certs given", &[]);
            }
            ServerTls::new(peer_tls::server_settings(
                settings, cert_file, key_file, policy, "client",
            ))?
        }
        _ => {
            // The configuration's check leaves only --auto-tls here.
            assert!(
                settings.auto_tls,
                "an https URL without a certificate or --auto-tls"
            );
            let hosts: Vec<String> = tls_urls.iter().map(|url| url.address.clone()).collect();
            let validity_years =
                u32::try_from(config.tls.self_signed_cert_validity_years).unwrap_or(u32::MAX);
            ServerTls::self_signed(
                &config.member.data_dir.join("fixtures").join("client"),
                &hosts,
                validity_years,
                policy,
            )?
        }
    };
    Ok(Some(Arc::new(tls)))
}
