//! Importing an etcd snapshot's database (bbolt) into a basalt engine: every revision of the
//! `key` bucket at its own revision, the leases of the `lease` bucket, and the auth store of
//! the `auth`, `authUsers` and `authRoles` buckets.

use basalt_engine::{Engine, KeyValue, Revision};

use crate::bbolt::Db;

/// Reads a protobuf varint at `*at`.
fn varint(bytes: &[u8], at: &mut usize) -> Result<u64, String> {
    let mut out = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *bytes.get(*at).ok_or("protobuf: truncated varint")?;
        *at += 1;
        out |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(out);
        }
    }
    Err("protobuf: varint too long".to_string())
}

/// The fields of a protobuf message: (field number, varint value or bytes).
fn fields(bytes: &[u8]) -> Result<Vec<(u64, u64, Vec<u8>)>, String> {
    let mut at = 0;
    let mut out = Vec::new();
    while at < bytes.len() {
        let tag = varint(bytes, &mut at)?;
        match tag & 7 {
            0 => out.push((tag >> 3, varint(bytes, &mut at)?, Vec::new())),
            2 => {
                let len = usize::try_from(varint(bytes, &mut at)?).map_err(|e| e.to_string())?;
                let end = at.checked_add(len).filter(|&e| e <= bytes.len());
                let end = end.ok_or("protobuf: truncated field")?;
                out.push((tag >> 3, 0, bytes[at..end].to_vec()));
                at = end;
            }
            wire => return Err(format!("protobuf: unexpected wire type {wire}")),
        }
    }
    Ok(out)
}

/// mvccpb.KeyValue.
fn key_value(bytes: &[u8]) -> Result<KeyValue, String> {
    let mut kv = KeyValue::default();
    for (field, number, data) in fields(bytes)? {
        match field {
            1 => kv.key = data,
            2 => kv.create_revision = number as i64,
            3 => kv.mod_revision = number as i64,
            4 => kv.version = number as i64,
            5 => kv.value = data,
            6 => kv.lease = number as i64,
            _ => {}
        }
    }
    Ok(kv)
}

/// `basalt-util migrate --from-etcd-snapshot FILE` with `snapshot restore`'s flags.
#[derive(clap::Args, Debug)]
pub struct MigrateArgs {
    /// The snapshot file saved from etcd (`etcdctl snapshot save`)
    #[arg(long = "from-etcd-snapshot")]
    from_etcd_snapshot: std::path::PathBuf,
    #[arg(long = "data-dir")]
    data_dir: Option<std::path::PathBuf>,
    #[arg(long = "wal-dir")]
    wal_dir: Option<std::path::PathBuf>,
    #[arg(long, default_value = "default")]
    name: String,
    #[arg(
        long = "initial-cluster",
        default_value = "default=http://localhost:2380"
    )]
    initial_cluster: String,
    #[arg(long = "initial-cluster-token", default_value = "etcd-cluster")]
    initial_cluster_token: String,
    #[arg(
        long = "initial-advertise-peer-urls",
        default_value = "http://localhost:2380"
    )]
    initial_advertise_peer_urls: String,
    /// Ignore snapshot integrity hash value (required if copied from data directory)
    #[arg(long = "skip-hash-check")]
    skip_hash_check: bool,
}

pub fn run(args: &MigrateArgs) -> Result<(), String> {
    let restore = crate::snapshot_restore::RestoreArgs {
        file: args.from_etcd_snapshot.clone(),
        data_dir: args.data_dir.clone(),
        wal_dir: args.wal_dir.clone(),
        name: args.name.clone(),
        initial_cluster: args.initial_cluster.clone(),
        initial_cluster_token: args.initial_cluster_token.clone(),
        initial_advertise_peer_urls: args.initial_advertise_peer_urls.clone(),
        skip_hash_check: args.skip_hash_check,
    };
    crate::snapshot_restore::run_with(&restore, "migrated etcd snapshot", |db_path| {
        let snapshot = crate::snapshot_file::SnapshotFile::read(
            &args.from_etcd_snapshot,
            args.skip_hash_check,
        )?;
        let db = Db::open(snapshot.database)?;
        let dir = db_path.parent().expect("a database path has a directory");
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let engine = Engine::open(db_path).map_err(|e| e.to_string())?;
        let imported = import(&db, &engine)?;
        eprintln!(
            "{}",
            serde_json::json!({
                "level": "info",
                "msg": "imported etcd data",
                "revision": imported.revision,
                "changes": imported.changes,
                "leases": imported.leases,
                "auth-enabled": imported.auth_enabled,
                "users": imported.users,
                "roles": imported.roles,
            })
        );
        Ok(snapshot.hash_checked)
    })
}

/// What an import wrote.
#[derive(Debug, PartialEq, Eq)]
pub struct Imported {
    pub revision: i64,
    pub changes: usize,
    pub leases: usize,
    pub auth_enabled: bool,
    pub users: usize,
    pub roles: usize,
}

/// Imports `db`'s leases and key history into the empty `engine`, in one durable batch.
pub fn import(db: &Db, engine: &Engine) -> Result<Imported, String> {
    let mut batch = engine.write().map_err(|e| e.to_string())?;
    let mut leases = 0;
    for entry in db.bucket(b"lease")?.unwrap_or_default() {
        let mut id = 0;
        let mut ttl = 0;
        for (field, number, _) in fields(&entry.value)? {
            match field {
                1 => id = number as i64,
                2 => ttl = number as i64,
                _ => {}
            }
        }
        // etcd's restore refreshes leases: each gets its whole TTL again.
        batch.grant_lease(id, ttl).map_err(|e| e.to_string())?;
        leases += 1;
    }
    let keys = db
        .bucket(b"key")?
        .ok_or("the snapshot has no key bucket (not an etcd database)")?;
    let mut changes = 0;
    for entry in &keys {
        let k = &entry.key;
        let tombstone = match k.len() {
            17 if k[8] == b'_' => false,
            18 if k[8] == b'_' && k[17] == b't' => true,
            _ => return Err(format!("malformed revision key {k:?} in the key bucket")),
        };
        let main = u64::from_be_bytes(k[0..8].try_into().expect("8 bytes")) as i64;
        let sub = u64::from_be_bytes(k[9..17].try_into().expect("8 bytes")) as i64;
        let kv = key_value(&entry.value)?;
        batch
            .import_change(Revision { main, sub }, &kv, tombstone)
            .map_err(|e| format!("revision {main}_{sub}: {e}"))?;
        changes += 1;
    }
    // etcd's compaction revision (meta bucket, main_sub bytes): older reads stay refused.
    if let Some(meta) = db.bucket(b"meta")? {
        if let Some(entry) = meta.iter().find(|e| e.key == b"finishedCompactRev") {
            let bytes = entry
                .value
                .get(0..8)
                .ok_or("malformed finishedCompactRev")?;
            let compacted = u64::from_be_bytes(bytes.try_into().expect("8 bytes")) as i64;
            if compacted > 0 {
                batch.compact(compacted).map_err(|e| e.to_string())?;
            }
        }
    }
    let auth = import_auth(db, &mut batch)?;
    let revision = batch.current_revision();
    batch.commit().map_err(|e| e.to_string())?;
    engine.sync().map_err(|e| e.to_string())?;
    Ok(Imported {
        revision,
        changes,
        leases,
        auth_enabled: auth.0,
        users: auth.1.users,
        roles: auth.1.roles,
    })
}

/// A bucket entry: (name, `authpb` record).
type Record = (Vec<u8>, Vec<u8>);

/// etcd's auth store: the `auth` bucket's `authEnabled` (one byte, 1 = on) and `authRevision`
/// (8 bytes big-endian), and the `authUsers`/`authRoles` buckets (name → `authpb` record).
/// A snapshot of a store never touched has none of them: auth off, revision 1, as basalt
/// starts.
fn import_auth(
    db: &Db,
    batch: &mut basalt_engine::WriteBatch<'_>,
) -> Result<(bool, basalt::server::restore::ImportedAuth), String> {
    let mut enabled = false;
    let mut revision = 1;
    for entry in db.bucket(b"auth")?.unwrap_or_default() {
        match entry.key.as_slice() {
            b"authEnabled" => enabled = entry.value == [1],
            b"authRevision" => {
                let bytes: [u8; 8] = entry
                    .value
                    .as_slice()
                    .try_into()
                    .map_err(|_| "malformed authRevision".to_string())?;
                revision = u64::from_be_bytes(bytes);
            }
            _ => {}
        }
    }
    let records = |bucket: &[u8]| -> Result<Vec<Record>, String> {
        Ok(db
            .bucket(bucket)?
            .unwrap_or_default()
            .into_iter()
            .map(|entry| (entry.key, entry.value))
            .collect())
    };
    let users = records(b"authUsers")?;
    let roles = records(b"authRoles")?;
    let imported =
        basalt::server::restore::import_etcd_auth(batch, enabled, revision, &users, &roles)
            .map_err(|e| format!("the snapshot's auth store: {e}"))?;
    Ok((enabled, imported))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_real_etcd_snapshot_imports_with_its_revisions() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::open(crate::bbolt::tests::real_snapshot(dir.path())).unwrap();
        let engine = Engine::open(dir.path().join("basalt.db")).unwrap();
        let imported = import(&db, &engine).unwrap();
        // etcd starts at revision 1; 45 writes (4 puts, a delete, 40 puts) follow.
        assert_eq!(imported.revision, 46);
        assert_eq!(imported.changes, 45);
        let read = engine.read().unwrap();
        let get = |key: &str, revision| {
            read.range(&basalt_engine::RangeRequest {
                key: key.as_bytes().to_vec(),
                revision,
                ..Default::default()
            })
            .unwrap()
            .kvs
        };
        let a = get("a", 0);
        assert_eq!(
            (a[0].create_revision, a[0].mod_revision, a[0].version),
            (2, 3, 2)
        );
        assert_eq!(a[0].value, b"2");
        assert!(get("c", 0).is_empty());
        assert_eq!(get("c", 5)[0].value, b"y");
        assert_eq!(get("a", 2)[0].value, b"1");
    }
}
