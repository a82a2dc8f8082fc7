//! The `basalt` binary end to end: exit statuses and messages an operator or a supervisor
//! sees. Each run starts in an empty temporary directory with an empty environment, so
//! nothing from the machine (an ETCD_* variable, a ./default.basalt) changes the outcome.

use std::process::{Command, Output};

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    Command::new(env!("CARGO_BIN_EXE_basalt"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .current_dir(dir.path())
        .output()
        .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Goal: an unknown flag stops basalt with Go's message and exit status 2, as etcd.
#[test]
fn unknown_flag_exits_2() {
    let output = run(&["--listen-client-url=http://127.0.0.1:2379"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("flag provided but not defined: --listen-client-url"),
        "{}",
        stderr(&output)
    );
}

/// Goal: a malformed value stops basalt with exit status 2 and names the flag.
#[test]
fn bad_value_exits_2() {
    let output = run(&["--heartbeat-interval=fast"], &[]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("invalid value \"fast\" for flag --heartbeat-interval"));
}

/// Goal: a configuration etcd would refuse at verification exits 1 with etcd's wording.
#[test]
fn failed_verification_exits_1() {
    let output = run(&["--election-timeout=200"], &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains(
        "error verifying flags, --election-timeout[200ms] should be at least as 5 times as \
         --heartbeat-interval[100ms]"
    ));
    let output = run(
        &[],
        &[
            ("ETCD_NAME", "a"),
            ("ETCD_INITIAL_CLUSTER", "b=http://127.0.0.1:2380"),
        ],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output)
        .contains("couldn't find local name \"a\" in the initial cluster configuration"));
}

/// Goal: what basalt cannot serve yet stops it at start-up with a clear message, never a
/// member that runs without it. Method: each case in an empty directory, its peer listener on
/// a port of its own (every member binds one first); none may leave a data directory behind
/// (it never got as far as opening one).
#[test]
fn what_basalt_cannot_serve_yet_is_refused_at_start() {
    // (flags, ETCD_* variables, what stderr must say)
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: &[Case] = &[
        (
            // A joining member asks the others who it is; alone in the list, it cannot.
            &["--initial-cluster-state=existing"],
            &[],
            "--initial-cluster lists no other member to ask for the cluster's members",
        ),
        (
            &[
                "--listen-client-urls=https://127.0.0.1:23790",
                "--advertise-client-urls=https://127.0.0.1:23790",
            ],
            &[],
            "TLS key/cert (--cert-file, --key-file) must be provided for client url \
             https://127.0.0.1:23790 with HTTPS scheme",
        ),
        (
            &[
                "--listen-client-urls=https://127.0.0.1:23790",
                "--advertise-client-urls=https://127.0.0.1:23790",
                "--cert-file=/nonexistent/server.crt",
                "--key-file=/nonexistent/server.key",
            ],
            &[],
            "TLS certificate file /nonexistent/server.crt",
        ),
        (
            &[],
            &[("ETCD_CIPHER_SUITES", "TLS_RSA_WITH_RC4_128_SHA")],
            "TLS_RSA_WITH_RC4_128_SHA",
        ),
        (
            &["--listen-metrics-urls=https://127.0.0.1:23810"],
            &[],
            "TLS key/cert (--cert-file, --key-file) must be provided for metrics url",
        ),
        (
            &["--host-whitelist=etcd.example.com"],
            &[],
            "cannot narrow them as asked",
        ),
        (&["--max-wals=0"], &[], "cannot retain the number asked"),
        (
            &["--log-outputs=/nonexistent-dir/basalt.log"],
            &[],
            "cannot open log output /nonexistent-dir/basalt.log",
        ),
        (&["--log-outputs=systemd/journal"], &[], "systemd journal"),
    ];
    for (args, env, message) in cases {
        let dir = tempfile::tempdir().unwrap();
        let output = Command::new(env!("CARGO_BIN_EXE_basalt"))
            .arg("--listen-peer-urls=http://127.0.0.1:0")
            .args(*args)
            .env_clear()
            .envs(env.iter().copied())
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(
            output.status.code(),
            Some(1),
            "{args:?} {env:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(message),
            "{args:?} {env:?}: {}",
            stderr(&output)
        );
        assert!(
            std::fs::read_dir(dir.path()).unwrap().next().is_none(),
            "{args:?} {env:?} left files behind"
        );
    }
}

/// Goal: --version and --help answer on stdout with exit status 0.
#[test]
fn version_and_help_exit_0() {
    let output = run(&["--version"], &[]);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).starts_with("etcd Version: 3.5."));
    let output = run(&["-h"], &[]);
    assert_eq!(output.status.code(), Some(0));
    assert!(stdout(&output).contains("--initial-cluster-token 'etcd-cluster'"));
}

/// Goal: with no flags at all, basalt serves 127.0.0.1:2379 and its peer port localhost:2380
/// with its data in ./default.basalt, as the member etcd's defaults describe (etcd's default
/// member and cluster IDs), and logs the milestones supervisors wait for.
#[test]
fn with_no_flags_a_member_serves_the_defaults() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_basalt"))
        .env_clear()
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let mut log = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !log
        .iter()
        .any(|l: &String| l.contains("ready to serve client requests"))
    {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match receiver.recv_timeout(left) {
            Ok(line) => log.push(line),
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "not ready within 20 s (is something else on 127.0.0.1:2379 or 2380?):\n{}",
                    log.join("\n")
                );
            }
        }
    }
    let connected = std::net::TcpStream::connect("127.0.0.1:2379").is_ok();
    let peer_connected = std::net::TcpStream::connect("localhost:2380").is_ok();
    child.kill().unwrap();
    child.wait().unwrap();
    let log = log.join("\n");
    assert!(connected, "nothing accepted connections on 127.0.0.1:2379");
    assert!(
        peer_connected,
        "nothing accepted connections on localhost:2380"
    );
    assert!(
        log.contains("\"local-member-id\":\"8e9e05c52164694d\""),
        "{log}"
    );
    assert!(log.contains("\"cluster-id\":\"cdf818194e3a8c32\""), "{log}");
    assert!(
        log.contains("published local member to cluster through raft"),
        "{log}"
    );
    assert!(dir.path().join("default.basalt/member/wal").is_dir());
    assert!(dir.path().join("default.basalt/member/snap/db").is_file());
}

/// Goal: the member raises its soft limit on open files to the hard limit at start, as etcd's
/// Go runtime does. Method: start it under a shell that lowered the soft limit to 256, then
/// read the limit the running process has, waiting (bounded) for the raise.
#[test]
fn the_open_files_limit_is_raised_to_the_hard_limit() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let script = format!(
        "ulimit -Sn 256 && exec {} --listen-client-urls={url} --advertise-client-urls={url} \
         --listen-peer-urls=http://127.0.0.1:0",
        env!("CARGO_BIN_EXE_basalt")
    );
    let mut child = Command::new("sh")
        .args(["-c", &script])
        .env_clear()
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let limits_path = format!("/proc/{}/limits", child.id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let (soft, hard) = loop {
        let limits = std::fs::read_to_string(&limits_path).unwrap_or_default();
        let open_files = limits
            .lines()
            .find(|line| line.starts_with("Max open files"))
            .map(|line| {
                let numbers: Vec<&str> = line.split_whitespace().skip(3).take(2).collect();
                (numbers[0].to_string(), numbers[1].to_string())
            });
        let exec_done = std::fs::read_link(format!("/proc/{}/exe", child.id()))
            .is_ok_and(|exe| exe.ends_with("basalt"));
        match open_files {
            Some((soft, hard)) if exec_done && soft == hard => break (soft, hard),
            _ if std::time::Instant::now() > deadline => {
                let _ = child.kill();
                panic!("the soft limit was not raised: {limits}");
            }
            _ => std::thread::sleep(std::time::Duration::from_millis(10)),
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_ne!(soft, "256", "hard limit {hard}");
}

/// Goal: an executor that cannot start says why, with the fix an operator needs: glommio's
/// io_uring rings need locked memory, and a 64 KiB RLIMIT_MEMLOCK (a common default) is too
/// little. Before, basalt only said "an executor failed to start".
#[test]
fn too_little_locked_memory_is_named_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let script = format!(
        "ulimit -Sl 64 && exec {} --cores 2 --listen-client-urls=http://127.0.0.1:0 \
         --advertise-client-urls=http://127.0.0.1:2379 --listen-peer-urls=http://127.0.0.1:0",
        env!("CARGO_BIN_EXE_basalt")
    );
    let output = Command::new("sh")
        .args(["-c", &script])
        .env_clear()
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("the locked-memory limit is too low for its io_uring rings"),
        "{}",
        stderr(&output)
    );
}

/// Goal: a panic on any thread of the member ends the whole process with a message naming the
/// thread (fail-stop), never a dead executor behind a live process. Method: this test re-runs
/// itself as a child process that installs the member's panic hook and panics on a thread
/// named like a client core; the parent checks the child's exit status and message.
#[test]
fn a_panic_on_any_thread_stops_the_process() {
    const CHILD: &str = "BASALT_TEST_PANIC_CHILD";
    if std::env::var_os(CHILD).is_some() {
        basalt::server::fail_stop::install_fail_stop_panic_hook();
        let core = std::thread::Builder::new()
            .name("basalt-core-7".to_string())
            .spawn(|| panic!("an invariant broke"))
            .unwrap();
        let _ = core.join();
        // Not reached: the hook ends the process before the join returns.
        std::process::exit(0);
    }
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "binary::a_panic_on_any_thread_stops_the_process",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(basalt::server::fail_stop::PANIC_EXIT_STATUS),
        "{}",
        stderr(&output)
    );
    let said = stderr(&output);
    assert!(said.contains("an invariant broke"), "{said}");
    assert!(
        said.contains("a panic on thread basalt-core-7 stops the member"),
        "{said}"
    );
}

/// Goal: where io_uring is blocked (as Docker's default seccomp profile blocks it), basalt stops
/// at once with exit status 1 and says what to change, instead of panicking in an executor.
/// Method: the child installs a seccomp filter failing io_uring_setup/enter/register with EPERM
/// (what such a profile does) before it executes basalt.
#[test]
fn blocked_io_uring_is_named_with_its_fix() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let url = format!("http://127.0.0.1:{port}");
    let mut command = Command::new(env!("CARGO_BIN_EXE_basalt"));
    command
        .arg(format!("--data-dir={}", dir.path().join("d").display()))
        .arg(format!("--listen-client-urls={url}"))
        .arg(format!("--advertise-client-urls={url}"))
        .arg("--listen-peer-urls=http://127.0.0.1:0")
        .env_clear();
    // SAFETY: between fork and exec the closure only makes two prctl calls on memory it owns
    // (no allocation, no locks).
    unsafe {
        command.pre_exec(|| {
            const IO_URING_SETUP: u32 = libc::SYS_io_uring_setup as u32;
            const IO_URING_REGISTER: u32 = libc::SYS_io_uring_register as u32;
            let nr_offset = 0; // seccomp_data.nr
            let filter = [
                libc::sock_filter {
                    code: (libc::BPF_LD | libc::BPF_W | libc::BPF_ABS) as u16,
                    jt: 0,
                    jf: 0,
                    k: nr_offset,
                },
                libc::sock_filter {
                    code: (libc::BPF_JMP | libc::BPF_JGE | libc::BPF_K) as u16,
                    jt: 0,
                    jf: 2,
                    k: IO_URING_SETUP,
                },
                libc::sock_filter {
                    code: (libc::BPF_JMP | libc::BPF_JGT | libc::BPF_K) as u16,
                    jt: 1,
                    jf: 0,
                    k: IO_URING_REGISTER,
                },
                libc::sock_filter {
                    code: (libc::BPF_RET | libc::BPF_K) as u16,
                    jt: 0,
                    jf: 0,
                    k: libc::SECCOMP_RET_ERRNO | libc::EPERM as u32,
                },
                libc::sock_filter {
                    code: (libc::BPF_RET | libc::BPF_K) as u16,
                    jt: 0,
                    jf: 0,
                    k: libc::SECCOMP_RET_ALLOW,
                },
            ];
            let program = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &program as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let said = stderr(&output);
    assert!(
        said.contains("io_uring is not available: io_uring_setup failed: Operation not permitted"),
        "{said}"
    );
    assert!(said.contains("seccomp profile"), "{said}");
}

/// Goal: a second server started on a running member's data directory is refused before it
/// changes anything there, and the running member is unharmed. Method: a member runs; an
/// unfinished snapshot file is planted in its directory (a start-up removes such leftovers
/// before the engine takes its database's lock); a second server on the same directory, on
/// ports of its own and with `--auto-tls` (which writes a certificate into the directory),
/// must exit 1 naming the directory as in use, leave the file and write no certificate, and
/// the first member must still take writes.
#[test]
fn a_second_server_on_a_data_directory_in_use_is_refused_before_touching_it() {
    let dir = tempfile::tempdir().unwrap();
    let member = crate::support::Basalt::start(dir.path());
    let leftover = member.data_dir.join("member/snap/incoming.db.partial");
    std::fs::write(&leftover, b"a snapshot still arriving").unwrap();
    let url = format!("https://127.0.0.1:{}", crate::support::free_port());
    let output = Command::new(env!("CARGO_BIN_EXE_basalt"))
        .arg("--data-dir")
        .arg(&member.data_dir)
        .args([
            "--listen-client-urls",
            &url,
            "--advertise-client-urls",
            &url,
            "--listen-peer-urls",
            "http://127.0.0.1:0",
            "--auto-tls",
        ])
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("is in use by another process"),
        "{}",
        stderr(&output)
    );
    assert!(
        leftover.exists(),
        "the second server removed a file of the running member's directory"
    );
    assert!(
        !member.data_dir.join("fixtures").exists(),
        "the second server wrote its certificate into the running member's directory"
    );
    member.ok(&["put", "after", "the refusal"]);
    assert!(member.ok(&["get", "after"]).contains("the refusal"));
}
