//! A seam for injecting storage faults in tests: the log asks the injector before each write and
//! each fdatasync, and fails exactly as if the kernel had returned the injected error.

use std::io;
use std::path::Path;

/// Decides whether a storage operation fails. Implemented by tests; production passes `None`.
pub trait FaultInjector {
    /// Called before writing `len` bytes at `offset` of `path`.
    fn before_write(&self, path: &Path, offset: u64, len: usize) -> io::Result<()>;
    /// Called before an fdatasync of `path`.
    fn before_fdatasync(&self, path: &Path) -> io::Result<()>;
}
