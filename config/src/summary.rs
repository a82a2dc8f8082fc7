//! A readable summary of the configuration, printed at start-up so an operator can see what
//! the flags, variables and file added up to.

use std::fmt;

use super::go_values::format_duration;
use super::urls::join;
use super::{AutoCompaction, BackendQuota, Config, Source};

impl fmt::Display for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.source {
            Source::FlagsAndEnv => "flags and environment".to_string(),
            Source::File(path) => format!("config file {}", path.display()),
        };
        let quota = match self.limits.quota_backend {
            BackendQuota::Bytes(bytes) => format!("{bytes} bytes"),
            BackendQuota::Disabled => "disabled".to_string(),
        };
        let compaction = match self.compaction.auto {
            AutoCompaction::Disabled => "disabled".to_string(),
            AutoCompaction::Periodic(keep) => format!("periodic, keep {}", format_duration(keep)),
            AutoCompaction::Revision(keep) => format!("revision, keep {keep} revisions"),
        };
        let cores = match self.basalt.cores {
            Some(cores) => cores.to_string(),
            None => "all".to_string(),
        };
        let cores = if self.basalt.pin_cores {
            format!("{cores} (pinned)")
        } else {
            cores
        };
        writeln!(f, "source: {source}")?;
        writeln!(f, "name: {}", self.member.name)?;
        writeln!(f, "data-dir: {}", self.member.data_dir.display())?;
        writeln!(f, "wal-dir: {}", self.wal_dir().display())?;
        writeln!(f, "listen-client-urls: {}", join(&self.urls.listen_client))?;
        writeln!(
            f,
            "advertise-client-urls: {}",
            join(&self.urls.advertise_client)
        )?;
        writeln!(f, "listen-peer-urls: {}", join(&self.urls.listen_peer))?;
        writeln!(
            f,
            "initial-advertise-peer-urls: {}",
            join(&self.urls.advertise_peer)
        )?;
        if !self.urls.listen_metrics.is_empty() {
            writeln!(
                f,
                "listen-metrics-urls: {}",
                join(&self.urls.listen_metrics)
            )?;
        }
        writeln!(f, "initial-cluster: {}", self.cluster.initial_cluster)?;
        writeln!(f, "initial-cluster-state: {:?}", self.cluster.state)?;
        writeln!(f, "initial-cluster-token: {}", self.cluster.token)?;
        writeln!(
            f,
            "heartbeat-interval: {}, election-timeout: {}",
            format_duration(self.raft.heartbeat_interval),
            format_duration(self.raft.election_timeout)
        )?;
        writeln!(f, "snapshot-count: {}", self.member.snapshot_count)?;
        writeln!(f, "quota-backend: {quota}")?;
        writeln!(
            f,
            "max-request-bytes: {}, max-txn-ops: {}",
            self.limits.max_request_bytes, self.limits.max_txn_ops
        )?;
        writeln!(f, "auto-compaction: {compaction}")?;
        writeln!(
            f,
            "client TLS: {}, peer TLS: {}",
            tls_summary(&self.client_tls),
            tls_summary(&self.peer_tls)
        )?;
        writeln!(
            f,
            "logger: {:?}, log-level: {:?}",
            self.log.logger, self.log.level
        )?;
        writeln!(
            f,
            "cores: {cores}, reported etcd version: {}",
            self.basalt.reported_version
        )
    }
}

fn tls_summary(tls: &super::TlsConfig) -> &'static str {
    match (tls.has_certificate(), tls.auto_tls, tls.client_cert_auth) {
        (true, _, true) => "certificate, client certificates required",
        (true, _, false) => "certificate",
        (false, true, _) => "auto (self-signed)",
        (false, false, _) => "off",
    }
}
