//! The auth store: users, roles, their permissions, whether auth is enabled and the auth
//! revision — replicated state, changed only by applied proposals (etcd's `auth.authStore`).
//!
//! Records live in the engine, committed with the data: each user in the AuthUsers table and
//! each role in AuthRoles (name → etcd's `authpb.User` / `authpb.Role` protobuf), the enabled
//! flag and the revision in the cluster table (`auth/enabled`, `auth/revision`). The whole
//! store is also kept in memory, with each user's permissions merged over its roles, so a
//! request's check reads no page and decodes nothing. Every change bumps the revision by one,
//! as etcd's `commitRevision`; a fresh store is at revision 1 (etcd commits 1 at creation).

use std::collections::{BTreeMap, HashMap};

use basalt_engine::{self as engine, AuthTable, Engine, WriteBatch};
use basalt_net::proto::{authpb, etcdserverpb as pb};
use basalt_net::EtcdStatus;
use prost014::Message as _;

use super::auth_perms::{is_valid_permission_range, Access, UserPerms};

/// etcd's root user and role names.
pub const ROOT: &str = "root";

const ENABLED_KEY: &[u8] = b"auth/enabled";
const REVISION_KEY: &[u8] = b"auth/revision";

/// A change to the auth store, as its etcd request (passwords already hashed).
#[derive(Clone, Debug, PartialEq)]
pub enum AuthRequest {
    Enable(pb::AuthEnableRequest),
    Disable(pb::AuthDisableRequest),
    UserAdd(pb::AuthUserAddRequest),
    UserDelete(pb::AuthUserDeleteRequest),
    UserChangePassword(pb::AuthUserChangePasswordRequest),
    UserGrantRole(pb::AuthUserGrantRoleRequest),
    UserRevokeRole(pb::AuthUserRevokeRoleRequest),
    RoleAdd(pb::AuthRoleAddRequest),
    RoleDelete(pb::AuthRoleDeleteRequest),
    RoleGrantPermission(pb::AuthRoleGrantPermissionRequest),
    RoleRevokePermission(pb::AuthRoleRevokePermissionRequest),
}

/// What an applied change means for the tokens handed out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenEffect {
    /// Auth was disabled: every token is void (etcd's `tokenProvider.disable`).
    DropAll,
    /// The user was deleted or got a new password: its tokens are void.
    DropUser(String),
}

/// The auth store as of the last applied entry.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthState {
    enabled: bool,
    revision: u64,
    users: BTreeMap<String, authpb::User>,
    roles: BTreeMap<String, authpb::Role>,
    /// Each user's permissions merged over its roles (etcd's range permission cache).
    perms: HashMap<String, UserPerms>,
}

impl Default for AuthState {
    fn default() -> AuthState {
        AuthState {
            enabled: false,
            revision: 1,
            users: BTreeMap::new(),
            roles: BTreeMap::new(),
            perms: HashMap::new(),
        }
    }
}

impl AuthState {
    /// The store in `engine`'s newest commit.
    pub fn load(engine: &Engine) -> Result<AuthState, String> {
        let view = engine.read().map_err(|e| e.to_string())?;
        let mut state = AuthState::default();
        for (key, value) in view.cluster_records(b"auth/").map_err(|e| e.to_string())? {
            match key.as_slice() {
                ENABLED_KEY => state.enabled = value == [1],
                REVISION_KEY => {
                    let bytes: [u8; 8] = value
                        .as_slice()
                        .try_into()
                        .map_err(|_| "the auth revision record is not 8 bytes".to_string())?;
                    state.revision = u64::from_be_bytes(bytes);
                }
                other => return Err(format!("unknown auth record {other:?}")),
            }
        }
        let bad = |what: &str, e: prost014::DecodeError| format!("an auth {what} record: {e}");
        for (name, record) in view
            .auth_records(AuthTable::Users)
            .map_err(|e| e.to_string())?
        {
            let user = authpb::User::decode(record.as_slice()).map_err(|e| bad("user", e))?;
            state
                .users
                .insert(String::from_utf8_lossy(&name).into_owned(), user);
        }
        for (name, record) in view
            .auth_records(AuthTable::Roles)
            .map_err(|e| e.to_string())?
        {
            let role = authpb::Role::decode(record.as_slice()).map_err(|e| bad("role", e))?;
            state
                .roles
                .insert(String::from_utf8_lossy(&name).into_owned(), role);
        }
        state.refresh_perms();
        Ok(state)
    }

    /// Whether auth is enabled.
    pub fn is_enabled(&self) -> bool {
        self.enabled
    }

    /// The auth revision: bumped by every change.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// The user `name`, if it exists.
    pub fn user(&self, name: &str) -> Option<&authpb::User> {
        self.users.get(name)
    }

    /// Every user name, in order.
    pub fn user_names(&self) -> Vec<String> {
        self.users.keys().cloned().collect()
    }

    /// Every role name, in order.
    pub fn role_names(&self) -> Vec<String> {
        self.roles.keys().cloned().collect()
    }

    /// The permissions etcd's RoleGet answers for `name` (root: everything, read-write).
    pub fn role_perms(&self, name: &str) -> Result<Vec<authpb::Permission>, EtcdStatus> {
        let role = self.roles.get(name).ok_or(EtcdStatus::RoleNotFound)?;
        if name == ROOT {
            return Ok(vec![authpb::Permission {
                perm_type: authpb::permission::Type::Readwrite as i32,
                key: Vec::new(),
                range_end: vec![0],
            }]);
        }
        Ok(role.key_permission.clone())
    }

    /// Whether `user` has role `role` (etcd's `HasRole`).
    pub fn has_role(&self, user: &str, role: &str) -> bool {
        self.users
            .get(user)
            .is_some_and(|u| u.roles.iter().any(|r| r == role))
    }

    /// etcd's `IsAdminPermitted`: auth off, or a user with the root role.
    pub fn check_admin(&self, user: &str) -> Result<(), EtcdStatus> {
        if !self.enabled {
            return Ok(());
        }
        if user.is_empty() {
            return Err(EtcdStatus::UserEmpty);
        }
        let found = self.users.get(user).ok_or(EtcdStatus::UserNotFound)?;
        if !has_root_role(found) {
            return Err(EtcdStatus::PermissionDenied);
        }
        Ok(())
    }

    /// etcd's `isOpPermitted`: `access` to the key or range for a caller known as `user` as of
    /// auth revision `revision` (0 and an empty name: nobody).
    pub fn check(
        &self,
        user: &str,
        revision: u64,
        access: Access,
        key: &[u8],
        range_end: &[u8],
    ) -> Result<(), EtcdStatus> {
        if !self.enabled {
            return Ok(());
        }
        if user.is_empty() || revision == 0 {
            return Err(EtcdStatus::UserEmpty);
        }
        if revision < self.revision {
            return Err(EtcdStatus::AuthOldRevision);
        }
        let found = self.users.get(user).ok_or(EtcdStatus::PermissionDenied)?;
        if has_root_role(found) {
            return Ok(());
        }
        match self.perms.get(user) {
            Some(perms) if perms.permits(access, key, range_end) => Ok(()),
            _ => Err(EtcdStatus::PermissionDenied),
        }
    }

    /// Applies one change, writing it into `batch`. `Ok(Err(..))`: refused, nothing changed;
    /// `Err`: the storage failed (the member stops).
    pub fn apply(
        &mut self,
        batch: &mut WriteBatch<'_>,
        request: &AuthRequest,
        effects: &mut Vec<TokenEffect>,
    ) -> Result<Result<(), EtcdStatus>, engine::Error> {
        use AuthRequest::*;
        let outcome = match request {
            Enable(_) => self.enable(batch)?,
            Disable(_) => {
                if self.enabled {
                    self.enabled = false;
                    batch.put_cluster_record(ENABLED_KEY, &[0])?;
                    effects.push(TokenEffect::DropAll);
                    self.commit_revision(batch)?;
                }
                Ok(())
            }
            UserAdd(r) => self.user_add(batch, r)?,
            UserDelete(r) => {
                if self.enabled && r.name == ROOT {
                    return Ok(Err(EtcdStatus::InvalidAuthManagement));
                }
                if self.users.remove(&r.name).is_none() {
                    return Ok(Err(EtcdStatus::UserNotFound));
                }
                batch.delete_auth_record(AuthTable::Users, r.name.as_bytes())?;
                effects.push(TokenEffect::DropUser(r.name.clone()));
                self.commit_revision(batch)?;
                Ok(())
            }
            UserChangePassword(r) => {
                let Some(user) = self.users.get(&r.name) else {
                    return Ok(Err(EtcdStatus::UserNotFound));
                };
                let mut user = user.clone();
                if !user.options.as_ref().is_some_and(|o| o.no_password) {
                    user.password = r.hashed_password.as_bytes().to_vec();
                }
                self.put_user(batch, user)?;
                effects.push(TokenEffect::DropUser(r.name.clone()));
                self.commit_revision(batch)?;
                Ok(())
            }
            UserGrantRole(r) => {
                let Some(user) = self.users.get(&r.user) else {
                    return Ok(Err(EtcdStatus::UserNotFound));
                };
                if r.role != ROOT && !self.roles.contains_key(&r.role) {
                    return Ok(Err(EtcdStatus::RoleNotFound));
                }
                if user.roles.contains(&r.role) {
                    return Ok(Ok(())); // etcd ignores a grant the user has
                }
                let mut user = user.clone();
                user.roles.push(r.role.clone());
                user.roles.sort();
                self.put_user(batch, user)?;
                self.commit_revision(batch)?;
                Ok(())
            }
            UserRevokeRole(r) => {
                if self.enabled && r.name == ROOT && r.role == ROOT {
                    return Ok(Err(EtcdStatus::InvalidAuthManagement));
                }
                let Some(user) = self.users.get(&r.name) else {
                    return Ok(Err(EtcdStatus::UserNotFound));
                };
                if !user.roles.contains(&r.role) {
                    return Ok(Err(EtcdStatus::RoleNotGranted));
                }
                let mut user = user.clone();
                user.roles.retain(|role| *role != r.role);
                self.put_user(batch, user)?;
                self.commit_revision(batch)?;
                Ok(())
            }
            RoleAdd(r) => {
                if r.name.is_empty() {
                    return Ok(Err(EtcdStatus::RoleEmpty));
                }
                if self.roles.contains_key(&r.name) {
                    return Ok(Err(EtcdStatus::RoleAlreadyExists));
                }
                self.put_role(
                    batch,
                    authpb::Role {
                        name: r.name.as_bytes().to_vec(),
                        key_permission: Vec::new(),
                    },
                )?;
                self.commit_revision(batch)?;
                Ok(())
            }
            RoleDelete(r) => {
                if self.enabled && r.role == ROOT {
                    return Ok(Err(EtcdStatus::InvalidAuthManagement));
                }
                if self.roles.remove(&r.role).is_none() {
                    return Ok(Err(EtcdStatus::RoleNotFound));
                }
                batch.delete_auth_record(AuthTable::Roles, r.role.as_bytes())?;
                let holders: Vec<authpb::User> = self
                    .users
                    .values()
                    .filter(|u| u.roles.contains(&r.role))
                    .cloned()
                    .collect();
                for mut user in holders {
                    user.roles.retain(|role| *role != r.role);
                    self.put_user(batch, user)?;
                }
                self.commit_revision(batch)?;
                Ok(())
            }
            RoleGrantPermission(r) => {
                let Some(perm) = &r.perm else {
                    return Ok(Err(EtcdStatus::PermissionNotGiven));
                };
                if !is_valid_permission_range(&perm.key, &perm.range_end) {
                    return Ok(Err(EtcdStatus::InvalidAuthManagement));
                }
                let Some(role) = self.roles.get(&r.name) else {
                    return Ok(Err(EtcdStatus::RoleNotFound));
                };
                let mut role = role.clone();
                match role
                    .key_permission
                    .iter_mut()
                    .find(|p| p.key == perm.key && p.range_end == perm.range_end)
                {
                    Some(existing) => existing.perm_type = perm.perm_type,
                    None => {
                        role.key_permission.push(perm.clone());
                        role.key_permission.sort_by(|a, b| a.key.cmp(&b.key));
                    }
                }
                self.put_role(batch, role)?;
                self.commit_revision(batch)?;
                Ok(())
            }
            RoleRevokePermission(r) => {
                let Some(role) = self.roles.get(&r.role) else {
                    return Ok(Err(EtcdStatus::RoleNotFound));
                };
                let mut role = role.clone();
                let before = role.key_permission.len();
                role.key_permission
                    .retain(|p| p.key != r.key || p.range_end != r.range_end);
                if role.key_permission.len() == before {
                    return Ok(Err(EtcdStatus::PermissionNotGranted));
                }
                self.put_role(batch, role)?;
                self.commit_revision(batch)?;
                Ok(())
            }
        };
        self.refresh_perms();
        Ok(outcome)
    }

    fn enable(
        &mut self,
        batch: &mut WriteBatch<'_>,
    ) -> Result<Result<(), EtcdStatus>, engine::Error> {
        if self.enabled {
            return Ok(Ok(()));
        }
        let Some(root) = self.users.get(ROOT) else {
            return Ok(Err(EtcdStatus::RootUserNotExist));
        };
        if !has_root_role(root) {
            return Ok(Err(EtcdStatus::RootRoleNotExist));
        }
        self.enabled = true;
        // etcd's enable stores the flag without a new revision.
        batch.put_cluster_record(ENABLED_KEY, &[1])?;
        Ok(Ok(()))
    }

    fn user_add(
        &mut self,
        batch: &mut WriteBatch<'_>,
        request: &pb::AuthUserAddRequest,
    ) -> Result<Result<(), EtcdStatus>, engine::Error> {
        if request.name.is_empty() {
            return Ok(Err(EtcdStatus::UserEmpty));
        }
        if self.users.contains_key(&request.name) {
            return Ok(Err(EtcdStatus::UserAlreadyExists));
        }
        let options = request.options.unwrap_or_default();
        let password = if options.no_password {
            Vec::new()
        } else {
            request.hashed_password.as_bytes().to_vec()
        };
        self.put_user(
            batch,
            authpb::User {
                name: request.name.as_bytes().to_vec(),
                password,
                roles: Vec::new(),
                options: Some(options),
            },
        )?;
        self.commit_revision(batch)?;
        Ok(Ok(()))
    }

    /// Writes another store's records into `batch` as they are (etcd's `auth`, `authUsers`
    /// and `authRoles` buckets, whose values are the same `authpb` messages basalt keeps):
    /// each record is decoded first and must be named by its key; an enabled store must hold
    /// a root user with the root role, as etcd's own enable requires. Returns (users, roles).
    pub fn import_records(
        batch: &mut WriteBatch<'_>,
        enabled: bool,
        revision: u64,
        users: &[(Vec<u8>, Vec<u8>)],
        roles: &[(Vec<u8>, Vec<u8>)],
    ) -> Result<(usize, usize), String> {
        let mut imported = AuthState {
            enabled,
            revision,
            ..AuthState::default()
        };
        for (name, record) in users {
            let user = authpb::User::decode(record.as_slice())
                .map_err(|e| format!("user {:?}: {e}", String::from_utf8_lossy(name)))?;
            if &user.name != name {
                return Err(format!(
                    "user record {:?} names user {:?}",
                    String::from_utf8_lossy(name),
                    String::from_utf8_lossy(&user.name)
                ));
            }
            imported.put_user(batch, user).map_err(|e| e.to_string())?;
        }
        for (name, record) in roles {
            let role = authpb::Role::decode(record.as_slice())
                .map_err(|e| format!("role {:?}: {e}", String::from_utf8_lossy(name)))?;
            if &role.name != name {
                return Err(format!(
                    "role record {:?} names role {:?}",
                    String::from_utf8_lossy(name),
                    String::from_utf8_lossy(&role.name)
                ));
            }
            imported.put_role(batch, role).map_err(|e| e.to_string())?;
        }
        if enabled && !imported.has_role(ROOT, ROOT) {
            return Err("auth is enabled but there is no root user with the root role".to_string());
        }
        batch
            .put_cluster_record(ENABLED_KEY, &[u8::from(enabled)])
            .map_err(|e| e.to_string())?;
        batch
            .put_cluster_record(REVISION_KEY, &revision.to_be_bytes())
            .map_err(|e| e.to_string())?;
        Ok((imported.users.len(), imported.roles.len()))
    }

    fn put_user(
        &mut self,
        batch: &mut WriteBatch<'_>,
        user: authpb::User,
    ) -> Result<(), engine::Error> {
        batch.put_auth_record(AuthTable::Users, &user.name, &user.encode_to_vec())?;
        self.users
            .insert(String::from_utf8_lossy(&user.name).into_owned(), user);
        Ok(())
    }

    fn put_role(
        &mut self,
        batch: &mut WriteBatch<'_>,
        role: authpb::Role,
    ) -> Result<(), engine::Error> {
        batch.put_auth_record(AuthTable::Roles, &role.name, &role.encode_to_vec())?;
        self.roles
            .insert(String::from_utf8_lossy(&role.name).into_owned(), role);
        Ok(())
    }

    fn commit_revision(&mut self, batch: &mut WriteBatch<'_>) -> Result<(), engine::Error> {
        self.revision += 1;
        batch.put_cluster_record(REVISION_KEY, &self.revision.to_be_bytes())
    }

    fn refresh_perms(&mut self) {
        self.perms = self
            .users
            .iter()
            .map(|(name, user)| {
                let roles = user.roles.iter().filter_map(|r| self.roles.get(r));
                (name.clone(), UserPerms::merge(roles))
            })
            .collect();
    }
}

fn has_root_role(user: &authpb::User) -> bool {
    user.roles.iter().any(|r| r == ROOT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(
        engine: &Engine,
        state: &mut AuthState,
        request: AuthRequest,
    ) -> Result<(), EtcdStatus> {
        let mut batch = engine.write().unwrap();
        let mut effects = Vec::new();
        let outcome = state.apply(&mut batch, &request, &mut effects).unwrap();
        batch.commit().unwrap();
        outcome
    }

    fn user_add(name: &str) -> AuthRequest {
        AuthRequest::UserAdd(pb::AuthUserAddRequest {
            name: name.into(),
            hashed_password: "hash".into(),
            ..Default::default()
        })
    }

    fn grant(user: &str, role: &str) -> AuthRequest {
        AuthRequest::UserGrantRole(pb::AuthUserGrantRoleRequest {
            user: user.into(),
            role: role.into(),
        })
    }

    #[test]
    fn users_roles_enable_and_checks_persist_as_etcds_store() {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::open(dir.path().join("db")).unwrap();
        let mut state = AuthState::load(&engine).unwrap();
        assert_eq!(state.revision(), 1);
        let enable = AuthRequest::Enable(Default::default());
        assert_eq!(
            apply(&engine, &mut state, enable.clone()),
            Err(EtcdStatus::RootUserNotExist)
        );
        assert_eq!(apply(&engine, &mut state, user_add("root")), Ok(()));
        assert_eq!(
            apply(&engine, &mut state, user_add("root")),
            Err(EtcdStatus::UserAlreadyExists)
        );
        assert_eq!(
            apply(&engine, &mut state, enable.clone()),
            Err(EtcdStatus::RootRoleNotExist)
        );
        assert_eq!(
            apply(&engine, &mut state, grant("root", "nope")),
            Err(EtcdStatus::RoleNotFound)
        );
        assert_eq!(apply(&engine, &mut state, grant("root", ROOT)), Ok(()));
        assert_eq!(apply(&engine, &mut state, user_add("alice")), Ok(()));
        let role_add = AuthRequest::RoleAdd(pb::AuthRoleAddRequest { name: "r".into() });
        assert_eq!(apply(&engine, &mut state, role_add), Ok(()));
        let perm = AuthRequest::RoleGrantPermission(pb::AuthRoleGrantPermissionRequest {
            name: "r".into(),
            perm: Some(authpb::Permission {
                perm_type: authpb::permission::Type::Read as i32,
                key: b"a".to_vec(),
                range_end: b"b".to_vec(),
            }),
        });
        assert_eq!(apply(&engine, &mut state, perm), Ok(()));
        assert_eq!(apply(&engine, &mut state, grant("alice", "r")), Ok(()));
        assert_eq!(apply(&engine, &mut state, enable), Ok(()));
        let revision = state.revision();
        assert_eq!(revision, 7);

        assert_eq!(
            state.check("alice", revision, Access::Read, b"a1", b""),
            Ok(())
        );
        assert_eq!(
            state.check("alice", revision, Access::Write, b"a1", b""),
            Err(EtcdStatus::PermissionDenied)
        );
        assert_eq!(
            state.check("", 0, Access::Read, b"a1", b""),
            Err(EtcdStatus::UserEmpty)
        );
        assert_eq!(
            state.check("alice", revision - 1, Access::Read, b"a1", b""),
            Err(EtcdStatus::AuthOldRevision)
        );
        assert_eq!(
            state.check("root", revision, Access::Write, b"z", b"\0"),
            Ok(())
        );
        assert_eq!(
            state.check_admin("alice"),
            Err(EtcdStatus::PermissionDenied)
        );
        assert_eq!(state.check_admin("bob"), Err(EtcdStatus::UserNotFound));
        assert_eq!(state.check_admin("root"), Ok(()));
        // Root's root role and root itself stay while auth is on.
        let revoke_root = AuthRequest::UserRevokeRole(pb::AuthUserRevokeRoleRequest {
            name: ROOT.into(),
            role: ROOT.into(),
        });
        assert_eq!(
            apply(&engine, &mut state, revoke_root),
            Err(EtcdStatus::InvalidAuthManagement)
        );

        // A restart reads the same store back.
        assert_eq!(AuthState::load(&engine).unwrap(), state);

        // Deleting a role takes it from its users.
        let role_delete = AuthRequest::RoleDelete(pb::AuthRoleDeleteRequest { role: "r".into() });
        assert_eq!(apply(&engine, &mut state, role_delete), Ok(()));
        assert!(!state.has_role("alice", "r"));
        assert_eq!(
            state.check("alice", state.revision(), Access::Read, b"a1", b""),
            Err(EtcdStatus::PermissionDenied)
        );
        assert_eq!(AuthState::load(&engine).unwrap(), state);
    }
}
