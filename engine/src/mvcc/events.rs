//! Replay of changes from any uncompacted revision: the feed for watchers that start in the
//! past.

use std::ops::Bound;

use super::keys::{encode_user_key, index_key, Revision};
use super::log::{self, Entry};
use super::read::newest_at;
use super::record::Record;
use super::types::{Event, EventKind, KeyValue};
use crate::db::{Table, Tables};
use crate::error::{Error, Result};

/// The state of the key just before `rev`, if it was live (its value read from the log).
pub(crate) fn prev_kv<T: Tables>(
    tables: &T,
    encoded_key: &[u8],
    rev: Revision,
) -> Result<Option<KeyValue>> {
    let before = if rev.sub > 0 {
        Revision {
            main: rev.main,
            sub: rev.sub - 1,
        }
    } else {
        Revision {
            main: rev.main - 1,
            sub: i64::MAX,
        }
    };
    newest_at(tables, encoded_key, before)?
        .filter(|found| !found.record.tombstone)
        .map(|found| found.to_kv(tables))
        .transpose()
}

/// Events of main revisions ≥ `from`, in order; stops after `limit` events but never inside a
/// main revision, so a caller can resume at the next main revision.
pub(crate) fn events_since<T: Tables>(
    tables: &T,
    from: i64,
    limit: usize,
    max_bytes: usize,
    current: i64,
    compacted: i64,
) -> Result<Vec<Event>> {
    if from < compacted {
        return Err(Error::Compacted);
    }
    if from > current {
        return Ok(Vec::new());
    }
    // The log gives key and value in one scan; the key index gives the rest of each change.
    let mut changes: Vec<(Revision, Entry)> = Vec::new();
    let start = Revision {
        main: from.max(1),
        sub: 0,
    };
    let end = Revision {
        main: i64::MAX,
        sub: i64::MAX,
    };
    let mut bytes = 0usize;
    log::scan(tables, Bound::Included(start), end, &mut |rev, entry| {
        if (changes.len() >= limit || bytes >= max_bytes)
            && changes
                .last()
                .is_some_and(|(last, _)| last.main != rev.main)
        {
            return Ok(false);
        }
        bytes = bytes.saturating_add(entry.key.len() + entry.value.len());
        changes.push((rev, entry));
        Ok(true)
    })?;
    let mut events = Vec::with_capacity(changes.len());
    for (rev, entry) in changes {
        let encoded = encode_user_key(entry.key);
        let bytes = tables
            .get(Table::Index, &index_key(&encoded, rev))?
            .ok_or_else(|| {
                tables
                    .view()
                    .corrupt(0, format!("revision {rev:?} has no index entry"))
            })?;
        let record =
            Record::decode(bytes).ok_or_else(|| tables.view().corrupt(0, "malformed record"))?;
        let prev = prev_kv(tables, &encoded, rev)?;
        events.push(if record.tombstone {
            Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: entry.key.to_vec(),
                    mod_revision: rev.main,
                    ..KeyValue::default()
                },
                prev_kv: prev,
                prev_kv_omitted: false,
            }
        } else {
            Event {
                kind: EventKind::Put,
                kv: KeyValue {
                    key: entry.key.to_vec(),
                    create_revision: record.create_revision,
                    mod_revision: rev.main,
                    version: record.version,
                    value: entry.value.to_vec(),
                    lease: record.lease,
                },
                prev_kv: prev,
                prev_kv_omitted: false,
            }
        });
    }
    Ok(events)
}
