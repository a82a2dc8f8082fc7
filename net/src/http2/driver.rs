//! The I/O around one [`ServerConnection`]: reads the socket into it, writes its output, and
//! hands each accepted request to the server as a call with its two halves ([`RecvHalf`],
//! [`SendHalf`]). One task drives the connection; the calls' tasks touch the shared state only
//! inside short borrows and wake the driver when they queue output, so everything the calls
//! queued in one executor round goes out in one write.

use std::cell::RefCell;
use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_lite::{AsyncRead, AsyncWrite};

use super::server_connection::{
    ConnectionError, Limits, RequestHead, ServerConnection, StreamError,
};

/// Bytes read from the socket at most per read.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Output waiting to be written above which the driver stops reading: a client that does not
/// read its responses stops being served, rather than growing our output.
const READ_PAUSE_OUTPUT_BYTES: usize = 1024 * 1024;

/// Output buffer capacity kept between writes.
const OUTPUT_KEPT_BYTES: usize = 64 * 1024;

thread_local! {
    /// The executor's read buffer: each connection's driver reads into it and moves what it
    /// read into its own (usually small) input, so an idle connection holds no 64 KiB.
    static READ_SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; READ_CHUNK_BYTES].into_boxed_slice());
}

type Shared = Rc<RefCell<ServerConnection>>;

/// How a connection ended.
#[derive(Debug)]
pub enum DriverEnd {
    /// The client closed, or a graceful GOAWAY drained every call.
    Closed,
    /// The client broke the protocol; GOAWAY went out with this error.
    Protocol(ConnectionError),
    /// The transport failed.
    Io(io::Error),
}

/// Drives one connection's I/O.
pub struct Driver<S> {
    io: S,
    connection: Shared,
    input: BytesMut,
    /// Bytes of the output already written.
    written: usize,
    needs_flush: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Driver<S> {
    /// A driver for a connection whose client has not yet sent anything but what `sniffed`
    /// holds (the bytes read to tell the protocol, the preface's start).
    pub fn new(io: S, limits: Limits, sniffed: &[u8]) -> Driver<S> {
        let mut input = BytesMut::with_capacity(sniffed.len().max(1024));
        input.extend_from_slice(sniffed);
        Driver {
            io,
            connection: Rc::new(RefCell::new(ServerConnection::new(limits))),
            input,
            written: 0,
            needs_flush: false,
        }
    }

    /// The protocol state, for the server's control of the connection (GOAWAY, PING).
    pub fn connection(&self) -> &Rc<RefCell<ServerConnection>> {
        &self.connection
    }

    /// Drives the connection until it has accepted requests (`Ok`) or ended.
    pub async fn next(&mut self) -> Result<(), DriverEnd> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    /// The next accepted request, as a call's head and halves.
    pub fn accept(&mut self) -> Option<AcceptedCall> {
        let head = self.connection.borrow_mut().accept()?;
        let handle = Rc::new(StreamHandle {
            connection: self.connection.clone(),
            stream_id: head.stream_id,
        });
        Some(AcceptedCall {
            head,
            body: RecvHalf {
                handle: handle.clone(),
            },
            respond: SendHalf { handle },
        })
    }

    fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), DriverEnd>> {
        if !self.input.is_empty() {
            // The sniffed bytes (or what an earlier step left): process before reading more.
            let mut connection = self.connection.borrow_mut();
            if connection.error().is_none() {
                let _ = connection.receive(&mut self.input);
            }
        }
        loop {
            let mut progressed = false;
            let mut connection = self.connection.borrow_mut();
            connection.set_driver_waker(cx.waker());
            let output = connection.fill_output();
            while self.written < output.len() {
                match Pin::new(&mut self.io).poll_write(cx, &output[self.written..]) {
                    Poll::Ready(Ok(0)) => {
                        connection.close();
                        return Poll::Ready(Err(DriverEnd::Io(io::ErrorKind::WriteZero.into())));
                    }
                    Poll::Ready(Ok(bytes)) => {
                        self.written += bytes;
                        progressed = true;
                    }
                    Poll::Ready(Err(error)) => {
                        connection.close();
                        return Poll::Ready(Err(DriverEnd::Io(error)));
                    }
                    Poll::Pending => break,
                }
            }
            let unwritten = output.len() - self.written;
            if unwritten == 0 && self.written > 0 {
                output.clear();
                // A burst's buffer is not kept by a connection that goes idle after it.
                if output.capacity() > OUTPUT_KEPT_BYTES {
                    output.shrink_to(OUTPUT_KEPT_BYTES);
                }
                self.written = 0;
                self.needs_flush = true;
            }
            if self.needs_flush {
                match Pin::new(&mut self.io).poll_flush(cx) {
                    Poll::Ready(Ok(())) => self.needs_flush = false,
                    Poll::Ready(Err(error)) => {
                        connection.close();
                        return Poll::Ready(Err(DriverEnd::Io(error)));
                    }
                    Poll::Pending => {}
                }
            }
            let all_out = unwritten == 0 && !self.needs_flush && !connection.has_sendable();
            if let Some(error) = connection.error() {
                if all_out {
                    return Poll::Ready(Err(DriverEnd::Protocol(error.clone())));
                }
                if !progressed {
                    return Poll::Pending;
                }
                continue; // only the GOAWAY's writing is left to do
            }
            if connection.drained() && all_out {
                connection.close();
                return Poll::Ready(Err(DriverEnd::Closed));
            }
            if connection.has_accepted() {
                return Poll::Ready(Ok(()));
            }
            if unwritten < READ_PAUSE_OUTPUT_BYTES {
                let read = READ_SCRATCH.with(|scratch| {
                    let mut scratch = scratch.borrow_mut();
                    match Pin::new(&mut self.io).poll_read(cx, &mut scratch[..]) {
                        Poll::Ready(Ok(bytes)) => {
                            self.input.extend_from_slice(&scratch[..bytes]);
                            Poll::Ready(Ok(bytes))
                        }
                        other => other,
                    }
                });
                match read {
                    Poll::Ready(Ok(0)) => {
                        connection.close();
                        return Poll::Ready(Err(DriverEnd::Closed));
                    }
                    Poll::Ready(Ok(_)) => {
                        // A protocol error is written as GOAWAY; the loop writes it out.
                        let _ = connection.receive(&mut self.input);
                        progressed = true;
                    }
                    Poll::Ready(Err(error)) => {
                        connection.close();
                        return Poll::Ready(Err(DriverEnd::Io(error)));
                    }
                    Poll::Pending => {}
                }
            }
            if !progressed {
                return Poll::Pending;
            }
        }
    }
}

/// A request accepted as a call: its head, its body, and its response.
pub struct AcceptedCall {
    /// Method, path and metadata.
    pub head: RequestHead,
    /// The request body.
    pub body: RecvHalf,
    /// The response.
    pub respond: SendHalf,
}

impl<S> Drop for Driver<S> {
    /// A driver dropped without the connection ending (its task cancelled: the server's
    /// stop closes its connections so) wakes every call still waiting on a stream; each sees
    /// the connection closed.
    fn drop(&mut self) {
        if let Ok(mut connection) = self.connection.try_borrow_mut() {
            connection.close();
        }
    }
}

/// What both halves of a call share: its stream, released when both are dropped.
struct StreamHandle {
    connection: Shared,
    stream_id: u32,
}

impl Drop for StreamHandle {
    fn drop(&mut self) {
        // A call dropped while the connection is borrowed cannot happen: calls are tasks of
        // their own, and the driver borrows only inside its polls.
        self.connection.borrow_mut().release_stream(self.stream_id);
    }
}

/// The request side of a call: its body.
pub struct RecvHalf {
    handle: Rc<StreamHandle>,
}

impl RecvHalf {
    /// The next chunk of the request body; `None` once the client ended it.
    pub async fn data(&mut self) -> Option<Result<Bytes, StreamError>> {
        poll_fn(|cx| {
            self.handle
                .connection
                .borrow_mut()
                .poll_data(cx, self.handle.stream_id)
        })
        .await
    }

    /// Gives back the flow-control credit of `bytes` of body taken.
    pub fn release_capacity(&mut self, bytes: usize) {
        self.handle
            .connection
            .borrow_mut()
            .release_capacity(self.handle.stream_id, bytes);
    }
}

/// The response side of a call.
pub struct SendHalf {
    handle: Rc<StreamHandle>,
}

impl SendHalf {
    /// Sends the response headers: `:status`, then `fields` (e.g. content-type; or the
    /// status of a trailers-only gRPC response, with `end_stream`).
    pub fn send_headers(
        &mut self,
        status: u16,
        fields: &[(&str, &str)],
        end_stream: bool,
    ) -> Result<(), StreamError> {
        self.handle.connection.borrow_mut().send_headers(
            self.handle.stream_id,
            status,
            fields,
            end_stream,
        )
    }

    /// Queues `pending` (taking from its front); Pending while the stream's send buffer is
    /// full.
    pub fn poll_send(
        &mut self,
        cx: &mut Context<'_>,
        pending: &mut Bytes,
    ) -> Poll<Result<(), StreamError>> {
        self.handle
            .connection
            .borrow_mut()
            .poll_send(cx, self.handle.stream_id, pending)
    }

    /// Sends `data`, and with `end` ends the response after it (no trailers).
    pub async fn send_data(&mut self, mut data: Bytes, end: bool) -> Result<(), StreamError> {
        poll_fn(|cx| self.poll_send(cx, &mut data)).await?;
        if end {
            self.handle
                .connection
                .borrow_mut()
                .finish_data(self.handle.stream_id)?;
        }
        Ok(())
    }

    /// Ends the response with trailers.
    pub fn send_trailers(&mut self, fields: &[(&str, &str)]) -> Result<(), StreamError> {
        self.handle
            .connection
            .borrow_mut()
            .send_trailers(self.handle.stream_id, fields)
    }

    /// Ready once the client reset the stream or the connection closed.
    pub fn poll_reset(&mut self, cx: &mut Context<'_>) -> Poll<StreamError> {
        self.handle
            .connection
            .borrow_mut()
            .poll_reset(cx, self.handle.stream_id)
    }
}
