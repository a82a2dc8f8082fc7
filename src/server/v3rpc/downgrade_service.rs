//! etcd 3.5's Maintenance.Downgrade, answered honestly for basalt.
//!
//! etcd lets a cluster reporting version X.Y be downgraded to X.(Y-1) (and only that): VALIDATE
//! checks the target, ENABLE records it through raft so members of the older version may
//! join, CANCEL clears it. Basalt reports etcd 3.5 but keeps its data in its own format, which
//! no etcd binary reads: a downgrade to etcd 3.4 (the only target etcd 3.5 accepts) cannot be
//! honoured, and neither can any other. So every well-formed target is answered with the
//! error etcd gives for a target the cluster cannot be downgraded to, no downgrade is ever in
//! flight, and CANCEL is answered as etcd answers it then. The checks run in etcd's order:
//! the target's format first, then whether the cluster can go there. Like etcd 3.5, no auth
//! check (its auth wrapper passes Downgrade through).

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::proto::etcdserverpb::downgrade_request::DowngradeAction;
use basalt_net::{EtcdStatus, Metadata, Router, Status};

/// Registers Downgrade on `router`.
pub fn register(router: &mut Router) {
    router.unary(
        "/etcdserverpb.Maintenance/Downgrade",
        |_metadata: Metadata, request: pb::DowngradeRequest| async move { downgrade(&request) },
    );
}

/// The answer to one Downgrade request (never a success: see the module's comment).
fn downgrade(request: &pb::DowngradeRequest) -> Result<pb::DowngradeResponse, Status> {
    match DowngradeAction::try_from(request.action) {
        Ok(DowngradeAction::Validate | DowngradeAction::Enable) => {
            if target_minor_version(&request.version).is_none() {
                return Err(EtcdStatus::WrongDowngradeVersionFormat.into());
            }
            Err(EtcdStatus::InvalidDowngradeTargetVersion.into())
        }
        Ok(DowngradeAction::Cancel) => Err(EtcdStatus::NoInflightDowngrade.into()),
        Err(_) => Err(EtcdStatus::UnknownMethod.into()),
    }
}

/// The (major, minor) of a downgrade target as etcd reads it: a semantic version
/// `MAJOR.MINOR.PATCH[-pre][+meta]`, or `MAJOR.MINOR` with `.0` appended; `None` when etcd
/// answers "wrong downgrade target version format".
fn target_minor_version(version: &str) -> Option<(i64, i64)> {
    semantic_version(version).or_else(|| semantic_version(&format!("{version}.0")))
}

/// `MAJOR.MINOR.PATCH[-pre][+meta]` as go-semver 0.3 (etcd 3.5's) parses it: three decimal
/// numbers that fit an i64, identifiers of `[0-9A-Za-z-]` split by dots. (Go's `ParseInt`
/// would take a sign, but `+` and `-` have already been split off as metadata and pre-release.)
fn semantic_version(version: &str) -> Option<(i64, i64)> {
    let (rest, metadata) = version.split_once('+').unwrap_or((version, ""));
    let (numbers, pre_release) = rest.split_once('-').unwrap_or((rest, ""));
    let parts: Vec<&str> = numbers.splitn(3, '.').collect();
    if parts.len() != 3 || !valid_identifiers(pre_release) || !valid_identifiers(metadata) {
        return None;
    }
    let mut parsed = [0i64; 3];
    for (slot, part) in parsed.iter_mut().zip(&parts) {
        *slot = decimal(part)?;
    }
    Some((parsed[0], parsed[1]))
}

/// Empty, or dot-separated non-empty runs of ASCII letters, digits and `-`.
fn valid_identifiers(identifiers: &str) -> bool {
    identifiers.is_empty()
        || identifiers.split('.').all(|identifier| {
            !identifier.is_empty()
                && identifier
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        })
}

/// Decimal digits only, within an i64.
fn decimal(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|byte| byte.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use basalt_net::Code;

    fn request(action: i32, version: &str) -> pb::DowngradeRequest {
        pb::DowngradeRequest {
            action,
            version: version.to_string(),
        }
    }

    #[test]
    fn targets_are_read_as_etcd_reads_them() {
        assert_eq!(target_minor_version("3.4"), Some((3, 4)));
        assert_eq!(target_minor_version("3.4.0"), Some((3, 4)));
        assert_eq!(target_minor_version("3.4.9-rc.1+build-7"), Some((3, 4)));
        // An empty pre-release is accepted, as go-semver does.
        assert_eq!(target_minor_version("3.4.0-"), Some((3, 4)));
        for wrong in [
            "",
            "3",
            "v3.4",
            "3.4.x",
            "3.4.5.6",
            "3.4-rc",
            "+3.4",
            "3..4",
            "3.4.0+a..b",
        ] {
            assert_eq!(target_minor_version(wrong), None, "{wrong:?}");
        }
    }

    #[test]
    fn no_downgrade_is_ever_possible_or_in_flight() {
        for action in [DowngradeAction::Validate, DowngradeAction::Enable] {
            let refused = downgrade(&request(action as i32, "3.4")).unwrap_err();
            assert_eq!(refused.code, Code::InvalidArgument);
            assert_eq!(
                refused.message,
                "etcdserver: invalid downgrade target version"
            );
            let malformed = downgrade(&request(action as i32, "three")).unwrap_err();
            assert_eq!(
                malformed.message,
                "etcdserver: wrong downgrade target version format"
            );
        }
        let cancel = downgrade(&request(DowngradeAction::Cancel as i32, "")).unwrap_err();
        assert_eq!(cancel.code, Code::FailedPrecondition);
        assert_eq!(cancel.message, "etcdserver: no inflight downgrade job");
        let unknown = downgrade(&request(7, "3.4")).unwrap_err();
        assert_eq!(unknown.code, Code::Unknown);
        assert_eq!(unknown.message, "etcdserver: unknown method");
    }
}
