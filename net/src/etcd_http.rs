//! The bodies of etcd's plain-HTTP endpoints, byte for byte as etcd 3.5 writes them, so
//! scripts and load balancers that probe etcd probe us the same way.

/// etcd 3.5's `/health` body: `{"health":"true","reason":""}` (reason set when unhealthy).
pub fn health_body(healthy: bool, reason: &str) -> String {
    format!(
        r#"{{"health":"{}","reason":"{}"}}"#,
        healthy,
        json_escape(reason)
    )
}

/// etcd's `/version` body: `{"etcdserver":"3.5.x","etcdcluster":"3.5.0"}`.
pub fn version_body(server_version: &str, cluster_version: &str) -> String {
    format!(
        r#"{{"etcdserver":"{}","etcdcluster":"{}"}}"#,
        json_escape(server_version),
        json_escape(cluster_version)
    )
}

fn json_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for character in text.chars() {
        match character {
            '"' => escaped.push_str("\\\""),
            '\\' => escaped.push_str("\\\\"),
            c if (c as u32) < 0x20 => escaped.push_str(&format!("\\u{:04x}", c as u32)),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_match_etcd() {
        assert_eq!(health_body(true, ""), r#"{"health":"true","reason":""}"#);
        assert_eq!(
            health_body(false, "RAFT NO LEADER"),
            r#"{"health":"false","reason":"RAFT NO LEADER"}"#
        );
        assert_eq!(
            version_body("3.5.17", "3.5.0"),
            r#"{"etcdserver":"3.5.17","etcdcluster":"3.5.0"}"#
        );
        assert_eq!(
            health_body(false, "a\"b\n"),
            r#"{"health":"false","reason":"a\"b\u000a"}"#
        );
    }
}
