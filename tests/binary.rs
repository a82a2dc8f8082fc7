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

/// Goal: a good configuration is summarised, with etcd's default IDs, and the binary still
/// says plainly that the server is not built yet.
#[test]
fn a_valid_configuration_is_summarised() {
    let output = run(&[], &[]);
    assert_eq!(output.status.code(), Some(2));
    let out = stdout(&output);
    assert!(
        out.contains("member 8e9e05c52164694d in cluster cdf818194e3a8c32"),
        "{out}"
    );
    assert!(
        out.contains("listen-client-urls: http://127.0.0.1:2379"),
        "{out}"
    );
    assert!(out.contains("data-dir: default.basalt"), "{out}");
    assert!(stderr(&output).contains("the server is not built yet"));
}
