//! The read side of an events cluster besides the watch: paginated LISTs (limit 500, later
//! pages at the first page's revision, as kube-apiserver's continue tokens do), count-only
//! ranges over the prefix, and the periodic compaction.

use std::sync::Arc;
use std::time::{Duration, Instant};

use etcd_client::{Client, GetOptions};
use tokio::sync::watch;

use super::history::ListSnapshot;
use super::objects::{belongs_to_run, prefix_end, EVENTS_PREFIX};
use crate::server::recorder::Recorder;

/// LIST snapshots kept for the verifier.
const LISTS_LIMIT: usize = 1000;
/// Pages one LIST may take (a guard against a server that never says "no more").
const PAGES_PER_LIST_LIMIT: usize = 100_000;

/// What the readers hand back when stopped.
#[derive(Default)]
pub struct ReadRecord {
    pub lists: Vec<ListSnapshot>,
    /// LISTs whose revision was compacted mid-way (kube answers 410 Gone).
    pub lists_expired: u64,
    pub counts: Vec<i64>,
    pub compactions: u64,
}

/// One paginated LIST of the events prefix; `None` when it expired through compaction.
async fn list_once(
    client: &mut Client,
    page_limit: i64,
    run_id: &str,
    pages: &Recorder,
) -> Result<Option<ListSnapshot>, etcd_client::Error> {
    let mut start = EVENTS_PREFIX.as_bytes().to_vec();
    let mut revision = 0;
    let mut items = Vec::new();
    for _ in 0..PAGES_PER_LIST_LIMIT {
        let mut options = GetOptions::new()
            .with_range(prefix_end())
            .with_limit(page_limit);
        if revision > 0 {
            options = options.with_revision(revision);
        }
        let sent = Instant::now();
        let response = match client.get(start.clone(), Some(options)).await {
            Ok(response) => response,
            Err(error) if error.to_string().contains("compacted") => return Ok(None),
            Err(error) => return Err(error),
        };
        pages.success(sent.elapsed());
        if revision == 0 {
            revision = response.header().map_or(0, |header| header.revision());
        }
        for kv in response.kvs() {
            if belongs_to_run(kv.key(), run_id) {
                items.push((
                    String::from_utf8_lossy(kv.key()).into_owned(),
                    kv.mod_revision(),
                ));
            }
        }
        match response.kvs().last() {
            Some(last) if response.more() => {
                start = last.key().to_vec();
                start.push(0);
            }
            _ => break,
        }
    }
    Ok(Some(ListSnapshot { revision, items }))
}

/// Runs a paginated LIST every `every` until `stop` turns true.
pub async fn run_lister(
    mut client: Client,
    run_id: String,
    every: Duration,
    page_limit: i64,
    pages: Arc<Recorder>,
    mut stop: watch::Receiver<bool>,
) -> ReadRecord {
    let mut record = ReadRecord::default();
    let mut timer = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            _ = timer.tick() => {}
        }
        match list_once(&mut client, page_limit, &run_id, &pages).await {
            Ok(Some(list)) if record.lists.len() < LISTS_LIMIT => record.lists.push(list),
            Ok(Some(_)) => {}
            Ok(None) => record.lists_expired += 1,
            Err(error) => pages.error(format!("LIST: {error}")),
        }
    }
    record
}

/// Runs a count-only range over the prefix every `every` until `stop` turns true.
pub async fn run_counter(
    mut client: Client,
    every: Duration,
    counts: Arc<Recorder>,
    mut stop: watch::Receiver<bool>,
) -> ReadRecord {
    let mut record = ReadRecord::default();
    let mut timer = tokio::time::interval(every);
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            _ = timer.tick() => {}
        }
        let options = GetOptions::new().with_prefix().with_count_only();
        let sent = Instant::now();
        match client.get(EVENTS_PREFIX, Some(options)).await {
            Ok(response) => {
                counts.success(sent.elapsed());
                record.counts.push(response.count());
            }
            Err(error) => counts.error(format!("count: {error}")),
        }
    }
    record
}

/// Every `every`, compacts to the revision seen at the previous tick (what kube-apiserver's
/// compactor does), until `stop` turns true.
pub async fn run_compactor(
    mut client: Client,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> ReadRecord {
    let mut record = ReadRecord::default();
    let mut timer = tokio::time::interval(every);
    let mut compact_to: Option<i64> = None;
    loop {
        tokio::select! {
            _ = stop.wait_for(|stopped| *stopped) => break,
            _ = timer.tick() => {}
        }
        let current = client
            .get(
                EVENTS_PREFIX,
                Some(GetOptions::new().with_prefix().with_count_only()),
            )
            .await
            .ok()
            .and_then(|response| response.header().map(|header| header.revision()));
        if let Some(target) = compact_to {
            if client.compact(target, None).await.is_ok() {
                record.compactions += 1;
            }
        }
        compact_to = current;
    }
    record
}
