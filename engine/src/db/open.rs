//! Opening (or creating) a database file: pick the newest valid meta, check the file against
//! it, map it, load the free list. Cost is independent of the number of keys.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};

use super::grow::Grower;
use super::{Db, Published, Shared, WriterState};
use crate::error::{Error, Result};
use crate::file_lock::{lock_exclusive, LOCK_WAIT};
use crate::pager::file::DataFile;
use crate::pager::freelist::{decode_commit_record, FreeList, Written};
use crate::pager::mapping::Mapping;
use crate::pager::meta::{Meta, FORMAT_VERSION, FORMAT_VERSION_MIN};
use crate::pager::{checksum, run_checksum, run_pages, PageKind, View, PAGE_SIZE, RUN_BYTES_MAX};

/// Address space reserved up front; the file can grow this far without a new mapping.
const RESERVE_BYTES_MIN: u64 = 16 << 30;

/// Address space to reserve for a file of `file_bytes`.
pub(crate) fn reserve_for(file_bytes: u64) -> u64 {
    RESERVE_BYTES_MIN.max((file_bytes * 2).next_power_of_two())
}

impl Db {
    /// Opens the database file at `path`, creating an empty one if it does not exist.
    pub(crate) fn open(path: &Path) -> Result<Db> {
        let path_buf = Arc::new(path.to_path_buf());
        let io = |source| Error::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io)?;
        if !lock_exclusive(&file, LOCK_WAIT).map_err(io)? {
            return Err(Error::BadFile {
                path: path.to_path_buf(),
                reason: format!(
                    "locked by another process (still locked after {} ms)",
                    LOCK_WAIT.as_millis()
                ),
            });
        }
        let file = DataFile {
            file,
            path: path_buf.clone(),
            sync_failed: std::sync::Mutex::new(false),
        };
        if file.len()? == 0 {
            create(&file, path)?;
        }
        let file_len = file.len()?;
        if file_len < 2 * PAGE_SIZE as u64 {
            return Err(Error::BadFile {
                path: path.to_path_buf(),
                reason: format!("file is {file_len} bytes, shorter than its two meta pages"),
            });
        }
        let mapping = Arc::new(Mapping::new(&file.file, reserve_for(file_len)).map_err(io)?);
        // A durable commit may write its pages and its meta under one fdatasync, so a crash can
        // leave the newest meta on disk without some of its pages. The commit record tells:
        // every page the commit wrote must carry the checksum the record lists. If not, the
        // commit never completed its fdatasync — it was never acknowledged — and the previous
        // meta (in the other slot, whose pages that commit never touched) is the durable state.
        // The one case this cannot tell apart is a disk that lost a write *after* a successful
        // fdatasync; the server catches that loss against its WAL (the engine would be behind
        // the WAL's checkpoint), see `torn_commit_discarded`. A commit whose pages were synced
        // before its meta (`Engine::sync`, the checkpoint) cannot be torn that way: a mismatch
        // there is damage, and open refuses.
        let metas = metas_newest_first(&file)?;
        let (slot, meta) = metas[0];
        let (chosen, discarded) = match load_commit(&file, &mapping, &path_buf, meta, file_len) {
            Ok(freelist) => ((slot, meta, freelist), None),
            Err(error @ (Error::Corrupt { .. } | Error::BadFile { .. }))
                if !meta.pages_synced_first =>
            {
                let Some(&(older_slot, older)) = metas.get(1) else {
                    return Err(error);
                };
                match load_commit(&file, &mapping, &path_buf, older, file_len) {
                    Ok(freelist) => ((older_slot, older, freelist), Some(meta.txn_id)),
                    // Both broken: report the newest commit's problem.
                    Err(_) => return Err(error),
                }
            }
            Err(other) => return Err(other),
        };
        let (durable_slot, meta, freelist) = chosen;
        let file = Arc::new(file);
        // Pages the meta counts were written by commits; the grower's zeros go past the file.
        let grower = Grower::start(file.clone(), file_len, meta.page_count * PAGE_SIZE as u64)?;
        Ok(Db {
            shared: Arc::new(Shared {
                file,
                grower,
                published: Mutex::new(Published {
                    meta,
                    mapping,
                    readers: BTreeMap::new(),
                }),
                writer: Mutex::new(WriterState {
                    freelist,
                    durable: meta,
                    durable_slot,
                    deferred: None,
                }),
                failed: AtomicBool::new(false),
                commit_deferred: AtomicBool::new(false),
                deferred_pages: AtomicU64::new(0),
                torn_commit_discarded: discarded,
            }),
        })
    }
}

/// Writes an empty database: both meta slots hold commit 0.
fn create(file: &DataFile, path: &Path) -> Result<()> {
    let meta = Meta::empty().encode();
    file.write_pages(0, &meta)?;
    file.write_pages(1, &meta)?;
    file.sync()?;
    // The new directory entry must be durable too, or a crash could lose the whole file.
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        if let Ok(dir) = std::fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

/// The valid metas with their slots, newest first; an error naming both pages if neither is
/// valid.
fn metas_newest_first(file: &DataFile) -> Result<Vec<(u64, Meta)>> {
    let pages: Vec<Vec<u8>> = (0..2)
        .map(|page| file.read_page(page))
        .collect::<Result<_>>()?;
    let metas: Vec<std::result::Result<Meta, String>> =
        pages.iter().map(|bytes| Meta::decode(bytes)).collect();
    let mut valid: Vec<(u64, Meta)> = metas
        .iter()
        .enumerate()
        .filter_map(|(slot, m)| m.as_ref().ok().map(|m| (slot as u64, *m)))
        .collect();
    if valid.is_empty() {
        // An intact meta of another format is not damage: say which format the file has.
        if let Some(other) = pages
            .iter()
            .filter_map(|page| Meta::declared_format(page))
            .find(|format| !(FORMAT_VERSION_MIN..=FORMAT_VERSION).contains(format))
        {
            return Err(Error::BadFile {
                path: file.path.to_path_buf(),
                reason: format!(
                    "it is in format version {other}; this build writes format version \
                     {FORMAT_VERSION} and also reads format version {FORMAT_VERSION_MIN}, and \
                     there is no migration from it (start from an empty data directory)"
                ),
            });
        }
        let reason =
            |m: &std::result::Result<Meta, String>| m.as_ref().err().cloned().unwrap_or_default();
        return Err(Error::Corrupt {
            path: file.path.to_path_buf(),
            page: 0,
            reason: format!(
                "both meta pages are invalid: page 0: {}; page 1: {}",
                reason(&metas[0]),
                reason(&metas[1])
            ),
        });
    }
    valid.sort_by_key(|(slot, m)| (std::cmp::Reverse(m.txn_id), *slot));
    valid.dedup_by_key(|(_, m)| m.txn_id);
    Ok(valid)
}

/// Checks that every page the commit of `meta` wrote is on disk as written (catching a lost or
/// misdirected write early, at open, rather than at first read) and returns its free list.
fn load_commit(
    file: &DataFile,
    mapping: &Arc<Mapping>,
    path: &Arc<std::path::PathBuf>,
    meta: Meta,
    file_len: u64,
) -> Result<FreeList> {
    if file_len < meta.page_count * PAGE_SIZE as u64 {
        return Err(Error::BadFile {
            path: path.to_path_buf(),
            reason: format!(
                "file is {file_len} bytes but meta of commit {} says {} pages",
                meta.txn_id, meta.page_count
            ),
        });
    }
    let view = View {
        mapping: mapping.clone(),
        page_count: meta.page_count,
        path: path.clone(),
    };
    if meta.freelist_page == 0 {
        return Ok(FreeList::default());
    }
    let bytes = view.run(meta.freelist_page, PageKind::FreeList)?;
    let stored_crc = view
        .mapping
        .bytes(meta.freelist_page, 1)
        .map(|page| u32::from_le_bytes(page[0..4].try_into().unwrap()));
    if stored_crc != Some(meta.freelist_crc) {
        return Err(view.corrupt(
            meta.freelist_page,
            "commit record is not the one the meta names",
        ));
    }
    let (free, written) = decode_commit_record(bytes, meta.page_count)
        .map_err(|reason| view.corrupt(meta.freelist_page, reason))?;
    for written in written {
        verify_written(file, &view, written)?;
    }
    Ok(FreeList::from_free(free))
}

/// Checks one page (or run) the newest commit wrote: content against its own checksum, and
/// that checksum against the commit record (a stale older version has a valid checksum of its
/// own, so only the record can tell a lost write). A headerless value run has no checksum of
/// its own on disk: the record's (the one its leaf holds) is the only one. Read with pread, not
/// through the mapping: faulting pages in would map their neighbours too and inflate RSS at
/// open.
fn verify_written(file: &DataFile, view: &View, written: Written) -> Result<()> {
    let Written {
        page,
        crc,
        value_run_pages,
    } = written;
    if value_run_pages > 0 {
        let bytes = file.read_pages(page, u64::from(value_run_pages))?;
        if run_checksum(page, &bytes) != crc {
            return Err(view.corrupt(
                page,
                "value run is not the version its commit wrote (write lost)",
            ));
        }
        return Ok(());
    }
    let first = file.read_pages(page, 1)?;
    let bytes = if first[4] == PageKind::Overflow as u8 {
        let data_len = u64::from_le_bytes(first[8..16].try_into().unwrap());
        let pages = run_pages(data_len.min(RUN_BYTES_MAX) as usize);
        if data_len > RUN_BYTES_MAX || page + pages > view.page_count {
            return Err(view.corrupt(
                page,
                format!("overflow run of {data_len} bytes does not fit"),
            ));
        }
        file.read_pages(page, pages)?
    } else {
        first
    };
    let stored = u32::from_le_bytes(bytes[0..4].try_into().unwrap());
    if checksum(page, &bytes) != stored {
        return Err(view.corrupt(page, "checksum mismatch"));
    }
    if stored != crc {
        return Err(view.corrupt(
            page,
            "page is not the version its commit wrote (write lost)",
        ));
    }
    Ok(())
}
