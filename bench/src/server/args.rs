//! Flags shared by every server workload, and the `Workload` trait each subcommand implements.
//!
//! The top-level parser flattens the server subcommands, so the etcd `benchmark` "global" flags
//! (`--endpoints`, `--conns`, `--clients`, TLS, user) are accepted after the subcommand name:
//! `basalt-bench put --endpoints 127.0.0.1:2379 --conns 10 --clients 100 --total 10000`.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::time::Duration;

use super::connection::ClientPool;
use super::recorder::Outcome;

/// How to reach the cluster: the etcd `benchmark` global flags.
#[derive(clap::Args, Clone, Debug)]
pub struct ConnectionArgs {
    /// Comma-separated gRPC endpoints (host:port or http(s)://host:port).
    #[arg(long, value_delimiter = ',', default_value = "127.0.0.1:2379")]
    pub endpoints: Vec<String>,
    /// Number of gRPC connections (each one HTTP/2 connection).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub conns: u32,
    /// Number of concurrent clients; client i uses connection i mod --conns.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub clients: u32,
    /// User name, or "name:password" as etcd's benchmark accepts it.
    #[arg(long)]
    pub user: Option<String>,
    /// Password (when --user holds only the name).
    #[arg(long)]
    pub password: Option<String>,
    /// CA certificate (PEM) that signed the server's certificate; turns TLS on.
    #[arg(long)]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM) for mutual TLS.
    #[arg(long)]
    pub cert: Option<PathBuf>,
    /// Client private key (PEM) for mutual TLS.
    #[arg(long)]
    pub key: Option<PathBuf>,
    /// Time allowed to connect to the endpoints, in seconds.
    #[arg(long, default_value_t = 5)]
    pub dial_timeout: u64,
}

impl ConnectionArgs {
    /// The (name, password) pair, from "--user name:password" or "--user name --password p".
    pub fn credentials(&self) -> Result<Option<(String, String)>, String> {
        let Some(user) = &self.user else {
            return match self.password {
                Some(_) => Err("--password needs --user".into()),
                None => Ok(None),
            };
        };
        match (user.split_once(':'), &self.password) {
            (Some(_), Some(_)) => Err("give the password either in --user or --password".into()),
            (Some((name, password)), None) => Ok(Some((name.into(), password.into()))),
            (None, Some(password)) => Ok(Some((user.clone(), password.clone()))),
            (None, None) => Err("--user needs a password: --user name:password".into()),
        }
    }
}

/// Flags every workload takes besides the connection: output and comparison.
#[derive(clap::Args, Clone, Debug)]
pub struct CommonArgs {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Print a JSON object as the last stdout line (after the human table).
    #[arg(long)]
    pub json: bool,
    /// Write latency over time and the latency percentile curve to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Second endpoint set: run the same workload against both, alternating A B A B.
    #[arg(long, value_delimiter = ',', value_name = "ENDPOINTS")]
    pub vs: Option<Vec<String>>,
    /// Runs per endpoint set with --vs (alternating A B A B ...).
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub vs_rounds: u32,
    /// Threads of the load generator: tokio workers (default: one per core), or the lean
    /// client's event loops (default: one, which kept up with 100,000 requests/s here).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub threads: Option<u16>,
}

/// `--client`: which client issues a unary workload's requests.
#[derive(clap::Args, Clone, Debug)]
pub struct ClientArgs {
    /// Client that issues the requests: `lean` (the bench's minimal HTTP/2 client, least CPU
    /// per request) or `etcd-client` (the Rust etcd client). Default: lean, but etcd-client
    /// when --cacert, --cert, --key or --user is given (lean has no TLS or auth).
    #[arg(long, value_enum, value_name = "CLIENT")]
    pub client: Option<ClientKind>,
}

/// The client library a unary workload uses.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum ClientKind {
    /// The bench's own minimal HTTP/2 gRPC client.
    Lean,
    /// The etcd-client crate (tonic).
    EtcdClient,
}

impl ClientArgs {
    /// The client a run with these flags uses, or why the asked one cannot serve them.
    pub fn kind(&self, common: &CommonArgs) -> Result<ClientKind, String> {
        let connection = &common.connection;
        let tls = connection.cacert.is_some() || connection.cert.is_some();
        let lean_lacks = if tls || connection.key.is_some() {
            Some("TLS")
        } else if connection.user.is_some() {
            Some("authentication (--user)")
        } else {
            None
        };
        match (self.client, lean_lacks) {
            (Some(ClientKind::Lean), Some(what)) => Err(format!(
                "--client lean has no {what}; use --client etcd-client"
            )),
            (Some(kind), _) => Ok(kind),
            (None, Some(_)) => Ok(ClientKind::EtcdClient),
            (None, None) => Ok(ClientKind::Lean),
        }
    }
}

/// How long a closed-loop workload runs and how fast.
#[derive(clap::Args, Clone, Debug)]
pub struct LengthArgs {
    /// Total number of requests.
    #[arg(long, default_value_t = 10_000)]
    pub total: u64,
    /// Run for this many seconds instead of a fixed --total.
    #[arg(long)]
    pub seconds: Option<f64>,
    /// Maximum requests per second over all clients (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
}

/// When a closed-loop run stops.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Stop {
    /// After this many requests.
    AfterRequests(u64),
    /// After this much time.
    AfterTime(Duration),
}

impl LengthArgs {
    /// The stop condition: --seconds wins over --total when given.
    pub fn stop(&self) -> Result<Stop, String> {
        match self.seconds {
            Some(seconds) if seconds > 0.0 && seconds.is_finite() => {
                Ok(Stop::AfterTime(Duration::from_secs_f64(seconds)))
            }
            Some(seconds) => Err(format!("--seconds must be positive, got {seconds}")),
            None if self.total == 0 => Err("--total must be at least 1".into()),
            None => Ok(Stop::AfterRequests(self.total)),
        }
    }
}

/// Read consistency of a range: etcd's `--consistency l|s`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq)]
pub enum Consistency {
    /// Linearizable: goes through a ReadIndex round.
    #[value(name = "l")]
    Linearizable,
    /// Serializable: served from the member's local state.
    #[value(name = "s")]
    Serializable,
}

/// The boxed future a workload returns (object-safe async).
pub type WorkloadFuture<'a> = Pin<Box<dyn Future<Output = Result<Outcome, String>> + Send + 'a>>;

/// One server workload: its flags, its name, and how to run it once over a connection pool.
pub trait Workload: Send + Sync {
    /// The subcommand name (`put`, `k8s-events`, ...).
    fn name(&self) -> &'static str;
    /// The output and connection flags.
    fn common(&self) -> &CommonArgs;
    /// Refuses flags that cannot go together, before anything connects.
    fn check(&self) -> Result<(), String> {
        Ok(())
    }
    /// Whether the workload opens its own connections (then the pool holds one connection,
    /// only to check the endpoints answer).
    fn connects_itself(&self) -> bool {
        false
    }
    /// Runs the workload once against the pool's endpoints.
    fn run<'a>(&'a self, pool: &'a ClientPool) -> WorkloadFuture<'a>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Probe {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        length: LengthArgs,
        #[command(flatten)]
        client: ClientArgs,
    }

    fn parse(args: &[&str]) -> Probe {
        Probe::try_parse_from(std::iter::once("probe").chain(args.iter().copied())).unwrap()
    }

    // Goal: the etcd benchmark global flags parse with etcd's names and defaults.
    #[test]
    fn global_flags_have_etcd_names_and_defaults() {
        let probe = parse(&[]);
        assert_eq!(probe.common.connection.endpoints, ["127.0.0.1:2379"]);
        assert_eq!(probe.common.connection.conns, 1);
        assert_eq!(probe.common.connection.clients, 1);
        assert_eq!(probe.length.stop().unwrap(), Stop::AfterRequests(10_000));

        let probe = parse(&[
            "--endpoints=a:1,b:2",
            "--conns=10",
            "--clients",
            "100",
            "--vs",
            "c:3",
            "--json",
            "--seconds=2.5",
        ]);
        assert_eq!(probe.common.connection.endpoints, ["a:1", "b:2"]);
        assert_eq!(probe.common.connection.conns, 10);
        assert_eq!(probe.common.connection.clients, 100);
        assert_eq!(probe.common.vs.as_deref(), Some(&["c:3".to_string()][..]));
        assert!(probe.common.json);
        assert_eq!(
            probe.length.stop().unwrap(),
            Stop::AfterTime(Duration::from_millis(2500))
        );
    }

    // Goal: nonsense lengths and connection counts are refused at parse time, not at run time.
    #[test]
    fn refuses_zero_conns_and_bad_lengths() {
        let zero = Probe::try_parse_from(["probe", "--conns", "0"]);
        assert!(zero.is_err());
        assert!(parse(&["--total", "0"]).length.stop().is_err());
        assert!(parse(&["--seconds=-1"]).length.stop().is_err());
    }

    // Goal: both etcd spellings of credentials work, and ambiguous ones are refused.
    #[test]
    fn credentials_accept_both_spellings() {
        let inline = parse(&["--user", "root:secret"]).common.connection;
        assert_eq!(
            inline.credentials().unwrap(),
            Some(("root".into(), "secret".into()))
        );
        let split = parse(&["--user", "root", "--password", "pw"])
            .common
            .connection;
        assert_eq!(
            split.credentials().unwrap(),
            Some(("root".into(), "pw".into()))
        );
        assert!(parse(&["--user", "root"])
            .common
            .connection
            .credentials()
            .is_err());
        assert!(parse(&["--user", "a:b", "--password", "c"])
            .common
            .connection
            .credentials()
            .is_err());
        assert_eq!(parse(&[]).common.connection.credentials().unwrap(), None);
    }

    // Goal: lean is the default client, TLS and auth fall back to etcd-client silently, and
    // asking for lean with them is refused with a message that names the way out.
    #[test]
    fn client_choice_defaults_to_lean_and_refuses_what_lean_lacks() {
        let kind = |args: &[&str]| {
            let probe = parse(args);
            probe.client.kind(&probe.common)
        };
        assert_eq!(kind(&[]), Ok(ClientKind::Lean));
        assert_eq!(kind(&["--rate", "100"]), Ok(ClientKind::Lean));
        assert_eq!(
            kind(&["--client", "etcd-client"]),
            Ok(ClientKind::EtcdClient)
        );
        assert_eq!(kind(&["--cacert", "ca.pem"]), Ok(ClientKind::EtcdClient));
        assert_eq!(kind(&["--user", "root:pw"]), Ok(ClientKind::EtcdClient));
        let refused = kind(&["--client", "lean", "--cert", "c.pem", "--key", "k.pem"]);
        assert!(refused.unwrap_err().contains("--client etcd-client"));
        assert!(kind(&["--client", "lean", "--user", "root:pw"]).is_err());
    }
}
