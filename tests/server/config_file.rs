//! `--config-file` as etcd 3.5 reads it: its YAML keys, its precedence (the file alone, flags
//! and variables ignored), and its errors. Files are written to a temporary directory.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use basalt::config::{AutoCompaction, Config, ConfigError, LogLevel, Source};

fn write_file(dir: &Path, yaml: &str) -> PathBuf {
    let path = dir.join("etcd.conf.yml");
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(yaml.as_bytes()).unwrap();
    path
}

fn load(args: &[&str], env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    crate::support::load_config(args, env)
}

const KUBE_EVENTS_MEMBER: &str = r#"
name: events-1
data-dir: /var/lib/etcd-events
wal-dir: /wal/etcd-events
snapshot-count: 10000
heartbeat-interval: 100
election-timeout: 1000
quota-backend-bytes: 8589934592
max-request-bytes: 10485760
listen-peer-urls: http://10.0.0.1:2382
listen-client-urls: http://10.0.0.1:2381,http://127.0.0.1:2381
initial-advertise-peer-urls: http://10.0.0.1:2382
advertise-client-urls: http://10.0.0.1:2381
initial-cluster: events-1=http://10.0.0.1:2382
initial-cluster-token: events
initial-cluster-state: new
auto-compaction-mode: periodic
auto-compaction-retention: "5m"
experimental-watch-progress-notify-interval: 5000000000
experimental-initial-corrupt-check: true
log-level: warn
"#;

/// The TLS sections a Kubernetes member's file adds.
const KUBE_TLS_SECTIONS: &str = r#"
client-transport-security:
  cert-file: /pki/server.crt
  key-file: /pki/server.key
  client-cert-auth: true
  trusted-ca-file: /pki/ca.crt
peer-transport-security:
  cert-file: /pki/peer.crt
  key-file: /pki/peer.key
  client-cert-auth: true
  trusted-ca-file: /pki/ca.crt
  allowed-cn: etcd-peer
"#;

/// Goal: a complete config file in etcd's format reads into the same Config the flags give.
#[test]
fn a_complete_file_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), KUBE_EVENTS_MEMBER);
    let config = load(&["--config-file", path.to_str().unwrap()], &[]).unwrap();
    assert_eq!(config.source, Source::File(path.clone()));
    assert_eq!(config.member.name, "events-1");
    assert_eq!(
        config.member.wal_dir,
        Some(PathBuf::from("/wal/etcd-events"))
    );
    assert_eq!(config.limits.max_request_bytes, 10 * 1024 * 1024);
    assert_eq!(
        config.compaction.auto,
        AutoCompaction::Periodic(Duration::from_secs(300))
    );
    // A number for a duration is nanoseconds, as etcd's Go unmarshalling reads it.
    assert_eq!(
        config.experimental.watch_progress_notify_interval,
        Duration::from_secs(5)
    );
    assert!(config.experimental.initial_corrupt_check);
    assert_eq!(config.log.level, LogLevel::Warn);
    // The corrupt check compares peers' hashes: a one-member basalt says it has none.
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert!(config.warnings[0].contains("experimental-initial-corrupt-check"));
    let bootstrap = config.bootstrap().unwrap();
    assert_eq!(bootstrap.members.len(), 1);
    // The same member from flags has the same configuration.
    let from_flags = load(
        &[
            "--name=events-1",
            "--data-dir=/var/lib/etcd-events",
            "--wal-dir=/wal/etcd-events",
            "--snapshot-count=10000",
            "--quota-backend-bytes=8589934592",
            "--max-request-bytes=10485760",
            "--listen-peer-urls=http://10.0.0.1:2382",
            "--listen-client-urls=http://10.0.0.1:2381,http://127.0.0.1:2381",
            "--initial-advertise-peer-urls=http://10.0.0.1:2382",
            "--advertise-client-urls=http://10.0.0.1:2381",
            "--initial-cluster=events-1=http://10.0.0.1:2382",
            "--initial-cluster-token=events",
            "--auto-compaction-retention=5m",
            "--experimental-watch-progress-notify-interval=5s",
            "--experimental-initial-corrupt-check",
            "--log-level=warn",
        ],
        &[],
    )
    .unwrap();
    assert_eq!(
        Config {
            source: config.source.clone(),
            warnings: config.warnings.clone(),
            ..from_flags
        },
        config
    );
}

/// Goal: a file's TLS sections read as etcd reads them: the client's into the TLS the member
/// serves, the peer's into the TLS the peer transport serves and dials with; an https URL without a certificate is refused in etcd's words.
#[test]
fn tls_sections_are_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(
        dir.path(),
        &format!("{KUBE_EVENTS_MEMBER}{KUBE_TLS_SECTIONS}"),
    );
    let config = load(&["--config-file", path.to_str().unwrap()], &[]).unwrap();
    assert!(config.client_tls.client_cert_auth && config.client_tls.has_certificate());
    assert_eq!(
        config.client_tls.trusted_ca_file,
        Some(PathBuf::from("/pki/ca.crt"))
    );
    assert_eq!(config.peer_tls.allowed_cn.as_deref(), Some("etcd-peer"));
    assert_eq!(
        config.peer_tls.cert_file,
        Some(PathBuf::from("/pki/peer.crt"))
    );
    // Peer TLS is honoured now (a multi-member cluster serves and dials with it): no warning.
    assert!(
        !config
            .warnings
            .iter()
            .any(|warning| warning.contains("peer-transport-security")),
        "{:?}",
        config.warnings
    );
    let path = write_file(
        dir.path(),
        "listen-client-urls: https://127.0.0.1:2379\nadvertise-client-urls: https://127.0.0.1:2379\n",
    );
    let text = load(&["--config-file", path.to_str().unwrap()], &[])
        .unwrap_err()
        .to_string();
    assert_eq!(
        text,
        "TLS key/cert (--cert-file, --key-file) must be provided for client url \
         https://127.0.0.1:2379 with HTTPS scheme"
    );
}

/// Goal: etcd's precedence with a file: the file alone counts; flags and ETCD_* variables
/// are ignored (and basalt says so), and ETCD_CONFIG_FILE works like the flag.
#[test]
fn a_file_overrides_flags_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "name: from-file\n");
    let path_text = path.to_str().unwrap();
    let config = load(
        &["--config-file", path_text, "--name", "from-flag"],
        &[("ETCD_DATA_DIR", "/from/env")],
    )
    .unwrap();
    assert_eq!(config.member.name, "from-file");
    assert_eq!(config.member.data_dir, PathBuf::from("from-file.basalt"));
    assert!(
        config.warnings[0].contains("ignored: --name"),
        "{:?}",
        config.warnings
    );

    let config = load(
        &[],
        &[("ETCD_CONFIG_FILE", path_text), ("ETCD_NAME", "from-env")],
    )
    .unwrap();
    assert_eq!(config.member.name, "from-file");
    assert_eq!(
        config.warnings,
        ["environment variables are ignored with a config file (ignored: ETCD_NAME)"]
    );
    // An empty --config-file is no file, as in etcd.
    assert_eq!(
        load(&["--config-file="], &[]).unwrap().member.name,
        "default"
    );
    // A variable that would conflict with a flag is not even looked at in file mode.
    assert!(load(
        &["--config-file", path_text, "--name=x"],
        &[("ETCD_NAME", "y")]
    )
    .is_ok());
}

/// Goal: in file mode etcd keeps the default advertise URL when only the listen URL is set.
#[test]
fn file_mode_keeps_the_default_advertise_url() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_file(dir.path(), "listen-client-urls: http://10.0.0.1:2379\n");
    let config = load(&["--config-file", path.to_str().unwrap()], &[]).unwrap();
    assert_eq!(
        config.urls.advertise_client[0].text,
        "http://localhost:2379"
    );
}

/// Goal: every way a file can be wrong is refused, naming the file and the key.
#[test]
fn bad_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let check = |yaml: &str, expected: &str| {
        let path = write_file(dir.path(), yaml);
        let error = load(&["--config-file", path.to_str().unwrap()], &[]).unwrap_err();
        let message = error.to_string().replace(path.to_str().unwrap(), "FILE");
        assert_eq!(message, expected, "{yaml:?}");
        assert_eq!(error.exit_code(), 1);
    };
    check(
        "heartbeat-interval: fast\n",
        "invalid value \"fast\" for \"heartbeat-interval\" in config file FILE: \"fast\" is not \
         a non-negative integer",
    );
    check(
        "client-transport-security:\n  client-cert-auth: maybe\n",
        "invalid value \"maybe\" for \"client-transport-security.client-cert-auth\" in config \
         file FILE: \"maybe\" is not a boolean (true or false)",
    );
    check(
        "snapshot_count: 5\n",
        "config file FILE: unknown key \"snapshot_count\"",
    );
    check(
        "election-timeout: 100\n",
        "--election-timeout[100ms] should be at least as 5 times as --heartbeat-interval[100ms]",
    );
    check(
        "enable-v2: true\n",
        "\"enable-v2\" in config file FILE set to \"true\": basalt serves only the v3 API",
    );
    check(
        "grpc-keepalive-interval: -1\n",
        "invalid value \"-1ns\" for \"grpc-keepalive-interval\" in config file FILE: \"-1ns\" \
         is negative; a duration must be >= 0",
    );
    let missing = dir.path().join("missing.yml");
    let error = load(&["--config-file", missing.to_str().unwrap()], &[]).unwrap_err();
    assert!(
        matches!(error, ConfigError::ConfigFileUnreadable { .. }),
        "{error}"
    );
}
