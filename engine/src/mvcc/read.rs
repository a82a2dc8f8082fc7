//! Reads of the MVCC store at a revision: point lookups, ranges (with etcd's post-processing),
//! and txn compares. Generic over the snapshot so a write batch reads its own writes.
//!
//! Every read walks the key index, which holds no values; a value is looked up in the change
//! log by its revision only when the answer carries it (a returned key of a range that is not
//! keys-only, a VALUE compare, a sort by value), never for a key that is only counted.

use std::ops::Bound;

use super::keys::{decode_user_key, encode_user_key, index_key, split_index_key, Revision};
use super::log;
use super::record::Record;
use super::response_budget::{ResponseBudget, KEY_VALUE_OVERHEAD_BYTES};
use super::types::{
    Compare, CompareResult, CompareTarget, KeyValue, RangeRequest, RangeResponse, SortOrder,
    SortTarget,
};
use crate::db::{Table, Tables};
use crate::error::{Error, Result};

/// The key range of a request, in etcd's conventions, as index-key bounds.
pub(crate) struct KeyRange {
    /// Encoded first user key.
    pub(crate) lower: Vec<u8>,
    /// Encoded exclusive end, `None` for "every key ≥ lower", or the same key for a point.
    pub(crate) upper: Upper,
}

/// Where a key range ends.
pub(crate) enum Upper {
    /// Just the one key.
    Point,
    /// Up to (excluding) this encoded user key.
    Before(Vec<u8>),
    /// No end (range_end "\0").
    Unbounded,
    /// range_end ≤ key: nothing.
    Empty,
}

impl KeyRange {
    /// `key`/`range_end` as etcd reads them.
    pub(crate) fn new(key: &[u8], range_end: &[u8]) -> KeyRange {
        let upper = if range_end.is_empty() {
            Upper::Point
        } else if range_end == [0] {
            Upper::Unbounded
        } else if range_end <= key {
            Upper::Empty
        } else {
            Upper::Before(encode_user_key(range_end))
        };
        KeyRange {
            lower: encode_user_key(key),
            upper,
        }
    }

    /// Whether the user key `key` lies in the range.
    pub(crate) fn contains(&self, key: &[u8]) -> bool {
        let encoded = encode_user_key(key);
        match &self.upper {
            Upper::Point => encoded == self.lower,
            Upper::Before(end) => encoded >= self.lower && encoded < *end,
            Upper::Unbounded => encoded >= self.lower,
            Upper::Empty => false,
        }
    }
}

/// A key's newest revision at or below some revision, borrowed from the snapshot: the key
/// index's record, without the value (see `mvcc::log`).
#[derive(Clone, Copy)]
pub(crate) struct Found<'a> {
    pub(crate) encoded_key: &'a [u8],
    pub(crate) revision: Revision,
    pub(crate) record: Record,
}

impl Found<'_> {
    /// The etcd `KeyValue` of this revision with an empty value: all the key index holds.
    pub(crate) fn kv_without_value(self) -> KeyValue {
        KeyValue {
            key: decode_user_key(self.encoded_key).unwrap_or_default(),
            create_revision: self.record.create_revision,
            mod_revision: self.revision.main,
            version: self.record.version,
            value: Vec::new(),
            lease: self.record.lease,
        }
    }

    /// The etcd `KeyValue` of this revision, its value looked up in the change log.
    pub(crate) fn to_kv<T: Tables>(self, tables: &T) -> Result<KeyValue> {
        let mut kv = self.kv_without_value();
        kv.value = log::value(tables, &kv.key, self.revision)?.to_vec();
        Ok(kv)
    }
}

/// Parses an index entry; `None` if malformed.
pub(crate) fn entry<'a>(key: &'a [u8], value: &[u8]) -> Option<Found<'a>> {
    let (encoded_key, revision) = split_index_key(key)?;
    Some(Found {
        encoded_key,
        revision,
        record: Record::decode(value)?,
    })
}

fn parse<'a, T: Tables>(tables: &T, key: &'a [u8], value: &[u8]) -> Result<Found<'a>> {
    let (encoded_key, revision) =
        split_index_key(key).ok_or_else(|| tables.view().corrupt(0, "malformed index key"))?;
    let record =
        Record::decode(value).ok_or_else(|| tables.view().corrupt(0, "malformed record"))?;
    Ok(Found {
        encoded_key,
        revision,
        record,
    })
}

/// The newest revision ≤ `at` (main, any sub) of the encoded user key, tombstones included.
pub(crate) fn newest_at<'a, T: Tables>(
    tables: &'a T,
    encoded_key: &[u8],
    at: Revision,
) -> Result<Option<Found<'a>>> {
    let upper = index_key(encoded_key, at);
    match tables.seek_le(Table::Index, &upper)? {
        // Index keys are prefix-free: an entry of this key is exactly encoded key ++ revision.
        Some((k, v)) if k.len() == upper.len() && k.starts_with(encoded_key) => {
            Ok(Some(parse(tables, k, v)?))
        }
        _ => Ok(None),
    }
}

/// The live (non-tombstone) state of a user key at main revision `rev`.
pub(crate) fn get_at<'a, T: Tables>(
    tables: &'a T,
    key: &[u8],
    rev: i64,
) -> Result<Option<Found<'a>>> {
    let at = Revision {
        main: rev,
        sub: i64::MAX,
    };
    Ok(newest_at(tables, &encode_user_key(key), at)?.filter(|f| !f.record.tombstone))
}

/// Visits, in key order, every key of the range live at main revision `rev`.
pub(crate) fn visit_live<'a, T: Tables>(
    tables: &'a T,
    range: &KeyRange,
    rev: i64,
    visit: &mut dyn FnMut(Found<'a>) -> Result<bool>,
) -> Result<()> {
    let upper_bound: Vec<u8>;
    let upper = match &range.upper {
        Upper::Empty => return Ok(()),
        Upper::Point => {
            if let Some(found) = get_at(
                tables,
                &decode_user_key(&range.lower).unwrap_or_default(),
                rev,
            )? {
                visit(found)?;
            }
            return Ok(());
        }
        Upper::Before(end) => {
            upper_bound = end.clone();
            Bound::Excluded(upper_bound.as_slice())
        }
        Upper::Unbounded => Bound::Unbounded,
    };
    // Entries of one key are adjacent and ascending: remember the newest ≤ rev, emit it when
    // the next key starts. A key with a long history (many revisions not yet compacted) is
    // not walked to its end: past KEY_RUN_BEFORE_SEEK entries the scan stops, one reverse seek
    // finds the key's newest revision ≤ rev, and the scan resumes at the next key.
    let mut lower = range.lower.clone();
    loop {
        let mut pending: Option<Found<'a>> = None;
        let mut current: Option<&'a [u8]> = None;
        let mut run = 0usize;
        let mut stopped = false;
        let mut long_key: Option<&'a [u8]> = None;
        tables.scan(
            Table::Index,
            Bound::Included(&lower),
            upper,
            false,
            &mut |k, v| {
                let found = parse(tables, k, v)?;
                if current != Some(found.encoded_key) {
                    if let Some(prev) = pending.take() {
                        if !prev.record.tombstone && !visit(prev)? {
                            stopped = true;
                            return Ok(false);
                        }
                    }
                    current = Some(found.encoded_key);
                    run = 0;
                }
                run += 1;
                if run > KEY_RUN_BEFORE_SEEK {
                    long_key = Some(found.encoded_key);
                    return Ok(false);
                }
                if found.revision.main <= rev {
                    pending = Some(found);
                }
                Ok(true)
            },
        )?;
        if stopped {
            return Ok(());
        }
        let Some(encoded_key) = long_key else {
            if let Some(prev) = pending {
                if !prev.record.tombstone {
                    visit(prev)?;
                }
            }
            return Ok(());
        };
        let at = Revision {
            main: rev,
            sub: i64::MAX,
        };
        if let Some(newest) = newest_at(tables, encoded_key, at)? {
            if !newest.record.tombstone && !visit(newest)? {
                return Ok(());
            }
        }
        // The encoded key ends with its separator 0x00 0x01; every longer or greater user key
        // encodes at or above the same bytes ending 0x00 0x02 (see `keys`).
        debug_assert!(
            encoded_key.ends_with(&[0x00, 0x01]),
            "encoded key separator"
        );
        lower = encoded_key.to_vec();
        *lower
            .last_mut()
            .expect("an encoded key ends with its separator") = 0x02;
    }
}

/// Revisions of one key a range walks before it seeks past the rest of them: two descents
/// cost about as much as walking a leaf's worth of entries (30–50 per leaf).
const KEY_RUN_BEFORE_SEEK: usize = 64;

/// Checks a read revision against the store: 0 means `current`.
pub(crate) fn resolve_revision(requested: i64, current: i64, compacted: i64) -> Result<i64> {
    if requested > current {
        return Err(Error::FutureRevision);
    }
    let rev = if requested <= 0 { current } else { requested };
    if rev < compacted {
        return Err(Error::Compacted);
    }
    Ok(rev)
}

/// Leaves of the key index a range may cover and still count as small. A leaf holds 30–50
/// revisions of etcd-sized keys (records carry no value), and a range with values looks each
/// returned key up in the change log (~2 µs each, measured on a 500k-key store): 4 leaves is
/// at most ~200 revisions, well under a millisecond.
const SMALL_RANGE_LEAVES: usize = 4;

/// Whether a range over `key`..`range_end` (etcd's conventions) is cheap to serve, judged from
/// where its bounds part in the key index (two descents, no scan). etcd computes `count` over
/// the whole range whatever the limit, so a large range costs a scan of all of it: a server
/// serves those off its request loop.
pub(crate) fn range_is_small<T: Tables>(tables: &T, key: &[u8], range_end: &[u8]) -> Result<bool> {
    let range = KeyRange::new(key, range_end);
    let upper = match &range.upper {
        Upper::Point | Upper::Empty => return Ok(true),
        Upper::Before(end) => Some(end.as_slice()),
        Upper::Unbounded => None,
    };
    let root = tables.root(Table::Index);
    let (children, levels_below) =
        crate::btree::read::span(tables.view(), root, &range.lower, upper)?;
    Ok(levels_below == 0 && children <= SMALL_RANGE_LEAVES)
}

/// etcd's Range: the mvcc range plus the server's filters, sorting, limit and `more`.
pub(crate) fn range<T: Tables>(
    tables: &T,
    request: &RangeRequest,
    current: i64,
    compacted: i64,
    budget: &mut ResponseBudget,
) -> Result<RangeResponse> {
    let rev = resolve_revision(request.revision, current, compacted)?;
    let filtered = request.min_mod_revision != 0
        || request.max_mod_revision != 0
        || request.min_create_revision != 0
        || request.max_create_revision != 0;
    // Like etcd: sorting or filtering needs every key; otherwise one past the limit tells `more`.
    let fetch = if request.sort_order != SortOrder::None || filtered || request.limit <= 0 {
        usize::MAX
    } else {
        request.limit as usize + 1
    };
    let range = KeyRange::new(&request.key, &request.range_end);
    let mut count = 0i64;
    // Candidates carry their full revision: the sub revision finds the value in the log.
    let mut rows: Vec<(KeyValue, Revision)> = Vec::new();
    visit_live(tables, &range, rev, &mut |found| {
        count += 1;
        if !request.count_only && rows.len() < fetch {
            let kv = found.kv_without_value();
            budget.charge(kv.key.len() + KEY_VALUE_OVERHEAD_BYTES)?;
            rows.push((kv, found.revision));
        }
        Ok(true)
    })?;
    let keep = |kv: &KeyValue| {
        (request.max_mod_revision == 0 || kv.mod_revision <= request.max_mod_revision)
            && (request.min_mod_revision == 0 || kv.mod_revision >= request.min_mod_revision)
            && (request.max_create_revision == 0
                || kv.create_revision <= request.max_create_revision)
            && (request.min_create_revision == 0
                || kv.create_revision >= request.min_create_revision)
    };
    rows.retain(|(kv, _)| keep(kv));
    let mut order = request.sort_order;
    if request.sort_target != SortTarget::Key && order == SortOrder::None {
        order = SortOrder::Ascend;
    }
    let mut values_read = false;
    if order != SortOrder::None {
        let target = request.sort_target;
        if target == SortTarget::Value {
            // A sort by value needs the value of every candidate, even for a keys-only answer.
            read_values(tables, &mut rows, budget)?;
            values_read = true;
        }
        // Stable sort: ties keep key order (etcd's unstable sort leaves tie order unspecified).
        let cmp = |a: &(KeyValue, Revision), b: &(KeyValue, Revision)| {
            let (a, b) = (&a.0, &b.0);
            match target {
                SortTarget::Key => a.key.cmp(&b.key),
                SortTarget::Version => a.version.cmp(&b.version),
                SortTarget::Create => a.create_revision.cmp(&b.create_revision),
                SortTarget::Mod => a.mod_revision.cmp(&b.mod_revision),
                SortTarget::Value => a.value.cmp(&b.value),
            }
        };
        match order {
            SortOrder::Ascend => rows.sort_by(cmp),
            SortOrder::Descend => rows.sort_by(|a, b| cmp(b, a)),
            SortOrder::None => {}
        }
    }
    let mut more = false;
    if request.limit > 0 && rows.len() > request.limit as usize {
        rows.truncate(request.limit as usize);
        more = true;
    }
    if request.keys_only {
        for (kv, _) in &mut rows {
            kv.value = Vec::new();
        }
    } else if !values_read {
        // Only the keys returned: one log lookup each.
        read_values(tables, &mut rows, budget)?;
    }
    Ok(RangeResponse {
        header_revision: current,
        kvs: rows.into_iter().map(|(kv, _)| kv).collect(),
        more,
        count,
    })
}

/// Fills in each row's value from the change log.
fn read_values<T: Tables>(
    tables: &T,
    rows: &mut [(KeyValue, Revision)],
    budget: &mut ResponseBudget,
) -> Result<()> {
    for (kv, revision) in rows {
        let value = log::value(tables, &kv.key, *revision)?;
        budget.charge(value.len())?;
        kv.value = value.to_vec();
    }
    Ok(())
}

/// etcd's compare over a key or range at main revision `rev`.
pub(crate) fn compare<T: Tables>(tables: &T, compare: &Compare, rev: i64) -> Result<bool> {
    let range = KeyRange::new(&compare.key, &compare.range_end);
    let mut any = false;
    let mut all = true;
    let needs_value = matches!(compare.target, CompareTarget::Value(_));
    visit_live(tables, &range, rev, &mut |found| {
        any = true;
        let kv = if needs_value {
            found.to_kv(tables)?
        } else {
            found.kv_without_value()
        };
        if !compare_one(compare, &kv) {
            all = false;
            return Ok(false);
        }
        Ok(true)
    })?;
    if !any {
        // A missing key compares as a zero KeyValue, except VALUE, which always fails.
        if needs_value {
            return Ok(false);
        }
        return Ok(compare_one(compare, &KeyValue::default()));
    }
    Ok(all)
}

fn compare_one(compare: &Compare, kv: &KeyValue) -> bool {
    let ordering = match &compare.target {
        CompareTarget::Value(v) => kv.value.as_slice().cmp(v.as_slice()),
        CompareTarget::Create(r) => kv.create_revision.cmp(r),
        CompareTarget::Mod(r) => kv.mod_revision.cmp(r),
        CompareTarget::Version(v) => kv.version.cmp(v),
        CompareTarget::Lease(l) => kv.lease.cmp(l),
    };
    match compare.result {
        CompareResult::Equal => ordering.is_eq(),
        CompareResult::NotEqual => ordering.is_ne(),
        CompareResult::Greater => ordering.is_gt(),
        CompareResult::Less => ordering.is_lt(),
    }
}
