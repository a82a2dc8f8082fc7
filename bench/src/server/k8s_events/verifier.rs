//! The k8s-events verifier: checks a run's history against what etcd's API promises.
//!
//! - Watch: every applied write is delivered exactly once, in revision order, under its key;
//!   no event appears that no write can explain; each event's prev_kv is the key's previous
//!   version.
//! - LIST at a fixed revision R: keys sorted and unique, each at the mod_revision of its latest
//!   write at or before R, nothing newer than R, nothing missing.
//! - Count-only ranges never decrease (nothing is deleted during a run: leases last an hour).
//! - Guards: a create of a fresh name, or an update with the writer's own last revision,
//!   fails only if an earlier write to that key has an unknown outcome.
//!
//! Writes with an unknown outcome (timeouts) may or may not exist; keys that have one are
//! given the benefit of the doubt wherever the doubt matters.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use super::history::{History, WriteKind, WriteOutcome};

/// One broken promise.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// An applied write the watch never delivered.
    WatchMissed { key: String, revision: i64 },
    /// The same revision delivered twice.
    WatchDuplicate { key: String, revision: i64 },
    /// An event whose revision is not above the previous event's.
    WatchOutOfOrder { previous: i64, next: i64 },
    /// An event no write explains (wrong key for the revision, or an unknown revision).
    WatchPhantom { key: String, revision: i64 },
    /// prev_kv does not point at the key's previous version.
    WatchPrevKv {
        key: String,
        revision: i64,
        expected: Option<i64>,
        got: Option<i64>,
    },
    /// The watch stopped before the end of the run.
    WatchFailed { reason: String },
    /// LIST keys out of order or repeated.
    ListOrder { revision: i64, key: String },
    /// A LIST item newer than the LIST's revision.
    ListFromFuture {
        revision: i64,
        key: String,
        mod_revision: i64,
    },
    /// A LIST item at another version than the latest write at or before the LIST's revision.
    ListStale {
        revision: i64,
        key: String,
        listed: i64,
        expected: i64,
    },
    /// A key written at or before the LIST's revision that the LIST does not hold.
    ListMissing { revision: i64, key: String },
    /// A key in the LIST that no write at or before its revision created.
    ListPhantom { revision: i64, key: String },
    /// A count-only range smaller than an earlier one.
    CountDecreased { previous: i64, next: i64 },
    /// A guard failed although the writer knew the key's state.
    GuardFailed { key: String, kind: WriteKind },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::WatchMissed { key, revision } => {
                write!(f, "watch missed {key} at revision {revision}")
            }
            Violation::WatchDuplicate { key, revision } => {
                write!(f, "watch delivered {key} at revision {revision} twice")
            }
            Violation::WatchOutOfOrder { previous, next } => {
                write!(f, "watch delivered revision {next} after {previous}")
            }
            Violation::WatchPhantom { key, revision } => {
                write!(
                    f,
                    "watch delivered {key} at revision {revision}, which no write made"
                )
            }
            Violation::WatchPrevKv {
                key,
                revision,
                expected,
                got,
            } => write!(
                f,
                "watch event {key}@{revision} has prev_kv revision {got:?}, expected {expected:?}"
            ),
            Violation::WatchFailed { reason } => write!(f, "watch ended early: {reason}"),
            Violation::ListOrder { revision, key } => {
                write!(f, "LIST@{revision} has {key} out of order or twice")
            }
            Violation::ListFromFuture {
                revision,
                key,
                mod_revision,
            } => write!(
                f,
                "LIST@{revision} has {key} at later revision {mod_revision}"
            ),
            Violation::ListStale {
                revision,
                key,
                listed,
                expected,
            } => write!(
                f,
                "LIST@{revision} has {key} at revision {listed}, expected {expected}"
            ),
            Violation::ListMissing { revision, key } => {
                write!(f, "LIST@{revision} misses {key}")
            }
            Violation::ListPhantom { revision, key } => {
                write!(
                    f,
                    "LIST@{revision} has {key}, which no write before it created"
                )
            }
            Violation::CountDecreased { previous, next } => {
                write!(f, "count went down from {previous} to {next}")
            }
            Violation::GuardFailed { key, kind } => {
                write!(f, "{kind:?} of {key} failed its mod_revision guard")
            }
        }
    }
}

/// Checks a history; returns every violation found (empty when the run was consistent).
pub fn verify(history: &History) -> Vec<Violation> {
    let facts = Facts::of(history);
    let mut violations = Vec::new();
    check_guards(history, &mut violations);
    check_watch(history, &facts, &mut violations);
    for list in &history.lists {
        check_list(list, &facts, &mut violations);
    }
    for pair in history.counts.windows(2) {
        if pair[1] < pair[0] {
            violations.push(Violation::CountDecreased {
                previous: pair[0],
                next: pair[1],
            });
        }
    }
    violations
}

/// What the writes establish: applied revisions per key, and keys in doubt.
struct Facts {
    /// revision → key of every applied write.
    applied: BTreeMap<i64, String>,
    /// key → its applied revisions, ascending.
    applied_by_key: HashMap<String, Vec<i64>>,
    /// Keys with at least one write of unknown outcome.
    uncertain: HashSet<String>,
}

impl Facts {
    fn of(history: &History) -> Facts {
        let mut applied = BTreeMap::new();
        let mut applied_by_key: HashMap<String, Vec<i64>> = HashMap::new();
        let mut uncertain = HashSet::new();
        for write in &history.writes {
            match write.outcome {
                WriteOutcome::Applied { revision } => {
                    applied.insert(revision, write.key.clone());
                    applied_by_key
                        .entry(write.key.clone())
                        .or_default()
                        .push(revision);
                }
                WriteOutcome::Unknown => {
                    uncertain.insert(write.key.clone());
                }
                WriteOutcome::GuardFailed => {}
            }
        }
        for revisions in applied_by_key.values_mut() {
            revisions.sort_unstable();
        }
        Facts {
            applied,
            applied_by_key,
            uncertain,
        }
    }

    /// The key's latest applied revision at or before `revision`.
    fn latest_at(&self, key: &str, revision: i64) -> Option<i64> {
        let revisions = self.applied_by_key.get(key)?;
        let index = revisions.partition_point(|&r| r <= revision);
        index.checked_sub(1).map(|i| revisions[i])
    }
}

fn check_guards(history: &History, violations: &mut Vec<Violation>) {
    // A guard may fail after a write of unknown outcome to the same key (the writer's view of
    // the key is then stale), never otherwise.
    let mut doubtful = HashSet::new();
    for write in &history.writes {
        match write.outcome {
            WriteOutcome::Unknown => {
                doubtful.insert(write.key.as_str());
            }
            WriteOutcome::GuardFailed if !doubtful.contains(write.key.as_str()) => {
                violations.push(Violation::GuardFailed {
                    key: write.key.clone(),
                    kind: write.kind,
                });
            }
            _ => {}
        }
    }
}

fn check_watch(history: &History, facts: &Facts, violations: &mut Vec<Violation>) {
    if let Some(reason) = &history.watch_failure {
        violations.push(Violation::WatchFailed {
            reason: reason.clone(),
        });
    }
    let mut seen = HashSet::new();
    let mut previous_revision: Option<i64> = None;
    // key → mod_revision of its previous delivered event.
    let mut last_by_key: HashMap<&str, i64> = HashMap::new();
    for event in &history.events {
        if !seen.insert(event.mod_revision) {
            violations.push(Violation::WatchDuplicate {
                key: event.key.clone(),
                revision: event.mod_revision,
            });
            continue;
        }
        if let Some(previous) = previous_revision {
            if event.mod_revision <= previous {
                violations.push(Violation::WatchOutOfOrder {
                    previous,
                    next: event.mod_revision,
                });
            }
        }
        previous_revision = Some(event.mod_revision);
        let explained = match facts.applied.get(&event.mod_revision) {
            Some(key) => key == &event.key,
            None => facts.uncertain.contains(&event.key),
        };
        if !explained {
            violations.push(Violation::WatchPhantom {
                key: event.key.clone(),
                revision: event.mod_revision,
            });
        }
        let expected_prev = last_by_key.insert(&event.key, event.mod_revision);
        if event.prev_mod_revision != expected_prev {
            violations.push(Violation::WatchPrevKv {
                key: event.key.clone(),
                revision: event.mod_revision,
                expected: expected_prev,
                got: event.prev_mod_revision,
            });
        }
    }
    for (revision, key) in facts.applied.range(..=history.watch_complete_through) {
        if !seen.contains(revision) {
            violations.push(Violation::WatchMissed {
                key: key.clone(),
                revision: *revision,
            });
        }
    }
}

fn check_list(list: &super::history::ListSnapshot, facts: &Facts, violations: &mut Vec<Violation>) {
    let revision = list.revision;
    let mut listed = HashSet::new();
    let mut previous_key: Option<&str> = None;
    for (key, mod_revision) in &list.items {
        if previous_key.is_some_and(|previous| previous >= key.as_str()) {
            violations.push(Violation::ListOrder {
                revision,
                key: key.clone(),
            });
        }
        previous_key = Some(key);
        listed.insert(key.as_str());
        if *mod_revision > revision {
            violations.push(Violation::ListFromFuture {
                revision,
                key: key.clone(),
                mod_revision: *mod_revision,
            });
            continue;
        }
        if facts.uncertain.contains(key) {
            continue;
        }
        match facts.latest_at(key, revision) {
            Some(expected) if expected != *mod_revision => violations.push(Violation::ListStale {
                revision,
                key: key.clone(),
                listed: *mod_revision,
                expected,
            }),
            Some(_) => {}
            None => violations.push(Violation::ListPhantom {
                revision,
                key: key.clone(),
            }),
        }
    }
    for (applied_revision, key) in facts.applied.range(..=revision) {
        // Report each missing key once, at its first revision.
        let first = facts.applied_by_key[key][0];
        if first == *applied_revision && !listed.contains(key.as_str()) {
            violations.push(Violation::ListMissing {
                revision,
                key: key.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::history::{ListSnapshot, WatchedEvent, WriteRecord};
    use super::*;

    fn write(key: &str, kind: WriteKind, outcome: WriteOutcome) -> WriteRecord {
        WriteRecord {
            key: key.into(),
            kind,
            outcome,
        }
    }

    fn applied(key: &str, kind: WriteKind, revision: i64) -> WriteRecord {
        write(key, kind, WriteOutcome::Applied { revision })
    }

    fn event(key: &str, revision: i64, prev: Option<i64>) -> WatchedEvent {
        WatchedEvent {
            key: key.into(),
            mod_revision: revision,
            prev_mod_revision: prev,
        }
    }

    /// A consistent run: a created at 10, b at 11, a updated at 12; LISTs at 11 and 12.
    fn consistent() -> History {
        History {
            writes: vec![
                applied("a", WriteKind::Create, 10),
                applied("b", WriteKind::Create, 11),
                applied("a", WriteKind::Update, 12),
            ],
            events: vec![
                event("a", 10, None),
                event("b", 11, None),
                event("a", 12, Some(10)),
            ],
            watch_complete_through: 12,
            watch_failure: None,
            lists: vec![
                ListSnapshot {
                    revision: 11,
                    items: vec![("a".into(), 10), ("b".into(), 11)],
                },
                ListSnapshot {
                    revision: 12,
                    items: vec![("a".into(), 12), ("b".into(), 11)],
                },
            ],
            counts: vec![1, 2, 2],
        }
    }

    // Goal: a history that keeps every promise yields no violation.
    #[test]
    fn consistent_history_passes() {
        assert_eq!(verify(&consistent()), vec![]);
    }

    // Goal: a lost event and a duplicated event are both caught, with the key named.
    #[test]
    fn missed_and_duplicated_events_are_caught() {
        let mut history = consistent();
        history.events.remove(1);
        history.events.push(event("a", 12, Some(10)));
        let violations = verify(&history);
        assert!(violations.contains(&Violation::WatchMissed {
            key: "b".into(),
            revision: 11
        }));
        assert!(violations.contains(&Violation::WatchDuplicate {
            key: "a".into(),
            revision: 12
        }));
    }

    // Goal: events out of revision order, phantom events and wrong prev_kv are caught.
    #[test]
    fn reordered_phantom_and_bad_prev_kv_are_caught() {
        let mut history = consistent();
        history.events.swap(0, 1);
        history.events.push(event("c", 13, None));
        history.events[2].prev_mod_revision = Some(11);
        let violations = verify(&history);
        assert!(violations.contains(&Violation::WatchOutOfOrder {
            previous: 11,
            next: 10
        }));
        assert!(violations.contains(&Violation::WatchPhantom {
            key: "c".into(),
            revision: 13
        }));
        assert!(violations.contains(&Violation::WatchPrevKv {
            key: "a".into(),
            revision: 12,
            expected: Some(10),
            got: Some(11)
        }));
    }

    // Goal: LIST snapshots that are stale, from the future, incomplete, unsorted or invented
    // are each caught.
    #[test]
    fn inconsistent_lists_are_caught() {
        let mut history = consistent();
        history.lists = vec![
            // a is listed at 10 although it was updated at 12 ≤ 12: stale.
            ListSnapshot {
                revision: 12,
                items: vec![("a".into(), 10), ("b".into(), 11)],
            },
            // b, written at 11, appears in a LIST at 10: from the future.
            ListSnapshot {
                revision: 10,
                items: vec![("a".into(), 10), ("b".into(), 11)],
            },
            // b, written at 11, is missing from a LIST at 11.
            ListSnapshot {
                revision: 11,
                items: vec![("a".into(), 10)],
            },
            // Keys out of order, and z that no write created.
            ListSnapshot {
                revision: 12,
                items: vec![("b".into(), 11), ("a".into(), 12), ("z".into(), 5)],
            },
        ];
        let violations = verify(&history);
        assert!(violations.contains(&Violation::ListStale {
            revision: 12,
            key: "a".into(),
            listed: 10,
            expected: 12
        }));
        assert!(violations.contains(&Violation::ListFromFuture {
            revision: 10,
            key: "b".into(),
            mod_revision: 11
        }));
        assert!(violations.contains(&Violation::ListMissing {
            revision: 11,
            key: "b".into()
        }));
        assert!(violations.contains(&Violation::ListOrder {
            revision: 12,
            key: "a".into()
        }));
        assert!(violations.contains(&Violation::ListPhantom {
            revision: 12,
            key: "z".into()
        }));
    }

    // Goal: counts that go down and guards that fail without cause are violations; a guard
    // failing after a timed-out write to the same key is not, nor is that write's event.
    #[test]
    fn counts_guards_and_unknown_outcomes() {
        let mut history = consistent();
        history.counts = vec![2, 1];
        history
            .writes
            .push(write("b", WriteKind::Update, WriteOutcome::GuardFailed));
        history
            .writes
            .push(write("c", WriteKind::Create, WriteOutcome::Unknown));
        history
            .writes
            .push(write("c", WriteKind::Create, WriteOutcome::GuardFailed));
        history.events.push(event("c", 13, None));
        let violations = verify(&history);
        assert_eq!(
            violations,
            vec![
                Violation::GuardFailed {
                    key: "b".into(),
                    kind: WriteKind::Update
                },
                Violation::CountDecreased {
                    previous: 2,
                    next: 1
                },
            ]
        );
    }

    // Goal: writes after the point the watch was required to reach are not reported missing,
    // and a watch that ended early is reported.
    #[test]
    fn completeness_bound_and_watch_failure() {
        let mut history = consistent();
        history.events.pop();
        history.watch_complete_through = 11;
        assert_eq!(verify(&history), vec![]);
        history.watch_failure = Some("compacted at 11".into());
        assert_eq!(
            verify(&history),
            vec![Violation::WatchFailed {
                reason: "compacted at 11".into()
            }]
        );
    }
}
