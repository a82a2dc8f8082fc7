//! Every way a configuration can be refused, with etcd's wording where etcd has one, and the
//! exit status etcd uses for it: 2 for a malformed command line (Go's `flag` package), 1 for a
//! well-formed configuration that fails verification.

use std::fmt;
use std::path::PathBuf;

use super::go_values::Reason;

/// Where a setting's text came from; error messages name it so the operator knows what to fix.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// A command-line flag.
    Flag(&'static str),
    /// An environment variable (`ETCD_*` or `BASALT_*`).
    Env(String),
    /// A key of the `--config-file` YAML.
    File { path: PathBuf, key: String },
    /// The built-in default.
    Default(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(name) => write!(f, "flag --{name}"),
            Origin::Env(var) => f.write_str(var),
            Origin::File { path, key } => write!(f, "{key:?} in config file {}", path.display()),
            Origin::Default(name) => write!(f, "the default of --{name}"),
        }
    }
}

/// Why `basalt` refuses to start with the configuration it was given.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A flag etcd does not define (Go: "flag provided but not defined: -x").
    #[error("flag provided but not defined: {0}")]
    UnknownFlag(String),

    /// A non-boolean flag at the end of the command line with no value.
    #[error("flag needs an argument: {0}")]
    MissingArgument(String),

    /// `---x`, `-=x` and the like.
    #[error("bad flag syntax: {0}")]
    BadFlagSyntax(String),

    /// A command-line argument that is not a flag (etcd: `"x" is not a valid flag`).
    #[error("{0:?} is not a valid flag")]
    NotAFlag(String),

    /// etcd's subcommands, which basalt does not implement.
    #[error("basalt does not implement `etcd {0}`; run a real etcd {0} for it")]
    UnsupportedSubcommand(String),

    /// A value that does not parse as its setting's type.
    #[error("invalid value {value:?} for {origin}: {reason}")]
    InvalidValue {
        origin: Origin,
        value: String,
        reason: Reason,
    },

    /// The same setting given as a flag and as an environment variable (etcd refuses this).
    #[error(
        "conflicting environment variable {0:?} is shadowed by corresponding command-line flag \
         (either unset environment variable or disable flag)"
    )]
    EnvShadowedByFlag(String),

    /// The config file cannot be read.
    #[error("cannot read config file {}: {source}", path.display())]
    ConfigFileUnreadable {
        path: PathBuf,
        source: std::io::Error,
    },

    /// The config file is not YAML, or not a mapping of etcd's keys.
    #[error("config file {}: {reason}", path.display())]
    ConfigFileMalformed { path: PathBuf, reason: String },

    /// A config-file key that no etcd version defines (etcd ignores it; a typo here would
    /// otherwise silently leave a default in force).
    #[error("config file {}: unknown key {key:?}", path.display())]
    UnknownConfigKey { path: PathBuf, key: String },

    /// A setting etcd accepts that basalt cannot honour with this value.
    #[error("{origin} set to {value:?}: {why}")]
    Unsupported {
        origin: Origin,
        value: String,
        why: &'static str,
    },

    /// `--heartbeat-interval=0`.
    #[error("--heartbeat-interval must be >0 (set to {0}ms)")]
    HeartbeatZero(u64),

    /// `--election-timeout=0`.
    #[error("--election-timeout must be >0 (set to {0}ms)")]
    ElectionTimeoutZero(u64),

    /// raft needs several heartbeats per election timeout (etcd's rule: at least 5).
    #[error(
        "--election-timeout[{election_ms}ms] should be at least as 5 times as \
         --heartbeat-interval[{heartbeat_ms}ms]"
    )]
    ElectionTimeoutTooShort { election_ms: u64, heartbeat_ms: u64 },

    /// etcd's upper bound on the election timeout.
    #[error("--election-timeout[{0}ms] is too long, and should be set less than 50000ms")]
    ElectionTimeoutTooLong(u64),

    /// `--listen-client-urls` set without saying what to advertise.
    #[error("--advertise-client-urls is required when --listen-client-urls is set explicitly")]
    AdvertiseClientUrlsRequired,

    /// A listen URL whose host is a name other than `localhost`.
    #[error("expected IP in URL for binding ({0})")]
    BindUrlNotIp(String),

    /// An advertised URL with no host.
    #[error("--{flag} {urls:?} must be \"host:port\" (unexpected empty host ({url}))")]
    AdvertiseUrlEmptyHost {
        flag: &'static str,
        urls: String,
        url: String,
    },

    /// `--auto-compaction-retention` that does not fit its mode.
    #[error(
        "invalid --auto-compaction-retention {value:?} for --auto-compaction-mode={mode}: {reason}"
    )]
    BadCompactionRetention {
        mode: &'static str,
        value: String,
        reason: Reason,
    },

    /// A TLS listener without its certificate, or half a certificate/key pair.
    #[error("{0}")]
    TlsIncomplete(String),

    /// `experimental-enable-lease-checkpoint-persist` without checkpoints.
    #[error(
        "setting experimental-enable-lease-checkpoint-persist requires \
         experimental-enable-lease-checkpoint"
    )]
    LeaseCheckpointPersistWithoutCheckpoint,

    /// This member's `--name` is missing from `--initial-cluster`.
    #[error("couldn't find local name {0:?} in the initial cluster configuration")]
    LocalMemberMissing(String),

    /// `--initial-cluster` lists URLs for this member that it does not advertise, or the reverse.
    #[error("{0}")]
    AdvertisedPeerUrlsMismatch(String),

    /// Two members (or one member twice) share a peer URL.
    #[error("initial cluster {0} has duplicate url")]
    DuplicatePeerUrl(String),

    /// No `--initial-cluster` at all.
    #[error("initial cluster unset and no discovery URL found")]
    InitialClusterEmpty,

    /// Two members hash to the same ID (same URLs and token).
    #[error("member exists with identical ID {0}")]
    DuplicateMemberId(String),

    /// A member hashes to 0, which raft reserves for "no node" (etcd refuses it too).
    #[error("cannot use 0 as member id (member {0:?})")]
    ReservedMemberId(String),
}

impl ConfigError {
    /// The process exit status etcd uses for this kind of error.
    pub fn exit_code(&self) -> i32 {
        match self {
            ConfigError::UnknownFlag(_)
            | ConfigError::MissingArgument(_)
            | ConfigError::BadFlagSyntax(_) => 2,
            ConfigError::InvalidValue {
                origin: Origin::Flag(_),
                ..
            } => 2,
            _ => 1,
        }
    }

    /// Whether the message should be followed by a pointer to `--help`, as etcd does.
    pub fn is_usage_error(&self) -> bool {
        self.exit_code() == 2
    }
}
