//! Who sent a call and what they may do: etcd's `AuthInfo` (user name and auth revision, from
//! the call's token or, under `--client-cert-auth`, its client certificate's CN) with the
//! permission checks etcd runs for each RPC (`apply/auth.go`, `v3_server.go`, the auth
//! maintenance server). A call's checks all use the one store snapshot taken with the caller.

use std::sync::Arc;

use basalt_engine::ReadView;
use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{EtcdStatus, Metadata, Status};

use super::auth_hub::LocalAuth;
use super::auth_perms::Access;
use super::auth_store::AuthState;

/// The caller of one call.
#[derive(Clone, Debug)]
pub struct Caller {
    /// Empty: nobody (no token, no certificate), or auth is off.
    pub user: String,
    /// The auth revision the caller's identity stands for (0 with no user and auth on).
    pub revision: u64,
    state: Arc<AuthState>,
}

impl Caller {
    /// The caller of a call with `metadata`: etcd's `AuthInfoFromCtx`, then `AuthInfoFromTLS`.
    /// A token that names nobody is etcd's "invalid auth token".
    pub fn of(auth: &LocalAuth, metadata: &Metadata) -> Result<Caller, Status> {
        let state = auth.state();
        let nobody = |state: Arc<AuthState>| Caller {
            user: String::new(),
            revision: if state.is_enabled() {
                0
            } else {
                state.revision()
            },
            state,
        };
        if !state.is_enabled() {
            return Ok(nobody(state));
        }
        let token = metadata
            .get("token")
            .or_else(|| metadata.get("authorization"))
            .map(|t| t.strip_prefix("Bearer ").unwrap_or(t));
        if let Some(token) = token {
            let info = auth
                .hub()
                .tokens()
                .info(token, state.revision())
                .ok_or(EtcdStatus::InvalidAuthToken)?;
            return Ok(Caller {
                user: info.user,
                revision: info.revision,
                state,
            });
        }
        // The gateway's own certificate never names a user (etcd's rule for its proxy).
        if auth.hub().client_cert_auth() && metadata.get("grpcgateway-accept").is_none() {
            if let Some(name) = metadata.peer_common_name() {
                return Ok(Caller {
                    user: name.to_string(),
                    revision: state.revision(),
                    state,
                });
            }
        }
        Ok(nobody(state))
    }

    /// The auth store this caller's checks use.
    pub fn state(&self) -> &AuthState {
        &self.state
    }

    /// Whether auth is on for this call.
    pub fn auth_enabled(&self) -> bool {
        self.state.is_enabled()
    }

    /// etcd's `requireAuthInfo`: with auth on, someone must be named.
    pub fn require(&self) -> Result<(), Status> {
        if self.state.is_enabled() && self.user.is_empty() {
            return Err(EtcdStatus::UserEmpty.into());
        }
        Ok(())
    }

    /// etcd's `IsAdminPermitted`: root only, once auth is on.
    pub fn check_admin(&self) -> Result<(), Status> {
        self.state.check_admin(&self.user).map_err(Into::into)
    }

    fn check(&self, access: Access, key: &[u8], range_end: &[u8]) -> Result<(), Status> {
        self.state
            .check(&self.user, self.revision, access, key, range_end)
            .map_err(Into::into)
    }

    /// etcd's `IsRangePermitted`.
    pub fn check_read(&self, key: &[u8], range_end: &[u8]) -> Result<(), Status> {
        self.check(Access::Read, key, range_end)
    }

    /// etcd's `IsPutPermitted` / `IsDeleteRangePermitted`.
    pub fn check_write(&self, key: &[u8], range_end: &[u8]) -> Result<(), Status> {
        self.check(Access::Write, key, range_end)
    }

    /// etcd's `checkPutAuth`: write on the key, write on every key already attached to the
    /// lease (one who may not revoke them may not attach to it), read for `prev_kv`.
    pub fn check_put(&self, request: &pb::PutRequest, view: &ReadView) -> Result<(), Status> {
        if !self.auth_enabled() {
            return Ok(());
        }
        self.check_write(&request.key, &[])?;
        self.check_lease_keys(request.lease, Access::Write, view)?;
        if request.prev_kv {
            self.check_read(&request.key, &[])?;
        }
        Ok(())
    }

    /// etcd's DeleteRange check: write on the range, read too for `prev_kv`.
    pub fn check_delete(&self, request: &pb::DeleteRangeRequest) -> Result<(), Status> {
        self.check_write(&request.key, &request.range_end)?;
        if request.prev_kv {
            self.check_read(&request.key, &request.range_end)?;
        }
        Ok(())
    }

    /// etcd's `checkTxnPermission`: read on every compare, and every op of both branches
    /// (nested txns included) checked as its own RPC.
    pub fn check_txn(&self, request: &pb::TxnRequest, view: &ReadView) -> Result<(), Status> {
        use pb::request_op::Request;
        if !self.auth_enabled() {
            return Ok(());
        }
        for compare in &request.compare {
            self.check_read(&compare.key, &compare.range_end)?;
        }
        for op in request.success.iter().chain(&request.failure) {
            match &op.request {
                Some(Request::RequestRange(r)) => self.check_read(&r.key, &r.range_end)?,
                Some(Request::RequestPut(r)) => self.check_put(r, view)?,
                Some(Request::RequestDeleteRange(r)) => self.check_delete(r)?,
                Some(Request::RequestTxn(nested)) => self.check_txn(nested, view)?,
                None => {}
            }
        }
        Ok(())
    }

    /// `access` to every key attached to `lease` (none for lease 0 or an unknown lease); root
    /// passes at once (etcd's `checkLeasePuts`, `checkLeaseTimeToLive`).
    pub fn check_lease_keys(
        &self,
        lease: i64,
        access: Access,
        view: &ReadView,
    ) -> Result<(), Status> {
        if lease == 0 || !self.auth_enabled() || self.check_admin().is_ok() {
            return Ok(());
        }
        let keys = view
            .lease_keys(lease)
            .map_err(|e| Status::internal(e.to_string()))?;
        for key in keys {
            self.check(access, &key, &[])?;
        }
        Ok(())
    }
}
