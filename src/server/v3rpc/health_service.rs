//! etcd's `/health` (its `etcdhttp` health handler, 3.5): `{"health":"false"}` with status 503
//! when an alarm is raised that `?exclude=` does not name, when there is no leader, or when a
//! one-key read fails; the read is linearizable unless `?serializable=true` (what kubeadm's
//! liveness probe asks for: the member itself, not the cluster).

use basalt_engine::RangeRequest;
use basalt_net::proto::etcdserverpb::AlarmType;
use basalt_net::{etcd_http, Http1Request, Http1Response};

use crate::server::member::owner_op::{GetClusterState, GetRaftStatus};
use crate::server::routing::gateway::Gateway;

/// Answers one `/health` request.
pub async fn health(gateway: &Gateway, request: &Http1Request) -> Http1Response {
    if request.method != "GET" {
        return Http1Response::text(405, "Method Not Allowed\n");
    }
    let (excluded, serializable) = health_query(&request.target);
    match check(gateway, &excluded, serializable).await {
        Ok(()) => Http1Response::json(etcd_http::health_body(true, "")),
        // etcd answers with Go's http.Error: the JSON as text, a newline, status 503.
        Err(reason) => {
            Http1Response::text(503, format!("{}\n", etcd_http::health_body(false, &reason)))
        }
    }
}

/// The alarms `?exclude=` names (it may repeat) and whether `?serializable=true` was given
/// (Go's `Query().Get`: the first value counts).
fn health_query(target: &str) -> (Vec<String>, bool) {
    let query = target.split_once('?').map_or("", |(_, query)| query);
    let (mut excluded, mut serializable) = (Vec::new(), None);
    for (name, value) in query.split('&').filter_map(|pair| pair.split_once('=')) {
        match name {
            "exclude" if !value.is_empty() => excluded.push(value.to_string()),
            "serializable" => {
                serializable.get_or_insert(value == "true");
            }
            _ => {}
        }
    }
    (excluded, serializable.unwrap_or(false))
}

/// etcd's checks, in its order; the reason on failure.
async fn check(gateway: &Gateway, excluded: &[String], serializable: bool) -> Result<(), String> {
    let range_error = |message: &str| format!("RANGE ERROR:{message}");
    let cluster = gateway
        .call(GetClusterState)
        .await
        .map_err(|status| range_error(&status.message))?;
    for raised in cluster.alarms.get(AlarmType::None as i32) {
        let name = AlarmType::try_from(raised.alarm).map_or("UNKNOWN", |alarm| alarm.as_str_name());
        if excluded.iter().any(|excluded| excluded == name) {
            continue;
        }
        return Err(match name {
            "NOSPACE" => "ALARM NOSPACE",
            "CORRUPT" => "ALARM CORRUPT",
            _ => "ALARM UNKNOWN",
        }
        .to_string());
    }
    if !serializable {
        let raft = gateway
            .call(GetRaftStatus)
            .await
            .map_err(|status| range_error(&status.message))?;
        if raft.leader == 0 {
            return Err("RAFT NO LEADER".to_string());
        }
        gateway
            .wait_linearizable()
            .await
            .map_err(|status| range_error(&status.message))?;
    }
    // One key, keys only: the read path works, at no cost whatever the key space holds.
    gateway
        .engine()
        .read()
        .and_then(|view| {
            view.range(&RangeRequest {
                key: b"health".to_vec(),
                keys_only: true,
                ..Default::default()
            })
        })
        .map(|_| ())
        .map_err(|error| range_error(&error.to_string()))
}

#[cfg(test)]
mod tests {
    use super::health_query;

    #[test]
    fn exclude_repeats_and_serializable_takes_the_first_value() {
        assert_eq!(health_query("/health"), (vec![], false));
        assert_eq!(
            health_query("/health?exclude=NOSPACE&serializable=true"),
            (vec!["NOSPACE".to_string()], true)
        );
        assert_eq!(
            health_query("/health?exclude=NOSPACE&exclude=CORRUPT&exclude="),
            (vec!["NOSPACE".to_string(), "CORRUPT".to_string()], false)
        );
        assert_eq!(
            health_query("/health?serializable=false&serializable=true"),
            (vec![], false)
        );
    }
}
