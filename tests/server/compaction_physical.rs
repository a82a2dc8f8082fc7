//! A compaction removes the old revisions in the background, in bounded steps, whether writes
//! arrive or not; `physical` makes the Compact call answer only once they are gone (etcd's
//! `etcdctl compaction --physical`), so a defragment right after finds the space.

use crate::support;

use std::time::{Duration, Instant};

use etcd_client::{Client, CompactionOptions, Txn, TxnOp};
use support::with_client;

/// Writes `rounds` revisions of each of 100 keys (1 KiB values), 100 puts per txn; returns the
/// last revision.
async fn history(client: &mut Client, rounds: usize) -> i64 {
    let mut revision = 0;
    for round in 0..rounds {
        let value = vec![b'a' + (round % 26) as u8; 1024];
        let puts: Vec<TxnOp> = (0..100)
            .map(|k| TxnOp::put(format!("key/{k:03}"), value.clone(), None))
            .collect();
        let response = client.txn(Txn::new().and_then(puts)).await.unwrap();
        revision = response.header().unwrap().revision();
    }
    revision
}

async fn bytes_in_use(client: &mut Client) -> i64 {
    client.status().await.unwrap().raft_used_db_size()
}

#[test]
fn a_physical_compaction_answers_once_the_old_revisions_are_gone() {
    with_client(|mut client| async move {
        let revision = history(&mut client, 100).await;
        let before = bytes_in_use(&mut client).await;
        client
            .compact(revision, Some(CompactionOptions::new().with_physical()))
            .await
            .unwrap();
        // 10,000 revisions of 1 KiB were in use; the newest 100 remain.
        let after = bytes_in_use(&mut client).await;
        assert!(
            after * 4 < before,
            "in use {before} bytes before the compaction, {after} right after its answer"
        );
        // The store still reads and writes.
        assert_eq!(client.get("key/042", None).await.unwrap().kvs().len(), 1);
        client.put("after", "compaction", None).await.unwrap();
    });
}

#[test]
fn a_compaction_finishes_without_further_writes() {
    with_client(|mut client| async move {
        let revision = history(&mut client, 100).await;
        let before = bytes_in_use(&mut client).await;
        client.compact(revision, None).await.unwrap();
        // No write follows: the member's compactor must still get through all of it.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let now = bytes_in_use(&mut client).await;
            if now * 4 < before {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "in use {before} bytes before the compaction, still {now} after 10 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
}
