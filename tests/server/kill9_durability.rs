//! Nothing acknowledged is lost to `kill -9`: many concurrent clients (the real etcd-client
//! crate) write unique keys; the member is killed with SIGKILL while writes are in flight,
//! restarted on the same data directory, and every acknowledged write must be there with the
//! revision its acknowledgement carried.

use crate::support;

use std::time::{Duration, Instant};

use etcd_client::Client;
use support::Basalt;

const WRITERS: usize = 64;
const CONNECTIONS: usize = 8;

#[test]
fn every_acknowledged_write_survives_kill_9_mid_load() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    let endpoint = basalt.endpoint();
    let load = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let mut clients = Vec::new();
            for _ in 0..CONNECTIONS {
                clients.push(
                    Client::connect([endpoint.as_str()], None)
                        .await
                        .expect("connect"),
                );
            }
            let mut tasks = Vec::new();
            for writer in 0..WRITERS {
                let mut client = clients[writer % CONNECTIONS].clone();
                tasks.push(tokio::spawn(async move {
                    let mut acknowledged = Vec::new();
                    let deadline = Instant::now() + Duration::from_secs(30);
                    for n in 0u64.. {
                        let (key, value) = (
                            format!("w{writer:02}/{n:06}"),
                            format!("value {writer} {n}"),
                        );
                        // A killed member never answers in-flight calls; the client would wait to
                        // reconnect forever, so an unanswered put ends the writer (unacknowledged).
                        let put = client.put(key.as_str(), value.as_str(), None);
                        match tokio::time::timeout(Duration::from_secs(2), put).await {
                            Ok(Ok(response)) => {
                                let revision = response.header().expect("header").revision();
                                acknowledged.push((key, value, revision));
                            }
                            Ok(Err(_)) | Err(_) => break, // the member is gone
                        }
                        assert!(Instant::now() < deadline, "the member was never killed");
                    }
                    acknowledged
                }));
            }
            let mut all = Vec::new();
            for task in tasks {
                all.extend(task.await.expect("writer task"));
            }
            all
        })
    });
    // Let the load run, then kill the member in the middle of it.
    std::thread::sleep(Duration::from_millis(1500));
    let (data_dir, port) = basalt.kill_9();
    eprintln!("killed");
    let acknowledged = load.join().expect("load thread");
    eprintln!("load ended with {} acknowledged", acknowledged.len());
    assert!(
        acknowledged.len() > 200,
        "too few writes before the kill ({})",
        acknowledged.len()
    );
    let mut revisions: Vec<i64> = acknowledged
        .iter()
        .map(|(_, _, revision)| *revision)
        .collect();
    revisions.sort_unstable();
    revisions.dedup();
    assert_eq!(
        revisions.len(),
        acknowledged.len(),
        "every acknowledged put got its own revision"
    );

    let basalt = Basalt::start_with(data_dir, port);
    eprintln!("restarted");
    let endpoint = basalt.endpoint();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        let mut client = Client::connect([endpoint.as_str()], None)
            .await
            .expect("connect after restart");
        for (key, value, revision) in &acknowledged {
            let response = client
                .get(key.as_str(), None)
                .await
                .expect("get after restart");
            let kv = response
                .kvs()
                .first()
                .unwrap_or_else(|| panic!("acknowledged key {key} is gone"));
            assert_eq!(kv.value(), value.as_bytes(), "{key}");
            assert_eq!(
                kv.mod_revision(),
                *revision,
                "{key} has another revision than acknowledged"
            );
        }
        // The member keeps serving writes after the restart, above every earlier revision.
        let response = client
            .put("after-restart", "ok", None)
            .await
            .expect("put after restart");
        assert!(response.header().unwrap().revision() > *revisions.last().unwrap());
    });
}
