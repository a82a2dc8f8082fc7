//! Peer TLS end to end: three real members on `https://` peer URLs with etcd's `--peer-*`
//! flags, replicating through raft over mutual TLS, and refusing a member whose certificate
//! comes from another CA, carries a common name `--peer-cert-allowed-cn` does not allow, or
//! names another IP than the one it connects from (etcd's SAN check).
//! Clients talk plain HTTP (Debian's etcdctl), so only the peer traffic is under test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::support::cluster::Cluster;
use crate::support::pki::{self, Ca, Leaf};

/// How long a member may take to agree on a leader with the others.
const ELECTION_LIMIT: Duration = Duration::from_secs(10);

/// How long a refused member is watched: several election timeouts (1 s) and redials, while
/// its healthy peers elect a leader and serve within about a second.
const REFUSED_WATCH: Duration = Duration::from_secs(4);

/// A certificate and key written into `dir` as `<name>.crt` and `<name>.key`.
struct Pair {
    cert: PathBuf,
    key: PathBuf,
}

/// Issues a certificate for 127.0.0.1 and localhost with common name `common_name`, usable
/// as a server certificate, a client certificate, or both.
fn issue(
    ca: &Ca,
    dir: &Path,
    name: &str,
    common_name: &str,
    usage: (bool, bool),
    serial: u64,
) -> Pair {
    let sans = ["localhost", "127.0.0.1"];
    issue_for(ca, dir, name, common_name, usage, serial, &sans)
}

/// As `issue`, for the subject alternative names `sans`.
fn issue_for(
    ca: &Ca,
    dir: &Path,
    name: &str,
    common_name: &str,
    (server, client): (bool, bool),
    serial: u64,
    sans: &[&str],
) -> Pair {
    let issued = ca.issue(Leaf {
        common_name,
        sans,
        serial,
        server,
        client,
    });
    Pair {
        cert: pki::write(dir, &format!("{name}.crt"), &issued.cert_pem),
        key: pki::write(dir, &format!("{name}.key"), &issued.key_pem),
    }
}

/// The peer TLS flags kubeadm sets: a certificate and key, the trusted CA, client
/// certificates required.
fn mutual_tls(pair: &Pair, ca_file: &Path) -> Vec<String> {
    vec![
        format!("--peer-cert-file={}", pair.cert.display()),
        format!("--peer-key-file={}", pair.key.display()),
        format!("--peer-trusted-ca-file={}", ca_file.display()),
        "--peer-client-cert-auth=true".to_string(),
    ]
}

/// Asserts a write through member `writer` reads back linearizably from every running member.
fn assert_replicates(cluster: &Cluster, writer: usize, key: &str, value: &str) {
    cluster.member(writer).ok(&["put", key, value]);
    for i in cluster.running() {
        let read = cluster.member(i).ok(&["get", key, "--print-value-only"]);
        assert_eq!(read, format!("{value}\n"), "member {i} reads {key}");
    }
}

/// Goal: three members on `https://` peer URLs with mutual TLS elect a leader and replicate
/// writes made through any of them. Member 0 presents a separate client certificate
/// (`--peer-client-cert-file`): its peer certificate is for servers only, so it could not
/// dial the others with it, and it could not take part if the flag were ignored.
#[test]
fn peers_replicate_over_mutual_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    std::fs::create_dir_all(&pki_dir).unwrap();
    let ca = Ca::new("basalt peer CA");
    let ca_file = pki::write(&pki_dir, "ca.crt", &ca.cert_pem);
    let mut cluster = Cluster::plan(dir.path(), 3, "https");
    for i in 0..3 {
        let name = format!("m{i}");
        let mut flags;
        if i == 0 {
            let server = issue(&ca, &pki_dir, "m0-server", "m0", (true, false), 10);
            let client = issue(&ca, &pki_dir, "m0-client", "m0", (false, true), 11);
            flags = mutual_tls(&server, &ca_file);
            flags.push(format!("--peer-client-cert-file={}", client.cert.display()));
            flags.push(format!("--peer-client-key-file={}", client.key.display()));
        } else {
            let pair = issue(&ca, &pki_dir, &name, &name, (true, true), 20 + i as u64);
            flags = mutual_tls(&pair, &ca_file);
        }
        cluster.set_flags(i, flags);
    }
    cluster.start_all();
    let leader = cluster.wait_for_leader(ELECTION_LIMIT);
    assert_replicates(&cluster, leader, "via-leader", "1");
    assert_replicates(&cluster, (leader + 1) % 3, "via-follower", "2");
    assert_replicates(&cluster, 0, "via-member-0", "3");
}

/// Goal: with `--peer-auto-tls`, members make self-signed certificates in
/// `<data-dir>/fixtures/peer` and replicate over `https://` peer URLs.
#[test]
fn peers_replicate_over_auto_tls() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::plan(dir.path(), 3, "https");
    for i in 0..3 {
        cluster.set_flags(i, vec!["--peer-auto-tls=true".to_string()]);
    }
    cluster.start_all();
    let leader = cluster.wait_for_leader(ELECTION_LIMIT);
    assert_replicates(&cluster, (leader + 1) % 3, "auto", "tls");
    for seat in &cluster.seats {
        let fixtures = seat.data_dir.join("fixtures").join("peer");
        assert!(
            fixtures.join("cert.pem").is_file() && fixtures.join("key.pem").is_file(),
            "{} has no self-signed peer certificate",
            seat.name
        );
    }
}

/// Goal: a member whose certificate another CA signed is refused, and so is one whose common
/// name `--peer-cert-allowed-cn` does not allow; the two healthy members keep a quorum and go
/// on replicating. Method: members 0 and 1 hold certificates of the cluster's CA with the
/// allowed CN; member 2 first holds one of a foreign CA (trusting that CA), then, restarted,
/// one of the cluster's CA with another CN. It never completes a read-index round with the
/// leader, so it never becomes ready, while the others serve.
#[test]
fn a_peer_from_another_ca_or_with_another_cn_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    std::fs::create_dir_all(&pki_dir).unwrap();
    let ca = Ca::new("basalt peer CA");
    let ca_file = pki::write(&pki_dir, "ca.crt", &ca.cert_pem);
    let foreign = Ca::new("someone else's CA");
    let foreign_file = pki::write(&pki_dir, "foreign-ca.crt", &foreign.cert_pem);
    let allowed_cn = "--peer-cert-allowed-cn=basalt-member".to_string();
    let mut cluster = Cluster::plan(dir.path(), 3, "https");
    for i in 0..2 {
        let pair = issue(
            &ca,
            &pki_dir,
            &format!("m{i}"),
            "basalt-member",
            (true, true),
            30 + i,
        );
        let mut flags = mutual_tls(&pair, &ca_file);
        flags.push(allowed_cn.clone());
        cluster.set_flags(i as usize, flags);
    }
    let stranger = issue(
        &foreign,
        &pki_dir,
        "m2-foreign",
        "basalt-member",
        (true, true),
        40,
    );
    let mut flags = mutual_tls(&stranger, &foreign_file);
    flags.push(allowed_cn.clone());
    cluster.set_flags(2, flags);

    let starting: Vec<_> = (0..3).map(|i| cluster.spawn(i)).collect();
    let mut starting = starting.into_iter();
    cluster.members[0] = Some(starting.next().unwrap().wait_ready());
    cluster.members[1] = Some(starting.next().unwrap().wait_ready());
    let foreign_log = starting.next().unwrap().assert_never_ready(REFUSED_WATCH);
    assert!(
        foreign_log.contains("peer"),
        "the foreign member logged no peer failure:\n{foreign_log}"
    );
    let leader = cluster.wait_for_leader(ELECTION_LIMIT);
    assert!(leader < 2);
    assert_replicates(&cluster, 1 - leader, "after-foreign-ca", "1");

    // The cluster's CA, but a common name the others do not allow.
    let wrong_cn = issue(&ca, &pki_dir, "m2-wrong-cn", "intruder", (true, true), 41);
    let mut flags = mutual_tls(&wrong_cn, &ca_file);
    flags.push(allowed_cn);
    cluster.set_flags(2, flags);
    cluster.spawn(2).assert_never_ready(REFUSED_WATCH);
    assert_replicates(&cluster, leader, "after-wrong-cn", "2");
    assert_replicates(&cluster, 1 - leader, "after-wrong-cn", "3");
}

/// Goal: etcd's SAN check on peer connections. A member whose client certificate (the CA's,
/// the allowed usage) names only 127.0.0.2 while it connects from 127.0.0.1 is refused; with
/// `--experimental-peer-skip-client-san-verification` on every member it is let in. Method:
/// member 2 serves with a certificate for 127.0.0.1 (so dialing it works) and dials with
/// `--peer-client-cert-file` naming 127.0.0.2; the others refuse its connections and say why,
/// so it never becomes ready. Restarted with the skip flag, the three replicate.
#[test]
fn a_peer_whose_client_certificate_names_another_ip_is_refused_unless_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let pki_dir = dir.path().join("pki");
    std::fs::create_dir_all(&pki_dir).unwrap();
    let ca = Ca::new("basalt peer CA");
    let ca_file = pki::write(&pki_dir, "ca.crt", &ca.cert_pem);
    let mut cluster = Cluster::plan(dir.path(), 3, "https");
    let mut flags = Vec::new();
    for i in 0..2 {
        let pair = issue(&ca, &pki_dir, &format!("m{i}"), "m", (true, true), 50 + i);
        flags.push(mutual_tls(&pair, &ca_file));
    }
    let server = issue(&ca, &pki_dir, "m2-server", "m2", (true, false), 52);
    let elsewhere = issue_for(
        &ca,
        &pki_dir,
        "m2-client",
        "m2",
        (false, true),
        53,
        &["127.0.0.2"],
    );
    let mut member_2 = mutual_tls(&server, &ca_file);
    member_2.push(format!(
        "--peer-client-cert-file={}",
        elsewhere.cert.display()
    ));
    member_2.push(format!(
        "--peer-client-key-file={}",
        elsewhere.key.display()
    ));
    flags.push(member_2);
    for (i, member_flags) in flags.iter().enumerate() {
        cluster.set_flags(i, member_flags.clone());
    }

    let starting: Vec<_> = (0..3).map(|i| cluster.spawn(i)).collect();
    let mut starting = starting.into_iter();
    cluster.members[0] = Some(starting.next().unwrap().wait_ready());
    cluster.members[1] = Some(starting.next().unwrap().wait_ready());
    starting.next().unwrap().assert_never_ready(REFUSED_WATCH);
    let refusal = "certificate is valid for 127.0.0.2, not 127.0.0.1";
    let refusals: usize = (0..2)
        .map(|i| cluster.member(i).logged(refusal).len())
        .sum();
    assert!(refusals > 0, "no member logged the SAN refusal ({refusal})");
    let leader = cluster.wait_for_leader(ELECTION_LIMIT);
    assert!(leader < 2);
    assert_replicates(&cluster, 1 - leader, "san-refused", "1");

    // Skipped on every member: member 2 joins in.
    for i in 0..2 {
        cluster.kill_9(i);
    }
    for (i, mut member_flags) in flags.into_iter().enumerate() {
        member_flags.push("--experimental-peer-skip-client-san-verification=true".to_string());
        cluster.set_flags(i, member_flags);
    }
    cluster.start_all();
    let leader = cluster.wait_for_leader(ELECTION_LIMIT);
    assert_replicates(&cluster, leader, "san-skipped", "2");
    assert_replicates(&cluster, 2, "via-member-2", "3");
}
