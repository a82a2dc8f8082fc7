//! Maintenance.Defragment: after deletes and a compaction the database file shrinks, nothing
//! that remains is lost, writes go on while it runs, and etcdctl's `defrag` is satisfied.

use crate::support;

use etcd_client::{Client, CompactionOptions, DeleteOptions, GetOptions};
use support::Basalt;

const KEYS: usize = 4000;
const VALUE_BYTES: usize = 1024;

#[test]
fn defragment_shrinks_the_file_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    let endpoint = basalt.endpoint();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let mut client = Client::connect([endpoint.as_str()], None).await.unwrap();
        let value = vec![b'v'; VALUE_BYTES];
        for n in 0..KEYS {
            client
                .put(format!("gone/{n:05}"), value.clone(), None)
                .await
                .unwrap();
        }
        client.put("kept", "still here", None).await.unwrap();
        let deleted = client
            .delete("gone/", Some(DeleteOptions::new().with_prefix()))
            .await
            .unwrap();
        assert_eq!(deleted.deleted(), KEYS as i64);
        let revision = deleted.header().unwrap().revision();
        client
            .compact(revision, Some(CompactionOptions::new().with_physical()))
            .await
            .unwrap();
        let before = client.status().await.unwrap().db_size();

        // Writes go on while the defragmentation runs.
        let mut writer = client.clone();
        let writes = tokio::spawn(async move {
            for n in 0..200 {
                writer
                    .put(format!("during/{n:03}"), "w", None)
                    .await
                    .unwrap();
            }
        });
        client.defragment().await.expect("defragment");
        writes.await.unwrap();

        let after = client.status().await.unwrap().db_size();
        assert!(
            after * 2 < before,
            "the file did not shrink enough: {before} → {after} bytes"
        );
        let kept = client.get("kept", None).await.unwrap();
        assert_eq!(kept.kvs()[0].value(), b"still here");
        let during = client
            .get(
                "during/",
                Some(GetOptions::new().with_prefix().with_count_only()),
            )
            .await
            .unwrap();
        assert_eq!(during.count(), 200);
        let gone = client
            .get(
                "gone/",
                Some(GetOptions::new().with_prefix().with_count_only()),
            )
            .await
            .unwrap();
        assert_eq!(gone.count(), 0);
    });
    // etcdctl 3.4 prints etcd's line on success.
    let output = basalt.ok(&["defrag"]);
    assert!(
        output.starts_with("Finished defragmenting etcd member["),
        "{output}"
    );
}
