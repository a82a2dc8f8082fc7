//! Goal: the writer batches — frames queued while it was busy leave in one buffered write,
//! not one syscall each. Method: a dialer whose streams count their writes; 1000 small control
//! frames queued at once must arrive, intact and in order, in a handful of writes.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use basalt_net::peer::{
    Dialer, Lane, PeerAddress, PeerStream, TcpDialer, Transport, TransportConfig,
};
use futures_lite::{AsyncRead, AsyncWrite};

use crate::support::{check_pattern_frame, pattern_frame, run, within, Member};

/// A stream that counts the writes made on it.
struct Counting {
    inner: PeerStream,
    writes: Rc<Cell<usize>>,
}

impl AsyncRead for Counting {
    fn poll_read(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_read(context, buffer)
    }
}

impl AsyncWrite for Counting {
    fn poll_write(
        mut self: Pin<&mut Self>,
        context: &mut Context<'_>,
        buffer: &[u8],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.inner).poll_write(context, buffer);
        if let Poll::Ready(Ok(_)) = written {
            self.writes.set(self.writes.get() + 1);
        }
        written
    }
    fn poll_flush(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(context)
    }
    fn poll_close(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_close(context)
    }
}

struct CountingDialer(Rc<Cell<usize>>);

impl Dialer for CountingDialer {
    fn dial(&self, address: &PeerAddress) -> Pin<Box<dyn Future<Output = io::Result<PeerStream>>>> {
        let writes = self.0.clone();
        let dial = TcpDialer.dial(address);
        Box::pin(async move {
            let inner = dial.await?;
            Ok(Box::new(Counting { inner, writes }) as PeerStream)
        })
    }
}

#[test]
fn queued_frames_leave_in_few_writes() {
    run(|_logs| async move {
        let b = Member::start(7, 2);
        let writes = Rc::new(Cell::new(0));
        let a = Transport::with_dialer(
            TransportConfig::new(7, 1, 1536 * 1024),
            Rc::new(CountingDialer(writes.clone())),
        );
        a.add_peer(2, std::slice::from_ref(&b.url)).unwrap();
        // Connect first, so the dial's own writes are not counted.
        a.send(2, Lane::Control, pattern_frame(0, 0, 100)).unwrap();
        within(
            Duration::from_secs(10),
            "the first frame",
            b.transport.recv(Lane::Control),
        )
        .await;
        let before = writes.get();

        for sequence in 1..=1000 {
            a.send(2, Lane::Control, pattern_frame(0, sequence, 100))
                .unwrap();
        }
        for sequence in 1..=1000 {
            let (_, frame) = within(
                Duration::from_secs(10),
                "the frames",
                b.transport.recv(Lane::Control),
            )
            .await;
            assert_eq!(check_pattern_frame(&frame), (0, sequence));
        }
        let batch_writes = writes.get() - before;
        eprintln!("1000 control frames left in {batch_writes} writes");
        assert!(batch_writes <= 20, "1000 frames took {batch_writes} writes");
        a.shutdown();
        b.stop().await;
    });
}
