//! Starting the real `basalt` binary and driving it with Debian's real `etcdctl`.
#![allow(dead_code)]

pub mod agreement;
pub mod cluster;
mod free_port;
pub mod peer_proxy;
/// The throwaway PKI of the TLS tests (client TLS, peer TLS), shared with net's TLS tests.
#[path = "../../../net/tests/tls/pki.rs"]
pub mod pki;
pub mod workload;

pub use free_port::free_port;

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a member may take to print "ready to serve client requests".
const START_LIMIT: Duration = Duration::from_secs(20);

/// A running `basalt` process on a free loopback port; killed when dropped.
pub struct Basalt {
    child: Child,
    pub port: u16,
    pub data_dir: PathBuf,
    /// Every line the process wrote to stderr so far.
    log: Arc<Mutex<Vec<String>>>,
}

impl Basalt {
    /// Starts a member with a fresh data directory inside `dir`.
    pub fn start(dir: &Path) -> Basalt {
        Basalt::start_with(dir.join("data"), free_port())
    }

    /// Starts (or restarts) a member on `data_dir` and `port`, and waits until it is ready.
    pub fn start_with(data_dir: PathBuf, port: u16) -> Basalt {
        Basalt::start_with_flags(data_dir, port, &[])
    }

    /// Like `start_with`, with extra etcd flags.
    pub fn start_with_flags(data_dir: PathBuf, port: u16, flags: &[&str]) -> Basalt {
        Basalt::start_with_env(data_dir, port, flags, &[])
    }

    /// Like `start_with_flags`, with environment variables (the rest of the environment is
    /// cleared).
    pub fn start_with_env(
        data_dir: PathBuf,
        port: u16,
        flags: &[&str],
        env: &[(&str, &str)],
    ) -> Basalt {
        let mut all_flags = vec!["--listen-peer-urls", "http://127.0.0.1:0"];
        all_flags.extend_from_slice(flags);
        Basalt::spawn(data_dir, port, &all_flags, env).wait_ready()
    }

    /// Starts a member without waiting for it to be ready (members of one cluster must all be
    /// running before any can be). No peer URL flags are added.
    pub fn spawn(data_dir: PathBuf, port: u16, flags: &[&str], env: &[(&str, &str)]) -> Starting {
        let url = format!("http://127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_basalt"))
            .arg("--data-dir")
            .arg(&data_dir)
            .args([
                "--listen-client-urls",
                &url,
                "--advertise-client-urls",
                &url,
            ])
            .args(flags)
            .env_clear()
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start basalt");
        Starting {
            child: Some(child),
            port,
            data_dir,
        }
    }
}

/// A member that was started and may not be ready yet; killed when dropped before it becomes
/// a `Basalt` (a test that fails while its members start leaves no process behind).
pub struct Starting {
    /// Taken by `wait_ready`, which hands the process on.
    child: Option<Child>,
    port: u16,
    data_dir: PathBuf,
}

impl Drop for Starting {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Starting {
    /// Asserts the member is not ready to serve clients within `limit` (e.g. its peers refuse
    /// it, so it never completes a read-index round), then kills it and returns what it logged.
    pub fn assert_never_ready(mut self, limit: Duration) -> String {
        let child = self.child.as_mut().expect("not yet handed on");
        let stderr = child.stderr.take().expect("piped stderr");
        let (line_sender, line_receiver) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line_sender.send(line).is_err() {
                    return;
                }
            }
        });
        let deadline = Instant::now() + limit;
        let mut lines = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match line_receiver.recv_timeout(left) {
                Ok(line) => {
                    assert!(
                        !line.contains("ready to serve client requests"),
                        "the member became ready:\n{}",
                        lines.join("\n")
                    );
                    lines.push(line);
                }
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
        }
        // Dropping `self` kills the member.
        lines.join("\n")
    }

    /// Waits until the member says it is ready to serve clients.
    pub fn wait_ready(mut self) -> Basalt {
        let mut child = self.child.take().expect("not yet handed on");
        let (port, data_dir) = (self.port, std::mem::take(&mut self.data_dir));
        let stderr = child.stderr.take().expect("piped stderr");
        let (ready_sender, ready_receiver) = mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("ready to serve client requests") {
                    let _ = ready_sender.send(Ok(()));
                }
                // Shown by the test harness when a test fails: what the member said.
                eprintln!("basalt: {line}");
                lines.lock().unwrap().push(line);
            }
            let _ = ready_sender.send(Err(lines.lock().unwrap().join("\n")));
        });
        match ready_receiver.recv_timeout(START_LIMIT) {
            Ok(Ok(())) => Basalt {
                child,
                port,
                data_dir,
                log,
            },
            Ok(Err(output)) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("basalt exited before it was ready:\n{output}")
            }
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("basalt was not ready within {START_LIMIT:?}")
            }
        }
    }
}

impl Basalt {
    /// `127.0.0.1:port`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The most resident memory the process has held so far (Linux's VmHWM).
    pub fn peak_resident_bytes(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .expect("read the member's /proc status");
        let kib: u64 = status
            .lines()
            .find_map(|line| line.strip_prefix("VmHWM:"))
            .and_then(|rest| rest.trim().strip_suffix("kB"))
            .and_then(|number| number.trim().parse().ok())
            .expect("VmHWM in /proc status");
        kib * 1024
    }

    /// The lines the process has written to stderr so far that contain `text`.
    pub fn logged(&self, text: &str) -> Vec<String> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|line| line.contains(text))
            .cloned()
            .collect()
    }

    /// The process ID (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process with SIGKILL and waits for it to be gone.
    pub fn kill_9(mut self) -> (PathBuf, u16) {
        self.child.kill().expect("SIGKILL basalt");
        self.child.wait().expect("reap basalt");
        (std::mem::take(&mut self.data_dir), self.port)
    }

    /// Stops the process with SIGTERM (an operator's graceful stop) and waits at most `limit`
    /// for it to exit; its exit status.
    pub fn terminate(mut self, limit: Duration) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -TERM basalt");
        match self.wait_exit(limit) {
            Some(status) => status,
            None => panic!("basalt did not exit within {limit:?} of SIGTERM"),
        }
    }

    /// Runs etcdctl (v3 API) against this member with `args`, feeding `stdin`.
    pub fn etcdctl(&self, args: &[&str], stdin: &str) -> Output {
        self.etcdctl_within(args, stdin, Duration::from_secs(30))
    }

    /// Runs etcdctl as `etcdctl`, allowing it `limit` to finish.
    pub fn etcdctl_within(&self, args: &[&str], stdin: &str, limit: Duration) -> Output {
        let etcdctl = find_etcdctl();
        let mut child = Command::new(etcdctl)
            .env("ETCDCTL_API", "3")
            .arg("--endpoints")
            .arg(self.endpoint())
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start etcdctl");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("piped stdin")
            .write_all(stdin.as_bytes())
            .expect("feed etcdctl");
        let deadline = Instant::now() + limit;
        loop {
            if child.try_wait().expect("poll etcdctl").is_some() {
                return child.wait_with_output().expect("etcdctl output");
            }
            assert!(
                Instant::now() < deadline,
                "etcdctl {args:?} did not finish within {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Runs etcdctl until it succeeds (a cluster electing, a member catching up) and returns
    /// its stdout; past `limit`, the last attempt's stderr as the error.
    pub fn etcdctl_until_ok(&self, args: &[&str], limit: Duration) -> Result<String, String> {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let output = self.etcdctl(args, "");
            if output.status.success() {
                return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
            }
            if std::time::Instant::now() >= deadline {
                return Err(String::from_utf8_lossy(&output.stderr).into_owned());
            }
        }
    }

    /// Runs etcdctl and returns its stdout, failing the test if it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let output = self.etcdctl(args, "");
        assert!(
            output.status.success(),
            "etcdctl {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8 output")
    }

    /// Waits at most `limit` for the process to exit on its own; its exit status, or `None`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("poll basalt") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Runs etcdctl expecting failure and returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let output = self.etcdctl(args, "");
        assert!(!output.status.success(), "etcdctl {args:?} should fail");
        String::from_utf8(output.stderr).expect("utf-8 output")
    }
}

impl Drop for Basalt {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Debian's etcdctl; the test script installs it (package `etcd-client`).
pub fn find_etcdctl() -> PathBuf {
    for candidate in ["/usr/bin/etcdctl", "/usr/local/bin/etcdctl"] {
        if Path::new(candidate).exists() {
            return PathBuf::from(candidate);
        }
    }
    panic!("etcdctl not found: install Debian's `etcd-client` package (tools/test-all.sh does)");
}

/// Bound on connecting and on each test's whole conversation with the member.
const LIMIT: Duration = Duration::from_secs(30);

/// Starts a fresh member, connects a client and runs `test` with it, within [`LIMIT`].
pub fn with_client<F, Fut>(test: F)
where
    F: FnOnce(etcd_client::Client) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start(dir.path());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = tokio::time::timeout(
            LIMIT,
            etcd_client::Client::connect([basalt.endpoint()], None),
        )
        .await
        .expect("connect within the limit")
        .expect("connect");
        tokio::time::timeout(LIMIT, test(client))
            .await
            .expect("the test finished within the limit");
    });
    drop(basalt);
}

/// Asserts that `result` is the gRPC status `code` (tonic's name, e.g. "InvalidArgument")
/// with exactly `message`.
#[track_caller]
pub fn assert_status<T: std::fmt::Debug>(
    result: Result<T, etcd_client::Error>,
    code: &str,
    message: &str,
) {
    match result {
        Err(etcd_client::Error::GRpcStatus(status)) => {
            assert_eq!(format!("{:?}", status.code()), code, "{status:?}");
            assert_eq!(status.message(), message, "{status:?}");
        }
        other => {
            let mut shown = format!("{other:?}");
            shown.truncate(400);
            panic!("expected {code} {message:?}, got {shown}")
        }
    }
}

/// One HTTP/1.1 request to the member's client port: (status code, body).
pub fn http_request(port: u16, method: &str, target: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
    stream.set_read_timeout(Some(LIMIT)).unwrap();
    write!(
        stream,
        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"));
    let body = response
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, body)| body.to_string());
    (status, body)
}

/// Bound on a test's whole conversation with a member it started itself.
const CONVERSATION_LIMIT: Duration = Duration::from_secs(60);

/// Runs `test` on a tokio runtime within [`CONVERSATION_LIMIT`], with a client of `basalt`.
pub fn with_member<F, Fut, T>(basalt: &Basalt, test: F) -> T
where
    F: FnOnce(etcd_client::Client) -> Fut,
    Fut: Future<Output = T>,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        tokio::time::timeout(CONVERSATION_LIMIT, async {
            let client = etcd_client::Client::connect([basalt.endpoint()], None)
                .await
                .expect("connect");
            test(client).await
        })
        .await
        .expect("the test finished within the limit")
    })
}

/// `basalt::config::load` over string slices: the configuration it serves with, or its error.
pub fn load_config(
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<basalt::config::Config, basalt::config::ConfigError> {
    let args: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    match basalt::config::load(&args, &env)? {
        basalt::config::Invocation::Serve(config) => Ok(*config),
        other => panic!("expected a configuration, got {other:?}"),
    }
}

/// `member list -w json`: (id, name, is learner, peer URLs) of every member.
pub fn listed_members(member: &Basalt) -> Vec<(u64, String, bool, Vec<String>)> {
    let listed: serde_json::Value =
        serde_json::from_str(&member.ok(&["member", "list", "-w", "json"])).unwrap();
    listed["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["ID"].as_u64().unwrap(),
                m["name"].as_str().unwrap_or_default().to_string(),
                m["isLearner"].as_bool().unwrap_or(false),
                m["peerURLs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|u| u.as_str().unwrap().to_string())
                    .collect(),
            )
        })
        .collect()
}
