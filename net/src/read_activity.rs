//! A connection that remembers when it last read bytes from its peer, so keepalive can tell a
//! quiet client from a busy one (grpc-go counts any frame read as a sign of life).

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Instant;

use futures_lite::{AsyncRead, AsyncWrite};

/// `inner`, with the time of its last read of at least one byte in a shared cell.
pub struct ReadActivity<S> {
    inner: S,
    last_read: Rc<Cell<Instant>>,
}

impl<S> ReadActivity<S> {
    /// Wraps `inner`; the cell starts at now (the connection has just spoken).
    pub fn new(inner: S) -> ReadActivity<S> {
        ReadActivity {
            inner,
            last_read: Rc::new(Cell::new(Instant::now())),
        }
    }

    /// The cell holding the time of the last read.
    pub fn last_read(&self) -> Rc<Cell<Instant>> {
        self.last_read.clone()
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReadActivity<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffer: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let read = Pin::new(&mut self.inner).poll_read(cx, buffer);
        if let Poll::Ready(Ok(bytes)) = &read {
            if *bytes > 0 {
                self.last_read.set(Instant::now());
            }
        }
        read
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReadActivity<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buffer)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffers: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, buffers)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}
