//! Handing a client core's new connection to the owner (`basalt_net::handoff`): at a graceful
//! stop, over TLS, and the end of the owner's handoff loop.
//!
//! Goal: a graceful stop drains a connection a client core hands the owner while it stops.
//! The stop orders every core to stop accepting, each on its own thread, so the owner may stop
//! before a client core does; were the owner's end of the handoff channel to close then, a
//! connection the client core pushed at that moment would stay queued in a channel nobody
//! reads (accepted, never served nor closed, outside every drain) until the process ends.
//! So the owner keeps taking handed-off connections until the client core closes its end,
//! which it does when it stops accepting, and counts that loop as a listener, so that its
//! stop of accepting ends only once every handed-off connection is its own.
//! Method: an owner executor (no listener of its own) and a client core with a listener,
//! placed as in the server. The owner stops accepting first; a connection the client core
//! accepts next, while the owner serves none, must still be served by the owner (the old code
//! closed the owner's end at its own stop, and the client core served it); once the client
//! core stops accepting, the owner's handoff loop must end (its listeners at 0) with the
//! connection counted among its own, and the connection must still be served.

mod support;

use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use basalt_net::handoff::{ConnectionShares, HandedOff, HANDOFF_QUEUE_LIMIT, OWNER};
use basalt_net::tls::{ServerTls, TlsPolicy};
use basalt_net::Server;
use etcd_client::{Certificate, ConnectOptions, TlsOptions};
use glommio::channels::shared_channel;
use glommio::{LocalExecutorBuilder, Placement};

const CLIENT_CORE: usize = 1;
/// Steps of the script, in `Script::step`.
const OWNER_STOPS: usize = 1;
const OWNER_STOPPED: usize = 2;
const CLIENT_CORE_STOPS: usize = 3;
const CLIENT_CORE_STOPPED: usize = 4;
const FINISH: usize = 5;
/// A bound on each wait for a condition; none takes near it when the code works.
const PATIENCE: Duration = Duration::from_secs(10);

struct Script {
    step: AtomicUsize,
}

impl Script {
    fn go(&self, step: usize) {
        self.step.store(step, Ordering::Release);
    }

    fn reached(&self, step: usize) -> bool {
        self.step.load(Ordering::Acquire) >= step
    }

    async fn until(&self, step: usize) {
        wait_on_executor(|| self.reached(step)).await;
        assert!(self.reached(step), "step {step} never came");
    }
}

/// Waits (at most PATIENCE) on a glommio executor until `done`.
async fn wait_on_executor(done: impl Fn() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() && Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(1)).await;
    }
}

/// A server whose Range answers carry `member_id`, so a client sees which executor served it.
fn server(member_id: u64) -> Rc<Server> {
    Rc::new(support::member_id_server(member_id))
}

async fn served_by(client: &mut etcd_client::Client) -> u64 {
    let response = client.get("k", None).await.expect("range");
    response.header().expect("a header").member_id()
}

async fn until_owner_serves(shares: &ConnectionShares, connections: usize) {
    let deadline = Instant::now() + PATIENCE;
    while shares.served_by(OWNER) != connections && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(shares.served_by(OWNER), connections);
}

#[tokio::test]
async fn a_connection_handed_off_while_the_owner_stops_is_the_owners_to_drain() {
    let shares = ConnectionShares::new(2);
    let script = Arc::new(Script {
        step: AtomicUsize::new(0),
    });
    let (to_owner, handed_off) = shared_channel::new_bounded::<HandedOff>(HANDOFF_QUEUE_LIMIT);
    let (report, owner_report) = mpsc::channel();
    let (bound, port) = mpsc::channel();

    let (owner_shares, owner_script) = (shares.clone(), script.clone());
    let owner = LocalExecutorBuilder::new(Placement::Unbound)
        .name("net-test-owner")
        .spawn(move || async move {
            let server = server(OWNER as u64);
            server.place(owner_shares, OWNER, None);
            let from = handed_off.connect().await;
            let handoff = glommio::spawn_local(server.clone().serve_handed_off(from));
            owner_script.until(OWNER_STOPS).await;
            server.stop_accepting();
            owner_script.go(OWNER_STOPPED);
            owner_script.until(CLIENT_CORE_STOPPED).await;
            wait_on_executor(|| server.listeners_open() == 0).await;
            report
                .send((server.listeners_open(), server.connections_open()))
                .unwrap();
            if server.listeners_open() == 0 {
                handoff
                    .await
                    .expect("the handoff loop ends without an error");
            }
            owner_script.until(FINISH).await;
            server.close_connections();
            wait_on_executor(|| server.connections_open() == 0).await;
        })
        .expect("start the owner");

    let (core_shares, core_script) = (shares.clone(), script.clone());
    let client_core = LocalExecutorBuilder::new(Placement::Unbound)
        .name("net-test-client-core")
        .spawn(move || async move {
            let server = server(CLIENT_CORE as u64);
            server.place(core_shares, CLIENT_CORE, Some(to_owner.connect().await));
            let listener = basalt_net::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            bound.send(listener.local_addr().unwrap().port()).unwrap();
            let serving = glommio::spawn_local(server.clone().serve(listener));
            core_script.until(CLIENT_CORE_STOPS).await;
            server.stop_accepting();
            serving
                .await
                .expect("the accept loop ends without an error");
            core_script.go(CLIENT_CORE_STOPPED);
            server.close_connections();
            wait_on_executor(|| server.connections_open() == 0).await;
        })
        .expect("start the client core");

    let port: u16 = port.recv_timeout(PATIENCE).expect("the client core binds");
    let endpoint = format!("http://127.0.0.1:{port}");

    // While serving, the lone connection goes to the owner.
    let mut first = etcd_client::Client::connect([endpoint.as_str()], None)
        .await
        .expect("connect");
    assert_eq!(served_by(&mut first).await, OWNER as u64);
    until_owner_serves(&shares, 1).await;
    drop(first);
    until_owner_serves(&shares, 0).await;

    // The owner stops accepting before the client core does.
    script.go(OWNER_STOPS);
    let deadline = Instant::now() + PATIENCE;
    while !script.reached(OWNER_STOPPED) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert!(script.reached(OWNER_STOPPED));
    let mut late = etcd_client::Client::connect([endpoint.as_str()], None)
        .await
        .expect("connect while only the owner stopped accepting");
    assert_eq!(
        served_by(&mut late).await,
        OWNER as u64,
        "the owner closed its end of the handoff while the client core still accepted"
    );

    script.go(CLIENT_CORE_STOPS);
    let (listeners_open, connections_open) = owner_report
        .recv_timeout(2 * PATIENCE)
        .expect("the owner reports");
    assert_eq!(
        (listeners_open, connections_open),
        (0, 1),
        "the owner's handoff loop ends with the client core's accepting, the handed-off \
         connection among the owner's (listeners open, connections open)"
    );
    assert_eq!(
        served_by(&mut late).await,
        OWNER as u64,
        "the connection is served on"
    );
    assert_eq!(shares.served_by(OWNER), 1);

    drop(late);
    script.go(FINISH);
    owner.join().unwrap();
    client_core.join().unwrap();
    assert_eq!(
        (shares.served_by(OWNER), shares.served_by(CLIENT_CORE)),
        (0, 0)
    );
}

/// Goal: a connection to an https listener is handed off before its TLS handshake, with the
/// listener's TLS, and the owner does the handshake and serves it; the next one (the owner
/// serving one) does its handshake on the client core. Method: a client core with a TLS
/// listener (a self-signed certificate) and an owner with none; two etcd clients trusting the
/// certificate, each asked which executor served it.
#[tokio::test]
async fn a_tls_connection_is_handed_off_before_its_handshake() {
    let data_dir = tempfile::tempdir().unwrap();
    let fixtures = data_dir.path().join("fixtures");
    let hosts = ["127.0.0.1:2379".to_string(), "localhost:2379".to_string()];
    let tls = Arc::new(ServerTls::self_signed(&fixtures, &hosts, 1, TlsPolicy::default()).unwrap());
    let cert_pem = std::fs::read_to_string(fixtures.join("cert.pem")).unwrap();
    let shares = ConnectionShares::new(2);
    let script = Arc::new(Script {
        step: AtomicUsize::new(0),
    });
    let (to_owner, handed_off) = shared_channel::new_bounded::<HandedOff>(HANDOFF_QUEUE_LIMIT);
    let (bound, port) = mpsc::channel();

    let (owner_shares, owner_script) = (shares.clone(), script.clone());
    let owner = LocalExecutorBuilder::new(Placement::Unbound)
        .name("net-test-tls-owner")
        .spawn(move || async move {
            let server = server(OWNER as u64);
            server.place(owner_shares, OWNER, None);
            let from = handed_off.connect().await;
            glommio::spawn_local(server.clone().serve_handed_off(from)).detach();
            owner_script.until(FINISH).await;
            server.close_connections();
            wait_on_executor(|| server.connections_open() == 0).await;
        })
        .expect("start the owner");
    let (core_shares, core_script) = (shares.clone(), script.clone());
    let client_core = LocalExecutorBuilder::new(Placement::Unbound)
        .name("net-test-tls-client-core")
        .spawn(move || async move {
            let server = server(CLIENT_CORE as u64);
            server.place(core_shares, CLIENT_CORE, Some(to_owner.connect().await));
            let listener = basalt_net::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            bound.send(listener.local_addr().unwrap().port()).unwrap();
            glommio::spawn_local(server.clone().serve_tls(listener, tls)).detach();
            core_script.until(FINISH).await;
            server.close_connections();
            wait_on_executor(|| server.connections_open() == 0).await;
        })
        .expect("start the client core");

    let port: u16 = port.recv_timeout(PATIENCE).expect("the client core binds");
    let endpoint = format!("https://127.0.0.1:{port}");
    let options = || {
        ConnectOptions::new()
            .with_tls(
                TlsOptions::new()
                    .ca_certificate(Certificate::from_pem(&cert_pem))
                    .domain_name("localhost"),
            )
            .with_timeout(PATIENCE)
    };
    let mut lone = etcd_client::Client::connect([endpoint.as_str()], Some(options()))
        .await
        .expect("connect over TLS");
    assert_eq!(
        served_by(&mut lone).await,
        OWNER as u64,
        "the lone connection"
    );
    let mut next = etcd_client::Client::connect([endpoint.as_str()], Some(options()))
        .await
        .expect("connect over TLS");
    assert_eq!(
        served_by(&mut next).await,
        CLIENT_CORE as u64,
        "the next connection, the owner serving one"
    );
    assert_eq!(
        (shares.served_by(OWNER), shares.served_by(CLIENT_CORE)),
        (1, 1)
    );
    drop((lone, next));
    script.go(FINISH);
    owner.join().unwrap();
    client_core.join().unwrap();
}

/// Goal: the owner's handoff loop, which a graceful stop waits for, ends when a client core is
/// told to stop accepting even if that core has no accept loop running to end (a core whose
/// listeners failed to start, or that serves none). Method: a client core placed with its
/// channel to the owner and no listener; both stop accepting; the owner's listeners must reach
/// 0 and its loop end without an error.
#[test]
fn a_client_core_told_to_stop_accepting_ends_the_owners_handoff_loop() {
    let shares = ConnectionShares::new(2);
    let (to_owner, handed_off) = shared_channel::new_bounded::<HandedOff>(HANDOFF_QUEUE_LIMIT);
    let owner_shares = shares.clone();
    let owner = LocalExecutorBuilder::new(Placement::Unbound)
        .name("net-test-idle-owner")
        .spawn(move || async move {
            let server = server(OWNER as u64);
            server.place(owner_shares, OWNER, None);
            let from = handed_off.connect().await;
            let handoff = glommio::spawn_local(server.clone().serve_handed_off(from));
            server.stop_accepting();
            wait_on_executor(|| server.listeners_open() == 0).await;
            assert_eq!(server.listeners_open(), 0, "the handoff loop runs on");
            handoff
                .await
                .expect("the handoff loop ends without an error");
        })
        .expect("start the owner");
    let client_core = LocalExecutorBuilder::new(Placement::Unbound)
        .name("net-test-idle-client-core")
        .spawn(move || async move {
            let server = server(CLIENT_CORE as u64);
            server.place(shares, CLIENT_CORE, Some(to_owner.connect().await));
            server.stop_accepting();
            // The server (and any end of the channel it still holds) lives on, as a client
            // core's does until the process ends.
            std::mem::forget(server);
        })
        .expect("start the client core");
    client_core.join().unwrap();
    owner.join().unwrap();
}
