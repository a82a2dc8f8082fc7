//! Measures the network layer alone: unary round-trip latency and throughput of a no-op
//! `KV/Range` handler on one glommio executor, driven by the `etcd-client` crate.
//!
//! Run: `cargo run --release -p basalt-net --example unary_load [connections] [in_flight] [seconds]`
//! The client (tonic on tokio) shares the machine's cores with the server, so the figures are
//! a floor for the server, not a ceiling.

use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use basalt_net::proto::etcdserverpb::{RangeRequest, RangeResponse};
use basalt_net::{Metadata, Router, Server, ServerConfig};

/// Nanoseconds the thread `tid` of this process has spent on a CPU (from schedstat).
fn thread_cpu_ns(tid: &str) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).unwrap();
    stat.split_whitespace().next().unwrap().parse().unwrap()
}

/// Starts the server; returns its address and its executor thread's id.
fn start_server() -> (std::net::SocketAddr, String) {
    let (address_sender, address_receiver) = mpsc::channel();
    glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(0))
        .name("net-load-server")
        .spawn(move || async move {
            let mut router = Router::new();
            router.unary(
                "/etcdserverpb.KV/Range",
                |_: Metadata, _: RangeRequest| async { Ok(RangeResponse::default()) },
            );
            let listener = basalt_net::bind("127.0.0.1:0".parse().unwrap()).unwrap();
            // "/proc/thread-self" links to "<pid>/task/<tid>".
            let thread = std::fs::read_link("/proc/thread-self").unwrap();
            let tid = thread.file_name().unwrap().to_string_lossy().into_owned();
            address_sender
                .send((listener.local_addr().unwrap(), tid))
                .unwrap();
            Rc::new(Server::new(router, ServerConfig::default()))
                .serve(listener)
                .await
                .unwrap();
        })
        .expect("start executor");
    address_receiver.recv().unwrap()
}

fn percentile(sorted: &[Duration], fraction: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * fraction) as usize]
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .map(|arg| arg.parse::<usize>().unwrap());
    let connections = args.next().unwrap_or(4);
    let in_flight_per_connection = args.next().unwrap_or(16);
    let seconds = args.next().unwrap_or(3) as u64;
    let (address, server_tid) = start_server();
    let endpoint = format!("http://{address}");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        // Sequential: one call at a time on one connection.
        let mut client = etcd_client::Client::connect([endpoint.clone()], None)
            .await
            .unwrap();
        for _ in 0..200 {
            client.get("k", None).await.unwrap(); // warm-up
        }
        let mut latencies = Vec::new();
        let cpu_start_ns = thread_cpu_ns(&server_tid);
        for _ in 0..5000 {
            let start = Instant::now();
            client.get("k", None).await.unwrap();
            latencies.push(start.elapsed());
        }
        let sequential_cpu_ns = thread_cpu_ns(&server_tid) - cpu_start_ns;
        latencies.sort();
        println!(
            "sequential: {} calls, p50 {:?}, p99 {:?}, max {:?}, server CPU {:.1} µs/call",
            latencies.len(),
            percentile(&latencies, 0.5),
            percentile(&latencies, 0.99),
            latencies.last().unwrap(),
            sequential_cpu_ns as f64 / 1000.0 / latencies.len() as f64
        );

        // Concurrent: `in_flight_per_connection` callers on each of `connections` connections.
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut callers = Vec::new();
        for _ in 0..connections {
            let client = etcd_client::Client::connect([endpoint.clone()], None)
                .await
                .unwrap();
            for _ in 0..in_flight_per_connection {
                let mut client = client.clone();
                callers.push(tokio::spawn(async move {
                    let mut calls = 0u64;
                    while Instant::now() < deadline {
                        client.get("k", None).await.unwrap();
                        calls += 1;
                    }
                    calls
                }));
            }
        }
        let cpu_start_ns = thread_cpu_ns(&server_tid);
        let mut calls = 0;
        for caller in callers {
            calls += caller.await.unwrap();
        }
        let server_cpu_ns = thread_cpu_ns(&server_tid) - cpu_start_ns;
        println!(
            "concurrent: {connections} connections x {in_flight_per_connection} in flight: \
             {calls} calls in {seconds} s = {:.0} calls/s, server CPU {:.1} µs/call \
             (server thread busy {:.0}%)",
            calls as f64 / seconds as f64,
            server_cpu_ns as f64 / 1000.0 / calls as f64,
            server_cpu_ns as f64 / 1e7 / seconds as f64
        );
    });
}
