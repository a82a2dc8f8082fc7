//! A file in another on-disk format is refused with an error that names both format versions,
//! not reported as damage and never read. Method: write a database, rewrite the format version
//! in both of its meta pages (with valid checksums, as the other format's engine would have
//! written them), reopen.

use std::os::unix::fs::FileExt;
use std::path::Path;

use basalt_engine::*;

const PAGE: usize = pager::PAGE_SIZE;

/// Sets the format version field of both meta pages and reseals their checksums.
fn set_format(path: &Path, version: u32) {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .unwrap();
    for page in 0..2u64 {
        let mut bytes = vec![0u8; PAGE];
        file.read_exact_at(&mut bytes, page * PAGE as u64).unwrap();
        assert_eq!(&bytes[0..8], b"BASALTDB");
        bytes[8..12].copy_from_slice(&version.to_le_bytes());
        let crc = crc32fast::hash(&bytes[..PAGE - 4]);
        bytes[PAGE - 4..].copy_from_slice(&crc.to_le_bytes());
        file.write_all_at(&bytes, page * PAGE as u64).unwrap();
    }
}

fn written(path: &Path) {
    let engine = Engine::open(path).unwrap();
    let mut batch = engine.write().unwrap();
    batch
        .put(&PutRequest {
            key: b"k".to_vec(),
            value: b"v".to_vec(),
            ..Default::default()
        })
        .unwrap();
    batch.commit().unwrap();
}

#[test]
fn a_file_of_another_format_is_refused_naming_both_versions() {
    for (other, current) in [(1, 3), (4, 3)] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        written(&path);
        set_format(&path, other);
        let error = match Engine::open(&path) {
            Err(error) => error,
            Ok(_) => panic!("a format-{other} file was opened"),
        };
        let text = error.to_string();
        assert!(matches!(error, Error::BadFile { .. }), "{text}");
        assert!(
            text.contains(&format!("format version {other}"))
                && text.contains(&format!("format version {current}"))
                && text.contains(&path.display().to_string()),
            "{text}"
        );
        // Put back, the same file opens: nothing was changed by the refusal.
        set_format(&path, current);
        let engine = Engine::open(&path).unwrap();
        let got = engine
            .read()
            .unwrap()
            .range(&RangeRequest {
                key: b"k".to_vec(),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(got.kvs[0].value, b"v");
    }
}
