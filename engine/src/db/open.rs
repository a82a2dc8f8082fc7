//! Opening (or creating) a database file: pick the newest valid meta, check the file against
//! it, map it, load the free list. Cost is independent of the number of keys.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use super::{Db, Published, Shared};
use crate::error::{Error, Result};
use crate::pager::file::DataFile;
use crate::pager::freelist::{decode_runs, FreeList};
use crate::pager::mapping::Mapping;
use crate::pager::meta::Meta;
use crate::pager::{PageKind, View, PAGE_SIZE};

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
        file.try_lock().map_err(|e| Error::BadFile {
            path: path.to_path_buf(),
            reason: format!("locked by another process ({e})"),
        })?;
        let file = DataFile {
            file,
            path: path_buf.clone(),
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
        let meta = newest_meta(&file)?;
        if file_len < meta.page_count * PAGE_SIZE as u64 {
            return Err(Error::BadFile {
                path: path.to_path_buf(),
                reason: format!(
                    "file is {file_len} bytes but meta {} says {} pages",
                    meta.slot(),
                    meta.page_count
                ),
            });
        }
        let mapping = Arc::new(Mapping::new(&file.file, reserve_for(file_len)).map_err(io)?);
        let view = View {
            mapping: mapping.clone(),
            page_count: meta.page_count,
            path: path_buf,
        };
        let freelist = if meta.freelist_page == 0 {
            FreeList::default()
        } else {
            let bytes = view.run(meta.freelist_page, PageKind::FreeList)?;
            let pages = decode_runs(bytes, meta.page_count)
                .map_err(|reason| view.corrupt(meta.freelist_page, reason))?;
            FreeList::from_free(pages)
        };
        Ok(Db {
            shared: Arc::new(Shared {
                file,
                published: Mutex::new(Published {
                    meta,
                    mapping,
                    readers: BTreeMap::new(),
                }),
                writer: Mutex::new(freelist),
                failed: AtomicBool::new(false),
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

/// The valid meta with the highest txn id; an error naming both pages if neither is valid.
fn newest_meta(file: &DataFile) -> Result<Meta> {
    let metas: Vec<std::result::Result<Meta, String>> = (0..2)
        .map(|page| file.read_page(page).map(|bytes| Meta::decode(&bytes)))
        .collect::<Result<_>>()?;
    match (&metas[0], &metas[1]) {
        (Ok(a), Ok(b)) => Ok(if b.txn_id > a.txn_id { *b } else { *a }),
        (Ok(a), Err(_)) => Ok(*a),
        (Err(_), Ok(b)) => Ok(*b),
        (Err(a), Err(b)) => Err(Error::Corrupt {
            path: file.path.to_path_buf(),
            page: 0,
            reason: format!("both meta pages are invalid: page 0: {a}; page 1: {b}"),
        }),
    }
}
