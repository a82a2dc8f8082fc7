//! A start-up check that io_uring is usable, so a member that cannot have it says why and what
//! to change instead of failing deep inside an executor (glommio panics with a message about old
//! kernels). The usual cause is a container's seccomp profile: Docker's default one leaves the
//! io_uring system calls out of its allow list, and they fail with EPERM.

use crate::server::error::ServerError;

/// Bytes of the kernel's `struct io_uring_params` (stable ABI since Linux 5.1).
const IO_URING_PARAMS_BYTES: usize = 120;

/// Sets up (and closes at once) a one-entry ring; an error names the cause and the fix.
pub fn check_io_uring() -> Result<(), ServerError> {
    let mut params = [0u8; IO_URING_PARAMS_BYTES];
    // SAFETY: io_uring_setup reads and writes at most `struct io_uring_params` (120 bytes) at
    // the pointer, which points to a zeroed buffer of that size living across the call.
    let fd = unsafe { libc::syscall(libc::SYS_io_uring_setup, 1u32, params.as_mut_ptr()) };
    if fd < 0 {
        let error = std::io::Error::last_os_error();
        return Err(ServerError::IoUringUnavailable(format!(
            "io_uring_setup failed: {error}. basalt does all its disk and network I/O through \
             io_uring (glommio). In a container, allow the io_uring_setup, io_uring_enter and \
             io_uring_register system calls in its seccomp profile (Docker's default profile \
             blocks them; see docs/operations.md); on a host, the sysctl \
             kernel.io_uring_disabled must be 0"
        )));
    }
    // SAFETY: `fd` is the ring's file descriptor just returned to us and used nowhere else.
    unsafe { libc::close(fd as libc::c_int) };
    Ok(())
}
