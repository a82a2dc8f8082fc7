//! `basalt-util snapshot restore FILE`: a new data directory for a member of a new cluster,
//! preloaded with the snapshot's keys, revisions, leases and alarms (etcdutl's `snapshot
//! restore`, with its flags and defaults). The new member's and cluster's IDs come from the
//! restore's `--name`, `--initial-cluster`, `--initial-cluster-token` and
//! `--initial-advertise-peer-urls`, derived as the server derives them when it starts with
//! the same flags. For a cluster of several members, restore once per member (same
//! `--initial-cluster` and token, each member's own name, peer URLs and data directory) and
//! start them with those flags: they bootstrap their membership from `--initial-cluster`.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use basalt::server::restore::prepare_restored_database;

use crate::snapshot_file::SnapshotFile;

#[derive(clap::Args, Debug)]
pub struct RestoreArgs {
    /// The snapshot file
    pub(crate) file: PathBuf,
    /// Path to the data directory (default: <name>.basalt, as the server's)
    #[arg(long = "data-dir")]
    pub(crate) data_dir: Option<PathBuf>,
    /// Path to the WAL directory (default: inside the data directory)
    #[arg(long = "wal-dir")]
    pub(crate) wal_dir: Option<PathBuf>,
    /// Human-readable name for this member
    #[arg(long, default_value = "default")]
    pub(crate) name: String,
    /// Initial cluster configuration for restore bootstrap
    #[arg(
        long = "initial-cluster",
        default_value = "default=http://localhost:2380"
    )]
    pub(crate) initial_cluster: String,
    /// Initial cluster token for the cluster during restore bootstrap
    #[arg(long = "initial-cluster-token", default_value = "etcd-cluster")]
    pub(crate) initial_cluster_token: String,
    /// List of this member's peer URLs to advertise to the rest of the cluster
    #[arg(
        long = "initial-advertise-peer-urls",
        default_value = "http://localhost:2380"
    )]
    pub(crate) initial_advertise_peer_urls: String,
    /// Ignore snapshot integrity hash value (required if copied from data directory)
    #[arg(long = "skip-hash-check")]
    pub(crate) skip_hash_check: bool,
}

pub fn run(args: &RestoreArgs) -> Result<(), String> {
    run_with(args, "restored snapshot", |db_path| {
        let snapshot = SnapshotFile::read(&args.file, args.skip_hash_check)?;
        write_durably(db_path, &snapshot.database)?;
        Ok(snapshot.hash_checked)
    })
}

/// Creates the new data directory, its database built by `make_database` (which returns
/// whether a hash was checked), then prepared for the new cluster.
pub(crate) fn run_with(
    args: &RestoreArgs,
    what: &str,
    make_database: impl FnOnce(&Path) -> Result<bool, String>,
) -> Result<(), String> {
    let config = server_config(args)?;
    let bootstrap = config.bootstrap().map_err(|e| e.to_string())?;
    let data_dir = config.member.data_dir.clone();
    if data_dir.exists() {
        return Err(format!(
            "data-dir {:?} exists",
            data_dir.display().to_string()
        ));
    }
    let wal_dir = config.wal_dir();
    if wal_dir.exists() {
        return Err(format!(
            "wal-dir {:?} exists",
            wal_dir.display().to_string()
        ));
    }
    let db_path = crate::database_path(&data_dir);
    let hash_checked = match make_database(&db_path) {
        Ok(checked) => checked,
        Err(reason) => {
            let _ = std::fs::remove_dir_all(&data_dir);
            return Err(reason);
        }
    };
    let restored = match prepare_restored_database(&db_path) {
        Ok(restored) => restored,
        Err(reason) => {
            // Leave nothing a server could start from.
            let _ = std::fs::remove_dir_all(&data_dir);
            return Err(reason);
        }
    };
    let line = serde_json::json!({
        "level": "info",
        "msg": what,
        "path": args.file.display().to_string(),
        "data-dir": data_dir.display().to_string(),
        "wal-dir": wal_dir.display().to_string(),
        "revision": restored.revision,
        "member-id": bootstrap.local_member_id.to_string(),
        "cluster-id": bootstrap.cluster_id.to_string(),
        "hash-checked": hash_checked,
        "forgotten-members": restored.forgotten_members,
    });
    eprintln!("{line}");
    Ok(())
}

/// The configuration a server started with the restore's flags would have (so a restored
/// member and the server agree on the data directory, the WAL directory and the IDs).
fn server_config(args: &RestoreArgs) -> Result<basalt::config::Config, String> {
    let mut flags = vec![
        format!("--name={}", args.name),
        format!("--initial-cluster={}", args.initial_cluster),
        format!("--initial-cluster-token={}", args.initial_cluster_token),
        format!(
            "--initial-advertise-peer-urls={}",
            args.initial_advertise_peer_urls
        ),
    ];
    if let Some(dir) = &args.data_dir {
        flags.push(format!("--data-dir={}", dir.display()));
    }
    if let Some(dir) = &args.wal_dir {
        flags.push(format!("--wal-dir={}", dir.display()));
    }
    match basalt::config::load(&flags, &[]).map_err(|e| e.to_string())? {
        basalt::config::Invocation::Serve(config) => Ok(*config),
        other => Err(format!("unexpected invocation {other:?}")),
    }
}

/// Writes `bytes` to `path` (creating its directories) so that it is durable under its name
/// before this returns: a crash leaves either no database or the whole one.
fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let dir = path.parent().expect("a database path has a directory");
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let partial = path.with_extension("restoring");
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&partial)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&partial, path)?;
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| format!("cannot write {}: {e}", path.display()))
}
