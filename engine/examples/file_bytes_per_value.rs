//! Loads `count` random values of `value_bytes` under 16-byte keys (1,000 puts per commit),
//! syncs, and prints the data file's size per value: the figure behind a snapshot's size
//! (docs/benchmarks.md, "Why 1 GiB of 4 KiB values ..."). Sizes, not timings: a busy machine
//! gives the same answer.
//!
//! `cargo run --release -p basalt-engine --example file_bytes_per_value -- <dir> [count]
//! [value_bytes]` (defaults: 262,144 values of 4,096 bytes, 1 GiB of values).

use basalt_engine::*;

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().expect("usage: <dir> [count] [value_bytes]"));
    let count: u64 = args.next().map_or(262_144, |a| a.parse().expect("count"));
    let value_bytes: usize = args
        .next()
        .map_or(4096, |a| a.parse().expect("value_bytes"));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("db");
    let _ = std::fs::remove_file(&path);
    let engine = Engine::open(&path).unwrap();
    // xorshift64: incompressible values, the same on every run.
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut random = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let per_commit = 1000;
    let mut written = 0u64;
    while written < count {
        let mut batch = engine.write().unwrap();
        for _ in 0..per_commit.min(count - written) {
            let key = format!("/k/{:013x}", written).into_bytes();
            assert_eq!(key.len(), 16);
            let mut value = vec![0u8; value_bytes];
            for chunk in value.chunks_mut(8) {
                let word = random().to_le_bytes();
                chunk.copy_from_slice(&word[..chunk.len()]);
            }
            batch
                .put(&PutRequest {
                    key,
                    value,
                    ..Default::default()
                })
                .unwrap();
            written += 1;
        }
        batch.commit().unwrap();
    }
    engine.sync().unwrap();
    let report = engine.check().unwrap();
    let in_use = engine.size_in_use_bytes().unwrap();
    drop(engine);
    let file_bytes = std::fs::metadata(&path).unwrap().len();
    println!(
        "values {count} of {value_bytes} bytes: file {file_bytes} bytes ({:.0} per value), \
         in use {in_use} bytes ({:.0} per value), pages reachable {} ({:.3} per value)",
        file_bytes as f64 / count as f64,
        in_use as f64 / count as f64,
        report.pages_reachable,
        report.pages_reachable as f64 / count as f64
    );
    std::fs::remove_file(&path).unwrap();
}
