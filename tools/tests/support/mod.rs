//! What the tools' tests share: the basalt server binary, free ports, and a member started on a
//! data directory (killed when dropped).

#![allow(dead_code)]

/// Ports from below the kernel's ephemeral range, shared with the server's test support.
#[path = "../../../tests/server/support/free_port.rs"]
mod free_port;
pub use free_port::free_port;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A member may take this long to say it is ready.
pub const START_LIMIT: Duration = Duration::from_secs(30);

/// The server binary, built beside this test by `cargo test --workspace`.
pub fn basalt_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test> → target/<profile>/basalt
    let binary = exe.parent().unwrap().parent().unwrap().join("basalt");
    assert!(
        binary.is_file(),
        "{} is missing: build the workspace (cargo test --workspace builds it)",
        binary.display()
    );
    binary
}

/// A running basalt, killed when dropped.
pub struct Member {
    child: Child,
    pub port: u16,
}

/// A basalt started and not yet ready (members of one cluster must all run before any is);
/// killed when dropped unready.
pub struct Spawned {
    child: Option<Child>,
    port: u16,
}

impl Member {
    /// Starts a member on `data_dir` and waits until it is ready.
    pub fn start(data_dir: &Path, flags: &[String]) -> Member {
        Member::spawn(data_dir, flags).wait_ready()
    }

    /// Starts a member on `data_dir` on a free client port, without waiting for it.
    pub fn spawn(data_dir: &Path, flags: &[String]) -> Spawned {
        let port = free_port();
        let url = format!("http://127.0.0.1:{port}");
        // Every member binds a peer port (etcd's default is 2380): a port of its own unless
        // the test gives one, so tests running side by side never collide.
        let gives_peer_port = flags.iter().any(|f| f.starts_with("--listen-peer-urls"));
        let peer_default = (!gives_peer_port).then_some("--listen-peer-urls=http://127.0.0.1:0");
        let child = Command::new(basalt_binary())
            .arg(format!("--data-dir={}", data_dir.display()))
            .arg(format!("--listen-client-urls={url}"))
            .arg(format!("--advertise-client-urls={url}"))
            .args(peer_default)
            .args(flags)
            .env_clear()
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start basalt");
        Spawned {
            child: Some(child),
            port,
        }
    }

    pub fn etcdctl(&self, args: &[&str]) -> Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints=127.0.0.1:{}", self.port))
            .args(args)
            .output()
            .expect("run etcdctl (Debian's etcd-client package; tools/test-all.sh installs it)")
    }

    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.etcdctl(args);
        assert!(
            output.status.success(),
            "etcdctl {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }
}

impl Spawned {
    /// Waits until the member says it is ready to serve clients.
    pub fn wait_ready(mut self) -> Member {
        let mut child = self.child.take().expect("waited once");
        let port = self.port;
        let stderr = child.stderr.take().unwrap();
        let (ready, started) = mpsc::channel();
        std::thread::spawn(move || {
            let mut said = Vec::new();
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("ready to serve client requests") {
                    let _ = ready.send(Ok(()));
                }
                eprintln!("basalt: {line}");
                said.push(line);
            }
            let _ = ready.send(Err(said.join("\n")));
        });
        match started.recv_timeout(START_LIMIT) {
            Ok(Ok(())) => Member { child, port },
            Ok(Err(said)) => panic!("basalt exited before it was ready:\n{said}"),
            Err(_) => {
                let _ = child.kill();
                panic!("basalt was not ready within {START_LIMIT:?}")
            }
        }
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
