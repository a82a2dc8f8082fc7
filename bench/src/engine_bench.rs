//! `basalt-bench engine`: the storage engine side by side with redb, same workloads, same run.
//!
//! Workloads (each on both engines, results as a table with basalt/redb ratios):
//! - put throughput at 1, 100 and 10,000 puts per commit (fresh databases);
//! - load of `--keys` keys (10,000 per commit), then open time and RSS after reopening;
//! - point-get latency, 1000-key range latency (with values, and keys only) and the latency of
//!   counting every key (etcd's `count_only`, what a paginated LIST pays per page) on that
//!   database;
//! - file size after `--churn-rounds` rounds of overwrite-everything + compact, and after a
//!   defragmentation (basalt's online one; redb's `compact`, which needs exclusive access).
//!
//! Basalt does etcd's full MVCC put (revision record + key index + change log, events
//! returned), redb a plain key → value insert: the comparison is deliberately the harder one.
//! Durable rows: basalt's `WriteBatch::commit` (one fdatasync, torn commits detected by the
//! commit record) against redb's default `Durability::Immediate` (one fdatasync, checksums).
//! Unsynced rows (what the server does per apply batch): basalt's `commit_unsynced` against
//! redb's `Durability::None`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use basalt_engine::{Engine, PutRequest, RangeRequest};
use hdrhistogram::Histogram;
use redb::{ReadableDatabase, TableDefinition};

use crate::latency::{new_histogram, LatencySummary};

const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

/// Arguments of `basalt-bench engine`.
#[derive(clap::Args)]
pub struct EngineArgs {
    /// Directory for the benchmark databases (created; removed at the end unless --keep).
    #[arg(long, default_value = "engine-bench.tmp")]
    dir: PathBuf,
    /// Keys in the large database (open time, RSS, gets, ranges).
    #[arg(long, default_value_t = 1_000_000)]
    keys: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 256)]
    value_size: usize,
    /// Commits in the one-put-per-commit run (each costs fsyncs).
    #[arg(long, default_value_t = 200)]
    single_commits: u64,
    /// Runs of each put workload per engine, alternating basalt and redb; the median is
    /// reported (a shared machine's noise hits both sides alike).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
    /// Point gets to time.
    #[arg(long, default_value_t = 200_000)]
    gets: u64,
    /// 1000-key ranges to time.
    #[arg(long, default_value_t = 2_000)]
    ranges: u64,
    /// Counts of every key of the large database to time.
    #[arg(long, default_value_t = 20)]
    counts: u64,
    /// Keys in the churn database (default: --keys).
    #[arg(long)]
    churn_keys: Option<u64>,
    /// Rounds of overwrite-everything + compact.
    #[arg(long, default_value_t = 10)]
    churn_rounds: u32,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Keep the databases after the run.
    #[arg(long)]
    keep: bool,
}

/// An etcd-like key: `/registry/events/default/ev-00001234`.
fn key(i: u64) -> Vec<u8> {
    format!("/registry/events/default/ev-{i:08}").into_bytes()
}

fn value(size: usize, salt: u64) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u64).wrapping_mul(31).wrapping_add(salt) as u8)
        .collect()
}

/// A fixed pseudo-random permutation of 0..n (load order), stepping by a prime.
fn scattered(i: u64, n: u64) -> u64 {
    (i.wrapping_mul(7_919)) % n
}

/// A cheap deterministic random stream for sampling keys.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The operations the workloads need, for both engines.
trait Store {
    /// Puts every key (same value) in one durable commit.
    fn commit_puts(
        &mut self,
        keys: &mut dyn Iterator<Item = Vec<u8>>,
        value: &[u8],
    ) -> Result<(), String>;
    /// Point gets of `keys`, one timing per get, one read transaction per 1000 gets.
    fn gets(&self, keys: &[Vec<u8>], histogram: &mut Histogram<u64>) -> Result<(), String>;
    /// Ranges [start, end) holding `expect` keys each, one timing per range; `keys_only`
    /// copies out the keys without their values.
    fn ranges(
        &self,
        bounds: &[(Vec<u8>, Vec<u8>)],
        expect: usize,
        keys_only: bool,
        histogram: &mut Histogram<u64>,
    ) -> Result<(), String>;
    /// Counts every key `rounds` times (basalt: a `count_only` range; redb: iterating the
    /// table), one timing per count.
    fn counts(
        &self,
        rounds: u64,
        expect: u64,
        histogram: &mut Histogram<u64>,
    ) -> Result<(), String>;
    /// Drops history (basalt: compact at the current revision; redb keeps none).
    fn compact(&mut self) -> Result<(), String>;
    /// Shrinks the file to what the data needs (basalt: online `defragment`; redb: its
    /// `Database::compact`, which needs exclusive access).
    fn defragment(&mut self) -> Result<(), String>;
}

/// Basalt's engine; `unsynced` commits publish without fdatasync.
struct Basalt(Engine, bool);

impl Store for Basalt {
    fn commit_puts(
        &mut self,
        keys: &mut dyn Iterator<Item = Vec<u8>>,
        value: &[u8],
    ) -> Result<(), String> {
        let mut batch = self.0.write().map_err(err)?;
        for key in keys {
            let request = PutRequest {
                key,
                value: value.to_vec(),
                ..Default::default()
            };
            batch.put(&request).map_err(err)?;
        }
        if self.1 {
            batch.commit_unsynced().map_err(err)
        } else {
            batch.commit().map_err(err)
        }
    }

    fn gets(&self, keys: &[Vec<u8>], histogram: &mut Histogram<u64>) -> Result<(), String> {
        for chunk in keys.chunks(1000) {
            let view = self.0.read().map_err(err)?;
            for key in chunk {
                let request = RangeRequest {
                    key: key.clone(),
                    ..Default::default()
                };
                let start = Instant::now();
                let response = view.range(&request).map_err(err)?;
                histogram
                    .record(start.elapsed().as_nanos() as u64)
                    .map_err(err)?;
                if response.kvs.len() != 1 {
                    return Err(format!(
                        "basalt: key {:?} missing",
                        String::from_utf8_lossy(key)
                    ));
                }
            }
        }
        Ok(())
    }

    fn ranges(
        &self,
        bounds: &[(Vec<u8>, Vec<u8>)],
        expect: usize,
        keys_only: bool,
        histogram: &mut Histogram<u64>,
    ) -> Result<(), String> {
        for chunk in bounds.chunks(100) {
            let view = self.0.read().map_err(err)?;
            for (start_key, end_key) in chunk {
                let request = RangeRequest {
                    key: start_key.clone(),
                    range_end: end_key.clone(),
                    keys_only,
                    ..Default::default()
                };
                let start = Instant::now();
                let response = view.range(&request).map_err(err)?;
                histogram
                    .record(start.elapsed().as_nanos() as u64)
                    .map_err(err)?;
                if response.kvs.len() != expect {
                    return Err(format!(
                        "basalt: range returned {} keys, expected {expect}",
                        response.kvs.len()
                    ));
                }
            }
        }
        Ok(())
    }

    fn counts(
        &self,
        rounds: u64,
        expect: u64,
        histogram: &mut Histogram<u64>,
    ) -> Result<(), String> {
        let view = self.0.read().map_err(err)?;
        let request = RangeRequest {
            key: vec![0],
            range_end: vec![0],
            count_only: true,
            ..Default::default()
        };
        for _ in 0..rounds {
            let start = Instant::now();
            let response = view.range(&request).map_err(err)?;
            histogram
                .record(start.elapsed().as_nanos() as u64)
                .map_err(err)?;
            if response.count as u64 != expect {
                return Err(format!(
                    "basalt: counted {} keys, expected {expect}",
                    response.count
                ));
            }
        }
        Ok(())
    }

    fn compact(&mut self) -> Result<(), String> {
        let mut batch = self.0.write().map_err(err)?;
        let current = batch.current_revision();
        let mut done = batch.compact(current).map_err(err)?;
        batch.commit().map_err(err)?;
        // Bounded steps, one commit each, like the server interleaving them with writes.
        while !done {
            let mut batch = self.0.write().map_err(err)?;
            done = batch
                .compact_step(basalt_engine::COMPACT_STEP_BUDGET)
                .map_err(err)?;
            batch.commit().map_err(err)?;
        }
        Ok(())
    }

    fn defragment(&mut self) -> Result<(), String> {
        self.0.defragment(1000).map(drop).map_err(err)
    }
}

/// redb; `unsynced` commits use `Durability::None`.
struct Redb(redb::Database, bool);

impl Store for Redb {
    fn commit_puts(
        &mut self,
        keys: &mut dyn Iterator<Item = Vec<u8>>,
        value: &[u8],
    ) -> Result<(), String> {
        let mut txn = self.0.begin_write().map_err(err)?;
        if self.1 {
            txn.set_durability(redb::Durability::None).map_err(err)?;
        }
        {
            let mut table = txn.open_table(TABLE).map_err(err)?;
            for key in keys {
                table.insert(key.as_slice(), value).map_err(err)?;
            }
        }
        txn.commit().map_err(err)
    }

    fn gets(&self, keys: &[Vec<u8>], histogram: &mut Histogram<u64>) -> Result<(), String> {
        for chunk in keys.chunks(1000) {
            let txn = self.0.begin_read().map_err(err)?;
            let table = txn.open_table(TABLE).map_err(err)?;
            for key in chunk {
                let start = Instant::now();
                let value = table
                    .get(key.as_slice())
                    .map_err(err)?
                    .map(|v| v.value().to_vec());
                histogram
                    .record(start.elapsed().as_nanos() as u64)
                    .map_err(err)?;
                if value.is_none() {
                    return Err(format!(
                        "redb: key {:?} missing",
                        String::from_utf8_lossy(key)
                    ));
                }
            }
        }
        Ok(())
    }

    fn ranges(
        &self,
        bounds: &[(Vec<u8>, Vec<u8>)],
        expect: usize,
        keys_only: bool,
        histogram: &mut Histogram<u64>,
    ) -> Result<(), String> {
        for chunk in bounds.chunks(100) {
            let txn = self.0.begin_read().map_err(err)?;
            let table = txn.open_table(TABLE).map_err(err)?;
            for (start_key, end_key) in chunk {
                let start = Instant::now();
                // Copy keys and values out, as basalt's range does.
                let mut out: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                for entry in table
                    .range(start_key.as_slice()..end_key.as_slice())
                    .map_err(err)?
                {
                    let (k, v) = entry.map_err(err)?;
                    let value = if keys_only {
                        Vec::new()
                    } else {
                        v.value().to_vec()
                    };
                    out.push((k.value().to_vec(), value));
                }
                histogram
                    .record(start.elapsed().as_nanos() as u64)
                    .map_err(err)?;
                if out.len() != expect {
                    return Err(format!(
                        "redb: range returned {} keys, expected {expect}",
                        out.len()
                    ));
                }
            }
        }
        Ok(())
    }

    fn counts(
        &self,
        rounds: u64,
        expect: u64,
        histogram: &mut Histogram<u64>,
    ) -> Result<(), String> {
        let txn = self.0.begin_read().map_err(err)?;
        let table = txn.open_table(TABLE).map_err(err)?;
        for _ in 0..rounds {
            let start = Instant::now();
            let mut count = 0u64;
            for entry in table.range::<&[u8]>(..).map_err(err)? {
                entry.map_err(err)?;
                count += 1;
            }
            histogram
                .record(start.elapsed().as_nanos() as u64)
                .map_err(err)?;
            if count != expect {
                return Err(format!("redb: counted {count} keys, expected {expect}"));
            }
        }
        Ok(())
    }

    fn compact(&mut self) -> Result<(), String> {
        Ok(())
    }

    fn defragment(&mut self) -> Result<(), String> {
        while self.0.compact().map_err(err)? {}
        Ok(())
    }
}

fn open_basalt(path: &Path) -> Result<Basalt, String> {
    Ok(Basalt(Engine::open(path).map_err(err)?, false))
}

fn open_redb(path: &Path) -> Result<Redb, String> {
    Ok(Redb(redb::Database::create(path).map_err(err)?, false))
}

/// Resident set size of this process, in bytes.
fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

fn file_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

/// One measured figure for both engines.
#[derive(serde::Serialize)]
struct Row {
    workload: String,
    unit: String,
    basalt: f64,
    redb: f64,
    /// basalt / redb, oriented so that > 1 means basalt is better.
    advantage: f64,
    higher_is_better: bool,
}

struct Report {
    rows: Vec<Row>,
}

impl Report {
    fn add(&mut self, workload: &str, unit: &str, basalt: f64, redb: f64, higher_is_better: bool) {
        let advantage = if higher_is_better {
            basalt / redb
        } else {
            redb / basalt
        };
        println!("  {workload:<44} basalt {basalt:>12.2} {unit:<6} redb {redb:>12.2} {unit:<6} basalt advantage x{advantage:.2}");
        self.rows.push(Row {
            workload: workload.into(),
            unit: unit.into(),
            basalt,
            redb,
            advantage,
            higher_is_better,
        });
    }
}

/// Puts `commits` commits of `per_commit` new keys; returns (ops/s, commit latency summary).
fn put_run(
    store: &mut dyn Store,
    per_commit: u64,
    commits: u64,
    value: &[u8],
) -> Result<(f64, LatencySummary), String> {
    let mut histogram = new_histogram();
    let started = Instant::now();
    for c in 0..commits {
        let first = c * per_commit;
        let start = Instant::now();
        store.commit_puts(&mut (first..first + per_commit).map(key), value)?;
        histogram
            .record(start.elapsed().as_nanos() as u64)
            .map_err(err)?;
    }
    let ops = (per_commit * commits) as f64 / started.elapsed().as_secs_f64();
    Ok((ops, LatencySummary::of(&histogram)))
}

/// The run with the median throughput.
fn median_run(mut runs: Vec<(f64, LatencySummary)>) -> (f64, LatencySummary) {
    runs.sort_by(|a, b| a.0.total_cmp(&b.0));
    runs[runs.len() / 2]
}

fn load(store: &mut dyn Store, keys: u64, value: &[u8]) -> Result<Duration, String> {
    let started = Instant::now();
    let per_commit = 10_000;
    let mut first = 0;
    while first < keys {
        let end = (first + per_commit).min(keys);
        store.commit_puts(&mut (first..end).map(|i| key(scattered(i, keys))), value)?;
        first = end;
    }
    Ok(started.elapsed())
}

/// Runs the engine benchmark.
pub fn run(args: EngineArgs) -> Result<(), String> {
    std::fs::create_dir_all(&args.dir).map_err(err)?;
    let dir = args.dir.canonicalize().map_err(err)?;
    let path = |name: &str| dir.join(name);
    for name in [
        "put.basalt",
        "put.redb",
        "big.basalt",
        "big.redb",
        "churn.basalt",
        "churn.redb",
    ] {
        let _ = std::fs::remove_file(path(name));
    }
    let value = value(args.value_size, 0);
    let mut report = Report { rows: Vec::new() };
    println!(
        "basalt-bench engine: {} keys, {}-byte values, dir {}",
        args.keys,
        args.value_size,
        dir.display()
    );

    // 1. Put throughput at 1, 100 and 10,000 puts per commit.
    println!("put throughput (fresh databases, new keys):");
    let runs = [(1, args.single_commits), (100, 100), (10_000, 10)];
    for (unsynced, (per_commit, commits)) in
        [false, true].into_iter().flat_map(|u| runs.map(|r| (u, r)))
    {
        let (mut b_runs, mut r_runs) = (Vec::new(), Vec::new());
        for _ in 0..args.repeats.max(1) {
            let _ = std::fs::remove_file(path("put.basalt"));
            let _ = std::fs::remove_file(path("put.redb"));
            let mut basalt = open_basalt(&path("put.basalt"))?;
            basalt.1 = unsynced;
            b_runs.push(put_run(&mut basalt, per_commit, commits, &value)?);
            drop(basalt);
            let mut redb = open_redb(&path("put.redb"))?;
            redb.1 = unsynced;
            r_runs.push(put_run(&mut redb, per_commit, commits, &value)?);
        }
        let (b_ops, b_lat) = median_run(b_runs);
        let (r_ops, r_lat) = median_run(r_runs);
        let per_commit = if unsynced {
            format!("{per_commit} (unsynced)")
        } else {
            per_commit.to_string()
        };
        report.add(
            &format!("put, {per_commit} per commit: throughput"),
            "ops/s",
            b_ops,
            r_ops,
            true,
        );
        report.add(
            &format!("put, {per_commit} per commit: commit p50"),
            "us",
            b_lat.p50_us,
            r_lat.p50_us,
            false,
        );
        report.add(
            &format!("put, {per_commit} per commit: commit p99"),
            "us",
            b_lat.p99_us,
            r_lat.p99_us,
            false,
        );
    }

    // 2. Load the large database, reopen: open time and RSS.
    println!("large database ({} keys):", args.keys);
    let b_load = load(&mut open_basalt(&path("big.basalt"))?, args.keys, &value)?;
    let r_load = load(&mut open_redb(&path("big.redb"))?, args.keys, &value)?;
    let per_s = |d: Duration| args.keys as f64 / d.as_secs_f64();
    report.add(
        "load (10,000 puts per commit)",
        "ops/s",
        per_s(b_load),
        per_s(r_load),
        true,
    );
    report.add(
        "file size after load",
        "MiB",
        file_bytes(&path("big.basalt")) as f64 / (1 << 20) as f64,
        file_bytes(&path("big.redb")) as f64 / (1 << 20) as f64,
        false,
    );
    let probe = key(args.keys / 2);
    let rss_before = rss_bytes();
    let started = Instant::now();
    let basalt = open_basalt(&path("big.basalt"))?;
    basalt.gets(std::slice::from_ref(&probe), &mut new_histogram())?;
    let b_open = started.elapsed();
    let b_rss = rss_bytes().saturating_sub(rss_before);
    let rss_before = rss_bytes();
    let started = Instant::now();
    let redb = open_redb(&path("big.redb"))?;
    redb.gets(std::slice::from_ref(&probe), &mut new_histogram())?;
    let r_open = started.elapsed();
    let r_rss = rss_bytes().saturating_sub(rss_before);
    report.add(
        "open + first get (warm page cache)",
        "ms",
        b_open.as_secs_f64() * 1e3,
        r_open.as_secs_f64() * 1e3,
        false,
    );
    report.add(
        "RSS added by open + first get",
        "MiB",
        b_rss as f64 / (1 << 20) as f64,
        r_rss as f64 / (1 << 20) as f64,
        false,
    );

    // 3. Point gets and 1000-key ranges.
    let mut rng = Lcg(42);
    let sample: Vec<Vec<u8>> = (0..args.gets).map(|_| key(rng.below(args.keys))).collect();
    let (mut b_hist, mut r_hist) = (new_histogram(), new_histogram());
    basalt.gets(&sample, &mut b_hist)?;
    redb.gets(&sample, &mut r_hist)?;
    let (b, r) = (LatencySummary::of(&b_hist), LatencySummary::of(&r_hist));
    report.add("point get p50", "us", b.p50_us, r.p50_us, false);
    report.add("point get p99", "us", b.p99_us, r.p99_us, false);
    let span = 1000.min(args.keys);
    let bounds: Vec<(Vec<u8>, Vec<u8>)> = (0..args.ranges)
        .map(|_| {
            let first = rng.below(args.keys - span + 1);
            (key(first), key(first + span))
        })
        .collect();
    for keys_only in [false, true] {
        let (mut b_hist, mut r_hist) = (new_histogram(), new_histogram());
        basalt.ranges(&bounds, span as usize, keys_only, &mut b_hist)?;
        redb.ranges(&bounds, span as usize, keys_only, &mut r_hist)?;
        let (b, r) = (LatencySummary::of(&b_hist), LatencySummary::of(&r_hist));
        let name = if keys_only {
            "1000-key range, keys only"
        } else {
            "1000-key range"
        };
        report.add(&format!("{name} p50"), "us", b.p50_us, r.p50_us, false);
        report.add(&format!("{name} p99"), "us", b.p99_us, r.p99_us, false);
    }
    let (mut b_hist, mut r_hist) = (new_histogram(), new_histogram());
    basalt.counts(args.counts, args.keys, &mut b_hist)?;
    redb.counts(args.counts, args.keys, &mut r_hist)?;
    let (b, r) = (LatencySummary::of(&b_hist), LatencySummary::of(&r_hist));
    report.add(
        "count every key p50",
        "ms",
        b.p50_us / 1e3,
        r.p50_us / 1e3,
        false,
    );
    drop((basalt, redb));

    // 4. Churn: overwrite everything, compact, repeat.
    let churn_keys = args.churn_keys.unwrap_or(args.keys);
    println!(
        "churn ({churn_keys} keys, {} rounds of overwrite + compact):",
        args.churn_rounds
    );
    let mut sizes = Vec::new();
    let mut defrag = Vec::new();
    for (name, mut store) in [
        (
            "churn.basalt",
            Box::new(open_basalt(&path("churn.basalt"))?) as Box<dyn Store>,
        ),
        (
            "churn.redb",
            Box::new(open_redb(&path("churn.redb"))?) as Box<dyn Store>,
        ),
    ] {
        load(store.as_mut(), churn_keys, &value)?;
        let initial = file_bytes(&path(name));
        for round in 1..=args.churn_rounds as u64 {
            load(
                store.as_mut(),
                churn_keys,
                &self::value(args.value_size, round),
            )?;
            store.compact()?;
        }
        let after_rounds = file_bytes(&path(name));
        let started = Instant::now();
        store.defragment()?;
        defrag.push((started.elapsed(), file_bytes(&path(name))));
        sizes.push((initial, after_rounds));
    }
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    report.add(
        "churn: file size after first load",
        "MiB",
        mib(sizes[0].0),
        mib(sizes[1].0),
        false,
    );
    report.add(
        &format!("churn: file size after {} rounds", args.churn_rounds),
        "MiB",
        mib(sizes[0].1),
        mib(sizes[1].1),
        false,
    );

    report.add(
        "churn: file size after defragment",
        "MiB",
        mib(defrag[0].1),
        mib(defrag[1].1),
        false,
    );
    report.add(
        "churn: defragment time",
        "ms",
        defrag[0].0.as_secs_f64() * 1e3,
        defrag[1].0.as_secs_f64() * 1e3,
        false,
    );

    if let Some(json) = &args.json {
        std::fs::write(
            json,
            serde_json::to_string_pretty(&report.rows).map_err(err)?,
        )
        .map_err(err)?;
    }
    println!();
    println!("| workload | basalt | redb | basalt advantage |");
    println!("|---|---:|---:|---:|");
    for row in &report.rows {
        println!(
            "| {} | {:.2} {} | {:.2} {} | x{:.2} |",
            row.workload, row.basalt, row.unit, row.redb, row.unit, row.advantage
        );
    }
    if !args.keep {
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}
