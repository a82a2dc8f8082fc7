//! The configuration layer read from command lines and environments as etcd 3.5 reads them:
//! defaults, the flags Kubernetes passes, environment variables, precedence, and every
//! validation error. Each test calls `config::load` with explicit arguments and environment,
//! so nothing here touches the process environment.

use std::path::{Path, PathBuf};
use std::time::Duration;

use basalt::config::{
    self, AutoCompaction, BackendQuota, ClusterState, Config, ConfigError, Invocation, LogLevel,
    Logger, Source,
};

fn load(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    crate::support::load_config(args, env)
}

fn flags(args: &[&str]) -> Config {
    load(args, &[]).unwrap_or_else(|error| panic!("{args:?} refused: {error}"))
}

fn refused(args: &[&str]) -> ConfigError {
    match load(args, &[]) {
        Ok(config) => panic!("{args:?} accepted: {config}"),
        Err(error) => error,
    }
}

fn urls(list: &[config::Url]) -> Vec<&str> {
    list.iter().map(|url| url.text.as_str()).collect()
}

/// Goal: with no flags basalt is etcd's default member, serving 127.0.0.1:2379 with its data
/// in ./default.basalt, and it carries etcd's default member and cluster IDs.
#[test]
fn defaults_are_etcds_with_basalts_data_dir() {
    let config = Config::defaults();
    assert_eq!(config.member.name, "default");
    assert_eq!(config.member.data_dir, PathBuf::from("default.basalt"));
    assert_eq!(config.member.wal_dir, None);
    assert_eq!(config.member.snapshot_count, 100_000);
    assert_eq!(
        (
            config.member.max_snapshot_files,
            config.member.max_wal_files
        ),
        (5, 5)
    );
    assert_eq!(urls(&config.urls.listen_client), ["http://127.0.0.1:2379"]);
    assert_eq!(
        urls(&config.urls.advertise_client),
        ["http://localhost:2379"]
    );
    assert_eq!(urls(&config.urls.listen_peer), ["http://127.0.0.1:2380"]);
    assert_eq!(urls(&config.urls.advertise_peer), ["http://localhost:2380"]);
    assert!(config.urls.listen_metrics.is_empty());
    assert_eq!(
        config.cluster.initial_cluster.to_string(),
        "default=http://localhost:2380"
    );
    assert_eq!(config.cluster.state, ClusterState::New);
    assert_eq!(config.cluster.token, "etcd-cluster");
    assert_eq!(config.raft.heartbeat_interval, Duration::from_millis(100));
    assert_eq!(config.raft.election_timeout, Duration::from_millis(1000));
    assert_eq!(
        config.limits.quota_backend,
        BackendQuota::Bytes(2 * 1024 * 1024 * 1024)
    );
    assert_eq!(config.limits.max_request_bytes, 1_572_864);
    assert_eq!(config.limits.max_txn_ops, 128);
    assert_eq!(config.limits.max_concurrent_streams, u32::MAX);
    assert_eq!(config.compaction.auto, AutoCompaction::Disabled);
    assert_eq!(config.keepalive.min_time, Duration::from_secs(5));
    assert_eq!(config.keepalive.interval, Duration::from_secs(7200));
    assert_eq!(config.keepalive.timeout, Duration::from_secs(20));
    assert_eq!(
        (config.log.logger, config.log.level),
        (Logger::Zap, LogLevel::Info)
    );
    assert_eq!(
        config.experimental.watch_progress_notify_interval,
        Duration::from_secs(600)
    );
    assert_eq!(config.basalt.cores, None);
    assert_eq!(config.basalt.reported_version, "3.5.17");
    assert_eq!(config.source, Source::FlagsAndEnv);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);

    let bootstrap = config.bootstrap().unwrap();
    assert_eq!(bootstrap.local_member_id.to_string(), "8e9e05c52164694d");
    assert_eq!(bootstrap.cluster_id.to_string(), "cdf818194e3a8c32");
}

/// Goal: `--name x` alone renames the default cluster entry and the data dir, as in etcd.
#[test]
fn a_lone_name_renames_the_default_member() {
    let config = flags(&["--name", "x"]);
    assert_eq!(config.member.data_dir, PathBuf::from("x.basalt"));
    assert_eq!(
        config.cluster.initial_cluster.to_string(),
        "x=http://localhost:2380"
    );
    assert!(config.bootstrap().is_ok());

    // etcd 3.4.23 started with `--name x --initial-cluster-token t` (and no cluster flags)
    // logs "starting member e6c5799f611578d1 in cluster a6884dc789e7efcf".
    let bootstrap = flags(&["-name", "x", "-initial-cluster-token", "t"])
        .bootstrap()
        .unwrap();
    assert_eq!(bootstrap.local_member_id.to_string(), "e6c5799f611578d1");
    assert_eq!(bootstrap.cluster_id.to_string(), "a6884dc789e7efcf");
}

/// Goal: the static pod manifest kubeadm writes for etcd 3.5 reads into the TLS it asks for
/// (client TLS honoured; the peer TLS a one-member basalt does not listen with, named in
/// warnings), with the metrics listener where kubeadm's liveness probe polls /health.
#[test]
fn kubeadm_manifest_reads_its_tls_and_its_metrics_listener() {
    let manifest = [
        "--advertise-client-urls=https://10.0.0.5:2379",
        "--cert-file=/etc/kubernetes/pki/etcd/server.crt",
        "--client-cert-auth=true",
        "--data-dir=/var/lib/etcd",
        "--experimental-initial-corrupt-check=true",
        "--experimental-watch-progress-notify-interval=5s",
        "--initial-advertise-peer-urls=https://10.0.0.5:2380",
        "--initial-cluster=cp1=https://10.0.0.5:2380",
        "--key-file=/etc/kubernetes/pki/etcd/server.key",
        "--listen-client-urls=https://127.0.0.1:2379,https://10.0.0.5:2379",
        "--listen-metrics-urls=http://127.0.0.1:2381",
        "--listen-peer-urls=https://10.0.0.5:2380",
        "--name=cp1",
        "--peer-cert-file=/etc/kubernetes/pki/etcd/peer.crt",
        "--peer-client-cert-auth=true",
        "--peer-key-file=/etc/kubernetes/pki/etcd/peer.key",
        "--peer-trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
        "--snapshot-count=10000",
        "--trusted-ca-file=/etc/kubernetes/pki/etcd/ca.crt",
    ];
    let config = flags(&manifest);
    assert_eq!(urls(&config.urls.listen_metrics), ["http://127.0.0.1:2381"]);
    assert_eq!(config.member.data_dir, PathBuf::from("/var/lib/etcd"));
    assert_eq!(config.member.snapshot_count, 10_000);
    assert_eq!(
        urls(&config.urls.listen_client),
        ["https://10.0.0.5:2379", "https://127.0.0.1:2379"]
    );
    assert!(config.client_tls.client_cert_auth && config.client_tls.has_certificate());
    assert_eq!(
        config.client_tls.trusted_ca_file,
        Some(PathBuf::from("/etc/kubernetes/pki/etcd/ca.crt"))
    );
    let warned: Vec<&str> = config
        .warnings
        .iter()
        .map(|warning| warning.split(" set to ").next().unwrap())
        .collect();
    assert_eq!(
        warned,
        ["flag --experimental-initial-corrupt-check"],
        "{:?}",
        config.warnings
    );
    assert!(config.bootstrap().is_ok());

    // An https URL needs its certificate (or --auto-tls), in etcd's words.
    let no_key: Vec<&str> = manifest
        .iter()
        .copied()
        .filter(|flag| !flag.starts_with("--cert-file") && !flag.starts_with("--key-file"))
        .collect();
    assert_eq!(
        refused(&no_key).to_string(),
        "TLS key/cert (--cert-file, --key-file) must be provided for client url \
         https://10.0.0.5:2379 with HTTPS scheme"
    );
}

/// Goal: every setting can come from its ETCD_* variable, with the same parsing as flags.
#[test]
fn environment_variables_set_flags() {
    let config = load(
        &[],
        &[
            ("ETCD_NAME", "env-member"),
            ("ETCD_DATA_DIR", "/srv/etcd"),
            ("ETCD_LISTEN_CLIENT_URLS", "http://10.1.1.1:2379"),
            ("ETCD_ADVERTISE_CLIENT_URLS", "http://10.1.1.1:2379"),
            ("ETCD_HEARTBEAT_INTERVAL", "200"),
            ("ETCD_ELECTION_TIMEOUT", "2000"),
            ("ETCD_AUTO_COMPACTION_RETENTION", "1"),
            ("ETCD_MAX_TXN_OPS", "256"),
            ("BASALT_CORES", "2"),
        ],
    )
    .unwrap();
    assert_eq!(config.member.name, "env-member");
    assert_eq!(config.member.data_dir, PathBuf::from("/srv/etcd"));
    assert_eq!(urls(&config.urls.listen_client), ["http://10.1.1.1:2379"]);
    assert_eq!(config.raft.heartbeat_interval, Duration::from_millis(200));
    assert_eq!(
        config.compaction.auto,
        AutoCompaction::Periodic(Duration::from_secs(3600))
    );
    assert_eq!(config.limits.max_txn_ops, 256);
    assert_eq!(config.basalt.cores.map(|cores| cores.get()), Some(2));
}

/// Goal: etcd's precedence without a config file: flag or variable over the default; the
/// same setting from both is refused; unknown ETCD_* variables are reported.
#[test]
fn flags_and_variables_combine_but_never_overlap() {
    let config = load(
        &["--name", "flag-name"],
        &[("ETCD_DATA_DIR", "/from/env"), ("ETCD_SNAPSHOTCOUNT", "5")],
    )
    .unwrap();
    assert_eq!(config.member.name, "flag-name");
    assert_eq!(config.member.data_dir, PathBuf::from("/from/env"));
    assert_eq!(
        config.warnings,
        ["unrecognized environment variable ETCD_SNAPSHOTCOUNT=5"]
    );

    let error = load(&["--data-dir", "/a"], &[("ETCD_DATA_DIR", "/b")]).unwrap_err();
    assert!(matches!(error, ConfigError::EnvShadowedByFlag(ref var) if var == "ETCD_DATA_DIR"));
    assert_eq!(error.exit_code(), 1);
}

/// Goal: a bad value in a variable is refused with the variable named (etcd: exit 1).
#[test]
fn a_bad_variable_value_names_the_variable() {
    let error = load(&[], &[("ETCD_HEARTBEAT_INTERVAL", "fast")]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid value \"fast\" for ETCD_HEARTBEAT_INTERVAL: \"fast\" is not a non-negative \
         integer"
    );
    assert_eq!(error.exit_code(), 1);
}

/// Goal: a bad flag value is refused with the flag named, and exits 2 as Go's flag package
/// makes etcd exit; no bad value falls back to a default.
#[test]
fn bad_values_are_refused_not_defaulted() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--heartbeat-interval=abc"],
            "invalid value \"abc\" for flag --heartbeat-interval: \"abc\" is not a \
             non-negative integer",
        ),
        (
            &["--max-request-bytes=-1"],
            "invalid value \"-1\" for flag --max-request-bytes: \"-1\" is not a non-negative \
             integer",
        ),
        (
            &["--quota-backend-bytes=8GB"],
            "invalid value \"8GB\" for flag --quota-backend-bytes: \"8GB\" is not an integer",
        ),
        (
            &["--snapshot-count="],
            "invalid value \"\" for flag --snapshot-count: \"\" is not a non-negative integer",
        ),
        (
            &["--listen-peer-urls=ftp://10.0.0.1:2380"],
            "invalid value \"ftp://10.0.0.1:2380\" for flag --listen-peer-urls: URL scheme \
             must be http, https, unix, or unixs: ftp://10.0.0.1:2380",
        ),
        (
            &["--initial-advertise-peer-urls=http://10.0.0.1"],
            "invalid value \"http://10.0.0.1\" for flag --initial-advertise-peer-urls: URL \
             address does not have the form \"host:port\": http://10.0.0.1",
        ),
        (
            &["--initial-cluster-state=fresh"],
            "invalid value \"fresh\" for flag --initial-cluster-state: valid values are \
             \"new\", \"existing\"",
        ),
        (
            &["--log-level=verbose"],
            "invalid value \"verbose\" for flag --log-level: valid values are \"debug\", \
             \"info\", \"warn\", \"error\", \"panic\", \"fatal\"",
        ),
        (
            &["--grpc-keepalive-timeout=20"],
            "invalid value \"20\" for flag --grpc-keepalive-timeout: \"20\" is missing a unit \
             (ns, us, ms, s, m or h)",
        ),
        (
            &["--max-concurrent-streams=4294967296"],
            "invalid value \"4294967296\" for flag --max-concurrent-streams: \"4294967296\" is \
             out of range (at most 4294967295)",
        ),
        (
            &["--initial-cluster=a"],
            "invalid value \"a\" for flag --initial-cluster: \"a\" is not of the form name=url",
        ),
        (
            &["--backend-batch-limit=lots"],
            "invalid value \"lots\" for flag --backend-batch-limit: \"lots\" is not an integer",
        ),
    ];
    for (args, message) in cases {
        let error = refused(args);
        assert_eq!(error.to_string(), *message, "{args:?}");
        assert_eq!(error.exit_code(), 2, "{args:?}");
    }
}

/// Goal: every cross-setting rule etcd enforces is enforced, with etcd's wording and exit 1.
#[test]
fn verification_errors_use_etcds_wording() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--election-timeout=300"],
            "--election-timeout[300ms] should be at least as 5 times as \
             --heartbeat-interval[100ms]",
        ),
        (
            &["--election-timeout=60000", "--heartbeat-interval=1000"],
            "--election-timeout[60000ms] is too long, and should be set less than 50000ms",
        ),
        (
            &["--heartbeat-interval=0"],
            "--heartbeat-interval must be >0 (set to 0ms)",
        ),
        (
            &["--election-timeout=0"],
            "--election-timeout must be >0 (set to 0ms)",
        ),
        (
            &["--listen-client-urls=http://10.0.0.1:2379"],
            "--advertise-client-urls is required when --listen-client-urls is set explicitly",
        ),
        (
            &[
                "--listen-client-urls=http://etcd.example.com:2379",
                "--advertise-client-urls=http://etcd.example.com:2379",
            ],
            "expected IP in URL for binding (http://etcd.example.com:2379)",
        ),
        (
            &["--advertise-client-urls=http://:2379"],
            "--advertise-client-urls \"http://:2379\" must be \"host:port\" (unexpected empty \
             host (http://:2379))",
        ),
        (
            &["--auto-compaction-mode=hourly"],
            "invalid value \"hourly\" for flag --auto-compaction-mode: valid values are \
             \"periodic\", \"revision\"",
        ),
        (
            &[
                "--auto-compaction-mode=revision",
                "--auto-compaction-retention=1h",
            ],
            "invalid --auto-compaction-retention \"1h\" for --auto-compaction-mode=revision: a \
             revision retention is a whole number",
        ),
        (
            &["--auto-compaction-retention=soon"],
            "invalid --auto-compaction-retention \"soon\" for --auto-compaction-mode=periodic: \
             \"soon\" is not a duration (for example 300ms, 5s, 1h30m)",
        ),
        (
            &["--enable-v2"],
            "flag --enable-v2 set to \"true\": basalt serves only the v3 API",
        ),
        (
            &["--unsafe-no-fsync"],
            "flag --unsafe-no-fsync set to \"true\": basalt never acknowledges a write before it is on disk",
        ),
        (
            &["--discovery-srv=example.com"],
            "flag --discovery-srv set to \"example.com\": basalt bootstraps only from --initial-cluster; \
             discovery services are not supported",
        ),
        (
            &["--cert-file=/tls/server.crt"],
            "--cert-file and --key-file must be given together",
        ),
        (
            &[
                "--listen-client-urls=https://127.0.0.1:2379",
                "--advertise-client-urls=https://127.0.0.1:2379",
            ],
            "TLS key/cert (--cert-file, --key-file) must be provided for client url \
             https://127.0.0.1:2379 with HTTPS scheme",
        ),
        (
            &["--experimental-enable-lease-checkpoint-persist"],
            "setting experimental-enable-lease-checkpoint-persist requires \
             experimental-enable-lease-checkpoint",
        ),
        (&["member", "list"], "\"member\" is not a valid flag"),
    ];
    for (args, message) in cases {
        let error = refused(args);
        let exit_code = if message.starts_with("invalid value") {
            2
        } else {
            1
        };
        assert_eq!(error.to_string(), *message, "{args:?}");
        assert_eq!(error.exit_code(), exit_code, "{args:?}");
    }
}

/// Goal: values etcd accepts that look odd keep etcd's meaning.
#[test]
fn etcds_special_values_keep_their_meaning() {
    let config = flags(&["--quota-backend-bytes=-1"]);
    assert_eq!(config.limits.quota_backend, BackendQuota::Disabled);
    assert!(config.warnings[0].contains("quota is disabled"));
    let config = flags(&["--quota-backend-bytes=8589934592"]);
    assert_eq!(config.limits.quota_backend, BackendQuota::Bytes(8 << 30));
    assert_eq!(
        flags(&["--snapshot-count=0x2710"]).member.snapshot_count,
        10_000
    );
    assert_eq!(
        flags(&["--auto-compaction-retention=30m"]).compaction.auto,
        AutoCompaction::Periodic(Duration::from_secs(1800))
    );
    assert_eq!(
        flags(&[
            "--auto-compaction-mode=revision",
            "--auto-compaction-retention=1000"
        ])
        .compaction
        .auto,
        AutoCompaction::Revision(1000)
    );
    let config = flags(&["--listen-metrics-urls="]);
    assert!(config.urls.listen_metrics.is_empty());
    let config = flags(&["--enable-v2=false", "--proxy=off", "--logger=capnslog"]);
    assert_eq!(config.log.logger, Logger::Capnslog);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);
}

/// Goal: flags etcd accepts but basalt does not act on are accepted, type-checked, and
/// reported when they would change something.
#[test]
fn flags_without_effect_are_reported() {
    let config = flags(&["--enable-pprof", "--pre-vote=true", "--v"]);
    assert_eq!(
        config.warnings,
        [
            "flag --enable-pprof set to \"true\" has no effect in basalt: profiling endpoints \
             are Go's; basalt has none",
            "flag --v is ignored (as etcd ignores it)",
        ]
    );
    assert!(matches!(
        refused(&["--enable-pprof=sometimes"]),
        ConfigError::InvalidValue { .. }
    ));
}

/// Goal: before bootstrapping, `--initial-cluster` is checked against this member as etcd
/// checks it.
#[test]
fn bootstrap_checks_the_initial_cluster() {
    let peer = "--initial-advertise-peer-urls=http://10.0.0.1:2380";
    let error = flags(&["--name=a", peer, "--initial-cluster=b=http://10.0.0.2:2380"])
        .bootstrap()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "couldn't find local name \"a\" in the initial cluster configuration"
    );

    let error = flags(&["--name=a", peer, "--initial-cluster=a=http://10.0.0.9:2380"])
        .bootstrap()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "--initial-cluster has a=http://10.0.0.9:2380 but missing from \
         --initial-advertise-peer-urls=http://10.0.0.1:2380"
    );

    let error = flags(&[
        "--name=a",
        "--initial-advertise-peer-urls=http://10.0.0.1:2380,http://10.0.0.1:2390",
        "--initial-cluster=a=http://10.0.0.1:2380",
    ])
    .bootstrap()
    .unwrap_err();
    assert_eq!(
        error.to_string(),
        "--initial-advertise-peer-urls has http://10.0.0.1:2390 but missing from \
         --initial-cluster=a=http://10.0.0.1:2380"
    );

    let error = flags(&[
        "--name=a",
        peer,
        "--initial-cluster=a=http://10.0.0.1:2380,b=http://10.0.0.1:2380",
    ])
    .bootstrap()
    .unwrap_err();
    assert!(matches!(error, ConfigError::DuplicatePeerUrl(_)), "{error}");

    let error = flags(&["--name=a", peer, "--initial-cluster="])
        .bootstrap()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "initial cluster unset and no discovery URL found"
    );

    // etcd resolves DNS names before comparing, but never `localhost` or an IP literal
    // (checked against etcd 3.4.23, which refuses this pair).
    let error = flags(&[
        "--initial-advertise-peer-urls=http://localhost:2380",
        "--initial-cluster=default=http://127.0.0.1:2380",
    ])
    .bootstrap()
    .unwrap_err();
    assert!(
        matches!(error, ConfigError::AdvertisedPeerUrlsMismatch(_)),
        "{error}"
    );
}

/// Goal: a three-member bootstrap yields etcd's IDs for every member, whichever member
/// computes them (values read from a real etcd 3.4.23 cluster started with these flags).
#[test]
fn every_member_derives_the_same_cluster() {
    let initial_cluster =
        "--initial-cluster=a=http://127.0.0.1:23811,b=http://127.0.0.1:23812,c=http://127.0.0.1:23813";
    for (name, port, member_id) in [
        ("a", 23811, "2fe2fc7eafb090a1"),
        ("b", 23812, "57a6d318a85a3d81"),
        ("c", 23813, "423cc4f6bffc5760"),
    ] {
        let name_flag = format!("--name={name}");
        let peer_flag = format!("--initial-advertise-peer-urls=http://127.0.0.1:{port}");
        let config = flags(&[
            &name_flag,
            &peer_flag,
            initial_cluster,
            "--initial-cluster-token=k8s-events",
        ]);
        let bootstrap = config.bootstrap().unwrap();
        assert_eq!(bootstrap.local_member_id.to_string(), member_id);
        assert_eq!(bootstrap.cluster_id.to_string(), "623ddbba08d6d56c");
        assert_eq!(bootstrap.members.len(), 3);
    }
}

/// Goal: `--help` and `--version` are answered before anything else is read.
#[test]
fn help_and_version_short_circuit() {
    let args = |words: &[&str]| -> Vec<String> { words.iter().map(|w| w.to_string()).collect() };
    assert!(matches!(
        config::load(&args(&["--help", "--election-timeout=1"]), &[]),
        Ok(Invocation::Help)
    ));
    match config::load(&args(&["--version", "--reported-version=3.5.9"]), &[]) {
        Ok(Invocation::Version(text)) => assert!(text.starts_with("etcd Version: 3.5.9\n")),
        other => panic!("{other:?}"),
    }
    let env = vec![("BASALT_REPORTED_VERSION".to_string(), "3.5.21".to_string())];
    match config::load(&args(&["-version"]), &env) {
        Ok(Invocation::Version(text)) => assert!(text.starts_with("etcd Version: 3.5.21\n")),
        other => panic!("{other:?}"),
    }
}

/// For every flag the table marks honoured: a value away from its default, the flags it needs
/// beside it to be valid, and the test that shows a real member (or its raft node) acting on
/// it.
const HONOURED_FLAG_PROOFS: &[(&str, &str, &[&str], &str)] = &[
    (
        "enable-grpc-gateway",
        "false",
        &[],
        "the_json_gateway_follows_enable_grpc_gateway",
    ),
    (
        "auth-token",
        "jwt,sign-method=HS256,priv-key=/dev/null",
        &[],
        "jwt_tokens_signed_with_openssl_rs256_keys",
    ),
    (
        "bcrypt-cost",
        "5",
        &[],
        "password_hashes_use_the_bcrypt_cost_flag",
    ),
    (
        "auth-token-ttl",
        "2",
        &[],
        "simple_tokens_expire_after_the_ttl_flag_unless_used",
    ),
    (
        "metrics",
        "extensive",
        &[],
        "extensive_metrics_time_every_grpc_call",
    ),
    (
        "listen-metrics-urls",
        "http://127.0.0.1:2381",
        &[],
        "a_metrics_listener_serves_metrics_and_health_beside_the_client_port",
    ),
    (
        "name",
        "walker",
        &[],
        "a_member_follows_its_identity_timing_and_limit_flags",
    ),
    (
        "data-dir",
        "/srv/x",
        &[],
        "a_member_follows_its_identity_timing_and_limit_flags",
    ),
    (
        "wal-dir",
        "/srv/wal",
        &[],
        "a_member_follows_its_identity_timing_and_limit_flags",
    ),
    (
        "snapshot-count",
        "50",
        &[],
        "checkpoints_release_wal_segments_and_restarts_serve_everything",
    ),
    (
        "heartbeat-interval",
        "200",
        &[],
        "a_member_follows_its_identity_timing_and_limit_flags",
    ),
    (
        "election-timeout",
        "3500",
        &[],
        "a_member_follows_its_identity_timing_and_limit_flags",
    ),
    (
        "listen-client-urls",
        "http://127.0.0.1:23790",
        &["--advertise-client-urls=http://127.0.0.1:2379"],
        "a_member_follows_its_identity_timing_and_limit_flags",
    ),
    (
        "advertise-client-urls",
        "http://127.0.0.1:23790",
        &[],
        "a_member_follows_its_identity_timing_and_limit_flags",
    ),
    (
        "quota-backend-bytes",
        "1000000",
        &[],
        "quota_raises_nospace_when_the_database_would_exceed_it",
    ),
    (
        "max-txn-ops",
        "3",
        &[],
        "a_member_follows_its_identity_timing_and_limit_flags",
    ),
    (
        "max-request-bytes",
        "4096",
        &[],
        "a_member_follows_its_identity_timing_and_limit_flags",
    ),
    (
        "max-concurrent-streams",
        "7",
        &[],
        "a_member_follows_its_identity_timing_and_limit_flags",
    ),
    (
        "initial-advertise-peer-urls",
        "http://127.0.0.1:23800",
        &[],
        "a_member_follows_its_identity_timing_and_limit_flags",
    ),
    (
        "initial-cluster",
        "default=http://127.0.0.1:23800",
        &[],
        "a_member_follows_its_identity_timing_and_limit_flags",
    ),
    (
        "initial-cluster-token",
        "walk-token",
        &[],
        "a_member_follows_its_identity_timing_and_limit_flags",
    ),
    (
        "pre-vote",
        "false",
        &[],
        "pre_vote_keeps_a_cut_off_member_from_raising_its_term",
    ),
    (
        "auto-compaction-retention",
        "2s",
        &[],
        "periodic_auto_compaction_drops_history_older_than_the_retention",
    ),
    (
        "auto-compaction-mode",
        "revision",
        &["--auto-compaction-retention=5"],
        "revision_mode_keeps_the_last_n_revisions",
    ),
    (
        "logger",
        "capnslog",
        &[],
        "log_lines_follow_logger_level_and_outputs",
    ),
    (
        "log-outputs",
        "stdout",
        &[],
        "log_lines_follow_logger_level_and_outputs",
    ),
    (
        "log-level",
        "warn",
        &[],
        "log_lines_follow_logger_level_and_outputs",
    ),
    (
        "experimental-compaction-batch-limit",
        "1",
        &[],
        "compaction_steps_follow_the_batch_limit_and_sleep_interval",
    ),
    (
        "experimental-compaction-sleep-interval",
        "250ms",
        &[],
        "compaction_steps_follow_the_batch_limit_and_sleep_interval",
    ),
    (
        "experimental-watch-progress-notify-interval",
        "200ms",
        &[],
        "progress_notify_sends_the_current_revision_when_idle",
    ),
    (
        "cores",
        "4",
        &[],
        "every_connection_sees_one_member_on_many_cores",
    ),
    (
        "pin-cores",
        "true",
        &[],
        "pin_cores_pins_each_executor_to_its_own_cpu_and_the_default_does_not",
    ),
    (
        "reported-version",
        "3.5.99",
        &[],
        "a_member_follows_its_identity_timing_and_limit_flags",
    ),
    ("max-watchers", "3", &[], "watch_limits_follow_their_flags"),
    (
        "max-watch-streams",
        "2",
        &[],
        "watch_limits_follow_their_flags",
    ),
    (
        "grpc-keepalive-min-time",
        "100ms",
        &[],
        "keepalive_min_time_follows_its_flag",
    ),
    (
        "grpc-keepalive-interval",
        "100ms",
        &[],
        "keepalive_pings_follow_their_flags",
    ),
    (
        "grpc-keepalive-timeout",
        "200ms",
        &[],
        "keepalive_pings_follow_their_flags",
    ),
    (
        "cert-file",
        "/pki/server.crt",
        &["--cert-file=/pki/other.crt", "--key-file=/pki/server.key"],
        "mutual_tls_with_etcdctl",
    ),
    (
        "key-file",
        "/pki/server.key",
        &["--cert-file=/pki/server.crt", "--key-file=/pki/other.key"],
        "mutual_tls_with_etcdctl",
    ),
    (
        "trusted-ca-file",
        "/pki/ca.crt",
        &[],
        "mutual_tls_with_etcdctl",
    ),
    ("client-cert-auth", "true", &[], "mutual_tls_with_etcdctl"),
    ("auto-tls", "true", &[], "auto_tls_with_etcdctl"),
    (
        "self-signed-cert-validity",
        "3",
        &[],
        "auto_tls_with_etcdctl",
    ),
    // The TLS library's own tests (net/tests/tls) prove these; `server::client_tls` hands the
    // flags to it as they are.
    (
        "client-crl-file",
        "/pki/crl.pem",
        &[],
        "a_revoked_certificate_is_refused",
    ),
    (
        "client-cert-allowed-hostname",
        "client.example.com",
        &[],
        "allowed_hostname_and_allowed_cn_are_enforced",
    ),
    (
        "cipher-suites",
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
        &[],
        "cipher_suites_restrict_tls12",
    ),
    (
        "tls-min-version",
        "TLS1.3",
        &[],
        "min_and_max_versions_are_honoured",
    ),
    (
        "tls-max-version",
        "TLS1.2",
        &[],
        "min_and_max_versions_are_honoured",
    ),
    (
        "peer-cert-file",
        "/pki/peer.crt",
        &[
            "--peer-cert-file=/pki/other.crt",
            "--peer-key-file=/pki/peer.key",
        ],
        "peers_replicate_over_mutual_tls",
    ),
    (
        "peer-key-file",
        "/pki/peer.key",
        &[
            "--peer-cert-file=/pki/peer.crt",
            "--peer-key-file=/pki/other.key",
        ],
        "peers_replicate_over_mutual_tls",
    ),
    (
        "peer-client-cert-file",
        "/pki/peer-client.crt",
        &[],
        "peers_replicate_over_mutual_tls",
    ),
    (
        "peer-client-key-file",
        "/pki/peer-client.key",
        &[],
        "peers_replicate_over_mutual_tls",
    ),
    (
        "peer-trusted-ca-file",
        "/pki/ca.crt",
        &[],
        "a_peer_from_another_ca_or_with_another_cn_is_refused",
    ),
    (
        "peer-client-cert-auth",
        "true",
        &[],
        "peers_replicate_over_mutual_tls",
    ),
    (
        "peer-cert-allowed-cn",
        "basalt-member",
        &[],
        "a_peer_from_another_ca_or_with_another_cn_is_refused",
    ),
    (
        "peer-auto-tls",
        "true",
        &[],
        "peers_replicate_over_auto_tls",
    ),
    (
        "experimental-peer-skip-client-san-verification",
        "true",
        &[],
        "a_peer_whose_client_certificate_names_another_ip_is_refused_unless_skipped",
    ),
    // The TLS library's own tests (net/tests/tls) prove these; `server::peer_tls` hands the
    // flags to it as they are, as for the client side.
    (
        "peer-crl-file",
        "/pki/crl.pem",
        &[],
        "a_revoked_certificate_is_refused",
    ),
    (
        "peer-cert-allowed-hostname",
        "peer.example.com",
        &[],
        "allowed_hostname_and_allowed_cn_are_enforced",
    ),
    (
        "initial-cluster-state",
        "existing",
        &[],
        "member_commands_add_join_promote_update_move_remove",
    ),
    (
        "strict-reconfig-check",
        "false",
        &[],
        "member_commands_add_join_promote_update_move_remove",
    ),
    (
        "listen-peer-urls",
        "http://127.0.0.1:23801",
        &[],
        "a_one_member_cluster_grows_with_member_add",
    ),
];

/// Goal: a flag the table marks honoured is acted on, never parsed and ignored. Method: walk
/// the table; every honoured flag must have a proof above, its value must change the resolved
/// configuration, and the test named as its proof must exist in this repository (that test
/// sets the flag on a real member, or on its raft node, and asserts the effect). A flag
/// marked honoured without a proof, or a proof for a flag no longer honoured, fails here.
#[test]
fn every_honoured_flag_is_proven() {
    let honoured: Vec<&str> = config::FLAGS
        .iter()
        .filter(|spec| spec.support == config::Support::Honored)
        .map(|spec| spec.name)
        .collect();
    let proven: Vec<&str> = HONOURED_FLAG_PROOFS.iter().map(|proof| proof.0).collect();
    for name in &honoured {
        assert_eq!(
            proven.iter().filter(|p| *p == name).count(),
            1,
            "--{name} is marked honoured: give it exactly one proof in HONOURED_FLAG_PROOFS"
        );
    }
    let sources = rust_sources(Path::new(env!("CARGO_MANIFEST_DIR")));
    for (name, value, companions, proof) in HONOURED_FLAG_PROOFS {
        assert!(
            honoured.contains(name),
            "--{name} has a proof but is not marked honoured"
        );
        let without = flags(companions);
        let setting = format!("--{name}={value}");
        // The setting comes last: a repeated flag keeps its last value.
        let with = flags(&[*companions, &[setting.as_str()]].concat());
        assert_ne!(
            Config {
                warnings: Vec::new(),
                ..with
            },
            Config {
                warnings: Vec::new(),
                ..without
            },
            "{setting} does not change the configuration"
        );
        let needle = format!("fn {proof}(");
        assert!(
            sources.iter().any(|source| source.contains(&needle)),
            "the proof of --{name}, {proof}, is no test in this repository"
        );
    }
}

/// The text of every Rust file under `dir`'s `src/` and `tests/`, and net's (whose TLS tests
/// prove the TLS flags' semantics).
fn rust_sources(dir: &Path) -> Vec<String> {
    let mut sources = Vec::new();
    let mut pending = vec![
        dir.join("src"),
        dir.join("tests"),
        dir.join("net").join("src"),
        dir.join("net").join("tests"),
    ];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                sources.push(std::fs::read_to_string(&path).unwrap());
            }
        }
    }
    sources
}
