//! The one table of settings: every etcd 3.5 server flag (plus basalt's own few), its type,
//! default, help and how basalt treats it. The command line, the environment, the YAML file
//! and `--help` are all read from this table, so they cannot drift apart.

/// How a setting's text is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Free text.
    Text,
    /// Go boolean; a bare `--flag` means true.
    Bool,
    /// Go unsigned integer.
    Uint,
    /// Go signed integer.
    Int,
    /// Go duration ("100ms", "1h").
    Duration,
    /// Comma-separated URL list.
    Urls,
    /// Comma-separated list of words.
    List,
    /// One of a fixed set of words.
    Choice(&'static [&'static str]),
}

/// What basalt does with a setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Support {
    /// Read into [`super::Config`] and acted on.
    Honored,
    /// Accepted and type-checked for compatibility; a non-default value draws a warning that it
    /// has no effect in basalt, with this reason. Only for settings whose absence can neither
    /// lose data nor open the member to anyone (tuning knobs, features of Go's runtime).
    NoEffect(&'static str),
    /// Accepted only at its default; any other value is refused with this reason. For settings
    /// that would leave the member less safe or less reachable than the operator asked, were
    /// they accepted and not acted on (TLS, retention, listeners basalt does not open yet).
    DefaultOnly(&'static str),
    /// In etcd's own list of long-removed flags that it accepts and ignores.
    Ignored,
}

/// The section of `--help` a flag is listed under (etcd's sections).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    /// This member's identity, storage and limits.
    Member,
    /// Cluster formation and compaction.
    Clustering,
    /// TLS.
    Security,
    /// Authentication tokens.
    Auth,
    /// Profiling, metrics, the gateway.
    Monitoring,
    /// Logging.
    Logging,
    /// etcd's v2 proxy.
    V2Proxy,
    /// `--experimental-*`.
    Experimental,
    /// Flags that can lose data, and etcd's ignored relics.
    Unsafe,
    /// basalt's own flags (`BASALT_*` variables).
    Basalt,
}

/// One setting.
#[derive(Debug)]
pub struct FlagSpec {
    /// Flag name without dashes; also the YAML key and, upper-cased, the env var suffix.
    pub name: &'static str,
    /// Type of the value.
    pub kind: Kind,
    /// Default as text, in the same syntax the flag takes.
    pub default: &'static str,
    /// What basalt does with it.
    pub support: Support,
    /// `--help` section.
    pub group: Group,
    /// One line of help.
    pub help: &'static str,
}

impl FlagSpec {
    /// The environment variable that sets this flag: `ETCD_` + upper-case name with `-` → `_`
    /// for etcd's flags (etcd's `flags.FlagToEnv`), `BASALT_` for basalt's own.
    pub fn env_var(&self) -> String {
        let prefix = if self.group == Group::Basalt {
            BASALT_ENV_PREFIX
        } else {
            ETCD_ENV_PREFIX
        };
        format!(
            "{prefix}_{}",
            self.name.replace('-', "_").to_ascii_uppercase()
        )
    }
}

/// Prefix of the environment variables etcd reads.
pub const ETCD_ENV_PREFIX: &str = "ETCD";
/// Prefix of the environment variables for basalt's own flags.
pub const BASALT_ENV_PREFIX: &str = "BASALT";

/// `--config-file`: read before everything else, because it decides whether flags and the
/// environment are read at all.
pub const CONFIG_FILE: &str = "config-file";

/// Finds a setting by flag name.
pub fn lookup(name: &str) -> Option<&'static FlagSpec> {
    FLAGS.iter().find(|spec| spec.name == name)
}

const CLUSTER_STATES: &[&str] = &["new", "existing"];
const COMPACTION_MODES: &[&str] = &["periodic", "revision"];
const LOG_LEVELS: &[&str] = &["debug", "info", "warn", "error", "panic", "fatal"];
const LOGGERS: &[&str] = &["zap", "capnslog"];
const FALLBACKS: &[&str] = &["exit", "proxy"];
const PROXY_MODES: &[&str] = &["off", "readonly", "on"];
const V2_DEPRECATION: &[&str] = &["not-yet", "write-only", "write-only-drop-data", "gone"];

const NO_V2: &str = "basalt serves only the v3 API";
const STATIC_ONLY: &str =
    "basalt bootstraps only from --initial-cluster; discovery services are not supported";
const ALWAYS_FSYNC: &str = "basalt never acknowledges a write before it is on disk";
const SELF_CLIENT: &str = "etcd presents it when it calls itself (its JSON gateway); basalt \
     never does";
const NO_BROWSER_POLICY: &str = "basalt does not police HTTP Host or Origin headers yet, so it \
     cannot narrow them as asked";
const NO_HTTP_ONLY_LISTENER: &str =
    "basalt serves HTTP/1.1 and gRPC on --listen-client-urls; list these URLs there instead";
const NO_SNAPSHOT_FILES: &str =
    "basalt writes no raft snapshot files: its database is the snapshot, so there is nothing to retain";
const WAL_RETENTION: &str = "basalt removes WAL segments as soon as its database has \
     checkpointed them, so it cannot retain the number asked";
const PEER_KNOB: &str =
    "it tunes a part of etcd's clustering that basalt does not make adjustable (yet)";
const PEER_HASHES: &str =
    "it compares this member's hashes with its peers', and a one-member basalt has none (as in etcd)";
const LEASE_CHECKPOINTS: &str = "basalt always checkpoints remaining lease TTLs and keeps them \
     across restarts";
const NO_SLOW_REQUEST_LOG: &str = "basalt does not log slow requests yet";
const NO_RUNTIME_KNOB: &str = "it tunes a part of etcd basalt does not have";
macro_rules! flag {
    ($name:literal, $kind:expr, $default:literal, $support:expr, $group:ident, $help:literal) => {
        FlagSpec {
            name: $name,
            kind: $kind,
            default: $default,
            support: $support,
            group: Group::$group,
            help: $help,
        }
    };
}

use Kind::*;
use Support::*;

/// Every setting, in `--help` order.
pub const FLAGS: &[FlagSpec] = &[
    // Member.
    flag!("name", Text, "default", Honored, Member, "Human-readable name for this member."),
    flag!("data-dir", Text, "", Honored, Member, "Path to the data directory (default '${name}.basalt')."),
    flag!("wal-dir", Text, "", Honored, Member, "Path to the dedicated wal directory."),
    flag!("snapshot-count", Uint, "100000", Honored, Member, "Number of committed transactions to trigger a snapshot to disk."),
    flag!("heartbeat-interval", Uint, "100", Honored, Member, "Time (in milliseconds) of a heartbeat interval."),
    flag!("election-timeout", Uint, "1000", Honored, Member, "Time (in milliseconds) for an election to timeout."),
    flag!("initial-election-tick-advance", Bool, "true", NoEffect(PEER_KNOB), Member, "Whether to fast-forward initial election ticks on boot for faster election."),
    flag!("listen-peer-urls", Urls, "http://127.0.0.1:2380", Honored, Member, "List of URLs to listen on for peer traffic."),
    flag!("listen-client-urls", Urls, "http://127.0.0.1:2379", Honored, Member, "List of URLs to listen on for client traffic."),
    flag!("listen-client-http-urls", Urls, "", DefaultOnly(NO_HTTP_ONLY_LISTENER), Member, "List of URLs to listen on for http only client traffic (basalt serves HTTP on the client URLs)."),
    flag!("max-snapshots", Uint, "5", DefaultOnly(NO_SNAPSHOT_FILES), Member, "Maximum number of snapshot files to retain (0 is unlimited)."),
    flag!("max-wals", Uint, "5", DefaultOnly(WAL_RETENTION), Member, "Maximum number of wal files to retain (0 is unlimited)."),
    flag!("quota-backend-bytes", Int, "0", Honored, Member, "Raise alarms when backend size exceeds the given quota (0 defaults to 2 GiB, negative disables the quota)."),
    flag!("backend-bbolt-freelist-type", Choice(&["map", "array"]), "map", NoEffect(NO_RUNTIME_KNOB), Member, "BoltDB freelist type (basalt has no BoltDB)."),
    flag!("backend-batch-interval", Duration, "0", NoEffect(NO_RUNTIME_KNOB), Member, "Maximum time before committing the backend transaction."),
    flag!("backend-batch-limit", Int, "0", NoEffect(NO_RUNTIME_KNOB), Member, "Maximum operations before committing the backend transaction."),
    flag!("max-txn-ops", Uint, "128", Honored, Member, "Maximum number of operations permitted in a transaction."),
    flag!("max-request-bytes", Uint, "1572864", Honored, Member, "Maximum client request size in bytes the server will accept."),
    flag!("max-concurrent-streams", Uint, "4294967295", Honored, Member, "Maximum concurrent streams that each client can open at a time."),
    flag!("grpc-keepalive-min-time", Duration, "5s", Honored, Member, "Minimum duration interval that a client should wait before pinging server."),
    flag!("grpc-keepalive-interval", Duration, "2h", Honored, Member, "Frequency duration of server-to-client ping to check if a connection is alive (0 to disable)."),
    flag!("grpc-keepalive-timeout", Duration, "20s", Honored, Member, "Additional duration of wait before closing a non-responsive connection (0 to disable)."),
    flag!("socket-reuse-port", Bool, "false", NoEffect("basalt always uses SO_REUSEPORT, one listener per core"), Member, "Enable SO_REUSEPORT on listeners (basalt always uses it, one listener per core)."),
    flag!("socket-reuse-address", Bool, "false", NoEffect(NO_RUNTIME_KNOB), Member, "Enable SO_REUSEADDR on listeners."),
    flag!("raft-read-timeout", Duration, "5s", NoEffect(PEER_KNOB), Member, "Read timeout set on each rafthttp connection."),
    flag!("raft-write-timeout", Duration, "5s", NoEffect(PEER_KNOB), Member, "Write timeout set on each rafthttp connection."),
    // Clustering.
    flag!("initial-advertise-peer-urls", Urls, "http://localhost:2380", Honored, Clustering, "List of this member's peer URLs to advertise to the rest of the cluster."),
    flag!("initial-cluster", Text, "default=http://localhost:2380", Honored, Clustering, "Initial cluster configuration for bootstrapping."),
    flag!("initial-cluster-state", Choice(CLUSTER_STATES), "new", Honored, Clustering, "Initial cluster state ('new' or 'existing')."),
    flag!("initial-cluster-token", Text, "etcd-cluster", Honored, Clustering, "Initial cluster token for the etcd cluster during bootstrap."),
    flag!("advertise-client-urls", Urls, "http://localhost:2379", Honored, Clustering, "List of this member's client URLs to advertise to the public."),
    flag!("discovery", Text, "", DefaultOnly(STATIC_ONLY), Clustering, "Discovery URL used to bootstrap the cluster."),
    flag!("discovery-fallback", Choice(FALLBACKS), "proxy", NoEffect(STATIC_ONLY), Clustering, "Expected behavior ('exit' or 'proxy') when discovery services fails."),
    flag!("discovery-proxy", Text, "", DefaultOnly(STATIC_ONLY), Clustering, "HTTP proxy to use for traffic to discovery service."),
    flag!("discovery-srv", Text, "", DefaultOnly(STATIC_ONLY), Clustering, "DNS srv domain used to bootstrap the cluster."),
    flag!("discovery-srv-name", Text, "", DefaultOnly(STATIC_ONLY), Clustering, "Suffix to the dns srv name queried when bootstrapping."),
    flag!("strict-reconfig-check", Bool, "true", Honored, Clustering, "Reject reconfiguration requests that would cause quorum loss."),
    flag!("pre-vote", Bool, "true", Honored, Clustering, "Enable to run an additional Raft election phase."),
    flag!("auto-compaction-retention", Text, "0", Honored, Clustering, "Auto compaction retention length. 0 means disable auto compaction."),
    flag!("auto-compaction-mode", Choice(COMPACTION_MODES), "periodic", Honored, Clustering, "Interpret 'auto-compaction-retention' one of: periodic|revision. 'periodic' for duration based retention, defaulting to hours if no time unit is provided (e.g. '5m'). 'revision' for revision number based retention."),
    flag!("enable-v2", Bool, "false", DefaultOnly(NO_V2), Clustering, "Accept etcd V2 client requests (basalt: must be false)."),
    flag!("v2-deprecation", Choice(V2_DEPRECATION), "not-yet", NoEffect(NO_V2), Clustering, "Phase of v2store deprecation."),
    // Security.
    flag!("cert-file", Text, "", Honored, Security, "Path to the client server TLS cert file."),
    flag!("key-file", Text, "", Honored, Security, "Path to the client server TLS key file."),
    flag!("client-cert-file", Text, "", NoEffect(SELF_CLIENT), Security, "Path to an explicit peer client TLS cert file otherwise cert file will be used when client auth is required."),
    flag!("client-key-file", Text, "", NoEffect(SELF_CLIENT), Security, "Path to an explicit peer client TLS key file otherwise key file will be used when client auth is required."),
    flag!("client-cert-auth", Bool, "false", Honored, Security, "Enable client cert authentication."),
    flag!("client-crl-file", Text, "", Honored, Security, "Path to the client certificate revocation list file."),
    flag!("client-cert-allowed-hostname", Text, "", Honored, Security, "Allowed TLS hostname for client cert authentication."),
    flag!("trusted-ca-file", Text, "", Honored, Security, "Path to the client server TLS trusted CA cert file."),
    flag!("auto-tls", Bool, "false", Honored, Security, "Client TLS using generated certificates."),
    flag!("peer-cert-file", Text, "", Honored, Security, "Path to the peer server TLS cert file."),
    flag!("peer-key-file", Text, "", Honored, Security, "Path to the peer server TLS key file."),
    flag!("peer-client-cert-file", Text, "", Honored, Security, "Path to an explicit peer client TLS cert file otherwise peer cert file will be used when client auth is required."),
    flag!("peer-client-key-file", Text, "", Honored, Security, "Path to an explicit peer client TLS key file otherwise peer key file will be used when client auth is required."),
    flag!("peer-client-cert-auth", Bool, "false", Honored, Security, "Enable peer client cert authentication."),
    flag!("peer-trusted-ca-file", Text, "", Honored, Security, "Path to the peer server TLS trusted CA file."),
    flag!("peer-cert-allowed-cn", Text, "", Honored, Security, "Required CN for client certs connecting to the peer endpoint."),
    flag!("peer-cert-allowed-hostname", Text, "", Honored, Security, "Allowed TLS hostname for inter peer authentication."),
    flag!("peer-auto-tls", Bool, "false", Honored, Security, "Peer TLS using self-generated certificates if --peer-key-file and --peer-cert-file are not provided."),
    flag!("self-signed-cert-validity", Uint, "1", Honored, Security, "The validity period of the client and peer certificates that are automatically generated by etcd when you specify ClientAutoTLS and PeerAutoTLS, the unit is year, and the default is 1."),
    flag!("peer-crl-file", Text, "", Honored, Security, "Path to the peer certificate revocation list file."),
    flag!("cipher-suites", List, "", Honored, Security, "Comma-separated list of supported TLS cipher suites between client/server and peers (empty will be auto-populated)."),
    flag!("tls-min-version", Choice(&["TLS1.2", "TLS1.3"]), "TLS1.2", Honored, Security, "Minimum TLS version supported by etcd."),
    flag!("tls-max-version", Choice(&["", "TLS1.2", "TLS1.3"]), "", Honored, Security, "Maximum TLS version supported by etcd (empty will be auto-populated)."),
    flag!("cors", List, "*", DefaultOnly(NO_BROWSER_POLICY), Security, "Comma-separated white list of origins for CORS, or cross-origin resource sharing, (empty or * means allow all)."),
    flag!("host-whitelist", List, "*", DefaultOnly(NO_BROWSER_POLICY), Security, "Acceptable hostnames from HTTP client requests, if server is not secure (empty or * means allow all)."),
    // Auth.
    flag!("auth-token", Text, "simple", Honored, Auth, "Specify a v3 authentication token type and its options ('simple' or 'jwt')."),
    flag!("bcrypt-cost", Uint, "10", Honored, Auth, "Specify the cost / strength of the bcrypt algorithm for hashing auth passwords. Valid values are between 4 and 31."),
    flag!("auth-token-ttl", Uint, "300", Honored, Auth, "Time (in seconds) of the auth-token-ttl."),
    // Profiling and monitoring.
    flag!("enable-pprof", Bool, "false", NoEffect("profiling endpoints are Go's; basalt has none"), Monitoring, "Enable runtime profiling data via HTTP server (Go-specific; basalt has none)."),
    flag!("metrics", Choice(&["basic", "extensive"]), "basic", Honored, Monitoring, "Set level of detail for exported metrics, specify 'extensive' to include server side grpc histogram metrics."),
    flag!("listen-metrics-urls", Urls, "", Honored, Monitoring, "List of URLs to listen on for the metrics and health endpoints."),
    flag!("enable-grpc-gateway", Bool, "true", Honored, Monitoring, "Enable GRPC gateway."),
    // Logging.
    flag!("logger", Choice(LOGGERS), "zap", Honored, Logging, "Currently only supports 'zap' for structured logging ('capnslog' gives plain text lines)."),
    flag!("log-outputs", List, "default", Honored, Logging, "Specify 'stdout' or 'stderr' to skip journald logging even when running under systemd, or list of comma separated output targets."),
    flag!("log-level", Choice(LOG_LEVELS), "info", Honored, Logging, "Configures log level. Only supports debug, info, warn, error, panic, or fatal."),
    flag!("enable-log-rotation", Bool, "false", NoEffect("basalt leaves log rotation to the system (logrotate, journald)"), Logging, "Enable log rotation of a single log-outputs file target."),
    flag!("log-rotation-config-json", Text, "{\"maxsize\": 100, \"maxage\": 0, \"maxbackups\": 0, \"localtime\": false, \"compress\": false}", NoEffect("basalt leaves log rotation to the system (logrotate, journald)"), Logging, "Configures log rotation if enabled with a JSON logger config."),
    // v2 proxy.
    flag!("proxy", Choice(PROXY_MODES), "off", DefaultOnly(NO_V2), V2Proxy, "Proxy mode setting ('off', 'readonly' or 'on')."),
    flag!("proxy-failure-wait", Uint, "5000", NoEffect(NO_V2), V2Proxy, "Time (in milliseconds) an endpoint will be held in a failed state."),
    flag!("proxy-refresh-interval", Uint, "30000", NoEffect(NO_V2), V2Proxy, "Time (in milliseconds) of the endpoints refresh interval."),
    flag!("proxy-dial-timeout", Uint, "1000", NoEffect(NO_V2), V2Proxy, "Time (in milliseconds) for a dial to timeout."),
    flag!("proxy-write-timeout", Uint, "5000", NoEffect(NO_V2), V2Proxy, "Time (in milliseconds) for a write to timeout."),
    flag!("proxy-read-timeout", Uint, "0", NoEffect(NO_V2), V2Proxy, "Time (in milliseconds) for a read to timeout."),
    // Experimental (the ones Kubernetes installers pass are honored).
    flag!("experimental-initial-corrupt-check", Bool, "false", NoEffect(PEER_HASHES), Experimental, "Enable to check data corruption before serving any client/peer traffic."),
    flag!("experimental-corrupt-check-time", Duration, "0s", NoEffect(PEER_HASHES), Experimental, "Duration of time between cluster corruption check passes."),
    flag!("experimental-compact-hash-check-enabled", Bool, "false", NoEffect(PEER_HASHES), Experimental, "Enable leader to periodically check followers compaction hashes."),
    flag!("experimental-compact-hash-check-time", Duration, "1m", NoEffect(PEER_HASHES), Experimental, "Duration of time between leader checks followers compaction hashes."),
    flag!("experimental-enable-v2v3", Text, "", DefaultOnly(NO_V2), Experimental, "Serve v2 requests through the v3 backend under a given prefix."),
    flag!("experimental-enable-lease-checkpoint", Bool, "false", NoEffect(LEASE_CHECKPOINTS), Experimental, "Enable leader to send regular checkpoints to other members to prevent reset of remaining TTL on leader change."),
    flag!("experimental-enable-lease-checkpoint-persist", Bool, "false", NoEffect(LEASE_CHECKPOINTS), Experimental, "Enable persisting remainingTTL to prevent indefinite auto-renewal of long lived leases."),
    flag!("experimental-compaction-batch-limit", Int, "1000", Honored, Experimental, "Sets the maximum revisions deleted in each compaction batch."),
    flag!("experimental-compaction-sleep-interval", Duration, "10ms", Honored, Experimental, "Sets the sleep interval between each compaction batch."),
    flag!("experimental-peer-skip-client-san-verification", Bool, "false", Honored, Experimental, "Skip verification of SAN field in client certificate for peer connections."),
    flag!("experimental-watch-progress-notify-interval", Duration, "10m", Honored, Experimental, "Duration of periodic watch progress notifications."),
    flag!("experimental-warning-apply-duration", Duration, "100ms", NoEffect(NO_SLOW_REQUEST_LOG), Experimental, "Time duration after which a warning is generated if request takes more time."),
    flag!("experimental-warning-unary-request-duration", Duration, "300ms", NoEffect(NO_SLOW_REQUEST_LOG), Experimental, "Time duration after which a warning is generated if a unary request takes more time."),
    flag!("experimental-bootstrap-defrag-threshold-megabytes", Uint, "0", NoEffect(NO_RUNTIME_KNOB), Experimental, "Enable the defrag during etcd server bootstrap on condition that it will free at least the provided threshold of disk space."),
    flag!("experimental-max-learners", Int, "1", NoEffect(PEER_KNOB), Experimental, "Sets the maximum number of learners that can be available in the cluster membership."),
    flag!("experimental-snapshot-catchup-entries", Uint, "5000", NoEffect(PEER_KNOB), Experimental, "Number of entries for a slow follower to catch up after compacting the raft storage entries."),
    flag!("experimental-downgrade-check-time", Duration, "5s", NoEffect(PEER_KNOB), Experimental, "Duration of time between two downgrade status checks."),
    flag!("experimental-memory-mlock", Bool, "false", NoEffect(NO_RUNTIME_KNOB), Experimental, "Enable to enforce etcd pages (in particular bbolt) to stay in RAM."),
    flag!("experimental-txn-mode-write-with-shared-buffer", Bool, "true", NoEffect(NO_RUNTIME_KNOB), Experimental, "Enable the write transaction to use a shared buffer in its readonly check operations."),
    flag!("experimental-stop-grpc-service-on-defrag", Bool, "false", NoEffect("basalt serves clients during a defragment"), Experimental, "Enable etcd gRPC service to stop serving client requests on defragmentation."),
    flag!("experimental-wait-cluster-ready-timeout", Duration, "5s", NoEffect(PEER_KNOB), Experimental, "Maximum duration to wait for the cluster to be ready."),
    flag!("experimental-enable-distributed-tracing", Bool, "false", NoEffect("basalt exports no traces"), Experimental, "Enable experimental distributed tracing using OpenTelemetry Tracing."),
    flag!("experimental-distributed-tracing-address", Text, "localhost:4317", NoEffect("basalt exports no traces"), Experimental, "Address for distributed tracing used for OpenTelemetry Tracing."),
    flag!("experimental-distributed-tracing-service-name", Text, "etcd", NoEffect("basalt exports no traces"), Experimental, "Configures service name for distributed tracing."),
    flag!("experimental-distributed-tracing-instance-id", Text, "", NoEffect("basalt exports no traces"), Experimental, "Configures service instance ID for distributed tracing."),
    flag!("experimental-distributed-tracing-sampling-rate", Int, "0", NoEffect("basalt exports no traces"), Experimental, "Number of samples to collect per million spans for OpenTelemetry Tracing."),
    // Unsafe.
    flag!("force-new-cluster", Bool, "false", DefaultOnly("basalt cannot yet rewrite a member's membership; restore from a snapshot instead"), Unsafe, "Force to create a new one-member cluster."),
    flag!("unsafe-no-fsync", Bool, "false", DefaultOnly(ALWAYS_FSYNC), Unsafe, "Disables fsync, unsafe, will cause data loss."),
    // etcd's own list of flags from etcd 0.4/2.x that it still accepts and ignores.
    flag!("cluster-active-size", Text, "", Ignored, Unsafe, ""),
    flag!("cluster-remove-delay", Text, "", Ignored, Unsafe, ""),
    flag!("cluster-sync-interval", Text, "", Ignored, Unsafe, ""),
    flag!("config", Text, "", Ignored, Unsafe, ""),
    flag!("force", Text, "", Ignored, Unsafe, ""),
    flag!("max-result-buffer", Text, "", Ignored, Unsafe, ""),
    flag!("max-retry-attempts", Text, "", Ignored, Unsafe, ""),
    flag!("peer-heartbeat-interval", Text, "", Ignored, Unsafe, ""),
    flag!("peer-election-timeout", Text, "", Ignored, Unsafe, ""),
    flag!("retry-interval", Text, "", Ignored, Unsafe, ""),
    flag!("snapshot", Text, "", Ignored, Unsafe, ""),
    flag!("v", Text, "", Ignored, Unsafe, ""),
    flag!("vv", Text, "", Ignored, Unsafe, ""),
    // basalt's own (environment: BASALT_*).
    flag!("cores", Uint, "0", Honored, Basalt, "Executors (one per core) serving clients; 0 means one per available core."),
    flag!("pin-cores", Bool, "false", Honored, Basalt, "Pin each executor to its own CPU of the process's CPU set (a host dedicated to one member); by default the kernel places them, which several members or other busy processes on the same CPUs need."),
    // Defaults: a million watchers is about 300 MB of watcher state at a few hundred bytes
    // each, far above what a Kubernetes control plane holds; each stream can queue up to its
    // byte limit of responses for a slow client, so streams are bounded as well as watchers.
    flag!("max-watchers", Uint, "1000000", Honored, Basalt, "Watchers the member holds at most, over every client; a create past it is canceled with 'etcdserver: too many watchers on this member'."),
    flag!("max-watch-streams", Uint, "100000", Honored, Basalt, "Watch streams the member holds at most, over every client; a Watch call past it fails with ResourceExhausted."),
    flag!("reported-version", Text, "3.5.17", Honored, Basalt, "etcd server version basalt reports (Status, /version, --version); clients gate features on it."),
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: the table is coherent, so every consumer (flags, env, YAML, help) can trust it.
    #[test]
    fn table_has_unique_names_and_env_vars_follow_etcd() {
        let mut names: Vec<&str> = FLAGS.iter().map(|spec| spec.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len(), "duplicate flag name");
        assert_eq!(lookup("data-dir").unwrap().env_var(), "ETCD_DATA_DIR");
        assert_eq!(
            lookup("listen-client-urls").unwrap().env_var(),
            "ETCD_LISTEN_CLIENT_URLS"
        );
        assert_eq!(lookup("cores").unwrap().env_var(), "BASALT_CORES");
        assert!(
            lookup(CONFIG_FILE).is_none(),
            "config-file is handled before the table"
        );
    }
}
