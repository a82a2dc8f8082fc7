//! `basalt-bench wal`: group-commit appends against the raw fdatasync floor, and
//! `basalt-bench wal-recovery`: how long opening a large log takes.
//!
//! The append run opens a real log in `--dir`, runs `--appenders` tasks on one glommio executor
//! that each append `--record-bytes` records back to back for `--seconds` (after a warm-up), and
//! records every append's latency. In the same run and directory it then measures the physical
//! floor: a plain loop of 4 KiB O_DIRECT overwrites + fdatasync on a pre-written file, and for
//! comparison the same on an fallocate'd file (unwritten extents) and on a growing file.

use std::cell::{Cell, RefCell};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use basalt_wal::{Wal, WalOptions};
use glommio::LocalExecutorBuilder;
use hdrhistogram::Histogram;

use crate::latency::{new_histogram, LatencySummary};

/// Arguments of `basalt-bench wal`.
#[derive(clap::Args)]
pub struct WalArgs {
    /// Concurrent appenders (tasks on the log's executor), each with one append in flight.
    #[arg(long, default_value_t = 1)]
    appenders: usize,
    /// Payload bytes of each record.
    #[arg(long, default_value_t = 256)]
    record_bytes: usize,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Seconds of appends before measuring.
    #[arg(long, default_value_t = 1)]
    warmup_seconds: u64,
    /// Seconds of each raw fdatasync loop.
    #[arg(long, default_value_t = 2)]
    raw_seconds: u64,
    /// Directory to put the log in (a fresh subdirectory is made and removed).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Segment size of the log.
    #[arg(long, default_value_t = 64 << 20)]
    segment_bytes: u64,
    /// Print a JSON object as the last line.
    #[arg(long)]
    json: bool,
}

/// Arguments of `basalt-bench wal-recovery`.
#[derive(clap::Args)]
pub struct WalRecoveryArgs {
    /// Bytes of log to write before reopening it (suffixes K, M, G).
    #[arg(long, default_value = "1G", value_parser = parse_bytes)]
    log_bytes: u64,
    /// Payload bytes of each record.
    #[arg(long, default_value_t = 256)]
    record_bytes: usize,
    /// Directory to put the log in (a fresh subdirectory is made and removed).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Print a JSON object as the last line.
    #[arg(long)]
    json: bool,
}

/// Parses a byte count with an optional K/M/G suffix (powers of 1024).
fn parse_bytes(text: &str) -> Result<u64, String> {
    let (digits, shift) = match text.chars().last() {
        Some('K' | 'k') => (&text[..text.len() - 1], 10),
        Some('M' | 'm') => (&text[..text.len() - 1], 20),
        Some('G' | 'g') => (&text[..text.len() - 1], 30),
        _ => (text, 0),
    };
    let count: u64 = digits
        .parse()
        .map_err(|_| format!("not a byte count: {text}"))?;
    count
        .checked_shl(shift)
        .ok_or_else(|| format!("byte count too large: {text}"))
}

/// What one append run measured.
struct AppendRun {
    records: u64,
    fdatasyncs: u64,
    batches: u64,
    elapsed: Duration,
    latency: Histogram<u64>,
}

/// Runs the WAL append benchmark.
pub fn run(args: WalArgs) -> Result<(), String> {
    if args.appenders == 0 || args.seconds == 0 {
        return Err("--appenders and --seconds must be at least 1".into());
    }
    let work_dir = tempfile::Builder::new()
        .prefix("basalt-bench-wal-")
        .tempdir_in(&args.dir)
        .map_err(|e| format!("cannot make a directory in {}: {e}", args.dir.display()))?;
    let log_dir = work_dir.path().join("log");
    let run = run_appends(&args, log_dir)?;
    let raw = measure_raw_fdatasync(work_dir.path(), RawFile::PreWritten, args.raw_seconds)?;
    let fallocated = measure_raw_fdatasync(work_dir.path(), RawFile::Fallocated, args.raw_seconds)?;
    let growing = measure_raw_fdatasync(work_dir.path(), RawFile::Growing, args.raw_seconds)?;

    let seconds = run.elapsed.as_secs_f64();
    let append = LatencySummary::of(&run.latency);
    let raw_summary = LatencySummary::of(&raw);
    let report = serde_json::json!({
        "benchmark": "wal",
        "appenders": args.appenders,
        "record_bytes": args.record_bytes,
        "seconds": seconds,
        "records": run.records,
        "records_per_sec": run.records as f64 / seconds,
        "fsyncs_per_sec": run.fdatasyncs as f64 / seconds,
        "records_per_fsync": run.records as f64 / run.fdatasyncs.max(1) as f64,
        "batches": run.batches,
        "append_p50_us": append.p50_us,
        "append_p90_us": append.p90_us,
        "append_p99_us": append.p99_us,
        "append_p999_us": append.p999_us,
        "append_max_us": append.max_us,
        "raw_fdatasync_p50_us": raw_summary.p50_us,
        "raw_fdatasync_p99_us": raw_summary.p99_us,
        "append_p50_over_raw_p50": append.p50_us / raw_summary.p50_us,
        "fallocated_fdatasync_p50_us": LatencySummary::of(&fallocated).p50_us,
        "growing_fdatasync_p50_us": LatencySummary::of(&growing).p50_us,
    });
    println!(
        "wal: {} appenders, {}-byte records, {seconds:.1} s",
        args.appenders, args.record_bytes
    );
    println!(
        "  records/s {:>12.0}   fdatasyncs/s {:>8.0}   records/fdatasync {:>8.1}",
        report["records_per_sec"].as_f64().unwrap_or(0.0),
        report["fsyncs_per_sec"].as_f64().unwrap_or(0.0),
        report["records_per_fsync"].as_f64().unwrap_or(0.0),
    );
    println!(
        "  append latency µs: p50 {:.0}  p90 {:.0}  p99 {:.0}  p99.9 {:.0}  max {:.0}",
        append.p50_us, append.p90_us, append.p99_us, append.p999_us, append.max_us
    );
    println!(
        "  raw 4 KiB write+fdatasync p50 µs: pre-written {:.0} (p99 {:.0}), fallocated {:.0}, growing {:.0}",
        raw_summary.p50_us,
        raw_summary.p99_us,
        LatencySummary::of(&fallocated).p50_us,
        LatencySummary::of(&growing).p50_us
    );
    println!(
        "  append p50 / raw p50 = {:.2}",
        append.p50_us / raw_summary.p50_us
    );
    if args.json {
        println!("{report}");
    }
    Ok(())
}

fn run_appends(args: &WalArgs, log_dir: PathBuf) -> Result<AppendRun, String> {
    let appenders = args.appenders;
    let payload = vec![0x5Au8; args.record_bytes];
    let warmup = Duration::from_secs(args.warmup_seconds);
    let measured = Duration::from_secs(args.seconds);
    let segment_bytes = args.segment_bytes;
    LocalExecutorBuilder::default()
        .name("wal-bench")
        .spawn(move || async move {
            let options = WalOptions {
                segment_bytes,
                ..WalOptions::default()
            };
            let wal = Rc::new(
                Wal::open(&log_dir, options)
                    .await
                    .map_err(|e| e.to_string())?,
            );
            let measuring = Rc::new(Cell::new(false));
            let stopping = Rc::new(Cell::new(false));
            let latency = Rc::new(RefCell::new(new_histogram()));
            let failure: Rc<RefCell<Option<String>>> = Rc::new(RefCell::new(None));
            let tasks: Vec<_> = (0..appenders)
                .map(|_| {
                    let (wal, payload) = (wal.clone(), payload.clone());
                    let (measuring, stopping) = (measuring.clone(), stopping.clone());
                    let (latency, failure) = (latency.clone(), failure.clone());
                    glommio::spawn_local(async move {
                        while !stopping.get() {
                            let started = Instant::now();
                            if let Err(error) = wal.append(&payload).await {
                                *failure.borrow_mut() = Some(error.to_string());
                                return;
                            }
                            if measuring.get() {
                                let nanos = started.elapsed().as_nanos() as u64;
                                latency.borrow_mut().saturating_record(nanos.max(1));
                            }
                        }
                    })
                })
                .collect();
            glommio::timer::sleep(warmup).await;
            let before = wal.stats();
            let started = Instant::now();
            measuring.set(true);
            glommio::timer::sleep(measured).await;
            measuring.set(false);
            let after = wal.stats();
            let elapsed = started.elapsed();
            stopping.set(true);
            for task in tasks {
                task.await;
            }
            if let Some(error) = failure.borrow_mut().take() {
                return Err(format!("append failed: {error}"));
            }
            let latency = latency.borrow().clone();
            Ok(AppendRun {
                records: after.records - before.records,
                fdatasyncs: after.fdatasyncs - before.fdatasyncs,
                batches: after.batches - before.batches,
                elapsed,
                latency,
            })
        })
        .map_err(|e| format!("cannot start the executor: {e}"))?
        .join()
        .map_err(|e| format!("the executor failed: {e}"))?
}

/// The kind of file the raw fdatasync loop writes into.
#[derive(Clone, Copy)]
enum RawFile {
    /// Every block written and synced beforehand: the fdatasync commits data only.
    PreWritten,
    /// Space reserved with fallocate (unwritten extents): each fdatasync also converts extents.
    Fallocated,
    /// Appending to a file that grows: each fdatasync also commits the new size.
    Growing,
}

const RAW_BLOCK_BYTES: usize = 4096;
const RAW_FILE_BLOCKS: u64 = 16384;

/// A 4 KiB-aligned buffer for O_DIRECT writes.
struct AlignedBlock {
    pointer: *mut u8,
    layout: std::alloc::Layout,
}

impl AlignedBlock {
    fn new() -> AlignedBlock {
        let layout = std::alloc::Layout::from_size_align(RAW_BLOCK_BYTES, RAW_BLOCK_BYTES)
            .expect("valid layout");
        // SAFETY: the layout has a non-zero size.
        let pointer = unsafe { std::alloc::alloc_zeroed(layout) };
        assert!(!pointer.is_null(), "allocation of one block failed");
        AlignedBlock { pointer, layout }
    }

    fn bytes(&self) -> &[u8] {
        // SAFETY: `pointer` is a live allocation of `layout.size()` zero-initialised bytes owned
        // by self, never aliased mutably.
        unsafe { std::slice::from_raw_parts(self.pointer, self.layout.size()) }
    }
}

impl Drop for AlignedBlock {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout and freed only here.
        unsafe { std::alloc::dealloc(self.pointer, self.layout) };
    }
}

/// Times 4 KiB O_DIRECT writes each followed by fdatasync for `seconds`.
fn measure_raw_fdatasync(
    dir: &Path,
    kind: RawFile,
    seconds: u64,
) -> Result<Histogram<u64>, String> {
    let path = dir.join(match kind {
        RawFile::PreWritten => "raw-prewritten",
        RawFile::Fallocated => "raw-fallocated",
        RawFile::Growing => "raw-growing",
    });
    let io_error = |what: &str, e: std::io::Error| {
        format!("raw fdatasync loop: {what} {}: {e}", path.display())
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .custom_flags(libc::O_DIRECT)
        .open(&path)
        .map_err(|e| io_error("open", e))?;
    let block = AlignedBlock::new();
    match kind {
        RawFile::PreWritten => {
            for index in 0..RAW_FILE_BLOCKS {
                file.write_all_at(block.bytes(), index * RAW_BLOCK_BYTES as u64)
                    .map_err(|e| io_error("pre-write", e))?;
            }
            file.sync_all().map_err(|e| io_error("sync", e))?;
        }
        RawFile::Fallocated => {
            fallocate(&file, RAW_FILE_BLOCKS * RAW_BLOCK_BYTES as u64)
                .map_err(|e| io_error("fallocate", e))?;
            file.sync_all().map_err(|e| io_error("sync", e))?;
        }
        RawFile::Growing => {}
    }
    let mut histogram = new_histogram();
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut index = 0u64;
    while Instant::now() < deadline && index < RAW_FILE_BLOCKS {
        let started = Instant::now();
        file.write_all_at(block.bytes(), index * RAW_BLOCK_BYTES as u64)
            .map_err(|e| io_error("write", e))?;
        file.sync_data().map_err(|e| io_error("fdatasync", e))?;
        histogram.saturating_record((started.elapsed().as_nanos() as u64).max(1));
        index += 1;
    }
    drop(file);
    std::fs::remove_file(&path).map_err(|e| io_error("remove", e))?;
    Ok(histogram)
}

fn fallocate(file: &File, bytes: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: plain syscall on a valid open descriptor; no memory is passed.
    let result = unsafe { libc::fallocate(file.as_raw_fd(), 0, 0, bytes as libc::off_t) };
    if result == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Runs the WAL recovery benchmark: write `--log-bytes` of records, close, time the reopen.
pub fn run_recovery(args: WalRecoveryArgs) -> Result<(), String> {
    let work_dir = tempfile::Builder::new()
        .prefix("basalt-bench-wal-recovery-")
        .tempdir_in(&args.dir)
        .map_err(|e| format!("cannot make a directory in {}: {e}", args.dir.display()))?;
    let log_dir = work_dir.path().join("log");
    let (log_bytes, record_bytes) = (args.log_bytes, args.record_bytes);
    let report = LocalExecutorBuilder::default()
        .name("wal-recovery-bench")
        .spawn(move || async move {
            let wal = Rc::new(
                Wal::open(&log_dir, WalOptions::default())
                    .await
                    .map_err(|e| e.to_string())?,
            );
            let per_record = basalt_wal::record_bytes(record_bytes) as u64;
            let records = log_bytes / per_record;
            let writers = 1000u64;
            let tasks: Vec<_> = (0..writers)
                .map(|writer| {
                    let wal = wal.clone();
                    let payload = vec![writer as u8; record_bytes];
                    glommio::spawn_local(async move {
                        for _ in 0..records / writers {
                            wal.append(&payload).await.map_err(|e| e.to_string())?;
                        }
                        Ok::<(), String>(())
                    })
                })
                .collect();
            for task in tasks {
                task.await?;
            }
            let last_index = wal.last_index();
            let wal = Rc::try_unwrap(wal).map_err(|_| "log still shared".to_string())?;
            wal.close().await.map_err(|e| e.to_string())?;

            let cold_cache = drop_page_cache();
            let started = Instant::now();
            let wal = Wal::open(&log_dir, WalOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            let first_open = started.elapsed();
            if wal.last_index() != last_index {
                return Err(format!(
                    "recovered up to {} instead of {last_index}",
                    wal.last_index()
                ));
            }
            let segments = wal.segment_count();
            drop(wal);
            let started = Instant::now();
            let wal = Wal::open(&log_dir, WalOptions::default())
                .await
                .map_err(|e| e.to_string())?;
            let warm_open = started.elapsed();
            drop(wal);
            Ok::<_, String>(serde_json::json!({
                "benchmark": "wal-recovery",
                "log_bytes": last_index * per_record,
                "records": last_index,
                "segments": segments,
                "page_cache_dropped": cold_cache,
                "recovery_seconds": first_open.as_secs_f64(),
                "recovery_warm_seconds": warm_open.as_secs_f64(),
            }))
        })
        .map_err(|e| format!("cannot start the executor: {e}"))?
        .join()
        .map_err(|e| format!("the executor failed: {e}"))??;
    println!(
        "wal-recovery: {} records ({} MiB) in {} segments: open {:.3} s (page cache dropped: {}), warm {:.3} s",
        report["records"],
        report["log_bytes"].as_u64().unwrap_or(0) >> 20,
        report["segments"],
        report["recovery_seconds"].as_f64().unwrap_or(0.0),
        report["page_cache_dropped"],
        report["recovery_warm_seconds"].as_f64().unwrap_or(0.0),
    );
    if args.json {
        println!("{report}");
    }
    Ok(())
}

/// Drops the page cache (root only) so the first open reads from the disk; says whether it could.
fn drop_page_cache() -> bool {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", "3\n").is_ok()
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn byte_counts_take_binary_suffixes_and_refuse_garbage() {
        assert_eq!(parse_bytes("1G"), Ok(1 << 30));
        assert_eq!(parse_bytes("512m"), Ok(512 << 20));
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert!(parse_bytes("12X").is_err());
        assert!(parse_bytes("G").is_err());
    }
}
