//! Client TLS end to end: a real member started with etcd's TLS flags, driven by Debian's
//! etcdctl 3.4 over `https://` as an operator would (mutual TLS as kubeadm sets it up, and
//! `--auto-tls`), and refused to clients that do not present what the flags require.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::{self, free_port, pki, Basalt};

/// Runs etcdctl (v3 API) against `endpoint` with `args`, within a bound.
fn etcdctl(endpoint: &str, args: &[&str]) -> Output {
    let mut child = Command::new(support::find_etcdctl())
        .env("ETCDCTL_API", "3")
        .arg(format!("--endpoints={endpoint}"))
        .arg("--dial-timeout=3s")
        .arg("--command-timeout=5s")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start etcdctl");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().expect("poll etcdctl").is_none() {
        assert!(
            std::time::Instant::now() < deadline,
            "etcdctl {args:?} hung"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.wait_with_output().expect("etcdctl output")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Starts a member whose client URL is `https://127.0.0.1:<port>`, with `flags`.
fn start_https(dir: &Path, flags: &[&str]) -> (Basalt, String) {
    let port = free_port();
    let url = format!("https://127.0.0.1:{port}");
    let mut all = vec![
        format!("--listen-client-urls={url}"),
        format!("--advertise-client-urls={url}"),
    ];
    all.extend(flags.iter().map(|flag| flag.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    (Basalt::start_with_flags(dir.join("data"), port, &all), url)
}

/// Goal: the TLS kubeadm sets up (`--cert-file`, `--key-file`, `--trusted-ca-file`,
/// `--client-cert-auth`) serves etcdctl with its client certificate, and refuses etcdctl
/// without one, with one from another CA, and over plaintext.
#[test]
fn mutual_tls_with_etcdctl() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::Ca::new("basalt test CA");
    let server = ca.issue(pki::Leaf::server(1));
    let client = ca.issue(pki::Leaf::client("etcdctl", &[], 2));
    let stranger = pki::Ca::new("another CA").issue(pki::Leaf::client("stranger", &[], 3));
    let file =
        |name: &str, contents: &str| pki::write(dir.path(), name, contents).display().to_string();
    let (ca_file, cert_file, key_file) = (
        file("ca.crt", &ca.cert_pem),
        file("server.crt", &server.cert_pem),
        file("server.key", &server.key_pem),
    );
    let (client_cert, client_key) = (
        file("client.crt", &client.cert_pem),
        file("client.key", &client.key_pem),
    );
    let (stranger_cert, stranger_key) = (
        file("stranger.crt", &stranger.cert_pem),
        file("stranger.key", &stranger.key_pem),
    );
    let flags = [
        format!("--cert-file={cert_file}"),
        format!("--key-file={key_file}"),
        format!("--trusted-ca-file={ca_file}"),
        "--client-cert-auth".to_string(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (basalt, url) = start_https(dir.path(), &flags);

    let cacert = format!("--cacert={ca_file}");
    let with = |cert: &str, key: &str, args: &[&str]| {
        let mut all = vec![
            cacert.clone(),
            format!("--cert={cert}"),
            format!("--key={key}"),
        ];
        all.extend(args.iter().map(|arg| arg.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        etcdctl(&url, &all)
    };
    let put = with(&client_cert, &client_key, &["put", "secure", "yes"]);
    assert!(put.status.success(), "{}", text(&put));
    let get = with(
        &client_cert,
        &client_key,
        &["get", "secure", "--print-value-only"],
    );
    assert!(get.status.success(), "{}", text(&get));
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "yes");

    let without_cert = etcdctl(&url, &[cacert.as_str(), "get", "secure"]);
    assert!(!without_cert.status.success(), "{}", text(&without_cert));
    let foreign = with(&stranger_cert, &stranger_key, &["get", "secure"]);
    assert!(!foreign.status.success(), "{}", text(&foreign));
    let plaintext = etcdctl(
        &format!("http://127.0.0.1:{}", basalt.port),
        &["get", "secure"],
    );
    assert!(!plaintext.status.success(), "{}", text(&plaintext));
}

/// Goal: `--auto-tls` serves a self-signed certificate it writes into
/// `<data-dir>/fixtures/client`, valid for `--self-signed-cert-validity` years, and the
/// member is reachable over TLS (etcdctl skipping verification, as etcd's docs tell users of
/// auto-tls; `--insecure-transport=false` makes etcdctl 3.4 use TLS without a CA file); a
/// restart serves the same certificate.
#[test]
fn auto_tls_with_etcdctl() {
    let dir = tempfile::tempdir().unwrap();
    let (basalt, url) = start_https(dir.path(), &["--auto-tls", "--self-signed-cert-validity=3"]);
    let fixtures = basalt.data_dir.join("fixtures").join("client");
    let cert = std::fs::read_to_string(fixtures.join("cert.pem")).expect("auto-tls cert.pem");
    assert!(fixtures.join("key.pem").is_file());

    let put = etcdctl(
        &url,
        &[
            "--insecure-transport=false",
            "--insecure-skip-tls-verify",
            "put",
            "auto",
            "tls",
        ],
    );
    assert!(put.status.success(), "{}", text(&put));
    let verified = etcdctl(&url, &["--insecure-transport=false", "get", "auto"]);
    assert!(
        !verified.status.success(),
        "a self-signed certificate must not pass verification: {}",
        text(&verified)
    );

    // --self-signed-cert-validity=3: about three years between notBefore and notAfter.
    // (Debian's openssl reads the dates; tools/test-all.sh installs it.)
    let dates = Command::new("openssl")
        .args(["x509", "-noout", "-startdate", "-enddate"])
        .stdin(std::fs::File::open(fixtures.join("cert.pem")).unwrap())
        .output()
        .expect("openssl (Debian package openssl) reads the certificate");
    assert!(dates.status.success(), "{}", text(&dates));
    let dates = String::from_utf8_lossy(&dates.stdout).to_string();
    let year = |prefix: &str| -> i32 {
        let line = dates.lines().find(|l| l.starts_with(prefix)).unwrap();
        line.split_whitespace().nth(3).unwrap().parse().unwrap()
    };
    assert_eq!(year("notAfter=") - year("notBefore="), 3, "{dates}");

    let (data_dir, port) = basalt.kill_9();
    let url_flags = [
        format!("--listen-client-urls={url}"),
        format!("--advertise-client-urls={url}"),
        "--auto-tls".to_string(),
    ];
    let url_flags: Vec<&str> = url_flags.iter().map(String::as_str).collect();
    let restarted = Basalt::start_with_flags(data_dir.clone(), port, &url_flags);
    let again = std::fs::read_to_string(fixtures.join("cert.pem")).unwrap();
    assert_eq!(cert, again, "a restart reuses the certificate it wrote");
    let get = etcdctl(
        &url,
        &[
            "--insecure-transport=false",
            "--insecure-skip-tls-verify",
            "get",
            "auto",
            "--print-value-only",
        ],
    );
    assert!(get.status.success(), "{}", text(&get));
    assert_eq!(String::from_utf8_lossy(&get.stdout).trim(), "tls");
    drop(restarted);
}

/// Goal: under `--client-cert-auth` with auth on, a call with no token is made by the user
/// its verified client certificate names in its CN, as etcd's `AuthInfoFromTLS`: root's
/// certificate may do everything, alice's only what her role grants, and a certificate whose
/// CN is no user is refused with etcd's "permission denied".
#[test]
fn client_certificate_common_name_is_the_auth_user() {
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::Ca::new("basalt test CA");
    let server = ca.issue(pki::Leaf::server(1));
    let file =
        |name: &str, contents: &str| pki::write(dir.path(), name, contents).display().to_string();
    let ca_file = file("ca.crt", &ca.cert_pem);
    let flags = [
        format!("--cert-file={}", file("server.crt", &server.cert_pem)),
        format!("--key-file={}", file("server.key", &server.key_pem)),
        format!("--trusted-ca-file={ca_file}"),
        "--client-cert-auth".to_string(),
        "--bcrypt-cost=4".to_string(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let (_basalt, url) = start_https(dir.path(), &flags);
    let cacert = format!("--cacert={ca_file}");
    let as_cn = |cn: &str, serial: u64, args: &[&str]| {
        let leaf = ca.issue(pki::Leaf::client(cn, &[], serial));
        let cert = file(&format!("{cn}.crt"), &leaf.cert_pem);
        let key = file(&format!("{cn}.key"), &leaf.key_pem);
        let mut all = vec![
            cacert.clone(),
            format!("--cert={cert}"),
            format!("--key={key}"),
        ];
        all.extend(args.iter().map(|arg| arg.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        etcdctl(&url, &all)
    };
    for args in [
        &["user", "add", "root:rootpw"][..],
        &["user", "grant-role", "root", "root"],
        &["user", "add", "alice:alicepw"],
        &["role", "add", "app"],
        &[
            "role",
            "grant-permission",
            "--prefix=true",
            "app",
            "readwrite",
            "a/",
        ],
        &["user", "grant-role", "alice", "app"],
        &["put", "secret", "s"],
        &["auth", "enable"],
    ] {
        let done = as_cn("root", 10, args);
        assert!(done.status.success(), "{args:?}: {}", text(&done));
    }
    let root_get = as_cn("root", 11, &["get", "secret", "--print-value-only"]);
    assert_eq!(text(&root_get).trim(), "s");
    let alice_put = as_cn("alice", 12, &["put", "a/1", "v"]);
    assert!(alice_put.status.success(), "{}", text(&alice_put));
    let alice_get = as_cn("alice", 13, &["get", "secret"]);
    assert!(!alice_get.status.success());
    assert!(
        text(&alice_get).contains("etcdserver: permission denied"),
        "{}",
        text(&alice_get)
    );
    let stranger = as_cn("mallory", 14, &["get", "a/1"]);
    assert!(
        text(&stranger).contains("etcdserver: permission denied"),
        "{}",
        text(&stranger)
    );
}
