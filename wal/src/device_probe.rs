//! Makes glommio decide correctly whether the log's device supports polled (IOPOLL) I/O.
//!
//! glommio probes a device the first time a DMA file on it is opened, by reading the file's
//! first sector through the polled ring, and caches the answer for the process. When that first
//! file is empty — as a freshly created spare segment is — the kernel answers the read with
//! end-of-file without touching the device, the probe wrongly concludes "pollable", and every
//! later read on the device fails with EOPNOTSUPP (seen on virtio disks). Opening a file that
//! holds data first makes the probe exercise the real path.

use std::path::Path;

use glommio::io::DmaFile;

use crate::error::{WalError, WalResult};

const PROBE_FILE_NAME: &str = ".iopoll-probe";

/// Lets glommio probe the device of `dir` with a non-empty file: `existing` (a segment or spare,
/// so a full disk can still be opened) or, when there is none, a small file made for it.
pub async fn probe_device(dir: &Path, existing: Option<&Path>) -> WalResult<()> {
    if let Some(path) = existing {
        let file = DmaFile::open(path)
            .await
            .map_err(|e| WalError::glommio("open segment", path, e))?;
        return file
            .close()
            .await
            .map_err(|e| WalError::glommio("close segment", path, e));
    }
    let path = dir.join(PROBE_FILE_NAME);
    std::fs::write(&path, [0u8; 4096]).map_err(|e| WalError::io("write device probe", &path, e))?;
    let opened = DmaFile::open(&path).await;
    let removed = std::fs::remove_file(&path);
    let file = opened.map_err(|e| WalError::glommio("open device probe", &path, e))?;
    file.close()
        .await
        .map_err(|e| WalError::glommio("close device probe", &path, e))?;
    removed.map_err(|e| WalError::io("remove device probe", &path, e))
}
