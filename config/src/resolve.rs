//! Turns setting texts into typed values: each value is parsed with its flag's type (a bad
//! value is an error naming where it came from, never a silent default), settings basalt does
//! not act on are checked and reported, and etcd's derived defaults are applied (`data-dir`
//! from the name, `initial-cluster` from a lone `--name`).

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use super::error::{ConfigError, Origin};
use super::go_values::{self, Reason};
use super::settings::Settings;
use super::spec::{self, FlagSpec, Kind, Support};
use super::urls::{self, InitialCluster, Url};
use super::*;

/// The typed configuration, not yet cross-checked (see `validate`).
pub fn resolve(settings: &Settings) -> Result<Config, ConfigError> {
    let mut warnings = settings.warnings.clone();
    check_support(settings, &mut warnings)?;
    let get = Getter { settings };

    let name = get.text("name")?;
    let data_dir = match get.text("data-dir")? {
        dir if dir.is_empty() => PathBuf::from(format!("{name}.basalt")),
        dir => PathBuf::from(dir),
    };
    let member = MemberConfig {
        data_dir,
        wal_dir: get.path("wal-dir")?,
        snapshot_count: get.uint("snapshot-count")?,
        max_snapshot_files: get.uint("max-snapshots")?,
        max_wal_files: get.uint("max-wals")?,
        name,
    };

    let urls = UrlConfig {
        listen_client: get.urls("listen-client-urls")?,
        advertise_client: get.urls("advertise-client-urls")?,
        listen_peer: get.urls("listen-peer-urls")?,
        advertise_peer: get.urls("initial-advertise-peer-urls")?,
        listen_metrics: get.urls("listen-metrics-urls")?,
    };

    let initial_cluster = initial_cluster(&get, &member.name, &urls.advertise_peer)?;
    let cluster = ClusterConfig {
        initial_cluster,
        state: match get.choice("initial-cluster-state")? {
            "existing" => ClusterState::Existing,
            _ => ClusterState::New,
        },
        token: get.text("initial-cluster-token")?,
        strict_reconfig_check: get.bool("strict-reconfig-check")?,
        pre_vote: get.bool("pre-vote")?,
        max_learners: get.non_negative("experimental-max-learners")?,
    };

    let raft = RaftTiming {
        heartbeat_interval: Duration::from_millis(get.uint("heartbeat-interval")?),
        election_timeout: Duration::from_millis(get.uint("election-timeout")?),
        snapshot_catchup_entries: get.uint("experimental-snapshot-catchup-entries")?,
    };

    let quota = get.int("quota-backend-bytes")?;
    let quota_backend = match quota {
        0 => BackendQuota::Bytes(DEFAULT_QUOTA_BACKEND_BYTES),
        bytes if bytes > 0 => BackendQuota::Bytes(bytes as u64),
        _ => {
            warnings.push(format!(
                "--quota-backend-bytes={quota} is negative: the backend quota is disabled (as in \
                 etcd)"
            ));
            BackendQuota::Disabled
        }
    };
    let limits = Limits {
        quota_backend,
        max_request_bytes: get.uint("max-request-bytes")?,
        max_txn_ops: get.uint("max-txn-ops")?,
        max_concurrent_streams: get.u32("max-concurrent-streams")?,
    };

    let compaction = CompactionConfig {
        auto: auto_compaction(&get)?,
        batch_limit: get.non_negative("experimental-compaction-batch-limit")?,
        sleep_interval: get.duration("experimental-compaction-sleep-interval")?,
    };

    let keepalive = GrpcKeepalive {
        min_time: get.duration("grpc-keepalive-min-time")?,
        interval: get.duration("grpc-keepalive-interval")?,
        timeout: get.duration("grpc-keepalive-timeout")?,
    };

    let client_tls = TlsConfig {
        cert_file: get.path("cert-file")?,
        key_file: get.path("key-file")?,
        client_cert_file: get.path("client-cert-file")?,
        client_key_file: get.path("client-key-file")?,
        client_cert_auth: get.bool("client-cert-auth")?,
        trusted_ca_file: get.path("trusted-ca-file")?,
        crl_file: get.path("client-crl-file")?,
        auto_tls: get.bool("auto-tls")?,
        allowed_cn: None,
        allowed_hostname: get.optional("client-cert-allowed-hostname")?,
        skip_client_san_verification: false,
    };
    let peer_tls = TlsConfig {
        cert_file: get.path("peer-cert-file")?,
        key_file: get.path("peer-key-file")?,
        client_cert_file: get.path("peer-client-cert-file")?,
        client_key_file: get.path("peer-client-key-file")?,
        client_cert_auth: get.bool("peer-client-cert-auth")?,
        trusted_ca_file: get.path("peer-trusted-ca-file")?,
        crl_file: get.path("peer-crl-file")?,
        auto_tls: get.bool("peer-auto-tls")?,
        allowed_cn: get.optional("peer-cert-allowed-cn")?,
        allowed_hostname: get.optional("peer-cert-allowed-hostname")?,
        skip_client_san_verification: get.bool("experimental-peer-skip-client-san-verification")?,
    };
    let tls = TlsCommon {
        cipher_suites: get.list("cipher-suites")?,
        min_version: get.choice("tls-min-version")?.to_string(),
        max_version: Some(get.choice("tls-max-version")?.to_string()).filter(|v| !v.is_empty()),
        self_signed_cert_validity_years: get.uint("self-signed-cert-validity")?,
    };

    let log = LogConfig {
        logger: match get.choice("logger")? {
            "capnslog" => Logger::Capnslog,
            _ => Logger::Zap,
        },
        level: match get.choice("log-level")? {
            "debug" => LogLevel::Debug,
            "warn" => LogLevel::Warn,
            "error" => LogLevel::Error,
            "panic" => LogLevel::Panic,
            "fatal" => LogLevel::Fatal,
            _ => LogLevel::Info,
        },
        outputs: log_outputs(&get)?,
    };

    let observability = ObservabilityConfig {
        extensive_metrics: get.choice("metrics")? == "extensive",
        grpc_gateway: get.bool("enable-grpc-gateway")?,
    };

    let experimental = Experimental {
        initial_corrupt_check: get.bool("experimental-initial-corrupt-check")?,
        corrupt_check_time: get.duration("experimental-corrupt-check-time")?,
        compact_hash_check: get.bool("experimental-compact-hash-check-enabled")?,
        compact_hash_check_time: get.duration("experimental-compact-hash-check-time")?,
        lease_checkpoint: get.bool("experimental-enable-lease-checkpoint")?,
        lease_checkpoint_persist: get.bool("experimental-enable-lease-checkpoint-persist")?,
        watch_progress_notify_interval: get
            .duration("experimental-watch-progress-notify-interval")?,
        warning_apply_duration: get.duration("experimental-warning-apply-duration")?,
        warning_unary_request_duration: get
            .duration("experimental-warning-unary-request-duration")?,
    };

    let auth = AuthConfig {
        token: get.text("auth-token")?,
        bcrypt_cost: get.parsed("bcrypt-cost", |text| {
            let cost = go_values::parse_uint(text)?;
            // bcrypt's own bounds; etcd's store falls back to the default outside them, basalt
            // refuses to start rather than hash with a cost nobody asked for.
            u32::try_from(cost)
                .ok()
                .filter(|cost| (4..=31).contains(cost))
                .ok_or_else(|| format!("{text:?} is out of range (4 to 31)"))
        })?,
        token_ttl: Duration::from_secs(get.uint("auth-token-ttl")?),
    };

    let cores = usize::try_from(get.uint("cores")?).unwrap_or(usize::MAX);
    let basalt = BasaltConfig {
        cores: NonZeroUsize::new(cores),
        pin_cores: get.bool("pin-cores")?,
        reported_version: get.text("reported-version")?,
        max_watchers: get.uint("max-watchers")?,
        max_watch_streams: get.uint("max-watch-streams")?,
    };

    Ok(Config {
        member,
        urls,
        cluster,
        raft,
        limits,
        compaction,
        keepalive,
        client_tls,
        peer_tls,
        tls,
        log,
        observability,
        experimental,
        auth,
        basalt,
        source: settings.source.clone(),
        warnings,
    })
}

/// Type-checks every explicit setting (also those basalt does not use: a bad value is refused
/// either way) and applies the table's support policy.
fn check_support(settings: &Settings, warnings: &mut Vec<String>) -> Result<(), ConfigError> {
    for (spec, text, origin) in settings.explicit() {
        match spec.support {
            Support::Honored => {}
            Support::Ignored => warnings.push(format!("{origin} is ignored (as etcd ignores it)")),
            Support::NoEffect(why) => {
                if !equals_default(spec, text, origin)? {
                    warnings.push(format!(
                        "{origin} set to {text:?} has no effect in basalt: {why}"
                    ));
                }
            }
            Support::DefaultOnly(why) => {
                if !equals_default(spec, text, origin)? {
                    return Err(ConfigError::Unsupported {
                        origin: origin.clone(),
                        value: text.to_string(),
                        why,
                    });
                }
            }
        }
    }
    Ok(())
}

/// Whether `text` means the same as the spec's default, after parsing it with the spec's type.
fn equals_default(spec: &FlagSpec, text: &str, origin: &Origin) -> Result<bool, ConfigError> {
    let invalid = |reason: Reason| ConfigError::InvalidValue {
        origin: origin.clone(),
        value: text.to_string(),
        reason,
    };
    Ok(match spec.kind {
        Kind::Bool => {
            go_values::parse_bool(text).map_err(invalid)?
                == go_values::parse_bool(spec.default).map_err(invalid)?
        }
        Kind::Uint => {
            go_values::parse_uint(text).map_err(invalid)?
                == go_values::parse_uint(spec.default).map_err(invalid)?
        }
        Kind::Int => {
            go_values::parse_int(text).map_err(invalid)?
                == go_values::parse_int(spec.default).map_err(invalid)?
        }
        Kind::Duration => {
            go_values::parse_duration(text).map_err(invalid)?
                == go_values::parse_duration(spec.default).map_err(invalid)?
        }
        Kind::Urls => {
            urls::parse_url_list(text).map_err(invalid)?
                == urls::parse_url_list(spec.default).map_err(invalid)?
        }
        Kind::Choice(choices) => {
            check_choice(choices, text).map_err(invalid)?;
            text == spec.default
        }
        Kind::List | Kind::Text => text.trim() == spec.default,
    })
}

fn check_choice(choices: &[&'static str], text: &str) -> Result<&'static str, Reason> {
    choices
        .iter()
        .find(|choice| **choice == text)
        .copied()
        .ok_or_else(|| {
            let quoted: Vec<String> = choices.iter().map(|c| format!("{c:?}")).collect();
            format!("valid values are {}", quoted.join(", "))
        })
}

/// etcd's `InitialClusterFromName` rule: when only `--name` is changed, the default
/// `default=<advertise peer URLs>` entry takes the new name, so `etcd --name x` just works.
fn initial_cluster(
    get: &Getter<'_>,
    name: &str,
    advertise_peer: &[Url],
) -> Result<InitialCluster, ConfigError> {
    let (text, origin) = get.settings.get("initial-cluster");
    let default = spec::lookup("initial-cluster").map(|spec| spec.default);
    if name != "default" && Some(text) == default {
        return Ok(InitialCluster::single(name, advertise_peer));
    }
    InitialCluster::parse(text).map_err(|reason| ConfigError::InvalidValue {
        origin,
        value: text.to_string(),
        reason,
    })
}

/// etcd's `--log-outputs` rules: `default` and `systemd/journal` stand alone; anything but
/// `stderr` and `stdout` is a file path. basalt's `default` is stderr (under systemd, the
/// journal collects it); it does not speak the journal's own protocol yet, so
/// `systemd/journal` is refused rather than dropped.
fn log_outputs(get: &Getter<'_>) -> Result<Vec<LogOutput>, ConfigError> {
    let names = get.list("log-outputs")?;
    let (text, origin) = get.settings.get("log-outputs");
    let invalid = |reason: String| ConfigError::InvalidValue {
        origin: origin.clone(),
        value: text.to_string(),
        reason,
    };
    let mut outputs = Vec::with_capacity(names.len());
    for name in &names {
        let output = match name.as_str() {
            "default" | "systemd/journal" if names.len() > 1 => {
                return Err(invalid(format!(
                    "multi logoutput for {name:?} is not supported yet"
                )))
            }
            "systemd/journal" => {
                return Err(ConfigError::Unsupported {
                    origin: origin.clone(),
                    value: text.to_string(),
                    why: "basalt does not write to the systemd journal yet; use stderr, which \
                          the journal collects under systemd",
                })
            }
            "default" | "stderr" => LogOutput::Stderr,
            "stdout" => LogOutput::Stdout,
            path => LogOutput::File(PathBuf::from(path)),
        };
        if !outputs.contains(&output) {
            outputs.push(output);
        }
    }
    if outputs.is_empty() {
        return Err(invalid("names no log output".to_string()));
    }
    Ok(outputs)
}

/// etcd's `parseCompactionRetention`: an integer is hours (periodic) or revisions (revision);
/// anything else must be a duration, and only a periodic retention may be one.
fn auto_compaction(get: &Getter<'_>) -> Result<AutoCompaction, ConfigError> {
    let mode = get.choice("auto-compaction-mode")?;
    let (text, _) = get.settings.get("auto-compaction-retention");
    let bad = |reason: Reason| ConfigError::BadCompactionRetention {
        mode,
        value: text.to_string(),
        reason,
    };
    let as_integer = text
        .parse::<u64>()
        .ok()
        .filter(|_| text.bytes().all(|b| b.is_ascii_digit()));
    let retention = match (mode, as_integer) {
        (_, Some(0)) => return Ok(AutoCompaction::Disabled),
        ("revision", Some(revisions)) => AutoCompaction::Revision(revisions),
        ("revision", None) => return Err(bad("a revision retention is a whole number".into())),
        (_, Some(hours)) => AutoCompaction::Periodic(
            hours
                .checked_mul(3600)
                .map(Duration::from_secs)
                .ok_or_else(|| bad("out of range".into()))?,
        ),
        (_, None) => match go_values::parse_duration(text).map_err(bad)? {
            Duration::ZERO => AutoCompaction::Disabled,
            period => AutoCompaction::Periodic(period),
        },
    };
    Ok(retention)
}

/// Typed access to settings, with errors that name the origin.
struct Getter<'a> {
    settings: &'a Settings,
}

impl Getter<'_> {
    fn parsed<T>(
        &self,
        name: &'static str,
        parse: impl FnOnce(&str) -> Result<T, Reason>,
    ) -> Result<T, ConfigError> {
        let (text, origin) = self.settings.get(name);
        parse(text).map_err(|reason| ConfigError::InvalidValue {
            origin,
            value: text.to_string(),
            reason,
        })
    }

    fn text(&self, name: &'static str) -> Result<String, ConfigError> {
        Ok(self.settings.get(name).0.to_string())
    }

    fn optional(&self, name: &'static str) -> Result<Option<String>, ConfigError> {
        Ok(Some(self.text(name)?).filter(|text| !text.is_empty()))
    }

    fn path(&self, name: &'static str) -> Result<Option<PathBuf>, ConfigError> {
        Ok(self.optional(name)?.map(PathBuf::from))
    }

    fn bool(&self, name: &'static str) -> Result<bool, ConfigError> {
        self.parsed(name, go_values::parse_bool)
    }

    fn uint(&self, name: &'static str) -> Result<u64, ConfigError> {
        self.parsed(name, go_values::parse_uint)
    }

    fn u32(&self, name: &'static str) -> Result<u32, ConfigError> {
        self.parsed(name, |text| {
            let value = go_values::parse_uint(text)?;
            u32::try_from(value)
                .map_err(|_| format!("{text:?} is out of range (at most 4294967295)"))
        })
    }

    fn int(&self, name: &'static str) -> Result<i64, ConfigError> {
        self.parsed(name, go_values::parse_int)
    }

    /// A Go `int` flag whose negative values mean nothing useful.
    fn non_negative(&self, name: &'static str) -> Result<u64, ConfigError> {
        self.parsed(name, |text| {
            let value = go_values::parse_int(text)?;
            u64::try_from(value).map_err(|_| format!("{text:?} is negative; it must be >= 0"))
        })
    }

    fn duration(&self, name: &'static str) -> Result<Duration, ConfigError> {
        self.parsed(name, go_values::parse_duration)
    }

    fn urls(&self, name: &'static str) -> Result<Vec<Url>, ConfigError> {
        self.parsed(name, urls::parse_url_list)
    }

    fn list(&self, name: &'static str) -> Result<Vec<String>, ConfigError> {
        Ok(self
            .text(name)?
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty())
            .map(str::to_string)
            .collect())
    }

    fn choice(&self, name: &'static str) -> Result<&'static str, ConfigError> {
        let spec = spec::lookup(name).expect("setting names come from the table");
        let Kind::Choice(choices) = spec.kind else {
            unreachable!("{name} is not a choice");
        };
        self.parsed(name, |text| check_choice(choices, text))
    }
}
