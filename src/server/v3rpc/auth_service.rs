//! etcd's Auth service: changes to users, roles and permissions go through raft (checked for
//! root at the service and again at apply, as etcd's auth applier does); reads answer from the
//! applied store after a ReadIndex round (etcd sends them through raft for the same
//! linearizability). Passwords are hashed with bcrypt on the executor's blocking thread — at
//! the default cost 10 a hash takes ~50 ms, which would stop every call on this core — and only
//! the hash enters the log (etcd 3.5's `hashedPassword`).

use std::rc::Rc;

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::{EtcdStatus, Metadata, Router, Status};

use crate::server::member::offload::on_blocking_thread;
use crate::server::routing::gateway::Gateway;
use crate::server::state_machine::auth_caller::Caller;
use crate::server::state_machine::typed_write::Write;

/// Registers the Auth methods on `router`.
pub fn register(router: &mut Router, gateway: Rc<Gateway>) {
    admin_write::<pb::AuthEnableRequest>(router, &gateway, "AuthEnable", false);
    admin_write::<pb::AuthDisableRequest>(router, &gateway, "AuthDisable", true);
    admin_write::<pb::AuthUserDeleteRequest>(router, &gateway, "UserDelete", true);
    admin_write::<pb::AuthUserGrantRoleRequest>(router, &gateway, "UserGrantRole", true);
    admin_write::<pb::AuthUserRevokeRoleRequest>(router, &gateway, "UserRevokeRole", true);
    admin_write::<pb::AuthRoleAddRequest>(router, &gateway, "RoleAdd", true);
    admin_write::<pb::AuthRoleDeleteRequest>(router, &gateway, "RoleDelete", true);
    admin_write::<pb::AuthRoleGrantPermissionRequest>(
        router,
        &gateway,
        "RoleGrantPermission",
        true,
    );
    admin_write::<pb::AuthRoleRevokePermissionRequest>(
        router,
        &gateway,
        "RoleRevokePermission",
        true,
    );

    let g = gateway.clone();
    router.unary(
        "/etcdserverpb.Auth/UserAdd",
        move |metadata: Metadata, mut request: pb::AuthUserAddRequest| {
            let gateway = g.clone();
            async move {
                let caller = gateway.caller(&metadata)?;
                caller.check_admin()?;
                if request.name.is_empty() {
                    return Err(EtcdStatus::UserEmpty.into());
                }
                let no_password = request.options.is_some_and(|o| o.no_password);
                if !no_password && request.hashed_password.is_empty() {
                    let password = std::mem::take(&mut request.password);
                    request.hashed_password = hash_password(&gateway, password).await?;
                }
                request.password.clear();
                gateway.propose_as(&caller, request).await
            }
        },
    );
    let g = gateway.clone();
    router.unary(
        "/etcdserverpb.Auth/UserChangePassword",
        move |metadata: Metadata, mut request: pb::AuthUserChangePasswordRequest| {
            let gateway = g.clone();
            async move {
                let caller = gateway.caller(&metadata)?;
                caller.check_admin()?;
                if request.hashed_password.is_empty() {
                    let password = std::mem::take(&mut request.password);
                    request.hashed_password = hash_password(&gateway, password).await?;
                }
                request.password.clear();
                gateway.propose_as(&caller, request).await
            }
        },
    );
    let g = gateway.clone();
    router.unary(
        "/etcdserverpb.Auth/AuthStatus",
        move |_metadata: Metadata, _request: pb::AuthStatusRequest| {
            let gateway = g.clone();
            async move {
                gateway.wait_linearizable().await?;
                let state = gateway.auth().state();
                Ok(pb::AuthStatusResponse {
                    header: Some(current_header(&gateway)?),
                    enabled: state.is_enabled(),
                    auth_revision: state.revision(),
                })
            }
        },
    );
    let g = gateway.clone();
    router.unary(
        "/etcdserverpb.Auth/Authenticate",
        move |_metadata: Metadata, request: pb::AuthenticateRequest| {
            let gateway = g.clone();
            async move { authenticate(&gateway, request).await }
        },
    );
    let g = gateway.clone();
    router.unary(
        "/etcdserverpb.Auth/UserGet",
        move |metadata: Metadata, request: pb::AuthUserGetRequest| {
            let gateway = g.clone();
            async move {
                let caller = read_caller(&gateway, &metadata).await?;
                // etcd: root, or the user asking about itself.
                if caller.check_admin().is_err() && request.name != caller.user {
                    caller.check_admin()?;
                }
                let user = caller
                    .state()
                    .user(&request.name)
                    .ok_or(EtcdStatus::UserNotFound)?;
                Ok(pb::AuthUserGetResponse {
                    header: Some(current_header(&gateway)?),
                    roles: user.roles.clone(),
                })
            }
        },
    );
    let g = gateway.clone();
    router.unary(
        "/etcdserverpb.Auth/UserList",
        move |metadata: Metadata, _request: pb::AuthUserListRequest| {
            let gateway = g.clone();
            async move {
                let caller = read_caller(&gateway, &metadata).await?;
                caller.check_admin()?;
                Ok(pb::AuthUserListResponse {
                    header: Some(current_header(&gateway)?),
                    users: caller.state().user_names(),
                })
            }
        },
    );
    let g = gateway.clone();
    router.unary(
        "/etcdserverpb.Auth/RoleGet",
        move |metadata: Metadata, request: pb::AuthRoleGetRequest| {
            let gateway = g.clone();
            async move {
                let caller = read_caller(&gateway, &metadata).await?;
                // etcd: root, or a user that has the role.
                if caller.check_admin().is_err()
                    && !caller.state().has_role(&caller.user, &request.role)
                {
                    caller.check_admin()?;
                }
                let perm = caller.state().role_perms(&request.role)?;
                Ok(pb::AuthRoleGetResponse {
                    header: Some(current_header(&gateway)?),
                    perm,
                })
            }
        },
    );
    let g = gateway;
    router.unary(
        "/etcdserverpb.Auth/RoleList",
        move |metadata: Metadata, _request: pb::AuthRoleListRequest| {
            let gateway = g.clone();
            async move {
                let caller = read_caller(&gateway, &metadata).await?;
                caller.check_admin()?;
                Ok(pb::AuthRoleListResponse {
                    header: Some(current_header(&gateway)?),
                    roles: caller.state().role_names(),
                })
            }
        },
    );
}

/// Registers an auth change that needs root (`admin`) before it is proposed; apply checks
/// root again (AuthEnable too, which passes there only while auth is off, as etcd's).
fn admin_write<W>(router: &mut Router, gateway: &Rc<Gateway>, method: &str, admin: bool)
where
    W: Write + prost014::Message + Default,
    W::Answer: prost014::Message,
{
    let g = gateway.clone();
    router.unary(
        &format!("/etcdserverpb.Auth/{method}"),
        move |metadata: Metadata, request: W| {
            let gateway = g.clone();
            async move {
                let caller = gateway.caller(&metadata)?;
                if admin {
                    caller.check_admin()?;
                }
                gateway.propose_as(&caller, request).await
            }
        },
    );
}

/// The caller of a read of the store, after a ReadIndex round so it sees every change
/// committed before the call.
async fn read_caller(gateway: &Gateway, metadata: &Metadata) -> Result<Caller, Status> {
    gateway.wait_linearizable().await?;
    gateway.caller(metadata)
}

fn current_header(gateway: &Gateway) -> Result<pb::ResponseHeader, Status> {
    let view = gateway
        .engine()
        .read()
        .map_err(|e| Status::internal(e.to_string()))?;
    Ok(gateway.header(view.current_revision()))
}

/// bcrypt with `--bcrypt-cost`, off this core: the modular-crypt text (`$2b$10$...`), which is
/// what the log and the user record hold.
async fn hash_password(gateway: &Gateway, password: String) -> Result<String, Status> {
    let cost = gateway.auth().hub().bcrypt_cost();
    let hashed = on_blocking_thread(move || bcrypt::hash(password, cost))
        .await
        .ok_or_else(|| Status::cancelled("context canceled"))?
        .map_err(|e| Status::internal(format!("etcdserver: bcrypt failed: {e}")))?;
    Ok(hashed)
}

/// etcd's Authenticate: the password is checked against the stored hash (off this core),
/// then a token is issued for the user at the current auth revision.
async fn authenticate(
    gateway: &Gateway,
    request: pb::AuthenticateRequest,
) -> Result<pb::AuthenticateResponse, Status> {
    gateway.wait_linearizable().await?;
    let state = gateway.auth().state();
    if !state.is_enabled() {
        return Err(EtcdStatus::AuthNotEnabled.into());
    }
    let user = state
        .user(&request.name)
        .ok_or(EtcdStatus::AuthFailed)?
        .clone();
    if user.options.is_some_and(|o| o.no_password) {
        return Err(EtcdStatus::AuthFailed.into());
    }
    let hash = String::from_utf8_lossy(&user.password).into_owned();
    let password = request.password;
    let matches = on_blocking_thread(move || bcrypt::verify(password, &hash).unwrap_or(false))
        .await
        .ok_or_else(|| Status::cancelled("context canceled"))?;
    if !matches {
        return Err(EtcdStatus::AuthFailed.into());
    }
    let token = gateway
        .auth()
        .hub()
        .tokens()
        .assign(&request.name, state.revision())
        .map_err(Status::internal)?;
    Ok(pb::AuthenticateResponse {
        header: Some(current_header(gateway)?),
        token,
    })
}
