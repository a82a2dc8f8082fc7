//! etcd's `/livez` and `/readyz` probes (3.5.11 and later): named checks, each a line
//! `[+]name ok` or `[-]name failed: reason`; 200 with `ok` when all pass (the lines too under
//! `?verbose`), 503 with the lines when one fails. `?exclude=name` skips a check on the root
//! path, and `/livez/<name>` or `/readyz/<name>` runs one check alone.
//!
//! `/livez` asks whether the process serves at all (a local read); `/readyz` whether it may take
//! traffic (no CORRUPT alarm, local and linearizable reads work, not a learner).

use std::fmt::Write as _;

use basalt_engine::RangeRequest;
use basalt_net::proto::etcdserverpb::AlarmType;
use basalt_net::{Http1Request, Http1Response};

use crate::server::member::owner_op::{GetClusterState, GetRaftStatus};
use crate::server::routing::gateway::Gateway;

/// Which probe a path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Probe {
    Livez,
    Readyz,
}

/// One named check of a probe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Check {
    DataCorruption,
    SerializableRead,
    LinearizableRead,
    NonLearner,
}

impl Probe {
    /// The checks the probe's root path runs, in the order its lines list them.
    fn checks(self) -> &'static [Check] {
        match self {
            Probe::Livez => &[Check::SerializableRead],
            Probe::Readyz => &[
                Check::DataCorruption,
                Check::SerializableRead,
                Check::LinearizableRead,
                Check::NonLearner,
            ],
        }
    }
}

impl Check {
    fn name(self) -> &'static str {
        match self {
            Check::DataCorruption => "data_corruption",
            Check::SerializableRead => "serializable_read",
            Check::LinearizableRead => "linearizable_read",
            Check::NonLearner => "non_learner",
        }
    }

    /// Runs the check; the reason it failed.
    async fn run(self, gateway: &Gateway) -> Result<(), String> {
        match self {
            Check::DataCorruption => {
                let cluster = gateway
                    .call(GetClusterState)
                    .await
                    .map_err(|status| status.message)?;
                let corrupt = AlarmType::Corrupt as i32;
                if cluster
                    .alarms
                    .get(AlarmType::None as i32)
                    .iter()
                    .any(|raised| raised.alarm == corrupt)
                {
                    return Err("alarm activated: CORRUPT".to_string());
                }
                Ok(())
            }
            Check::SerializableRead => local_read(gateway),
            Check::LinearizableRead => {
                gateway
                    .wait_linearizable()
                    .await
                    .map_err(|status| status.message)?;
                local_read(gateway)
            }
            Check::NonLearner => {
                let raft = gateway
                    .call(GetRaftStatus)
                    .await
                    .map_err(|status| status.message)?;
                if raft.is_learner {
                    return Err("not supported for learner".to_string());
                }
                Ok(())
            }
        }
    }
}

/// Whether `path` is a probe path this module answers.
pub fn serves(path: &str) -> bool {
    parse_path(path).is_some()
}

/// Answers one probe request (`serves(request.path())` must hold).
pub async fn answer(gateway: &Gateway, request: &Http1Request) -> Http1Response {
    let Some((probe, single)) = parse_path(request.path()) else {
        return Http1Response::not_found();
    };
    if request.method != "GET" {
        return Http1Response::text(405, "Method Not Allowed\n");
    }
    let query = Query::parse(&request.target);
    let checks: Vec<Check> = match single {
        Some(check) => vec![check],
        None => probe
            .checks()
            .iter()
            .copied()
            .filter(|check| !query.excluded.iter().any(|name| name == check.name()))
            .collect(),
    };
    let mut lines = String::new();
    let mut failed = false;
    for check in checks {
        match check.run(gateway).await {
            Ok(()) => {
                let _ = writeln!(lines, "[+]{} ok", check.name());
            }
            Err(reason) => {
                failed = true;
                let _ = writeln!(lines, "[-]{} failed: {reason}", check.name());
            }
        }
    }
    if failed {
        // Go's http.Error: the text and a newline.
        lines.push('\n');
        return Http1Response::text(503, lines);
    }
    if !query.verbose {
        lines.clear();
    }
    lines.push_str("ok\n");
    Http1Response::text(200, lines)
}

/// A one-key, keys-only read of this member's engine: the read path works whatever the key space
/// holds.
fn local_read(gateway: &Gateway) -> Result<(), String> {
    gateway
        .engine()
        .read()
        .and_then(|view| {
            view.range(&RangeRequest {
                key: b"readyz".to_vec(),
                keys_only: true,
                limit: 1,
                ..Default::default()
            })
        })
        .map(|_| ())
        .map_err(|error| error.to_string())
}

/// The probe and, on a sub path, the one check it names.
fn parse_path(path: &str) -> Option<(Probe, Option<Check>)> {
    let (probe, rest) = if let Some(rest) = path.strip_prefix("/livez") {
        (Probe::Livez, rest)
    } else {
        (Probe::Readyz, path.strip_prefix("/readyz")?)
    };
    if rest.is_empty() {
        return Some((probe, None));
    }
    let name = rest.strip_prefix('/')?;
    let check = probe.checks().iter().find(|check| check.name() == name)?;
    Some((probe, Some(*check)))
}

/// The query parameters a probe reads.
struct Query {
    excluded: Vec<String>,
    verbose: bool,
}

impl Query {
    fn parse(target: &str) -> Query {
        let query = target.split_once('?').map_or("", |(_, query)| query);
        let mut parsed = Query {
            excluded: Vec::new(),
            verbose: false,
        };
        for pair in query.split('&').filter(|pair| !pair.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "exclude" if !value.is_empty() => parsed.excluded.push(value.to_string()),
                // Go checks the key's presence: `?verbose` and `?verbose=false` both count.
                "verbose" => parsed.verbose = true,
                _ => {}
            }
        }
        parsed
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_path, Check, Probe, Query};

    #[test]
    fn paths_name_a_probe_or_one_of_its_checks() {
        assert_eq!(parse_path("/livez"), Some((Probe::Livez, None)));
        assert_eq!(parse_path("/readyz"), Some((Probe::Readyz, None)));
        assert_eq!(
            parse_path("/readyz/linearizable_read"),
            Some((Probe::Readyz, Some(Check::LinearizableRead)))
        );
        assert_eq!(
            parse_path("/livez/serializable_read"),
            Some((Probe::Livez, Some(Check::SerializableRead)))
        );
        // A check of the other probe, an unknown check, a trailing slash, a longer word.
        assert_eq!(parse_path("/livez/linearizable_read"), None);
        assert_eq!(parse_path("/readyz/nope"), None);
        assert_eq!(parse_path("/readyz/"), None);
        assert_eq!(parse_path("/livezz"), None);
        assert_eq!(parse_path("/health"), None);
    }

    #[test]
    fn query_collects_exclusions_and_verbose_by_presence() {
        let query = Query::parse("/readyz?exclude=non_learner&verbose&exclude=&exclude=x");
        assert_eq!(query.excluded, vec!["non_learner", "x"]);
        assert!(query.verbose);
        assert!(!Query::parse("/readyz").verbose);
        assert!(Query::parse("/readyz?verbose=false").verbose);
    }
}
