//! `--auto-compaction-mode=periodic --auto-compaction-retention=2s`: the member compacts by
//! itself, keeping about the last retention's worth of history, as etcd does.

use crate::support;

use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions};
use support::{assert_status, free_port, Basalt};

#[test]
fn periodic_auto_compaction_drops_history_older_than_the_retention() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start_with_flags(
        dir.path().join("data"),
        free_port(),
        &[
            "--auto-compaction-mode",
            "periodic",
            "--auto-compaction-retention",
            "2s",
        ],
    );
    let endpoint = basalt.endpoint();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client = Client::connect([endpoint.as_str()], None).await.unwrap();
        let first = client.put("k", "v0", None).await.unwrap();
        let first_revision = first.header().unwrap().revision();
        // Keep writing so there is history to compact; wait (bounded) for the member to
        // compact past the first revision by itself.
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut n = 1;
        loop {
            client.put("k", format!("v{n}"), None).await.unwrap();
            n += 1;
            let old = client
                .get("k", Some(GetOptions::new().with_revision(first_revision)))
                .await;
            if old.is_err() {
                assert_status(
                    old,
                    "OutOfRange",
                    "etcdserver: mvcc: required revision has been compacted",
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no automatic compaction within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // It keeps about a retention of history: the latest revision is readable, and a
        // revision written just now is not compacted.
        let latest = client.get("k", None).await.unwrap();
        let revision = latest.header().unwrap().revision();
        let recent = client
            .get("k", Some(GetOptions::new().with_revision(revision)))
            .await
            .unwrap();
        assert_eq!(recent.kvs()[0].value(), format!("v{}", n - 1).as_bytes());
    });
}
