//! The events prefix watch (with prev_kv) that kube-apiserver's watch cache keeps open, from
//! the revision before the first write; it records this run's events for the verifier.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use etcd_client::{Client, EventType, WatchOptions};
use tokio::sync::{oneshot, watch};

use super::history::WatchedEvent;
use super::objects::{belongs_to_run, EVENTS_PREFIX};

/// Events kept for the verifier; past this the watcher stops recording and says so.
const EVENTS_LIMIT: usize = 5_000_000;

/// What the watcher hands back when stopped.
pub struct WatchRecord {
    pub events: Vec<WatchedEvent>,
    pub failure: Option<String>,
}

/// Watches the events prefix from `start_revision` until `stop` turns true. `ready` fires once
/// the server confirmed the watch; `seen_revision` follows the newest revision delivered.
pub async fn run_watcher(
    mut client: Client,
    run_id: String,
    start_revision: i64,
    ready: oneshot::Sender<Result<(), String>>,
    seen_revision: Arc<AtomicI64>,
    mut stop: watch::Receiver<bool>,
) -> WatchRecord {
    let options = WatchOptions::new()
        .with_prefix()
        .with_prev_key()
        .with_start_revision(start_revision);
    let mut record = WatchRecord {
        events: Vec::new(),
        failure: None,
    };
    let mut stream = match client.watch(EVENTS_PREFIX, Some(options)).await {
        Ok(stream) => stream,
        Err(error) => {
            let _ = ready.send(Err(format!("cannot watch {EVENTS_PREFIX}: {error}")));
            record.failure = Some(error.to_string());
            return record;
        }
    };
    let mut ready = Some(ready);
    loop {
        let message = tokio::select! {
            message = stream.message() => message,
            _ = stop.wait_for(|stopped| *stopped) => break,
        };
        let response = match message {
            Ok(Some(response)) => response,
            Ok(None) => {
                record.failure = Some("watch stream closed by the server".into());
                break;
            }
            Err(error) => {
                record.failure = Some(format!("watch stream failed: {error}"));
                break;
            }
        };
        if response.created() {
            if let Some(ready) = ready.take() {
                let _ = ready.send(Ok(()));
            }
        }
        if response.canceled() {
            record.failure = Some(format!(
                "watch canceled: {} (compact revision {})",
                response.cancel_reason(),
                response.compact_revision()
            ));
            break;
        }
        for event in response.events() {
            let Some(kv) = event.kv() else { continue };
            if event.event_type() != EventType::Put || !belongs_to_run(kv.key(), &run_id) {
                continue;
            }
            if record.events.len() >= EVENTS_LIMIT {
                record.failure = Some(format!("more than {EVENTS_LIMIT} events: stopped"));
                break;
            }
            record.events.push(WatchedEvent {
                key: String::from_utf8_lossy(kv.key()).into_owned(),
                mod_revision: kv.mod_revision(),
                prev_mod_revision: event.prev_kv().map(|prev| prev.mod_revision()),
            });
            seen_revision.fetch_max(kv.mod_revision(), Ordering::Relaxed);
        }
        if record.failure.is_some() {
            break;
        }
    }
    if let Some(ready) = ready.take() {
        let _ = ready
            .send(Err(record.failure.clone().unwrap_or_else(|| {
                "watch ended before it was created".into()
            })));
    }
    record
}
