//! A TCP proxy in front of every member's peer port that can cut the links between chosen
//! members: the fault-injecting network of the partition tests (network namespaces need
//! privileges CI may not have).
//!
//! Members advertise the proxy's port and listen on their own. Every peer connection opens
//! with basalt's hello (`net/src/peer/wire.rs`: magic, version, lane, cluster, from, to), so
//! the proxy reads it, learns which member dials which, and forwards the connection unless
//! that direction is cut. Cutting a direction also shuts the connections it already carries.
//! Plain TCP only: a TLS peer link hides the hello.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

/// The hello's size on the wire (see `HELLO_BYTES` in `net/src/peer/wire.rs`).
const HELLO_BYTES: usize = 8 + 2 + 1 + 1 + 8 + 8 + 8;

/// One open connection through the proxy, to shut when its direction is cut.
struct Carried {
    from: u64,
    to: u64,
    dialer: TcpStream,
    listener: TcpStream,
}

#[derive(Default)]
struct State {
    /// Directions (from, to) whose connections are refused.
    cut: HashSet<(u64, u64)>,
    carried: Vec<Carried>,
}

/// Proxies in front of a cluster's peer ports.
pub struct PeerProxy {
    /// The ports members advertise, one per member, in seat order.
    pub ports: Vec<u16>,
    state: Arc<Mutex<State>>,
    stopping: Arc<AtomicBool>,
}

impl PeerProxy {
    /// One proxy per target peer port; each forwards to `targets[i]` on loopback.
    pub fn start(targets: &[u16]) -> PeerProxy {
        let state = Arc::new(Mutex::new(State::default()));
        let stopping = Arc::new(AtomicBool::new(false));
        let mut ports = Vec::new();
        for &target in targets {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind a proxy port");
            ports.push(listener.local_addr().unwrap().port());
            let state = state.clone();
            let stopping = stopping.clone();
            thread::spawn(move || accept_loop(listener, target, state, stopping));
        }
        PeerProxy {
            ports,
            state,
            stopping,
        }
    }

    /// Cuts every link between `member` and the others, both ways.
    pub fn isolate(&self, member: u64, others: &[u64]) {
        let mut state = self.state.lock().unwrap();
        for &other in others.iter().filter(|&&o| o != member) {
            state.cut.insert((member, other));
            state.cut.insert((other, member));
        }
        let State { cut, carried } = &mut *state;
        carried.retain(|link| {
            if cut.contains(&(link.from, link.to)) {
                let _ = link.dialer.shutdown(Shutdown::Both);
                let _ = link.listener.shutdown(Shutdown::Both);
                false
            } else {
                true
            }
        });
    }

    /// Restores every link.
    pub fn heal(&self) {
        self.state.lock().unwrap().cut.clear();
    }
}

impl Drop for PeerProxy {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake every accept loop so it sees the flag.
        for &port in &self.ports {
            let _ = TcpStream::connect(("127.0.0.1", port));
        }
        for link in self.state.lock().unwrap().carried.drain(..) {
            let _ = link.dialer.shutdown(Shutdown::Both);
            let _ = link.listener.shutdown(Shutdown::Both);
        }
    }
}

fn accept_loop(
    listener: TcpListener,
    target: u16,
    state: Arc<Mutex<State>>,
    stopping: Arc<AtomicBool>,
) {
    for incoming in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let Ok(dialer) = incoming else { continue };
        let state = state.clone();
        thread::spawn(move || {
            let _ = forward(dialer, target, &state);
        });
    }
}

/// Reads the hello, refuses a cut direction, else carries the connection both ways.
fn forward(mut dialer: TcpStream, target: u16, state: &Mutex<State>) -> std::io::Result<()> {
    let mut hello = [0u8; HELLO_BYTES];
    dialer.read_exact(&mut hello)?;
    let word = |at: usize| u64::from_be_bytes(hello[at..at + 8].try_into().unwrap());
    let (from, to) = (word(20), word(28));
    let mut listener = TcpStream::connect(("127.0.0.1", target))?;
    {
        let mut state = state.lock().unwrap();
        if state.cut.contains(&(from, to)) {
            // Dropping both ends: the dialer sees its connection closed, as with a lost link.
            return Ok(());
        }
        state.carried.push(Carried {
            from,
            to,
            dialer: dialer.try_clone()?,
            listener: listener.try_clone()?,
        });
    }
    listener.write_all(&hello)?;
    let (mut back_from, mut back_to) = (listener.try_clone()?, dialer.try_clone()?);
    thread::spawn(move || {
        let _ = std::io::copy(&mut back_from, &mut back_to);
        let _ = back_to.shutdown(Shutdown::Both);
    });
    let _ = std::io::copy(&mut dialer, &mut listener);
    let _ = listener.shutdown(Shutdown::Both);
    Ok(())
}
