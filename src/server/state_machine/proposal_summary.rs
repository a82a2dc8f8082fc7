//! One line of text per proposal, for people reading a WAL (`basalt-util wal dump`): what the
//! write does, with keys quoted (non-printable bytes escaped) and values shown by size only.
//! Passwords and their hashes are never shown. The wording is a stable format: tools may
//! parse it, so a field is added at the end, never renamed.

use std::fmt::Write as _;

use basalt_net::proto::etcdserverpb as pb;
use pb::request_op::Request;

use super::auth_store::AuthRequest;
use super::proposal::Proposal;

/// The summary of `proposal`.
pub fn summarize(proposal: &Proposal) -> String {
    match proposal {
        Proposal::Put(put) => summarize_put(put),
        Proposal::DeleteRange(delete) => summarize_delete(delete),
        Proposal::Txn(txn) => summarize_txn(txn),
        Proposal::Compaction(compaction) => format!(
            "compact revision={}{}",
            compaction.revision,
            if compaction.physical { " physical" } else { "" }
        ),
        Proposal::Alarm(alarm) => format!(
            "alarm action={} member={:x} alarm={}",
            pb::alarm_request::AlarmAction::try_from(alarm.action)
                .map_or_else(|_| alarm.action.to_string(), |a| a.as_str_name().into()),
            alarm.member_id,
            pb::AlarmType::try_from(alarm.alarm)
                .map_or_else(|_| alarm.alarm.to_string(), |a| a.as_str_name().into()),
        ),
        Proposal::MemberUpdate(update) => format!(
            "member_update id={:x} peer_urls={:?}",
            update.id, update.peer_ur_ls
        ),
        Proposal::MemberAttributes(member) => format!(
            "member_attributes id={:x} name={:?} client_urls={:?}",
            member.id, member.name, member.client_ur_ls
        ),
        Proposal::LeaseGrant(grant) => format!("lease_grant id={:x} ttl={}", grant.id, grant.ttl),
        Proposal::LeaseRevoke(revoke) => format!("lease_revoke id={:x}", revoke.id),
        Proposal::LeaseCheckpoint(request) => {
            let mut line = String::from("lease_checkpoint");
            for checkpoint in &request.checkpoints {
                let _ = write!(line, " {:x}={}", checkpoint.id, checkpoint.remaining_ttl);
            }
            line
        }
        Proposal::LeaseExpire(ids) => {
            let mut line = String::from("lease_expire");
            for id in ids {
                let _ = write!(line, " {id:x}");
            }
            line
        }
        Proposal::Auth(request) => summarize_auth(request),
        Proposal::AsUser {
            user,
            auth_revision,
            inner,
        } => format!(
            "as_user user={} auth_revision={auth_revision} {}",
            quoted(user.as_bytes()),
            summarize(inner)
        ),
    }
}

fn summarize_put(put: &pb::PutRequest) -> String {
    let mut line = format!(
        "put key={} value_size={}",
        quoted(&put.key),
        put.value.len()
    );
    if put.lease != 0 {
        let _ = write!(line, " lease={:x}", put.lease);
    }
    for (set, name) in [
        (put.prev_kv, "prev_kv"),
        (put.ignore_value, "ignore_value"),
        (put.ignore_lease, "ignore_lease"),
    ] {
        if set {
            let _ = write!(line, " {name}");
        }
    }
    line
}

fn summarize_delete(delete: &pb::DeleteRangeRequest) -> String {
    let mut line = format!("delete_range key={}", quoted(&delete.key));
    if !delete.range_end.is_empty() {
        let _ = write!(line, " range_end={}", quoted(&delete.range_end));
    }
    if delete.prev_kv {
        line.push_str(" prev_kv");
    }
    line
}

fn summarize_range(range: &pb::RangeRequest) -> String {
    let mut line = format!("range key={}", quoted(&range.key));
    if !range.range_end.is_empty() {
        let _ = write!(line, " range_end={}", quoted(&range.range_end));
    }
    line
}

fn summarize_txn(txn: &pb::TxnRequest) -> String {
    let ops = |ops: &[pb::RequestOp]| {
        ops.iter()
            .map(|op| match &op.request {
                Some(Request::RequestPut(put)) => summarize_put(put),
                Some(Request::RequestDeleteRange(delete)) => summarize_delete(delete),
                Some(Request::RequestRange(range)) => summarize_range(range),
                Some(Request::RequestTxn(txn)) => summarize_txn(txn),
                None => "empty".to_string(),
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    let compares = txn
        .compare
        .iter()
        .map(|compare| quoted(&compare.key))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "txn compare=[{compares}] success=[{}] failure=[{}]",
        ops(&txn.success),
        ops(&txn.failure)
    )
}

fn summarize_auth(request: &AuthRequest) -> String {
    match request {
        AuthRequest::Enable(_) => "auth_enable".to_string(),
        AuthRequest::Disable(_) => "auth_disable".to_string(),
        AuthRequest::UserAdd(r) => format!("user_add name={}", quoted(r.name.as_bytes())),
        AuthRequest::UserDelete(r) => format!("user_delete name={}", quoted(r.name.as_bytes())),
        AuthRequest::UserChangePassword(r) => {
            format!("user_change_password name={}", quoted(r.name.as_bytes()))
        }
        AuthRequest::UserGrantRole(r) => format!(
            "user_grant_role user={} role={}",
            quoted(r.user.as_bytes()),
            quoted(r.role.as_bytes())
        ),
        AuthRequest::UserRevokeRole(r) => format!(
            "user_revoke_role name={} role={}",
            quoted(r.name.as_bytes()),
            quoted(r.role.as_bytes())
        ),
        AuthRequest::RoleAdd(r) => format!("role_add name={}", quoted(r.name.as_bytes())),
        AuthRequest::RoleDelete(r) => format!("role_delete role={}", quoted(r.role.as_bytes())),
        AuthRequest::RoleGrantPermission(r) => {
            let mut line = format!("role_grant_permission name={}", quoted(r.name.as_bytes()));
            if let Some(perm) = &r.perm {
                let _ = write!(
                    line,
                    " type={} key={} range_end={}",
                    perm.perm_type,
                    quoted(&perm.key),
                    quoted(&perm.range_end)
                );
            }
            line
        }
        AuthRequest::RoleRevokePermission(r) => format!(
            "role_revoke_permission role={} key={} range_end={}",
            quoted(r.role.as_bytes()),
            quoted(&r.key),
            quoted(&r.range_end)
        ),
    }
}

/// `bytes` in double quotes, non-printable bytes, quotes and backslashes escaped.
fn quoted(bytes: &[u8]) -> String {
    format!("\"{}\"", bytes.escape_ascii())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_names_the_write_and_its_keys() {
        let put = Proposal::Put(pb::PutRequest {
            key: b"a\x00\"b".to_vec(),
            value: vec![0; 300],
            lease: 0x2a,
            prev_kv: true,
            ..Default::default()
        });
        assert_eq!(
            summarize(&put),
            r#"put key="a\x00\"b" value_size=300 lease=2a prev_kv"#
        );
        let txn = Proposal::Txn(pb::TxnRequest {
            compare: vec![pb::Compare {
                key: b"c".to_vec(),
                ..Default::default()
            }],
            success: vec![pb::RequestOp {
                request: Some(Request::RequestDeleteRange(pb::DeleteRangeRequest {
                    key: b"d".to_vec(),
                    range_end: b"e".to_vec(),
                    ..Default::default()
                })),
            }],
            failure: vec![],
        });
        assert_eq!(
            summarize(&txn),
            r#"txn compare=["c"] success=[delete_range key="d" range_end="e"] failure=[]"#
        );
        let as_user = Proposal::AsUser {
            user: "alice".into(),
            auth_revision: 3,
            inner: Box::new(Proposal::Auth(AuthRequest::UserChangePassword(
                pb::AuthUserChangePasswordRequest {
                    name: "bob".into(),
                    password: "secret".into(),
                    ..Default::default()
                },
            ))),
        };
        let line = summarize(&as_user);
        assert_eq!(
            line,
            r#"as_user user="alice" auth_revision=3 user_change_password name="bob""#
        );
        assert_eq!(
            summarize(&Proposal::LeaseExpire(vec![10, 11])),
            "lease_expire a b"
        );
    }
}
