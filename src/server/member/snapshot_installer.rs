//! A follower's half of catching up by snapshot: it receives the leader's engine copy on the
//! peer transport's snapshot lane, checks it, commits it to disk, and swaps it in by restarting
//! the process (the engine is shared by every core and cannot be swapped under them).
//!
//! Files, all in the database's directory (`<data-dir>/member/snap/`):
//!
//! ```text
//! incoming.db.partial   chunks as they arrive, written straight to the disk (O_DIRECT) by a
//!                       thread at most WRITE_AHEAD_CHUNKS behind the socket, synced once
//! incoming.db           the checked copy: the size the leader declared, the transport's
//!                       length and crc32, the engine opens it at its own size, and its
//!                       applied index is the snapshot's (`check_database`)
//! incoming.meta         the commit point: crc32 | the raft log metadata to restart from
//!                       (hard state, the snapshot's index, term and membership)
//! ```
//!
//! Install, at start-up (`finish_pending_swap` before the engine opens, then
//! `finish_pending_log_reset` once the WAL is open): with `incoming.meta` present, rename
//! `incoming.db` over `db` (if not done yet), restart the WAL after the snapshot's index with the
//! metadata, then delete `incoming.meta`. Each step is redone until the meta is gone, so a crash
//! anywhere leaves the old state (no meta yet: leftovers are deleted) or the new one, never a
//! mix. raft itself never sees the snapshot: the member restarts on a log that begins after it,
//! and the leader, told the transfer finished, probes it from there.

use std::fs::{self, File};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::rc::Weak;

use basalt_engine::Engine;
use basalt_net::peer::{IncomingSnapshot, Transport};
use bytes::Bytes;
use prost::Message as _;
use raft::prelude::{HardState, Message, MessageType};

use super::chunk_pipe::{pipe, PipeReceiver};
use super::direct_file::DirectFile;
use super::offload::{on_own_thread, start_own_thread};
use super::raft_member::Member;
use crate::node::LogMetadata;

const PARTIAL: &str = "incoming.db.partial";
const INCOMING_DB: &str = "incoming.db";
const INCOMING_META: &str = "incoming.meta";
const INCOMING_META_TMP: &str = "incoming.meta.tmp";
/// The live database's file name in the same directory.
const DB: &str = "db";

/// Receives snapshots for `member` from `transport`, one at a time, into `db_dir`.
pub fn start(transport: Transport, member: Weak<Member>, db_dir: PathBuf) {
    glommio::spawn_local(async move {
        loop {
            let incoming = transport.recv_snapshot().await;
            let Some(receiving) = member.upgrade() else {
                return;
            };
            receive(&receiving, &db_dir, incoming).await;
        }
    })
    .detach();
}

/// Takes one transfer: on success the process restarts into the snapshot and never returns.
async fn receive(member: &Member, db_dir: &Path, mut incoming: IncomingSnapshot) {
    let from = incoming.from();
    let started = std::time::Instant::now();
    match take(member, db_dir, &mut incoming).await {
        Ok(metadata) => {
            let index = metadata.snapshot.index;
            // The snapshot is committed: whatever happens now, the next start installs it.
            if let Err(error) = incoming.complete(Ok(())).await {
                tracing::warn!(%error, "could not tell the leader the snapshot arrived");
            }
            tracing::info!(
                from = format!("{from:x}"),
                index,
                took_ms = started.elapsed().as_millis() as u64,
                "received a raft snapshot; restarting to install it"
            );
            let error = restart_process();
            member.stop(format!("restarting to install a raft snapshot: {error}"));
        }
        Err(reason) => {
            let _ = fs::remove_file(db_dir.join(PARTIAL));
            tracing::warn!(from = format!("{from:x}"), %reason, "refused a raft snapshot");
            let _ = incoming.complete(Err(reason)).await;
        }
    }
}

/// Receives, checks and commits one transfer; returns the log metadata it committed.
async fn take(
    member: &Member,
    db_dir: &Path,
    incoming: &mut IncomingSnapshot,
) -> Result<LogMetadata, String> {
    let message = Message::decode(incoming.header().clone())
        .map_err(|e| format!("the snapshot's header does not decode: {e}"))?;
    let own = member.headers().identity().member_id;
    if message.get_msg_type() != MessageType::MsgSnapshot
        || message.from != incoming.from()
        || message.to != own
    {
        return Err(
            "the snapshot's header is not a snapshot from its sender to this member".into(),
        );
    }
    let snapshot = message.get_snapshot();
    let size_bytes = u64::from_be_bytes(
        snapshot
            .data
            .as_slice()
            .try_into()
            .map_err(|_| "the snapshot's header does not carry its size".to_string())?,
    );
    let metadata = snapshot.get_metadata().clone();
    let applied = member.raft_status().applied_index;
    if metadata.index <= applied {
        member.answer_stale_snapshot(message.from);
        return Err(format!(
            "stale snapshot at index {}: this member has applied {applied}",
            metadata.index
        ));
    }
    let conf_state = metadata.get_conf_state();
    if !conf_state.voters.contains(&own) && !conf_state.learners.contains(&own) {
        return Err("the snapshot's membership does not hold this member".into());
    }
    let receiving = std::time::Instant::now();
    let file = DirectFile::create(&db_dir.join(PARTIAL))
        .map_err(|e| format!("creating {PARTIAL}: {e}"))?;
    // A thread of its own writes the chunks while the next ones arrive, at most
    // WRITE_AHEAD_CHUNKS behind the socket (the follower's memory per transfer).
    let (mut to_disk, from_network) = pipe::<ToDisk>(WRITE_AHEAD_CHUNKS);
    let writer = start_own_thread("basalt-snapshot-write", move || {
        write_copy(file, from_network)
    });
    let mut received = 0u64;
    let streamed = loop {
        let chunk = match incoming.next_chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break Ok(()),
            Err(e) => break Err(format!("receiving: {e}")),
        };
        received += chunk.len() as u64;
        if received > size_bytes {
            break Err(format!(
                "the stream is longer than the {size_bytes} bytes its header declared"
            ));
        }
        if !to_disk.send(ToDisk::Chunk(chunk)).await {
            // The writer stopped on an error: it says which below.
            break Ok(());
        }
    };
    let received_ms = receiving.elapsed().as_millis() as u64;
    let whole = streamed.is_ok() && received == size_bytes;
    if whole {
        to_disk.send(ToDisk::End).await;
    }
    drop(to_disk);
    let (file, disk) = writer.await;
    // A failed stream also stops the writer: its own reason says more than the writer's.
    streamed?;
    let file = file.map_err(|e| format!("writing {PARTIAL}: {e}"))?;
    if received != size_bytes {
        return Err(format!(
            "truncated snapshot: {received} of the {size_bytes} bytes its header declared"
        ));
    }
    let mut hard_state = member.persisted_hard_state();
    if hard_state.term < metadata.term {
        hard_state = HardState {
            term: metadata.term,
            ..HardState::default()
        };
    }
    hard_state.commit = metadata.index;
    let log = LogMetadata {
        hard_state,
        snapshot: metadata,
    };
    // From here the member stands still until it restarts into the copy (or the copy fails
    // its check).
    member.freeze_for_snapshot(message.from, log.snapshot.index, log.snapshot.term)?;
    let (dir, committing) = (db_dir.to_path_buf(), log.clone());
    // Ok(Err): the copy was refused and nothing was committed; Err: committing failed, so
    // what is on disk is unknown.
    let committed = on_own_thread("basalt-snapshot-check", move || {
        let checking = std::time::Instant::now();
        drop(file);
        if let Err(refused) = check_database(&dir.join(PARTIAL), committing.snapshot.index) {
            return Ok(Err(refused));
        }
        let check_ms = checking.elapsed().as_millis() as u64;
        let committing_at = std::time::Instant::now();
        commit(&dir, &committing).map_err(|e| format!("committing the snapshot: {e}"))?;
        tracing::info!(
            received_ms,
            write_wait_ms = disk.write_wait_ms,
            sync_ms = disk.sync_ms,
            check_ms,
            commit_ms = committing_at.elapsed().as_millis() as u64,
            "stored a raft snapshot"
        );
        Ok::<_, String>(Ok(()))
    })
    .await;
    match committed {
        Ok(Ok(())) => Ok(log),
        Ok(Err(refused)) => {
            member.unfreeze();
            Err(refused)
        }
        Err(fault) => {
            // The commit point may or may not be durable: going on could acknowledge entries
            // a restart into the snapshot would then drop. Fail-stop, as for any storage fault.
            member.stop(fault.clone());
            Err(fault)
        }
    }
}

/// What the network side hands the disk writer.
enum ToDisk {
    Chunk(Bytes),
    /// Every chunk arrived and the stream's length and crc matched: make the file durable.
    /// Without it (the pipe closed first) the transfer failed and nothing is synced.
    End,
}

/// Where the disk writer's time went.
#[derive(Clone, Copy, Debug, Default)]
struct DiskTimes {
    /// Time the writer spent in write calls (the network waited only when the pipe was full).
    write_wait_ms: u64,
    /// The last staged write and the fdatasync, after the last chunk.
    sync_ms: u64,
}

/// Chunks that may wait for the disk writer: the follower holds at most this many per
/// transfer, while the socket keeps receiving during a write.
const WRITE_AHEAD_CHUNKS: usize = 8;

/// The disk writer's thread: appends every chunk to `file` (straight to the disk), and on
/// [`ToDisk::End`] syncs it. Returns the file (synced only after `End`) and its times.
fn write_copy(
    mut file: DirectFile,
    mut chunks: PipeReceiver<ToDisk>,
) -> (io::Result<File>, DiskTimes) {
    let mut times = DiskTimes::default();
    let mut writing = std::time::Duration::ZERO;
    loop {
        match chunks.recv_blocking() {
            Some(ToDisk::Chunk(chunk)) => {
                let started = std::time::Instant::now();
                if let Err(error) = file.append(&chunk) {
                    return (Err(error), times);
                }
                writing += started.elapsed();
            }
            Some(ToDisk::End) => break,
            None => {
                let aborted = io::Error::other("the transfer stopped before its end");
                return (Err(aborted), times);
            }
        }
    }
    times.write_wait_ms = writing.as_millis() as u64;
    let syncing = std::time::Instant::now();
    let synced = file.finish();
    times.sync_ms = syncing.elapsed().as_millis() as u64;
    (synced, times)
}

/// Whether the database at `path` is whole and is the engine's state at raft `index`: it opens
/// (both meta pages and the commit they name are sound), its size is its commit's, and its
/// state (read through checksummed pages) is at `index`.
///
/// No walk of every page: the transport's length and crc32 already prove the file is, byte for
/// byte, the copy the leader's engine made of one of its durable commits, and every page of it
/// carries the checksum the leader's engine sealed it with, checked on each read here as there
/// (a damaged page fails its reader, as it would have on the leader). etcd checks no more (a
/// sha256 of the stream). The walk cost a second pass over the whole file, from the disk since
/// the copy is written past the page cache (6.9 s at 2.2 GB on this machine).
pub fn check_database(path: &Path, index: u64) -> Result<(), String> {
    // Measured before the engine opens it (opening may grow the file).
    let length = fs::metadata(path)
        .map_err(|e| format!("reading the snapshot's size: {e}"))?
        .len();
    let engine =
        Engine::open(path).map_err(|e| format!("the snapshot is not a basalt database: {e}"))?;
    let view = engine
        .read()
        .map_err(|e| format!("reading the snapshot's database: {e}"))?;
    // A copy is exactly its commit's pages; a short file lost pages (free ones, perhaps) that
    // a later commit would use.
    if view.size_bytes() != length {
        return Err(format!(
            "the snapshot's database is {length} bytes, its commit spans {}",
            view.size_bytes()
        ));
    }
    let applied = view.applied_index();
    if applied != index {
        return Err(format!(
            "the snapshot's database is at raft index {applied}, its metadata says {index}"
        ));
    }
    Ok(())
}

/// Makes a checked `incoming.db.partial` the snapshot to install: renamed to `incoming.db`,
/// then the commit point `incoming.meta` written beside it, each step durable.
pub fn commit(dir: &Path, log: &LogMetadata) -> io::Result<()> {
    fs::rename(dir.join(PARTIAL), dir.join(INCOMING_DB))?;
    sync_dir(dir)?;
    let payload = log.encode();
    let mut bytes = crc32fast::hash(&payload).to_le_bytes().to_vec();
    bytes.extend_from_slice(&payload);
    let mut meta = File::create(dir.join(INCOMING_META_TMP))?;
    meta.write_all(&bytes)?;
    meta.sync_all()?;
    fs::rename(dir.join(INCOMING_META_TMP), dir.join(INCOMING_META))?;
    sync_dir(dir)
}

/// The committed snapshot's log metadata, if one waits to be installed in `dir`.
pub fn pending(dir: &Path) -> Result<Option<LogMetadata>, String> {
    let bytes = match fs::read(dir.join(INCOMING_META)) {
        Ok(bytes) => bytes,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(format!("reading {INCOMING_META}: {error}")),
    };
    let damaged = || format!("{} is damaged", dir.join(INCOMING_META).display());
    let (crc, payload) = bytes.split_at_checked(4).ok_or_else(damaged)?;
    if crc32fast::hash(payload).to_le_bytes() != crc {
        return Err(damaged());
    }
    LogMetadata::decode(payload)
        .map(Some)
        .map_err(|e| format!("{}: {e}", damaged()))
}

/// Start-up, before the engine opens: swaps a committed snapshot's database in, or deletes
/// what an unfinished transfer left. Returns the snapshot's index when one is being installed.
pub fn finish_pending_swap(dir: &Path) -> Result<Option<u64>, String> {
    let io_error = |what: &str, e: io::Error| format!("{what} in {}: {e}", dir.display());
    let Some(log) = pending(dir)? else {
        for leftover in [PARTIAL, INCOMING_DB, INCOMING_META_TMP] {
            match fs::remove_file(dir.join(leftover)) {
                Ok(()) => tracing::info!(file = leftover, "removed an unfinished snapshot"),
                Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                Err(error) => return Err(io_error("removing an unfinished snapshot", error)),
            }
        }
        return Ok(None);
    };
    if dir.join(INCOMING_DB).exists() {
        fs::rename(dir.join(INCOMING_DB), dir.join(DB))
            .map_err(|e| io_error("installing the snapshot's database", e))?;
        sync_dir(dir).map_err(|e| io_error("syncing", e))?;
    }
    Ok(Some(log.snapshot.index))
}

/// Start-up, once the WAL is open and before the member starts: restarts the log after a
/// committed snapshot's index, then drops the commit point. Returns the index installed.
pub async fn finish_pending_log_reset(
    dir: &Path,
    wal: &basalt_wal::Wal,
) -> Result<Option<u64>, String> {
    let Some(mut log) = pending(dir)? else {
        return Ok(None);
    };
    let index = log.snapshot.index;
    // Keep the newest term and vote this member made durable (it may have run on after the
    // snapshot was committed); a log already reset holds the installed metadata.
    let current = LogMetadata::decode(&wal.metadata())?;
    if current.hard_state.term >= log.hard_state.term {
        log.hard_state.term = current.hard_state.term;
        log.hard_state.vote = current.hard_state.vote;
    }
    wal.reset(index + 1).await.map_err(|e| e.to_string())?;
    let queued = wal
        .queue_metadata(&log.encode())
        .await
        .map_err(|e| e.to_string())?;
    wal.wait_durable(queued).await.map_err(|e| e.to_string())?;
    fs::remove_file(dir.join(INCOMING_META))
        .map_err(|e| format!("removing {INCOMING_META}: {e}"))?;
    sync_dir(dir).map_err(|e| format!("syncing {}: {e}", dir.display()))?;
    Ok(Some(index))
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces this process with a fresh start of the same binary and arguments (same pid, same
/// environment), which installs the committed snapshot before anything opens. Returns only
/// if that failed.
fn restart_process() -> String {
    use std::os::unix::process::CommandExt;
    // Descriptors not marked close-on-exec (a listener, the io_uring rings) would outlive
    // the exec and hold ports and files the new start needs.
    if let Ok(entries) = fs::read_dir("/proc/self/fd") {
        for entry in entries.flatten() {
            let Some(fd) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<i32>().ok())
            else {
                continue;
            };
            if fd > 2 {
                // SAFETY: fcntl on a descriptor number only changes its close-on-exec flag;
                // a number that is not open (the read_dir's own) fails harmlessly.
                unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
            }
        }
    }
    let mut args = std::env::args_os();
    let program_name = args.next().unwrap_or_else(|| "basalt".into());
    let error = std::process::Command::new("/proc/self/exe")
        .arg0(program_name)
        .args(args)
        .exec();
    error.to_string()
}

#[cfg(test)]
mod tests {
    //! The install's file steps, with a crash between any two of them: the next start finds
    //! the old database or the new one, never a mix, and a damaged copy is refused before it
    //! can replace anything.

    use super::*;

    fn database_at(path: &Path, index: u64, value: &[u8]) {
        let engine = Engine::open(path).unwrap();
        let mut batch = engine.write().unwrap();
        batch
            .put(&basalt_engine::PutRequest {
                key: b"key".to_vec(),
                value: value.to_vec(),
                ..Default::default()
            })
            .unwrap();
        batch.set_applied_index(index);
        batch.commit().unwrap();
        engine.sync().unwrap();
    }

    /// The copy a leader streams of the database at `path` (Maintenance.Snapshot's copy).
    fn copy_of(path: &Path) -> Vec<u8> {
        let engine = Engine::open(path).unwrap();
        let copy = engine.durable_view().unwrap().into_snapshot().unwrap();
        let mut bytes = vec![0u8; copy.size_bytes() as usize];
        assert_eq!(copy.read_at(0, &mut bytes).unwrap(), bytes.len());
        bytes
    }

    fn value_in(path: &Path) -> Vec<u8> {
        let engine = Engine::open(path).unwrap();
        let view = engine.read().unwrap();
        let got = view
            .range(&basalt_engine::RangeRequest {
                key: b"key".to_vec(),
                ..Default::default()
            })
            .unwrap();
        got.kvs[0].value.clone()
    }

    fn log_at(index: u64) -> LogMetadata {
        let mut log = LogMetadata::default();
        log.hard_state.term = 3;
        log.hard_state.commit = index;
        log.snapshot.index = index;
        log.snapshot.term = 2;
        log.snapshot.mut_conf_state().voters = vec![1, 2, 3];
        log
    }

    #[test]
    fn a_damaged_or_truncated_copy_is_refused_and_nothing_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        database_at(&dir.path().join(DB), 10, b"old");
        let source = tempfile::tempdir().unwrap();
        database_at(&source.path().join(DB), 50, b"new");
        let whole = copy_of(&source.path().join(DB));

        // Truncated: a short file is not a database.
        fs::write(dir.path().join(PARTIAL), &whole[..whole.len() / 2]).unwrap();
        assert!(check_database(&dir.path().join(PARTIAL), 50).is_err());
        // Damaged: a flipped byte in every page after the two meta pages (free pages are
        // zeros and unread; the used ones carry checksums).
        let mut damaged = whole.clone();
        for page in damaged.chunks_mut(4096).skip(2) {
            page[64] ^= 0xff;
        }
        fs::write(dir.path().join(PARTIAL), &damaged).unwrap();
        assert!(check_database(&dir.path().join(PARTIAL), 50).is_err());
        // Whole, but not at the index its metadata claims.
        fs::write(dir.path().join(PARTIAL), &whole).unwrap();
        assert!(check_database(&dir.path().join(PARTIAL), 49).is_err());
        assert_eq!(check_database(&dir.path().join(PARTIAL), 50), Ok(()));

        // A refused transfer leaves only its partial file, which the next start removes.
        assert_eq!(finish_pending_swap(dir.path()), Ok(None));
        assert!(!dir.path().join(PARTIAL).exists());
        assert_eq!(value_in(&dir.path().join(DB)), b"old");
    }

    #[test]
    fn a_crash_between_install_steps_leaves_old_or_new() {
        let source = tempfile::tempdir().unwrap();
        database_at(&source.path().join(DB), 50, b"new");
        let whole = copy_of(&source.path().join(DB));
        let fresh = || {
            let dir = tempfile::tempdir().unwrap();
            database_at(&dir.path().join(DB), 10, b"old");
            fs::write(dir.path().join(PARTIAL), &whole).unwrap();
            dir
        };

        // Crash after the rename to incoming.db, before the commit point: old state.
        let dir = fresh();
        fs::rename(dir.path().join(PARTIAL), dir.path().join(INCOMING_DB)).unwrap();
        assert_eq!(finish_pending_swap(dir.path()), Ok(None));
        assert_eq!(value_in(&dir.path().join(DB)), b"old");
        assert!(!dir.path().join(INCOMING_DB).exists());

        // Crash with the meta half written (never renamed): old state.
        let dir = fresh();
        fs::write(dir.path().join(INCOMING_META_TMP), b"torn").unwrap();
        assert_eq!(finish_pending_swap(dir.path()), Ok(None));
        assert_eq!(value_in(&dir.path().join(DB)), b"old");

        // Crash right after the commit point: the next start swaps the new database in, and
        // a crash after the swap (meta still there) finds it done and swaps nothing twice.
        let dir = fresh();
        commit(dir.path(), &log_at(50)).unwrap();
        assert_eq!(pending(dir.path()), Ok(Some(log_at(50))));
        assert_eq!(finish_pending_swap(dir.path()), Ok(Some(50)));
        assert_eq!(value_in(&dir.path().join(DB)), b"new");
        assert_eq!(finish_pending_swap(dir.path()), Ok(Some(50)));
        assert_eq!(value_in(&dir.path().join(DB)), b"new");

        // A damaged commit point stops the start rather than guessing.
        let mut bytes = fs::read(dir.path().join(INCOMING_META)).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        fs::write(dir.path().join(INCOMING_META), &bytes).unwrap();
        assert!(finish_pending_swap(dir.path()).is_err());
    }

    #[test]
    fn the_log_restarts_after_the_snapshot_even_when_redone_after_a_crash() {
        use basalt_wal::{Wal, WalOptions};
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let dir = tempfile::tempdir().unwrap();
                let wal_dir = dir.path().join("wal");
                // A member's log: entries 1..=20 and a newer term (5, voted for 2) than the
                // snapshot's commit recorded.
                let mut current = LogMetadata::default();
                current.hard_state.term = 5;
                current.hard_state.vote = 2;
                current.hard_state.commit = 20;
                {
                    let wal = Wal::open(&wal_dir, WalOptions::default()).await.unwrap();
                    for _ in 1..=20 {
                        wal.append(b"entry").await.unwrap();
                    }
                    wal.set_metadata(&current.encode()).await.unwrap();
                    wal.close().await.unwrap();
                }
                commit_files(dir.path(), &log_at(50));
                assert_eq!(finish_pending_swap(dir.path()), Ok(Some(50)));

                // The log step, then a "crash" before the commit point is gone: it is redone.
                let wal = Wal::open(&wal_dir, WalOptions::default()).await.unwrap();
                assert_eq!(
                    finish_pending_log_reset(dir.path(), &wal).await,
                    Ok(Some(50))
                );
                wal.close().await.unwrap();
                let log = log_at(50);
                commit_files(dir.path(), &log);
                let _ = fs::remove_file(dir.path().join(DB));
                assert_eq!(finish_pending_swap(dir.path()), Ok(Some(50)));
                let wal = Wal::open(&wal_dir, WalOptions::default()).await.unwrap();
                assert_eq!(
                    finish_pending_log_reset(dir.path(), &wal).await,
                    Ok(Some(50))
                );
                assert_eq!(pending(dir.path()), Ok(None));
                wal.close().await.unwrap();

                let wal = Wal::open(&wal_dir, WalOptions::default()).await.unwrap();
                assert_eq!(wal.next_index(), 51, "the log continues after the snapshot");
                assert!(wal.last_index() < wal.first_index(), "no entry survives");
                let stored = LogMetadata::decode(&wal.metadata()).unwrap();
                assert_eq!(stored.snapshot, log.snapshot);
                assert_eq!(stored.hard_state.commit, 50);
                assert_eq!((stored.hard_state.term, stored.hard_state.vote), (5, 2));
                wal.close().await.unwrap();
            })
            .unwrap()
            .join()
            .unwrap();
    }

    /// A committed snapshot in `dir`: its database copy and commit point.
    fn commit_files(dir: &Path, log: &LogMetadata) {
        let source = tempfile::tempdir().unwrap();
        database_at(&source.path().join(DB), log.snapshot.index, b"new");
        fs::write(dir.join(PARTIAL), copy_of(&source.path().join(DB))).unwrap();
        commit(dir, log).unwrap();
    }
}
