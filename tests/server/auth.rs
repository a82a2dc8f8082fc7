//! etcd's auth against the `basalt` binary: Debian's etcdctl 3.4 `user`, `role` and `auth`
//! commands with etcd's texts; the etcd-client crate's auth calls; every RPC refusing a caller
//! with no user and one without the permission, with etcd's code and message; auth surviving a
//! restart; JWT tokens signed with keys openssl makes in the test.

use std::process::Command;

use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, Permission, PutOptions, Txn, TxnOp,
};

use crate::support::{self, assert_status, Basalt};

const USER_EMPTY: &str = "etcdserver: user name is empty";
const DENIED: &str = "etcdserver: permission denied";

/// etcdctl with `--user`.
fn as_user(basalt: &Basalt, user: &str, args: &[&str]) -> std::process::Output {
    let mut all = vec!["--user", user];
    all.extend_from_slice(args);
    basalt.etcdctl(&all, "")
}

fn stdout(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "etcdctl failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &std::process::Output) -> String {
    assert!(!output.status.success(), "etcdctl should have failed");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Goal: etcdctl 3.4's whole user/role/auth vocabulary works against basalt with etcd's
/// outputs and errors; enabling needs root with the root role; a wrong password, no user and a
/// missing permission are refused with etcd's texts; auth and its users survive a restart.
#[test]
fn etcdctl_users_roles_and_auth_enable_disable_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let port = support::free_port();
    let basalt = Basalt::start_with_flags(dir.path().join("data"), port, &["--bcrypt-cost", "4"]);
    let err = basalt.fails(&["auth", "enable"]);
    assert!(
        err.contains("etcdserver: root user does not exist"),
        "{err}"
    );
    assert_eq!(
        basalt.ok(&["user", "add", "root:rootpw"]),
        "User root created\n"
    );
    let err = basalt.fails(&["user", "add", "root:again"]);
    assert!(
        err.contains("etcdserver: user name already exists"),
        "{err}"
    );
    assert_eq!(
        basalt.ok(&["user", "grant-role", "root", "root"]),
        "Role root is granted to user root\n"
    );
    assert_eq!(
        basalt.ok(&["user", "add", "alice:alicepw"]),
        "User alice created\n"
    );
    assert_eq!(basalt.ok(&["role", "add", "app"]), "Role app created\n");
    let err = basalt.fails(&["role", "add", "app"]);
    assert!(
        err.contains("etcdserver: role name already exists"),
        "{err}"
    );
    assert_eq!(
        basalt.ok(&[
            "role",
            "grant-permission",
            "--prefix=true",
            "app",
            "readwrite",
            "app/"
        ]),
        "Role app updated\n"
    );
    assert_eq!(
        basalt.ok(&["role", "grant-permission", "app", "read", "cfg/a", "cfg/m"]),
        "Role app updated\n"
    );
    assert_eq!(
        basalt.ok(&["role", "get", "app"]),
        "Role app\nKV Read:\n\t[app/, app0) (prefix app/)\n\t[cfg/a, cfg/m)\nKV Write:\n\t[app/, app0) (prefix app/)\n"
    );
    let err = basalt.fails(&["user", "grant-role", "alice", "nope"]);
    assert!(err.contains("etcdserver: role name not found"), "{err}");
    basalt.ok(&["user", "grant-role", "alice", "app"]);
    assert_eq!(
        basalt.ok(&["user", "get", "alice"]),
        "User: alice\nRoles: app\n"
    );
    assert_eq!(basalt.ok(&["user", "list"]), "alice\nroot\n");
    // The root role is granted without a role record, as etcd's UserGrantRole allows.
    assert_eq!(basalt.ok(&["role", "list"]), "app\n");
    let err = basalt.fails(&["user", "get", "nobody"]);
    assert!(err.contains("etcdserver: user name not found"), "{err}");
    assert_eq!(basalt.ok(&["auth", "enable"]), "Authentication Enabled\n");

    // No user, a wrong password, a missing permission.
    let err = basalt.fails(&["put", "app/x", "1"]);
    assert!(err.contains(USER_EMPTY), "{err}");
    let err = stderr(&as_user(&basalt, "alice:wrong", &["get", "app/x"]));
    assert!(
        err.contains("etcdserver: authentication failed, invalid user ID or password"),
        "{err}"
    );
    assert_eq!(
        stdout(&as_user(&basalt, "alice:alicepw", &["put", "app/x", "1"])),
        "OK\n"
    );
    assert_eq!(
        stdout(&as_user(
            &basalt,
            "alice:alicepw",
            &["get", "app/", "--prefix"]
        )),
        "app/x\n1\n"
    );
    let err = stderr(&as_user(&basalt, "alice:alicepw", &["put", "cfg/b", "1"]));
    assert!(err.contains(DENIED), "{err}");
    let err = stderr(&as_user(
        &basalt,
        "alice:alicepw",
        &["get", "cfg/a", "cfg/z"],
    ));
    assert!(err.contains(DENIED), "{err}");
    stdout(&as_user(&basalt, "alice:alicepw", &["get", "cfg/b"]));
    let err = stderr(&as_user(&basalt, "alice:alicepw", &["user", "list"]));
    assert!(err.contains(DENIED), "{err}");
    // Root's root role cannot go while auth is on.
    let err = stderr(&as_user(
        &basalt,
        "root:rootpw",
        &["user", "revoke-role", "root", "root"],
    ));
    assert!(err.contains("etcdserver: invalid auth management"), "{err}");

    // A restart keeps users, roles, permissions and the enabled flag.
    let (data_dir, port) = basalt.kill_9();
    let basalt = Basalt::start_with_flags(data_dir, port, &["--bcrypt-cost", "4"]);
    let err = basalt.fails(&["get", "app/x"]);
    assert!(err.contains(USER_EMPTY), "{err}");
    assert_eq!(
        stdout(&as_user(
            &basalt,
            "alice:alicepw",
            &["get", "app/x", "--print-value-only"]
        )),
        "1\n"
    );

    // Password change, revokes, deletes; then disable.
    let root = "root:rootpw";
    let changed = basalt.etcdctl(
        &[
            "--user",
            root,
            "user",
            "passwd",
            "alice",
            "--interactive=false",
        ],
        "newpw\n",
    );
    assert_eq!(stdout(&changed), "Password updated\n");
    let err = stderr(&as_user(&basalt, "alice:alicepw", &["get", "app/x"]));
    assert!(err.contains("authentication failed"), "{err}");
    stdout(&as_user(&basalt, "alice:newpw", &["get", "app/x"]));
    assert_eq!(
        stdout(&as_user(
            &basalt,
            root,
            &["role", "revoke-permission", "app", "cfg/a", "cfg/m"]
        )),
        "Permission of range [cfg/a, cfg/m) is revoked from role app\n"
    );
    let err = stderr(&as_user(
        &basalt,
        root,
        &["role", "revoke-permission", "app", "cfg/a", "cfg/m"],
    ));
    assert!(
        err.contains("etcdserver: permission is not granted to the role"),
        "{err}"
    );
    assert_eq!(
        stdout(&as_user(
            &basalt,
            root,
            &["role", "revoke-permission", "--prefix=true", "app", "app/"]
        )),
        "Permission of range [app/, app0) is revoked from role app\n"
    );
    let err = stderr(&as_user(&basalt, "alice:newpw", &["get", "app/x"]));
    assert!(err.contains(DENIED), "{err}");
    assert_eq!(
        stdout(&as_user(
            &basalt,
            root,
            &["user", "revoke-role", "alice", "app"]
        )),
        "Role app is revoked from user alice\n"
    );
    assert_eq!(
        stdout(&as_user(&basalt, root, &["role", "delete", "app"])),
        "Role app deleted\n"
    );
    assert_eq!(
        stdout(&as_user(&basalt, root, &["user", "delete", "alice"])),
        "User alice deleted\n"
    );
    assert_eq!(
        stdout(&as_user(&basalt, root, &["auth", "disable"])),
        "Authentication Disabled\n"
    );
    assert_eq!(basalt.ok(&["get", "app/x", "--print-value-only"]), "1\n");
}

/// Root and alice (read-write on `a/` only), auth on; returns the endpoint's clients.
async fn set_up(endpoint: &str) -> (Client, Client, Client) {
    let mut admin = Client::connect([endpoint], None).await.expect("connect");
    admin.user_add("root", "rootpw", None).await.unwrap();
    admin.user_grant_role("root", "root").await.unwrap();
    admin.user_add("alice", "alicepw", None).await.unwrap();
    admin.role_add("a").await.unwrap();
    admin
        .role_grant_permission("a", Permission::read_write("a/").with_prefix())
        .await
        .unwrap();
    admin.user_grant_role("alice", "a").await.unwrap();
    admin.put("secret", "s", None).await.unwrap();
    let lease = admin.lease_grant(60, None).await.unwrap().id();
    admin
        .put(
            "secret/leased",
            "v",
            Some(PutOptions::new().with_lease(lease)),
        )
        .await
        .unwrap();
    admin.auth_enable().await.unwrap();
    let nobody = Client::connect([endpoint], None).await.unwrap();
    let root = Client::connect(
        [endpoint],
        Some(ConnectOptions::new().with_user("root", "rootpw")),
    )
    .await
    .unwrap();
    let alice = Client::connect(
        [endpoint],
        Some(ConnectOptions::new().with_user("alice", "alicepw")),
    )
    .await
    .unwrap();
    (nobody, root, alice)
}

/// Every RPC a client can send, answered for `client`: the error each gave (or `None`).
async fn every_rpc(
    client: &mut Client,
    lease: i64,
    member_id: u64,
) -> Vec<(&'static str, Option<etcd_client::Error>)> {
    let mut out: Vec<(&'static str, Option<etcd_client::Error>)> = Vec::new();
    macro_rules! rpc {
        ($name:expr, $call:expr) => {
            out.push(($name, $call.await.err()));
        };
    }
    rpc!("Range", client.get("secret", None));
    rpc!("Put", client.put("secret", "x", None));
    rpc!("DeleteRange", client.delete("secret", None));
    rpc!(
        "Txn",
        client.txn(
            Txn::new()
                .when([Compare::value("a/1", CompareOp::Equal, "x")])
                .and_then([TxnOp::put("a/1", "y", None)])
                .or_else([TxnOp::get("secret", None)])
        )
    );
    rpc!("Compact", client.compact(1, None));
    rpc!("LeaseGrant", client.lease_grant(60, None));
    rpc!("LeaseRevoke", client.lease_revoke(lease));
    rpc!("LeaseTimeToLive", client.lease_time_to_live(lease, None));
    rpc!("LeaseLeases", client.leases());
    rpc!(
        "Alarm",
        client.alarm(
            etcd_client::AlarmAction::Deactivate,
            etcd_client::AlarmType::Nospace,
            None
        )
    );
    rpc!("Status", client.status());
    rpc!("Defragment", client.defragment());
    rpc!("Hash", client.hash());
    rpc!("HashKV", client.hash_kv(0));
    rpc!("MoveLeader", client.move_leader(member_id));
    rpc!("MemberList", client.member_list());
    rpc!(
        "MemberUpdate",
        client.member_update(member_id, vec!["http://127.0.0.1:1".to_string()])
    );
    rpc!("MemberRemove", client.member_remove(member_id + 1));
    rpc!("MemberPromote", client.member_promote(member_id + 1));
    rpc!("AuthDisable", client.auth_disable());
    rpc!("UserAdd", client.user_add("eve", "pw", None));
    rpc!("UserList", client.user_list());
    rpc!("UserGet", client.user_get("root"));
    rpc!("UserDelete", client.user_delete("root"));
    rpc!(
        "UserChangePassword",
        client.user_change_password("root", "x")
    );
    rpc!("UserGrantRole", client.user_grant_role("alice", "root"));
    rpc!("UserRevokeRole", client.user_revoke_role("alice", "a"));
    rpc!("RoleAdd", client.role_add("b"));
    rpc!("RoleGet", client.role_get("root"));
    rpc!("RoleList", client.role_list());
    rpc!("RoleDelete", client.role_delete("a"));
    rpc!(
        "RoleGrantPermission",
        client.role_grant_permission("a", Permission::read("secret"))
    );
    rpc!(
        "RoleRevokePermission",
        client.role_revoke_permission("a", "a/", None)
    );
    rpc!("Lock", client.lock("secret", None));
    rpc!("Campaign", client.campaign("secret", "v", lease));
    rpc!("Leader", client.leader("secret"));
    rpc!("Unlock", client.unlock("secret/x"));
    rpc!(
        "Proclaim",
        client.proclaim(
            "v",
            Some(
                etcd_client::ProclaimOptions::new().with_leader(
                    etcd_client::LeaderKey::new()
                        .with_name("secret")
                        .with_key("secret/1")
                        .with_lease(lease)
                )
            )
        )
    );
    rpc!(
        "Resign",
        client.resign(Some(
            etcd_client::ResignOptions::new().with_leader(
                etcd_client::LeaderKey::new()
                    .with_name("secret")
                    .with_key("secret/1")
                    .with_lease(lease)
            )
        ))
    );
    match client.observe("secret").await {
        Ok(mut stream) => out.push(("Observe", stream.message().await.err())),
        Err(error) => out.push(("Observe", Some(error))),
    }
    match client.lease_keep_alive(lease).await {
        Ok((mut keeper, mut stream)) => {
            let sent = keeper.keep_alive().await.err();
            let answered = match sent {
                Some(error) => Some(error),
                None => stream.message().await.err(),
            };
            out.push(("LeaseKeepAlive", answered));
        }
        Err(error) => out.push(("LeaseKeepAlive", Some(error))),
    }
    rpc!("AuthEnable", client.auth_enable());
    match client.snapshot().await {
        Ok(mut stream) => out.push(("Snapshot", stream.message().await.err())),
        Err(error) => out.push(("Snapshot", Some(error))),
    }
    let mut stream = client.watch("secret", None).await.unwrap();
    let created = stream.message().await.unwrap().unwrap();
    assert!(created.created() && created.canceled(), "{created:?}");
    out.push((
        "Watch",
        Some(etcd_client::Error::WatchError(
            created.cancel_reason().to_string(),
        )),
    ));
    out
}

fn message(error: &etcd_client::Error) -> String {
    match error {
        etcd_client::Error::GRpcStatus(status) => {
            format!("{:?} {}", status.code(), status.message())
        }
        etcd_client::Error::WatchError(reason) => reason.clone(),
        other => format!("{other:?}"),
    }
}

/// Goal: with auth on, every RPC of the KV, Watch, Lease, Maintenance, Cluster, Auth, Lock and
/// Election services refuses a caller with no user (etcd's "user name is empty") and one whose
/// user lacks the permission (etcd's "permission denied"; the admin-only ones for any non-root
/// user), and root gets past every check.
#[test]
fn every_rpc_refuses_nobody_and_the_unprivileged() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start_with_flags(
        dir.path().join("data"),
        support::free_port(),
        &["--bcrypt-cost", "4"],
    );
    support::with_member(&basalt, |_| async {
        let (mut nobody, mut root, mut alice) = set_up(&basalt.endpoint()).await;
        let status = root.status().await.unwrap();
        let member_id = status.header().unwrap().member_id();
        let lease = root.leases().await.unwrap().leases()[0].id();
        for (name, error) in every_rpc(&mut nobody, lease, member_id).await {
            let error = error.unwrap_or_else(|| panic!("{name} accepted a caller with no user"));
            let text = message(&error);
            assert!(text.ends_with(USER_EMPTY), "{name}: {text}");
            if !matches!(error, etcd_client::Error::WatchError(_)) {
                assert!(text.starts_with("InvalidArgument "), "{name}: {text}");
            }
        }
        // Alice may call these (the keys or nothing checked are hers); the rest is denied.
        let allowed = ["LeaseGrant", "Status", "MemberList"];
        for (name, error) in every_rpc(&mut alice, lease, member_id).await {
            if allowed.contains(&name) {
                assert!(error.is_none(), "{name}: {error:?}");
                continue;
            }
            let error = error.unwrap_or_else(|| panic!("{name} accepted an unprivileged caller"));
            let text = message(&error);
            assert!(text.ends_with(DENIED), "{name}: {text}");
            if !matches!(error, etcd_client::Error::WatchError(_)) {
                assert!(text.starts_with("PermissionDenied "), "{name}: {text}");
            }
        }
        // Alice within her prefix, and root anywhere.
        alice.put("a/1", "x", None).await.unwrap();
        let got = alice
            .get("a/", Some(GetOptions::new().with_prefix()))
            .await
            .unwrap();
        assert_eq!(got.kvs().len(), 1);
        assert_eq!(
            root.get("secret", None).await.unwrap().kvs()[0].value(),
            b"s"
        );
        assert_eq!(root.user_list().await.unwrap().users(), ["alice", "root"]);
        // Alice reads herself and her role, not others'.
        assert_eq!(alice.user_get("alice").await.unwrap().roles(), ["a"]);
        assert_eq!(alice.role_get("a").await.unwrap().permissions().len(), 1);
        assert_status(alice.role_get("root").await, "PermissionDenied", DENIED);
    });
}

/// Goal: `--auth-token jwt` with RS256 keys from openssl issues JWTs carrying the user and
/// auth revision; clients (etcd-client, etcdctl) authenticate and work with them, and the
/// permissions still hold.
#[test]
fn jwt_tokens_signed_with_openssl_rs256_keys() {
    let dir = tempfile::tempdir().unwrap();
    let private = dir.path().join("jwt.key");
    let public = dir.path().join("jwt.pub");
    let ok = Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&private)
        .arg("2048")
        .status()
        .expect("run openssl")
        .success();
    assert!(ok, "openssl genrsa");
    let ok = Command::new("openssl")
        .args(["rsa", "-in"])
        .arg(&private)
        .args(["-pubout", "-out"])
        .arg(&public)
        .status()
        .expect("run openssl")
        .success();
    assert!(ok, "openssl rsa -pubout");
    let token_flag = format!(
        "jwt,pub-key={},priv-key={},sign-method=RS256,ttl=10m",
        public.display(),
        private.display()
    );
    let basalt = Basalt::start_with_flags(
        dir.path().join("data"),
        support::free_port(),
        &["--auth-token", &token_flag, "--bcrypt-cost", "4"],
    );
    support::with_member(&basalt, |_| async {
        let (_nobody, _root, mut alice) = set_up(&basalt.endpoint()).await;
        alice.put("a/jwt", "1", None).await.unwrap();
        assert_status(
            alice.put("secret", "1", None).await,
            "PermissionDenied",
            DENIED,
        );
        let auth = Client::connect([basalt.endpoint()], None).await.unwrap();
        let token = auth
            .auth_client()
            .authenticate("alice".to_string(), "alicepw".to_string())
            .await
            .unwrap()
            .token()
            .to_string();
        assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
        assert!(token.starts_with("eyJ"), "{token}");
    });
    // etcdctl with the JWT provider.
    assert_eq!(
        stdout(&as_user(
            &basalt,
            "alice:alicepw",
            &["get", "a/jwt", "--print-value-only"]
        )),
        "1\n"
    );
}

/// Every file under `dir`, as bytes.
fn files_under(dir: &std::path::Path) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// Goal (the proof of `--bcrypt-cost`): the password hash a user is stored with has the cost
/// the flag names (bcrypt writes it into the hash: `$2b$05$`), not the default 10.
#[test]
fn password_hashes_use_the_bcrypt_cost_flag() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let basalt =
        Basalt::start_with_flags(data_dir.clone(), support::free_port(), &["--bcrypt-cost=5"]);
    basalt.ok(&["user", "add", "carol:pw"]);
    drop(basalt); // the log holds the entry durably once acknowledged
    let files = files_under(&data_dir);
    let has = |needle: &[u8]| {
        files
            .iter()
            .any(|file| file.windows(needle.len()).any(|w| w == needle))
    };
    assert!(has(b"$2b$05$"), "no cost-5 bcrypt hash stored");
    assert!(!has(b"$2b$10$"), "a default-cost hash was stored");
    assert!(
        !has(b"carol:pw") && !has(b"\x02pw"),
        "the plain password reached the disk"
    );
}

/// Goal (the proof of `--auth-token-ttl`): a simple token lives the flag's seconds after its
/// last use — a token used every half second outlives the TTL, an idle one does not.
#[test]
fn simple_tokens_expire_after_the_ttl_flag_unless_used() {
    let dir = tempfile::tempdir().unwrap();
    let basalt = Basalt::start_with_flags(
        dir.path().join("data"),
        support::free_port(),
        &["--auth-token-ttl=2", "--bcrypt-cost=4"],
    );
    support::with_member(&basalt, |_| async {
        let (_nobody, mut root, mut alice) = set_up(&basalt.endpoint()).await;
        let start = std::time::Instant::now();
        while start.elapsed() < std::time::Duration::from_secs(4) {
            alice
                .get("a/x", None)
                .await
                .expect("a token in use stays valid");
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        }
        // Root's token sat idle for those 4 s: past its 2 s lifetime.
        assert_status(
            root.get("secret", None).await,
            "Unauthenticated",
            "etcdserver: invalid auth token",
        );
    });
}
