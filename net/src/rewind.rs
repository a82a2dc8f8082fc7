//! A stream that replays bytes already read from it (the sniffed first bytes) before reading
//! on, so the protocol chosen by `sniff` sees the connection from its first byte.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite};

/// `inner`, with `prefix` put back in front of it.
pub struct Rewind<S> {
    prefix: Vec<u8>,
    prefix_read_bytes: usize,
    inner: S,
}

impl<S> Rewind<S> {
    /// A stream that yields `prefix`, then whatever `inner` yields.
    pub fn new(prefix: Vec<u8>, inner: S) -> Rewind<S> {
        Rewind {
            prefix,
            prefix_read_bytes: 0,
            inner,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Rewind<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffer: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let remaining = &this.prefix[this.prefix_read_bytes..];
        if !remaining.is_empty() {
            let copied_bytes = remaining.len().min(buffer.len());
            buffer[..copied_bytes].copy_from_slice(&remaining[..copied_bytes]);
            this.prefix_read_bytes += copied_bytes;
            return Poll::Ready(Ok(copied_bytes));
        }
        Pin::new(&mut this.inner).poll_read(cx, buffer)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Rewind<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buffer)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    //! Goal: the replayed prefix and the rest arrive in order, whatever the read sizes.
    use super::*;
    use futures_lite::AsyncReadExt;

    #[test]
    fn prefix_then_inner() {
        let inner = futures_lite::io::Cursor::new(b" world".to_vec());
        let mut stream = Rewind::new(b"hello".to_vec(), inner);
        let mut all = Vec::new();
        futures_lite::future::block_on(async {
            let mut small = [0u8; 2];
            let read_bytes = stream.read(&mut small).await.unwrap();
            all.extend_from_slice(&small[..read_bytes]);
            stream.read_to_end(&mut all).await.unwrap();
        });
        assert_eq!(all, b"hello world");
    }
}
