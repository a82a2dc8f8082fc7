//! `basalt-util wal dump --data-dir D`: prints every record of a member's WAL, one line each,
//! in a stable tab-separated format (as etcd's `etcd-dump-logs`): byte offset in the segment,
//! raft term, index, type (`norm`, `conf`, `confv2`, or `meta` for the log's metadata) and a
//! summary of what it holds. Each segment opens with a `segment` line. Reads only, so it may
//! run beside a live member. A corrupt record stops the dump with its segment file and
//! offset and a non-zero exit; so do entries that do not decode (after the whole dump).

use std::io::Write;
use std::path::{Path, PathBuf};

use basalt::server::wal_records::{describe_entry, describe_metadata};
use basalt_wal::{inspect, Inspected, InspectedRecord};

/// `wal dump`'s flags.
#[derive(clap::Args)]
pub struct DumpArgs {
    /// The member's data directory
    #[arg(long = "data-dir")]
    data_dir: PathBuf,
    /// The WAL's directory, when the member was started with --wal-dir
    #[arg(long = "wal-dir")]
    wal_dir: Option<PathBuf>,
}

pub fn run(args: &DumpArgs) -> Result<(), String> {
    let wal_dir = args
        .wal_dir
        .clone()
        .unwrap_or_else(|| args.data_dir.join("member").join("wal"));
    if !wal_dir.is_dir() {
        return Err(format!("no WAL directory at {}", wal_dir.display()));
    }
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut dump = Dump::default();
    let inspected = inspect(&wal_dir, |event| dump.print(&mut out, event));
    let written = out.flush().map_err(|e| e.to_string());
    let torn_tail = inspected.map_err(|e| e.to_string())?;
    written?;
    dump.failed_write.map_or(Ok(()), Err)?;
    if let Some(torn) = torn_tail {
        eprintln!(
            "torn tail: {} bytes of {} from offset {} were never acknowledged (the member \
             discards them at its next start)",
            torn.bytes,
            torn.path.display(),
            torn.offset
        );
    }
    eprintln!(
        "{} entries, {} metadata records in {}",
        dump.entries,
        dump.metadata,
        wal_dir.display()
    );
    match dump.undecodable {
        0 => Ok(()),
        n => Err(format!("{n} entries do not decode (marked `?` above)")),
    }
}

/// Counts, and the first write error (stdout closed).
#[derive(Default)]
struct Dump {
    entries: u64,
    metadata: u64,
    undecodable: u64,
    failed_write: Option<String>,
}

impl Dump {
    fn print(&mut self, out: &mut impl Write, event: Inspected<'_>) {
        if self.failed_write.is_some() {
            return;
        }
        let line = match event {
            Inspected::Segment {
                path,
                seq,
                first_index,
            } => format!(
                "segment {} seq={seq} first_index={first_index}\noffset\tterm\tindex\ttype\tdata",
                file_name(path)
            ),
            Inspected::Record {
                offset,
                record: InspectedRecord::Entry { index, payload },
            } => {
                self.entries += 1;
                match describe_entry(payload) {
                    Ok(entry) => {
                        // The WAL's index and raft's must agree; a mismatch is worth showing.
                        let index_text = if entry.index == index {
                            index.to_string()
                        } else {
                            self.undecodable += 1;
                            format!("{index}(raft:{})", entry.index)
                        };
                        format!(
                            "{offset}\t{}\t{index_text}\t{}\t{}",
                            entry.term, entry.entry_type, entry.data
                        )
                    }
                    Err(reason) => {
                        self.undecodable += 1;
                        format!("{offset}\t-\t{index}\t?\tundecodable: {reason}")
                    }
                }
            }
            Inspected::Record {
                offset,
                record:
                    InspectedRecord::Metadata {
                        checkpoint,
                        metadata,
                    },
            } => {
                self.metadata += 1;
                let text = describe_metadata(metadata).unwrap_or_else(|reason| {
                    self.undecodable += 1;
                    format!("undecodable: {reason}")
                });
                format!("{offset}\t-\t-\tmeta\tcheckpoint={checkpoint} {text}")
            }
        };
        if let Err(e) = writeln!(out, "{line}") {
            self.failed_write = Some(format!("writing the dump failed: {e}"));
        }
    }
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}
