//! The member's identity (its member ID and its cluster's ID), stored with its data the first
//! time it starts, as etcd stores them in its WAL: a restart keeps them whatever
//! `--initial-cluster`, `--initial-cluster-token` or `--name` say then, and a member never
//! changes identity under the other members' feet.
//!
//! `member/identity` in the data directory, a few text lines with a crc32 over them, written
//! to a temporary file, synced and renamed (and the directory synced), so a crash leaves
//! either no file or a whole one.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use crate::server::state_machine::header::Identity;

const FILE_NAME: &str = "identity";
const FORMAT_LINE: &str = "basalt member identity 1";

/// Where a data directory keeps its identity.
pub fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("member").join(FILE_NAME)
}

/// The identity stored in `data_dir`, if one is.
pub fn load(data_dir: &Path) -> Result<Option<Identity>, String> {
    let file = path(data_dir);
    match fs::read_to_string(&file) {
        Ok(text) => decode(&text)
            .map(Some)
            .map_err(|reason| format!("{} is damaged: {reason}", file.display())),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(format!("reading {}: {error}", file.display())),
    }
}

/// Stores `identity` in `data_dir`, durably, replacing what was there. Called once the log is
/// open and still empty, before its first write: a start that fails earlier leaves nothing
/// behind, and a first start that never wrote its log may be redone with corrected flags.
pub fn store(data_dir: &Path, identity: Identity) -> Result<(), String> {
    let file = path(data_dir);
    write_file(&file, identity).map_err(|e| format!("storing {}: {e}", file.display()))
}

fn body(identity: Identity) -> String {
    format!(
        "{FORMAT_LINE}\nmember-id {:016x}\ncluster-id {:016x}\n",
        identity.member_id, identity.cluster_id
    )
}

fn encode(identity: Identity) -> String {
    let body = body(identity);
    let crc = crc32fast::hash(body.as_bytes());
    format!("{body}crc32 {crc:08x}\n")
}

fn decode(text: &str) -> Result<Identity, String> {
    let mut lines = text.lines();
    if lines.next() != Some(FORMAT_LINE) {
        return Err("unknown format".into());
    }
    let field = |line: Option<&str>, name: &str| -> Result<u64, String> {
        line.and_then(|line| line.strip_prefix(name))
            .and_then(|rest| rest.strip_prefix(' '))
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .ok_or_else(|| format!("no valid {name} line"))
    };
    let member_id = field(lines.next(), "member-id")?;
    let cluster_id = field(lines.next(), "cluster-id")?;
    let crc = field(lines.next(), "crc32")?;
    let identity = Identity {
        cluster_id,
        member_id,
    };
    if u64::from(crc32fast::hash(body(identity).as_bytes())) != crc {
        return Err("checksum mismatch".into());
    }
    if member_id == 0 {
        return Err("member ID 0 is reserved".into());
    }
    Ok(identity)
}

fn write_file(file: &Path, identity: Identity) -> std::io::Result<()> {
    let directory = file.parent().expect("the identity file lies in member/");
    fs::create_dir_all(directory)?;
    let temporary = directory.join(format!("{FILE_NAME}.tmp"));
    let mut out = fs::File::create(&temporary)?;
    out.write_all(encode(identity).as_bytes())?;
    out.sync_all()?;
    fs::rename(&temporary, file)?;
    fs::File::open(directory)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: a stored identity reads back; a damaged file is refused, never taken for none.
    #[test]
    fn a_stored_identity_reads_back_and_damage_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = Identity {
            cluster_id: 0xcdf8_1819_4e3a_8c32,
            member_id: 0x8e9e_05c5_2164_694d,
        };
        let other = Identity {
            cluster_id: 1,
            member_id: 2,
        };
        assert!(load(dir.path()).unwrap().is_none());
        store(dir.path(), other).unwrap();
        store(dir.path(), first).unwrap();
        let stored = load(dir.path()).unwrap().expect("stored");
        assert_eq!(
            (stored.member_id, stored.cluster_id),
            (first.member_id, first.cluster_id)
        );
        let file = path(dir.path());
        let text = fs::read_to_string(&file).unwrap();
        fs::write(&file, text.replace("member-id 8", "member-id 9")).unwrap();
        let error = load(dir.path()).unwrap_err();
        assert!(error.contains("checksum mismatch"), "{error}");
    }
}
