//! Turning a snapshot's database into the database of a member of a new cluster (the server's
//! half of `basalt-util snapshot restore`, as `etcdutl snapshot restore` does for etcd): the
//! key space, revisions, leases and alarms stay; the raft log starts over and the members of
//! the old cluster are forgotten, so the restored member starts as a member of the cluster
//! named by the restore's `--initial-cluster` (each member of it restored the same way).

use std::path::Path;

use basalt_engine::Engine;

use crate::server::state_machine::cluster_state::ClusterState;

/// What the restored database holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestoredDatabase {
    /// The revision the restored member continues from.
    pub revision: i64,
    /// Member records of the old cluster that were dropped.
    pub forgotten_members: usize,
}

/// Rewrites the database at `db_path` (a snapshot copied into a new data directory) for a
/// new cluster, durably.
pub fn prepare_restored_database(db_path: &Path) -> Result<RestoredDatabase, String> {
    let engine =
        Engine::open(db_path).map_err(|e| format!("the snapshot is not a basalt database: {e}"))?;
    // A snapshot is copied from a checked, durable commit; a check here still refuses a file
    // damaged since, before a member serves from it.
    engine
        .check()
        .map_err(|e| format!("the snapshot's database is damaged: {e}"))?;
    let mut batch = engine.write().map_err(|e| e.to_string())?;
    batch.start_new_raft_log();
    let forgotten_members = ClusterState::forget_members(&engine, &mut batch)?;
    let revision = batch.current_revision();
    batch.commit().map_err(|e| e.to_string())?;
    // Offline: no executor to keep going, so the sync may block.
    engine.sync().map_err(|e| e.to_string())?;
    Ok(RestoredDatabase {
        revision,
        forgotten_members,
    })
}

/// Users and roles imported from another store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportedAuth {
    pub users: usize,
    pub roles: usize,
}

/// Writes an etcd snapshot's auth store into `batch` (the server's half of `basalt-util
/// migrate` for the `auth`, `authUsers` and `authRoles` buckets): the enabled flag, the auth
/// revision, and each user (with its bcrypt password hash) and role record as etcd stored it.
pub fn import_etcd_auth(
    batch: &mut basalt_engine::WriteBatch<'_>,
    enabled: bool,
    revision: u64,
    users: &[(Vec<u8>, Vec<u8>)],
    roles: &[(Vec<u8>, Vec<u8>)],
) -> Result<ImportedAuth, String> {
    let (users, roles) = crate::server::state_machine::auth_store::AuthState::import_records(
        batch, enabled, revision, users, roles,
    )?;
    Ok(ImportedAuth { users, roles })
}
