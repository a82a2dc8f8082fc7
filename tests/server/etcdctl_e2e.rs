//! Debian's etcdctl 3.4 against the real `basalt` binary: what an operator types must work and
//! print what it prints against etcd.

use crate::support;

use support::Basalt;

#[test]
fn put_get_and_its_variants_behave_as_on_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    assert_eq!(basalt.ok(&["put", "a", "1"]).trim(), "OK");
    basalt.ok(&["put", "b", "2"]);
    basalt.ok(&["put", "c", "3"]);
    basalt.ok(&["put", "b", "22"]);

    assert_eq!(basalt.ok(&["get", "b"]), "b\n22\n");
    assert_eq!(
        basalt.ok(&["get", "", "--prefix", "--keys-only"]),
        "a\n\nb\n\nc\n\n"
    );
    assert_eq!(
        basalt.ok(&["get", "b", "--from-key", "--keys-only"]),
        "b\n\nc\n\n"
    );
    assert_eq!(
        basalt.ok(&["get", "", "--prefix", "--limit", "2", "--keys-only"]),
        "a\n\nb\n\n"
    );
    // A fresh store is at revision 1, as etcd's: the puts above got revisions 2 to 5.
    assert_eq!(basalt.ok(&["get", "b", "--rev", "3"]), "b\n2\n");
    assert_eq!(
        basalt.ok(&[
            "get",
            "",
            "--prefix",
            "--sort-by",
            "MODIFY",
            "--order",
            "DESCEND",
            "--keys-only"
        ]),
        "b\n\nc\n\na\n\n"
    );
    let fields = basalt.ok(&["get", "", "--prefix", "-w", "fields"]);
    assert!(fields.contains("\"Count\" : 3"), "{fields}");

    let json: serde_json::Value =
        serde_json::from_str(&basalt.ok(&["get", "b", "-w", "json"])).unwrap();
    assert_eq!(json["header"]["revision"], 5);
    assert!(json["header"]["member_id"].as_u64().is_some());
    let kv = &json["kvs"][0];
    assert_eq!(kv["key"], "Yg=="); // base64("b")
    assert_eq!(kv["value"], "MjI="); // base64("22")
    assert_eq!(
        (
            kv["create_revision"].as_i64(),
            kv["mod_revision"].as_i64(),
            kv["version"].as_i64()
        ),
        (Some(3), Some(5), Some(2))
    );
}

#[test]
fn delete_txn_and_compaction_behave_as_on_etcd() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    for key in ["k1", "k2", "k3"] {
        basalt.ok(&["put", key, "v"]);
    }
    assert_eq!(basalt.ok(&["del", "k2"]).trim(), "1");
    assert_eq!(
        basalt.ok(&["del", "k", "--prefix", "--prev-kv"]),
        "2\nk1\nv\nk3\nv\n"
    );

    basalt.ok(&["put", "flag", "on"]);
    // The interactive txn form: compares, blank line, success ops, blank line, failure ops.
    let output = basalt.etcdctl(
        &["txn"],
        "value(\"flag\") = \"on\"\n\nput result yes\n\nput result no\n\n",
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "SUCCESS\n\nOK\n");
    assert_eq!(basalt.ok(&["get", "result", "--print-value-only"]), "yes\n");
    let output = basalt.etcdctl(
        &["txn"],
        "value(\"flag\") = \"off\"\n\nput result yes\n\nput result no\n\n",
    );
    assert_eq!(String::from_utf8_lossy(&output.stdout), "FAILURE\n\nOK\n");
    assert_eq!(basalt.ok(&["get", "result", "--print-value-only"]), "no\n");

    let revision: i64 = {
        let json: serde_json::Value =
            serde_json::from_str(&basalt.ok(&["get", "flag", "-w", "json"])).unwrap();
        json["header"]["revision"].as_i64().unwrap()
    };
    assert_eq!(
        basalt.ok(&["compaction", &revision.to_string()]).trim(),
        format!("compacted revision {revision}")
    );
    let error = basalt.fails(&["get", "flag", "--rev", "2"]);
    assert!(
        error.contains("etcdserver: mvcc: required revision has been compacted"),
        "{error}"
    );
    let error = basalt.fails(&["get", "flag", "--rev", "1000"]);
    assert!(
        error.contains("etcdserver: mvcc: required revision is a future revision"),
        "{error}"
    );
    let error = basalt.fails(&["put", "", "x"]);
    assert!(error.contains("etcdserver: key is not provided"), "{error}");
}

#[test]
fn status_health_and_member_list_describe_the_member() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    basalt.ok(&["put", "x", "y"]);
    // etcdctl 3.4 prints the health verdict on stderr.
    let health = basalt.etcdctl(&["endpoint", "health"], "");
    assert!(health.status.success());
    let verdict = String::from_utf8_lossy(&health.stderr);
    assert!(
        verdict.contains("is healthy: successfully committed proposal"),
        "{verdict}"
    );
    let status: serde_json::Value =
        serde_json::from_str(&basalt.ok(&["endpoint", "status", "-w", "json"])).unwrap();
    let status = &status[0]["Status"];
    assert!(status["version"].as_str().unwrap().starts_with("3.5."));
    assert_eq!(
        status["leader"], status["header"]["member_id"],
        "a single member leads itself"
    );
    assert!(status["raftIndex"].as_u64().unwrap() >= 2, "{status}");
    let members = basalt.ok(&["member", "list"]);
    assert!(
        members.contains(&format!("http://127.0.0.1:{}", basalt.port)),
        "{members}"
    );
    assert!(members.contains("started, default,"), "{members}");
}

/// `etcdctl check perf --load=s`: 60 s of 50 clients writing; etcdctl itself judges throughput,
/// the slowest request and the spread, and prints PASS or FAIL for each.
#[test]
fn check_perf_small_load_passes() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    let output = basalt.etcdctl_within(
        &["check", "perf", "--load=s"],
        "",
        std::time::Duration::from_secs(120),
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert_eq!(text.matches("PASS").count(), 4, "{text}");
    assert!(!text.contains("FAIL"), "{text}");
}
