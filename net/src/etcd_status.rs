//! etcd's server-side error statuses: the gRPC code and exact text etcd sends for each, so
//! the server maps its own errors to what etcd clients and users already match on.
//!
//! Clients compare these texts (clientv3 turns them back into typed errors by message), so a
//! word changed here breaks retries and error handling in every etcd client.

use crate::grpc::status::{Code, Status};

/// An error etcd reports to clients, with etcd's code and message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EtcdStatus {
    /// A request with an empty key.
    EmptyKey,
    /// `ignore_value`/`ignore_lease` on a key that does not exist.
    KeyNotFound,
    /// A value given together with `ignore_value`.
    ValueProvided,
    /// A lease given together with `ignore_lease`.
    LeaseProvided,
    /// A lease TTL of zero where one is required.
    TtlZero,
    /// A txn with more operations than `--max-txn-ops`.
    TooManyOps,
    /// A txn that writes the same key twice.
    DuplicateKey,
    /// A revision older than the last compaction.
    Compacted,
    /// A revision newer than the current one.
    FutureRevision,
    /// The NOSPACE alarm is raised (`--quota-backend-bytes`).
    NoSpace,
    /// An unknown lease ID.
    LeaseNotFound,
    /// Granting a lease ID that exists.
    LeaseExists,
    /// A lease TTL above the maximum.
    LeaseTtlTooLarge,
    /// MemberAdd of an existing member ID.
    MemberExists,
    /// MemberAdd with peer URLs already in use.
    PeerUrlExists,
    /// A reconfiguration that would lose quorum of started members.
    MemberNotEnoughStarted,
    /// Malformed member URLs.
    MemberBadUrls,
    /// An unknown member ID.
    MemberNotFound,
    /// Promoting a member that is not a learner.
    MemberNotLearner,
    /// Promoting a learner that has not caught up.
    LearnerNotReady,
    /// Adding a learner beyond the limit.
    TooManyLearners,
    /// A request above `--max-request-bytes`.
    RequestTooLarge,
    /// Too many proposals pending.
    TooManyRequests,
    /// Enabling auth without a root user.
    RootUserNotExist,
    /// Enabling auth while root lacks the root role.
    RootRoleNotExist,
    /// Adding a user that exists.
    UserAlreadyExists,
    /// An empty user name.
    UserEmpty,
    /// An unknown user.
    UserNotFound,
    /// Adding a role that exists.
    RoleAlreadyExists,
    /// An unknown role.
    RoleNotFound,
    /// An empty role name.
    RoleEmpty,
    /// Wrong user name or password.
    AuthFailed,
    /// The user may not do this.
    PermissionDenied,
    /// Revoking a role the user does not have.
    RoleNotGranted,
    /// Revoking a permission the role does not have.
    PermissionNotGranted,
    /// An auth call while auth is disabled.
    AuthNotEnabled,
    /// A missing, expired or bad auth token.
    InvalidAuthToken,
    /// An auth change that is not allowed (e.g. revoking root's root role).
    InvalidAuthManagement,
    /// A request checked against an auth revision that has changed since.
    AuthOldRevision,
    /// RoleGrantPermission without a permission.
    PermissionNotGiven,
    /// No raft leader now.
    NoLeader,
    /// The call needs the leader and this member is not it.
    NotLeader,
    /// The leader changed while the request was in flight.
    LeaderChanged,
    /// The cluster version does not support this.
    NotCapable,
    /// The server is stopping.
    Stopped,
    /// The request did not commit in time.
    Timeout,
    /// The request timed out, likely because the previous leader failed.
    TimeoutDueToLeaderFail,
    /// The request timed out, likely because the connection to the leader was lost.
    TimeoutDueToConnectionLost,
    /// The cluster is not healthy enough for this.
    Unhealthy,
    /// The CORRUPT alarm is raised.
    Corrupt,
    /// The call is not served by learners.
    NotSupportedForLearner,
    /// MoveLeader to a member that cannot become leader.
    BadLeaderTransferee,
    /// MoveLeader: the transferee did not take over within the request timeout.
    TimeoutLeaderTransfer,
    /// Lock: the waiter's key (its lease) ended before the lock was acquired.
    MutexSessionExpired,
    /// Election: Proclaim with a leader key that no longer leads.
    ElectionNotLeader,
    /// Election: Leader of an election nobody leads.
    ElectionNoLeader,
    /// Election: Proclaim or Resign without a leader key.
    ElectionMissingLeaderKey,
    /// Downgrade: a target version that is neither `X.Y.Z` nor `X.Y`.
    WrongDowngradeVersionFormat,
    /// Downgrade: a target version the cluster cannot be downgraded to.
    InvalidDowngradeTargetVersion,
    /// Downgrade: CANCEL while no downgrade is enabled.
    NoInflightDowngrade,
    /// An action the server does not know (etcd's plain error, sent as UNKNOWN).
    UnknownMethod,
}

impl EtcdStatus {
    /// etcd's gRPC code for this error.
    pub fn code(self) -> Code {
        use EtcdStatus::*;
        match self {
            EmptyKey
            | KeyNotFound
            | ValueProvided
            | LeaseProvided
            | TtlZero
            | TooManyOps
            | DuplicateKey
            | MemberBadUrls
            | RequestTooLarge
            | UserEmpty
            | RoleEmpty
            | AuthFailed
            | InvalidAuthManagement
            | AuthOldRevision
            | PermissionNotGiven
            | WrongDowngradeVersionFormat
            | InvalidDowngradeTargetVersion => Code::InvalidArgument,
            Compacted | FutureRevision | LeaseTtlTooLarge => Code::OutOfRange,
            NoSpace | TooManyRequests => Code::ResourceExhausted,
            LeaseNotFound | MemberNotFound => Code::NotFound,
            LeaseExists
            | MemberExists
            | PeerUrlExists
            | MemberNotEnoughStarted
            | MemberNotLearner
            | LearnerNotReady
            | TooManyLearners
            | RootUserNotExist
            | RootRoleNotExist
            | UserAlreadyExists
            | UserNotFound
            | RoleAlreadyExists
            | RoleNotFound
            | RoleNotGranted
            | PermissionNotGranted
            | AuthNotEnabled
            | NotLeader
            | BadLeaderTransferee
            | NotSupportedForLearner
            | NoInflightDowngrade => Code::FailedPrecondition,
            PermissionDenied => Code::PermissionDenied,
            InvalidAuthToken => Code::Unauthenticated,
            NoLeader
            | LeaderChanged
            | NotCapable
            | Stopped
            | Timeout
            | TimeoutDueToLeaderFail
            | TimeoutDueToConnectionLost
            | Unhealthy => Code::Unavailable,
            Corrupt => Code::DataLoss,
            // etcd's Lock and Election servers return these as plain Go errors, which gRPC
            // sends as UNKNOWN.
            MutexSessionExpired
            | ElectionNotLeader
            | ElectionNoLeader
            | ElectionMissingLeaderKey
            | TimeoutLeaderTransfer
            | UnknownMethod => Code::Unknown,
        }
    }

    /// etcd's message for this error, word for word.
    pub fn message(self) -> &'static str {
        use EtcdStatus::*;
        match self {
            EmptyKey => "etcdserver: key is not provided",
            KeyNotFound => "etcdserver: key not found",
            ValueProvided => "etcdserver: value is provided",
            LeaseProvided => "etcdserver: lease is provided",
            TtlZero => "etcdserver: ttl is 0",
            TooManyOps => "etcdserver: too many operations in txn request",
            DuplicateKey => "etcdserver: duplicate key given in txn request",
            Compacted => "etcdserver: mvcc: required revision has been compacted",
            FutureRevision => "etcdserver: mvcc: required revision is a future revision",
            NoSpace => "etcdserver: mvcc: database space exceeded",
            LeaseNotFound => "etcdserver: requested lease not found",
            LeaseExists => "etcdserver: lease already exists",
            LeaseTtlTooLarge => "etcdserver: too large lease TTL",
            MemberExists => "etcdserver: member ID already exist",
            PeerUrlExists => "etcdserver: Peer URLs already exists",
            MemberNotEnoughStarted => {
                "etcdserver: re-configuration failed due to not enough started members"
            }
            MemberBadUrls => "etcdserver: given member URLs are invalid",
            MemberNotFound => "etcdserver: member not found",
            MemberNotLearner => "etcdserver: can only promote a learner member",
            LearnerNotReady => {
                "etcdserver: can only promote a learner member which is in sync with leader"
            }
            TooManyLearners => "etcdserver: too many learner members in cluster",
            RequestTooLarge => "etcdserver: request is too large",
            TooManyRequests => "etcdserver: too many requests",
            RootUserNotExist => "etcdserver: root user does not exist",
            RootRoleNotExist => "etcdserver: root user does not have root role",
            UserAlreadyExists => "etcdserver: user name already exists",
            UserEmpty => "etcdserver: user name is empty",
            UserNotFound => "etcdserver: user name not found",
            RoleAlreadyExists => "etcdserver: role name already exists",
            RoleNotFound => "etcdserver: role name not found",
            RoleEmpty => "etcdserver: role name is empty",
            AuthFailed => "etcdserver: authentication failed, invalid user ID or password",
            PermissionDenied => "etcdserver: permission denied",
            RoleNotGranted => "etcdserver: role is not granted to the user",
            PermissionNotGranted => "etcdserver: permission is not granted to the role",
            AuthNotEnabled => "etcdserver: authentication is not enabled",
            InvalidAuthToken => "etcdserver: invalid auth token",
            InvalidAuthManagement => "etcdserver: invalid auth management",
            AuthOldRevision => "etcdserver: revision of auth store is old",
            PermissionNotGiven => "etcdserver: permission not given",
            NoLeader => "etcdserver: no leader",
            NotLeader => "etcdserver: not leader",
            LeaderChanged => "etcdserver: leader changed",
            NotCapable => "etcdserver: not capable",
            Stopped => "etcdserver: server stopped",
            Timeout => "etcdserver: request timed out",
            TimeoutDueToLeaderFail => {
                "etcdserver: request timed out, possibly due to previous leader failure"
            }
            TimeoutDueToConnectionLost => {
                "etcdserver: request timed out, possibly due to connection lost"
            }
            Unhealthy => "etcdserver: unhealthy cluster",
            Corrupt => "etcdserver: corrupt cluster",
            NotSupportedForLearner => "etcdserver: rpc not supported for learner",
            BadLeaderTransferee => "etcdserver: bad leader transferee",
            TimeoutLeaderTransfer => "etcdserver: request timed out, leader transfer took too long",
            MutexSessionExpired => "mutex: session is expired",
            ElectionNotLeader => "election: not leader",
            ElectionNoLeader => "election: no leader",
            ElectionMissingLeaderKey => "\"leader\" field must be provided",
            WrongDowngradeVersionFormat => "etcdserver: wrong downgrade target version format",
            InvalidDowngradeTargetVersion => "etcdserver: invalid downgrade target version",
            NoInflightDowngrade => "etcdserver: no inflight downgrade job",
            UnknownMethod => "etcdserver: unknown method",
        }
    }
}

impl From<EtcdStatus> for Status {
    fn from(error: EtcdStatus) -> Status {
        Status::new(error.code(), error.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_errors_users_grep_for_keep_their_code_and_text() {
        let compacted = Status::from(EtcdStatus::Compacted);
        assert_eq!(compacted.code, Code::OutOfRange);
        assert_eq!(
            compacted.message,
            "etcdserver: mvcc: required revision has been compacted"
        );
        assert_eq!(EtcdStatus::RequestTooLarge.code(), Code::InvalidArgument);
        assert_eq!(EtcdStatus::NoLeader.code(), Code::Unavailable);
        assert_eq!(EtcdStatus::NoSpace.code(), Code::ResourceExhausted);
        assert_eq!(EtcdStatus::LeaseNotFound.code(), Code::NotFound);
        assert_eq!(EtcdStatus::InvalidAuthToken.code(), Code::Unauthenticated);
        assert!(EtcdStatus::Corrupt.message().starts_with("etcdserver: "));
        assert_eq!(EtcdStatus::ElectionNoLeader.code(), Code::Unknown);
        assert_eq!(
            EtcdStatus::ElectionMissingLeaderKey.message(),
            r#""leader" field must be provided"#
        );
    }
}
