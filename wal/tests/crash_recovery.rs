//! Crash and corruption properties of recovery, on the real log and real files.
//!
//! Method: a crash is modelled as its physical effect. Writes of the final, never-synced batch
//! are recorded with their pre-images (the fdatasync that would have acknowledged them is made
//! to fail), then a random subset of their 512-byte sectors is put back to what the file held
//! before: the sectors a crash did not persist. Corruption is a flipped byte or a shortened file
//! in data that was acknowledged. Recovery must return exactly a prefix of what was appended
//! that contains everything acknowledged, with every payload intact — or, for corruption, fail
//! with `Corrupt` naming a file, except where a crash could have produced the same bytes (the
//! final acknowledged batch of the last segment).

mod common;

use std::rc::Rc;

use basalt_wal::{Wal, WalError, WalOptions};
use common::{payload, run, segment_files, small_options, tear_writes, ScriptedFaults};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

const MAX_PAYLOAD: usize = 3000;

/// Splits `count` into bursts of sizes from `burst_sizes` (cycled).
fn bursts(count: u64, burst_sizes: &[u64]) -> Vec<u64> {
    let mut out = Vec::new();
    let mut left = count;
    let mut i = 0;
    while left > 0 {
        let size = burst_sizes[i % burst_sizes.len()].clamp(1, left);
        out.push(size);
        left -= size;
        i += 1;
    }
    out
}

#[derive(Debug, Clone)]
struct TornCase {
    seed: u64,
    acked: u64,
    burst_sizes: Vec<u64>,
    unacked: u64,
    truncate_at: Option<u64>,
    tear_seed: u64,
}

fn torn_case() -> impl Strategy<Value = TornCase> {
    (
        any::<u64>(),
        0u64..400,
        prop::collection::vec(1u64..60, 1..6),
        1u64..80,
        any::<u64>(),
        any::<u64>(),
    )
        .prop_map(
            |(seed, acked, burst_sizes, unacked, truncate_pick, tear_seed)| TornCase {
                seed,
                acked,
                burst_sizes,
                unacked,
                // Now and then, truncate the suffix before the crash (raft overwrote entries).
                truncate_at: (acked > 10 && truncate_pick % 4 == 0).then(|| truncate_pick % acked),
                tear_seed,
            },
        )
}

/// Appends, optionally truncates, then issues a final batch whose fdatasync fails, tears it,
/// and checks recovery. Returns the number of entries recovered.
fn check_torn_case(case: TornCase) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    let outcome = run(move || async move {
        let faults = Rc::new(ScriptedFaults::new(libc::EIO));
        let options = WalOptions {
            fault_injector: Some(faults.clone()),
            ..small_options()
        };
        let wal = Wal::open(&path, options).await.unwrap();
        let mut expected_metadata = Vec::new();
        for (burst_number, size) in bursts(case.acked, &case.burst_sizes)
            .into_iter()
            .enumerate()
        {
            let mut last = None;
            for _ in 0..size {
                let index = wal.next_index();
                last = Some(
                    wal.queue_entry(&payload(case.seed, index, MAX_PAYLOAD))
                        .await
                        .unwrap(),
                );
            }
            if burst_number % 3 == 1 {
                expected_metadata = format!("hard state after burst {burst_number}").into_bytes();
                last = Some(wal.queue_metadata(&expected_metadata).await.unwrap());
            }
            wal.wait_durable(last.unwrap()).await.unwrap();
        }
        let mut acked_last = wal.last_index();
        let mut seed_from = u64::MAX;
        if let Some(cut) = case.truncate_at {
            wal.truncate_after(cut).await.unwrap();
            acked_last = cut;
            seed_from = cut + 1;
            for _ in 0..5 {
                let index = wal.next_index();
                wal.append(&payload(case.seed ^ 1, index, MAX_PAYLOAD))
                    .await
                    .unwrap();
            }
            acked_last += 5;
        }
        let expected_payload = move |index: u64| {
            let seed = if index >= seed_from {
                case.seed ^ 1
            } else {
                case.seed
            };
            payload(seed, index, MAX_PAYLOAD)
        };

        // The final batch: written, never synced.
        let writes_before = faults.writes.borrow().len();
        faults.fail_fdatasyncs.set(true);
        let mut last = None;
        for _ in 0..case.unacked {
            let index = wal.next_index();
            last = Some(wal.queue_entry(&expected_payload(index)).await.unwrap());
        }
        let failed = wal.wait_durable(last.unwrap()).await;
        assert!(
            matches!(
                failed,
                Err(WalError::Io {
                    operation: "fdatasync",
                    ..
                })
            ),
            "{failed:?}"
        );
        let appended_last = wal.next_index() - 1;
        drop(wal);
        let unsynced = faults.writes.borrow()[writes_before..].to_vec();
        let mut tear_state = case.tear_seed | 1;
        tear_writes(&unsynced, || {
            tear_state ^= tear_state << 13;
            tear_state ^= tear_state >> 7;
            tear_state ^= tear_state << 17;
            tear_state.is_multiple_of(2)
        });

        let wal = Wal::open(&path, small_options()).await.unwrap();
        let recovered_last = wal.last_index();
        assert!(
            recovered_last >= acked_last && recovered_last <= appended_last,
            "recovered up to {recovered_last}, acknowledged {acked_last}, appended {appended_last}"
        );
        assert_eq!(wal.metadata(), expected_metadata);
        let entries = wal.read(1, recovered_last + 1).await.unwrap();
        for (offset, entry) in entries.iter().enumerate() {
            let index = offset as u64 + 1;
            assert_eq!(
                entry,
                &expected_payload(index),
                "entry {index} differs after recovery"
            );
        }

        // Appends after recovery must never let discarded records come back.
        for _ in 0..3 {
            let index = wal.next_index();
            wal.append(&payload(case.seed ^ 2, index, MAX_PAYLOAD))
                .await
                .unwrap();
        }
        let final_last = wal.last_index();
        drop(wal);
        let wal = Wal::open(&path, small_options()).await.unwrap();
        assert_eq!(
            wal.last_index(),
            final_last,
            "discarded records came back after new appends"
        );
        let tail = wal.read(final_last - 2, final_last + 1).await.unwrap();
        for (offset, entry) in tail.iter().enumerate() {
            let index = final_last - 2 + offset as u64;
            assert_eq!(entry, &payload(case.seed ^ 2, index, MAX_PAYLOAD));
        }
        recovered_last
    });
    prop_assert!(outcome >= 1 || case.acked == 0 || case.truncate_at == Some(0));
    Ok(())
}

#[test]
fn a_torn_final_batch_recovers_a_prefix_holding_everything_acknowledged() {
    let cases = std::env::var("BASALT_WAL_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(64);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner.run(&torn_case(), check_torn_case).unwrap();
}

#[derive(Debug, Clone)]
struct DamageCase {
    seed: u64,
    entries: u64,
    file_pick: usize,
    offset_pick: u64,
    flip: u8,
    shorten: bool,
}

fn damage_case() -> impl Strategy<Value = DamageCase> {
    (
        any::<u64>(),
        1u64..250,
        any::<usize>(),
        any::<u64>(),
        1u8..=255,
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(seed, entries, file_pick, offset_pick, flip, shorten)| DamageCase {
                seed,
                entries,
                file_pick,
                offset_pick,
                flip,
                shorten,
            },
        )
}

/// A case the random search found (the suite, 2026-12-07): the only segment cut to nothing.
/// Its empty block 0 read as a torn roll's zeros, so the log opened empty, its one
/// acknowledged entry gone without an error.
#[test]
fn a_segment_cut_to_nothing_is_refused() {
    for offset_pick in [0, 100, 4095] {
        check_damage_case(DamageCase {
            seed: 0,
            entries: 1,
            file_pick: 0,
            offset_pick,
            flip: 1,
            shorten: true,
        })
        .unwrap();
    }
}

/// Appends one entry per batch (so the final batch is exactly the last entry), damages a
/// segment file, and checks that recovery never returns wrong data or silently loses more than
/// a crash could.
fn check_damage_case(case: DamageCase) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let wal = Wal::open(&path, small_options()).await.unwrap();
        for index in 1..=case.entries {
            wal.append(&payload(case.seed, index, MAX_PAYLOAD))
                .await
                .unwrap();
        }
        drop(wal);
        let files = segment_files(&path);
        let victim = files[case.file_pick % files.len()].clone();
        let is_last_segment = victim == *files.last().unwrap();
        let length = std::fs::metadata(&victim).unwrap().len();
        let offset = case.offset_pick % length;
        if case.shorten {
            std::fs::OpenOptions::new()
                .write(true)
                .open(&victim)
                .unwrap()
                .set_len(offset)
                .unwrap();
        } else {
            let mut bytes = std::fs::read(&victim).unwrap();
            bytes[offset as usize] ^= case.flip;
            std::fs::write(&victim, &bytes).unwrap();
        }

        match Wal::open(&path, small_options()).await {
            Err(WalError::Corrupt { path: named, .. }) => {
                assert!(
                    named.starts_with(&path),
                    "the error names a file of the log: {named:?}"
                );
            }
            Err(other) => panic!("damage must read as corruption, got {other}"),
            Ok(wal) => {
                assert!(!case.shorten, "a shortened segment must be refused");
                let last = wal.last_index();
                let lost = case.entries - last;
                assert!(
                    lost == 0 || (lost == 1 && is_last_segment),
                    "lost {lost} acknowledged entries silently (damage at {offset} of {victim:?})"
                );
                match wal.read(1, last + 1).await {
                    Ok(entries) => {
                        for (i, entry) in entries.iter().enumerate() {
                            let index = i as u64 + 1;
                            assert_eq!(
                                entry,
                                &payload(case.seed, index, MAX_PAYLOAD),
                                "entry {index} is wrong"
                            );
                        }
                    }
                    Err(WalError::Corrupt { .. }) => {}
                    Err(other) => {
                        panic!("reading damaged data must fail as corruption, got {other}")
                    }
                }
            }
        }
    });
    Ok(())
}

#[test]
fn damaged_acknowledged_data_is_refused_never_served() {
    let cases = std::env::var("BASALT_WAL_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    runner.run(&damage_case(), check_damage_case).unwrap();
}

#[test]
fn a_hole_in_an_acknowledged_batch_is_corruption_not_a_torn_tail() {
    // Two acknowledged batches in the last segment; zero the first record of the earlier one.
    // Recovery sees valid records after the hole whose batch began after it: a synced batch
    // follows the hole, so the hole is damage, and opening must fail naming the offset.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let wal = Wal::open(&path, small_options()).await.unwrap();
        wal.append(b"first batch").await.unwrap();
        wal.append(b"second batch").await.unwrap();
        drop(wal);
        let segment = segment_files(&path).pop().unwrap();
        let mut bytes = std::fs::read(&segment).unwrap();
        // Block 1 holds the opening metadata record, then entry 1.
        let opening = basalt_wal::record_bytes(8);
        let entry_one = 4096 + opening;
        bytes[entry_one..entry_one + 24].fill(0);
        std::fs::write(&segment, &bytes).unwrap();
        match Wal::open(&path, small_options()).await {
            Err(WalError::Corrupt {
                path: named,
                offset,
                reason,
            }) => {
                assert_eq!(named, segment);
                assert_eq!(offset, entry_one as u64);
                assert!(reason.contains("later batch"), "{reason}");
            }
            other => panic!(
                "expected corruption, got {:?}",
                other.map(|w| w.last_index())
            ),
        }
    });
}

#[test]
fn records_discarded_from_a_torn_batch_never_come_back_after_new_appends() {
    // A torn final batch [A, B] where A's header sector never reached the disk but B did. Recovery
    // discards both; a new entry of exactly A's size then ends right where B begins, with B's
    // index next in line. A is sized to end on a block boundary, so the new write's zero padding
    // does not cover B. If recovery left B's bytes in place, the next open would resurrect an
    // entry that was never acknowledged.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_owned();
    run(move || async move {
        let faults = Rc::new(ScriptedFaults::new(libc::EIO));
        let options = WalOptions {
            fault_injector: Some(faults.clone()),
            ..small_options()
        };
        let wal = Wal::open(&path, options).await.unwrap();
        wal.append(b"acknowledged").await.unwrap();
        faults.fail_fdatasyncs.set(true);
        let used =
            4096 + basalt_wal::record_bytes(8) + basalt_wal::record_bytes(b"acknowledged".len());
        let a_len = 8192 - used - basalt_wal::RECORD_HEADER_BYTES;
        let record_a = vec![0xAA; a_len];
        wal.queue_entry(&record_a).await.unwrap();
        let b = wal.queue_entry(b"never acknowledged").await.unwrap();
        assert!(wal.wait_durable(b).await.is_err());
        drop(wal);

        let segment = segment_files(&path).pop().unwrap();
        let mut bytes = std::fs::read(&segment).unwrap();
        let header_of_a = (4096..bytes.len() - 24)
            .step_by(8)
            .find(|&at| bytes[at + 4] == 1 && bytes[at + 16..at + 24] == 2u64.to_le_bytes())
            .expect("entry 2 is on disk");
        bytes[header_of_a..header_of_a + 24].fill(0);
        std::fs::write(&segment, &bytes).unwrap();

        let wal = Wal::open(&path, small_options()).await.unwrap();
        assert_eq!(wal.last_index(), 1);
        assert!(wal.recovery_report().discarded_tail_bytes > 0);
        wal.append(&vec![0xCC; a_len]).await.unwrap();
        drop(wal);
        let wal = Wal::open(&path, small_options()).await.unwrap();
        assert_eq!(
            wal.last_index(),
            2,
            "entry 3 was never acknowledged and must not reappear"
        );
        assert_eq!(wal.read(2, 3).await.unwrap(), vec![vec![0xCC; a_len]]);
    });
}
