//! Goal: thread-per-core serving works as DESIGN.md says: two executors bind the same address
//! (glommio listeners set SO_REUSEPORT), the kernel spreads connections over both, and each
//! connection's calls are served by the executor that accepted it.
//! Method: each executor answers Range with its own member_id; 32 fresh connections must reach
//! both (the chance that a fair spread hits only one is 2^-31).

use std::collections::HashSet;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::Duration;

mod support;

fn start_executor(member_id: u64, port: u16, bound: mpsc::Sender<u16>) {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name(&format!("net-test-core-{member_id}"))
        .spawn(move || async move {
            let address = format!("127.0.0.1:{port}").parse().unwrap();
            let listener = basalt_net::bind(address).unwrap();
            bound.send(listener.local_addr().unwrap().port()).unwrap();
            Rc::new(support::member_id_server(member_id))
                .serve(listener)
                .await
                .unwrap();
        })
        .expect("start executor");
}

#[tokio::test]
async fn two_executors_share_one_port() {
    let (bound_sender, bound) = mpsc::channel();
    start_executor(1, 0, bound_sender.clone());
    let port = bound.recv_timeout(Duration::from_secs(10)).unwrap();
    start_executor(2, port, bound_sender);
    assert_eq!(bound.recv_timeout(Duration::from_secs(10)).unwrap(), port);

    let mut members_seen = HashSet::new();
    for _ in 0..32 {
        let mut client = etcd_client::Client::connect([format!("http://127.0.0.1:{port}")], None)
            .await
            .unwrap();
        let response = client.get("k", None).await.unwrap();
        members_seen.insert(response.header().unwrap().member_id());
    }
    assert_eq!(members_seen, HashSet::from([1, 2]));
}

/// Goal: a server refuses an address another server already listens on, as etcd does, where
/// SO_REUSEPORT alone would let the second one join the first one's listeners and take half of
/// its connections. Method: an executor binds a port (SO_REUSEPORT, as another process's
/// server would); `claim` of that address fails with "address already in use", while `bind`
/// alone succeeds (the sharing the claim exists to catch).
#[test]
fn claim_refuses_an_address_a_listener_holds() {
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("net-test-claim")
        .spawn(|| async {
            let held = basalt_net::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let address = held.local_addr().unwrap();
            match basalt_net::claim(address) {
                Err(basalt_net::NetError::Io(error)) => {
                    assert_eq!(error.kind(), std::io::ErrorKind::AddrInUse, "{error}")
                }
                other => panic!("claimed an address a listener holds: {other:?}"),
            }
            let joined = basalt_net::bind(address).expect("SO_REUSEPORT joins the listener");
            drop((held, joined));
        })
        .expect("start executor")
        .join()
        .unwrap();
}
