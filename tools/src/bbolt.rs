//! A read-only reader of a bbolt database (the file behind an etcd snapshot), written from
//! bbolt's on-disk format: 16-byte page headers (id, flags, count, overflow), two meta pages
//! (the valid one with the highest transaction id wins), branch pages of (pos, ksize, pgid)
//! elements and leaf pages of (flags, pos, ksize, vsize) elements, a bucket being a leaf value
//! of (root, sequence) whose root 0 means an inline page follows in the value.
//!
//! Every offset is bounds-checked: a damaged file gives an error, never a panic.

const PAGE_HEADER: usize = 16;
const ELEMENT: usize = 16;
const BUCKET_HEADER: usize = 16;
const BRANCH_PAGE: u16 = 0x01;
const LEAF_PAGE: u16 = 0x02;
const META_PAGE: u16 = 0x04;
const BUCKET_LEAF: u32 = 0x01;
const MAGIC: u32 = 0xED0C_DAED;
const VERSION: u32 = 2;
/// Nesting a valid database never reaches; a page cycle in a damaged one stops here.
const MAX_DEPTH: usize = 64;

/// An opened database: its bytes, page size and root bucket page.
pub struct Db {
    bytes: Vec<u8>,
    page_size: usize,
    root: u64,
}

/// One leaf entry: a key and either a value or a nested bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    pub is_bucket: bool,
}

fn u16_at(b: &[u8], at: usize) -> Result<u16, String> {
    b.get(at..at + 2)
        .map(|s| u16::from_le_bytes([s[0], s[1]]))
        .ok_or_else(|| format!("bbolt: read past the end at offset {at}"))
}

fn u32_at(b: &[u8], at: usize) -> Result<u32, String> {
    b.get(at..at + 4)
        .map(|s| u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
        .ok_or_else(|| format!("bbolt: read past the end at offset {at}"))
}

fn u64_at(b: &[u8], at: usize) -> Result<u64, String> {
    b.get(at..at + 8)
        .map(|s| {
            let mut a = [0u8; 8];
            a.copy_from_slice(s);
            u64::from_le_bytes(a)
        })
        .ok_or_else(|| format!("bbolt: read past the end at offset {at}"))
}

fn slice(b: &[u8], at: usize, len: usize) -> Result<&[u8], String> {
    at.checked_add(len)
        .and_then(|end| b.get(at..end))
        .ok_or_else(|| format!("bbolt: {len} bytes at offset {at} past the end"))
}

fn fnv64a(data: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in data {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A valid meta page at `at`: `(page_size, root, txid)`.
fn meta(bytes: &[u8], at: usize) -> Result<(usize, u64, u64), String> {
    let flags = u16_at(bytes, at + 8)?;
    if flags & META_PAGE == 0 {
        return Err(format!("bbolt: page at offset {at} is not a meta page"));
    }
    let m = at + PAGE_HEADER;
    if u32_at(bytes, m)? != MAGIC {
        return Err("bbolt: invalid database (bad magic)".to_string());
    }
    if u32_at(bytes, m + 4)? != VERSION {
        return Err("bbolt: version mismatch".to_string());
    }
    let page_size = u32_at(bytes, m + 8)? as usize;
    let root = u64_at(bytes, m + 16)?;
    let txid = u64_at(bytes, m + 48)?;
    let checksum = u64_at(bytes, m + 56)?;
    if fnv64a(slice(bytes, m, 56)?) != checksum {
        return Err("bbolt: meta page checksum error".to_string());
    }
    if !(512..=(1 << 20)).contains(&page_size) {
        return Err(format!("bbolt: bad page size {page_size}"));
    }
    Ok((page_size, root, txid))
}

impl Db {
    /// Opens a database held in memory; the valid meta page of the highest txid is used.
    pub fn open(bytes: Vec<u8>) -> Result<Db, String> {
        let first = meta(&bytes, 0);
        let page_size = match &first {
            Ok((size, _, _)) => *size,
            // The second meta page sits one page in; without a readable first one, try the
            // usual page size.
            Err(_) => 4096,
        };
        let second = meta(&bytes, page_size);
        let (page_size, root, _) = match (first, second) {
            (Ok(a), Ok(b)) => {
                if b.2 > a.2 && b.0 == a.0 {
                    b
                } else {
                    a
                }
            }
            (Ok(a), Err(_)) => a,
            (Err(_), Ok(b)) => b,
            (Err(e), Err(_)) => return Err(e),
        };
        Ok(Db {
            bytes,
            page_size,
            root,
        })
    }

    /// The page `id` as a slice covering it and its overflow pages.
    fn page(&self, id: u64) -> Result<&[u8], String> {
        let at = usize::try_from(id)
            .ok()
            .and_then(|id| id.checked_mul(self.page_size))
            .ok_or_else(|| format!("bbolt: page id {id} out of range"))?;
        let overflow = u32_at(&self.bytes, at + 12)? as usize;
        let len = overflow
            .checked_add(1)
            .and_then(|n| n.checked_mul(self.page_size))
            .ok_or_else(|| format!("bbolt: page {id} overflow out of range"))?;
        let len = len.min(self.bytes.len().saturating_sub(at));
        slice(&self.bytes, at, len)
    }

    /// The entries of the top-level bucket `name`, in key order; `None` if there is none.
    pub fn bucket(&self, name: &[u8]) -> Result<Option<Vec<Entry>>, String> {
        let mut top = Vec::new();
        self.walk_page(self.root, &mut top, 0)?;
        match top.into_iter().find(|e| e.key == name) {
            None => Ok(None),
            Some(e) if !e.is_bucket => Err(format!(
                "bbolt: {} is not a bucket",
                String::from_utf8_lossy(name)
            )),
            Some(e) => self.bucket_entries(&e.value).map(Some),
        }
    }

    /// The names of the top-level buckets.
    #[cfg(test)]
    pub fn bucket_names(&self) -> Result<Vec<Vec<u8>>, String> {
        let mut top = Vec::new();
        self.walk_page(self.root, &mut top, 0)?;
        Ok(top
            .into_iter()
            .filter(|e| e.is_bucket)
            .map(|e| e.key)
            .collect())
    }

    /// The entries of the bucket whose leaf value is `value` (root, sequence [, inline page]).
    fn bucket_entries(&self, value: &[u8]) -> Result<Vec<Entry>, String> {
        let root = u64_at(value, 0)?;
        let mut out = Vec::new();
        if root == 0 {
            let inline = value
                .get(BUCKET_HEADER..)
                .ok_or_else(|| "bbolt: inline bucket too short".to_string())?;
            self.read_node(inline, &mut out, 0)?;
        } else {
            self.walk_page(root, &mut out, 0)?;
        }
        Ok(out)
    }

    fn walk_page(&self, id: u64, out: &mut Vec<Entry>, depth: usize) -> Result<(), String> {
        let page = self.page(id)?;
        self.read_node(page, out, depth)
    }

    /// Reads one branch or leaf page held in `page` (header included).
    fn read_node(&self, page: &[u8], out: &mut Vec<Entry>, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err("bbolt: tree too deep (a page cycle?)".to_string());
        }
        let flags = u16_at(page, 8)?;
        let count = u16_at(page, 10)? as usize;
        for i in 0..count {
            let elem = PAGE_HEADER + i * ELEMENT;
            if flags & BRANCH_PAGE != 0 {
                let child = u64_at(page, elem + 8)?;
                self.walk_page(child, out, depth + 1)?;
            } else if flags & LEAF_PAGE != 0 {
                let eflags = u32_at(page, elem)?;
                let pos = u32_at(page, elem + 4)? as usize;
                let ksize = u32_at(page, elem + 8)? as usize;
                let vsize = u32_at(page, elem + 12)? as usize;
                let key_at = elem
                    .checked_add(pos)
                    .ok_or_else(|| "bbolt: element offset overflow".to_string())?;
                let key = slice(page, key_at, ksize)?.to_vec();
                let value = slice(page, key_at + ksize, vsize)?.to_vec();
                out.push(Entry {
                    key,
                    value,
                    is_bucket: eflags & BUCKET_LEAF != 0,
                });
            } else {
                return Err(format!("bbolt: unexpected page flags {flags:#x}"));
            }
        }
        Ok(())
    }
}

/// Ports from below the kernel's ephemeral range, shared with the server's test support.
#[cfg(test)]
#[path = "../../tests/server/support/free_port.rs"]
mod free_port;

#[cfg(test)]
pub(crate) mod tests {
    use super::free_port::free_port;
    use super::*;
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    fn etcdctl(endpoint: &str, args: &[&str]) -> std::process::Output {
        Command::new("etcdctl")
            .env("ETCDCTL_API", "3")
            .arg(format!("--endpoints={endpoint}"))
            .args(args)
            .output()
            .expect("run etcdctl")
    }

    /// Starts Debian's etcd, writes keys, saves a snapshot; returns its database bytes.
    pub(crate) fn real_snapshot(dir: &Path) -> Vec<u8> {
        let client = free_port();
        let peer = free_port();
        let endpoint = format!("http://127.0.0.1:{client}");
        let peer_url = format!("http://127.0.0.1:{peer}");
        let mut etcd = Command::new("/usr/bin/etcd")
            .arg(format!("--data-dir={}", dir.join("etcd").display()))
            .arg(format!("--listen-client-urls={endpoint}"))
            .arg(format!("--advertise-client-urls={endpoint}"))
            .arg(format!("--listen-peer-urls={peer_url}"))
            .arg(format!("--initial-advertise-peer-urls={peer_url}"))
            .arg(format!("--initial-cluster=default={peer_url}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start /usr/bin/etcd (Debian's etcd-server)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while !etcdctl(&endpoint, &["endpoint", "health"]).status.success() {
            assert!(Instant::now() < deadline, "etcd did not become healthy");
            std::thread::sleep(Duration::from_millis(100));
        }
        for (k, v) in [("a", "1"), ("a", "2"), ("b", "x"), ("c", "y")] {
            assert!(etcdctl(&endpoint, &["put", k, v]).status.success());
        }
        assert!(etcdctl(&endpoint, &["del", "c"]).status.success());
        let big = "v".repeat(3000);
        for i in 0..40 {
            let key = format!("many/{i:03}");
            assert!(etcdctl(&endpoint, &["put", &key, &big]).status.success());
        }
        let file = dir.join("snap.db");
        let saved = etcdctl(&endpoint, &["snapshot", "save", file.to_str().unwrap()]);
        let _ = etcd.kill();
        let _ = etcd.wait();
        assert!(saved.status.success(), "{saved:?}");
        crate::snapshot_file::SnapshotFile::read(&file, false)
            .expect("snapshot with hash")
            .database
    }

    #[test]
    fn reads_the_buckets_of_a_real_etcd_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = real_snapshot(dir.path());
        let db = Db::open(bytes.clone()).unwrap();
        let names = db.bucket_names().unwrap();
        for name in [&b"key"[..], b"meta", b"lease", b"members"] {
            assert!(
                names.iter().any(|n| n == name),
                "bucket {name:?} in {names:?}"
            );
        }
        let keys = db.bucket(b"key").unwrap().unwrap();
        // 4 puts, 1 delete, 40 puts: one revision key each, in order: main(8 BE) '_' sub(8 BE)
        // is 17 bytes, and a tombstone has an 18th byte 't'.
        assert_eq!(keys.len(), 45);
        let mains: Vec<u64> = keys
            .iter()
            .map(|e| u64::from_be_bytes(e.key[0..8].try_into().unwrap()))
            .collect();
        assert!(mains.windows(2).all(|w| w[0] < w[1]), "{mains:?}");
        assert_eq!(keys.iter().filter(|e| e.key.len() == 17).count(), 44);
        let tombstones: Vec<_> = keys.iter().filter(|e| e.key.len() == 18).collect();
        assert_eq!(tombstones.len(), 1);
        assert_eq!(tombstones[0].key[8], b'_');
        assert_eq!(tombstones[0].key[17], b't');
        assert!(keys.iter().all(|e| !e.is_bucket && !e.value.is_empty()));
        let meta = db.bucket(b"meta").unwrap().unwrap();
        assert!(meta.iter().any(|e| e.key == b"consistent_index"));
        assert!(db.bucket(b"absent").unwrap().is_none());

        // Damaged copies give errors or partial reads, never a panic.
        for cut in [0, 10, 100, 4096, 4200, 8192, bytes.len() / 2] {
            let _ =
                Db::open(bytes[..cut.min(bytes.len())].to_vec()).and_then(|db| db.bucket(b"key"));
        }
        let mut flipped = bytes.clone();
        for at in (0..flipped.len()).step_by(997) {
            flipped[at] ^= 0xff;
        }
        let _ = Db::open(flipped).and_then(|db| db.bucket(b"key"));
        assert!(Db::open(vec![0; 64]).is_err());
    }
}
