//! A minimal epoll wrapper: the only `unsafe` of the lean client. Level-triggered; each
//! registered socket carries its index in the worker's connection list as the event token.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Readiness of one socket, as reported by `Poller::wait`.
#[derive(Clone, Copy, Debug)]
pub struct Readiness {
    /// The index the socket was registered with.
    pub token: usize,
    /// Bytes (or EOF, or an error) to read.
    pub readable: bool,
    /// Room in the send buffer.
    pub writable: bool,
}

/// An epoll instance.
pub struct Poller {
    epoll: OwnedFd,
    events: Vec<libc::epoll_event>,
}

impl Poller {
    /// A new epoll instance that reports at most `capacity` sockets per wait.
    pub fn new(capacity: usize) -> io::Result<Self> {
        // SAFETY: epoll_create1 takes no pointers; a non-negative result is a new descriptor
        // that nothing else owns.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by epoll_create1 and is owned by nothing else.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        let empty = libc::epoll_event { events: 0, u64: 0 };
        Ok(Poller {
            epoll,
            events: vec![empty; capacity.max(1)],
        })
    }

    /// Watches `socket` for reading, and for writing too when `writable`.
    pub fn add(&self, socket: &impl AsRawFd, token: usize, writable: bool) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_ADD, socket.as_raw_fd(), token, writable)
    }

    /// Changes whether `socket` is watched for writing.
    pub fn modify(&self, socket: &impl AsRawFd, token: usize, writable: bool) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_MOD, socket.as_raw_fd(), token, writable)
    }

    /// Stops watching `socket`.
    pub fn remove(&self, socket: &impl AsRawFd) -> io::Result<()> {
        self.control(libc::EPOLL_CTL_DEL, socket.as_raw_fd(), 0, false)
    }

    fn control(&self, operation: i32, fd: RawFd, token: usize, writable: bool) -> io::Result<()> {
        let mut interest = (libc::EPOLLIN | libc::EPOLLRDHUP) as u32;
        if writable {
            interest |= libc::EPOLLOUT as u32;
        }
        let mut event = libc::epoll_event {
            events: interest,
            u64: token as u64,
        };
        // SAFETY: both descriptors are open (the poller owns one, the caller borrows the
        // other) and `event` is a valid epoll_event that outlives the call.
        let result = unsafe { libc::epoll_ctl(self.epoll.as_raw_fd(), operation, fd, &mut event) };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Waits up to `timeout` for ready sockets and appends them to `ready`.
    pub fn wait(&mut self, timeout: Duration, ready: &mut Vec<Readiness>) -> io::Result<()> {
        let timeout_ms = timeout.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: `events` is a live buffer of `events.len()` epoll_event slots the kernel
        // may fill; the count it returns is at most that length.
        let count = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                self.events.as_mut_ptr(),
                self.events.len() as i32,
                timeout_ms,
            )
        };
        if count < 0 {
            let error = io::Error::last_os_error();
            return match error.kind() {
                io::ErrorKind::Interrupted => Ok(()),
                _ => Err(error),
            };
        }
        for event in &self.events[..count as usize] {
            let flags = event.events;
            let readable =
                (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLHUP | libc::EPOLLERR) as u32;
            ready.push(Readiness {
                token: event.u64 as usize,
                readable: flags & readable != 0,
                writable: flags & libc::EPOLLOUT as u32 != 0,
            });
        }
        Ok(())
    }
}
