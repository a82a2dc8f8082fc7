//! Model-based test: random sequences of put / delete / txn / range / compact / commit /
//! unsynced commit / sync / abort / reopen / pinned snapshots run against the engine and against
//! a plain in-memory model of etcd's MVCC semantics (a BTreeMap of per-key histories); every
//! response, every event and every error must be identical. A reopen (without sync) must
//! return exactly the last durable commit, and the page check after every sync must find no
//! reusable page the durable meta still reaches.
//!
//! Default: 48 cases of up to 80 operations. Soak: `BASALT_MODEL_CASES=2000 cargo test --release
//! -p basalt-engine --test model`.

use std::collections::BTreeMap;

use basalt_engine::*;
use proptest::prelude::*;

const KEYS: &[&[u8]] = &[
    b"a", b"ab", b"abc", b"b", b"b\0", b"b\0x", b"ba", b"c", b"d\xff", b"e",
];

// ---------------------------------------------------------------- the model

#[derive(Clone, Default, Debug)]
struct Model {
    /// key → [(main revision, Some(kv) | None for a tombstone)]
    history: BTreeMap<Vec<u8>, Vec<(i64, Option<KeyValue>)>>,
    current: i64,
    compacted: i64,
    applied_index: u64,
}

fn in_range(key: &[u8], start: &[u8], end: &[u8]) -> bool {
    if end.is_empty() {
        key == start
    } else if end == [0] {
        key >= start
    } else {
        key >= start && key < end
    }
}

impl Model {
    fn live_at(&self, key: &[u8], rev: i64) -> Option<KeyValue> {
        self.history
            .get(key)?
            .iter()
            .rev()
            .find(|(main, _)| *main <= rev)
            .and_then(|(_, kv)| kv.clone())
    }

    fn live_range(&self, start: &[u8], end: &[u8], rev: i64) -> Vec<KeyValue> {
        self.history
            .keys()
            .filter(|k| in_range(k, start, end))
            .filter_map(|k| self.live_at(k, rev))
            .collect()
    }

    fn range(&self, r: &RangeRequest, current: i64) -> Result<RangeResponse> {
        if r.revision > current {
            return Err(Error::FutureRevision);
        }
        let rev = if r.revision <= 0 { current } else { r.revision };
        if rev < self.compacted {
            return Err(Error::Compacted);
        }
        let all = self.live_range(&r.key, &r.range_end, rev);
        let count = all.len() as i64;
        let mut kvs = if r.count_only { vec![] } else { all };
        // etcd fetches limit + 1 keys (in key order) unless the request sorts (by its original
        // sort_order) or filters; a target-only sort then sorts just those.
        let filtered = r.min_mod_revision != 0
            || r.max_mod_revision != 0
            || r.min_create_revision != 0
            || r.max_create_revision != 0;
        if r.sort_order == SortOrder::None && !filtered && r.limit > 0 {
            kvs.truncate(r.limit as usize + 1);
        }
        kvs.retain(|kv| {
            (r.max_mod_revision == 0 || kv.mod_revision <= r.max_mod_revision)
                && (r.min_mod_revision == 0 || kv.mod_revision >= r.min_mod_revision)
                && (r.max_create_revision == 0 || kv.create_revision <= r.max_create_revision)
                && (r.min_create_revision == 0 || kv.create_revision >= r.min_create_revision)
        });
        let order = if r.sort_target != SortTarget::Key && r.sort_order == SortOrder::None {
            SortOrder::Ascend
        } else {
            r.sort_order
        };
        let field = |kv: &KeyValue| -> (i64, Vec<u8>) {
            match r.sort_target {
                SortTarget::Key => (0, kv.key.clone()),
                SortTarget::Version => (kv.version, vec![]),
                SortTarget::Create => (kv.create_revision, vec![]),
                SortTarget::Mod => (kv.mod_revision, vec![]),
                SortTarget::Value => (0, kv.value.clone()),
            }
        };
        match order {
            SortOrder::Ascend => kvs.sort_by_key(field),
            SortOrder::Descend => kvs.sort_by_key(|kv| std::cmp::Reverse(field(kv))),
            SortOrder::None => {}
        }
        let mut more = false;
        if r.limit > 0 && kvs.len() > r.limit as usize {
            kvs.truncate(r.limit as usize);
            more = true;
        }
        if r.keys_only {
            kvs.iter_mut().for_each(|kv| kv.value.clear());
        }
        Ok(RangeResponse {
            header_revision: current,
            kvs,
            more,
            count,
        })
    }

    fn record(&mut self, key: &[u8], main: i64, kv: Option<KeyValue>) {
        self.history
            .entry(key.to_vec())
            .or_default()
            .push((main, kv));
    }
}

/// One MVCC write transaction on the model (mirrors engine::Writer).
struct ModelTxn<'m> {
    m: &'m mut Model,
    changed: bool,
    events: Vec<Event>,
}

impl ModelTxn<'_> {
    fn read_rev(&self) -> i64 {
        self.m.current + self.changed as i64
    }

    fn put(&mut self, p: &PutRequest) -> Result<PutResponse> {
        let prev = self.m.live_at(&p.key, self.read_rev());
        if (p.ignore_value || p.ignore_lease) && prev.is_none() {
            return Err(Error::KeyNotFound);
        }
        let main = self.m.current + 1;
        let kv = KeyValue {
            key: p.key.clone(),
            create_revision: prev.as_ref().map_or(main, |k| k.create_revision),
            mod_revision: main,
            version: prev.as_ref().map_or(1, |k| k.version + 1),
            value: if p.ignore_value {
                prev.as_ref().unwrap().value.clone()
            } else {
                p.value.clone()
            },
            lease: if p.ignore_lease {
                prev.as_ref().unwrap().lease
            } else {
                p.lease
            },
        };
        self.m.record(&p.key, main, Some(kv.clone()));
        self.changed = true;
        self.events.push(Event {
            kind: EventKind::Put,
            kv,
            prev_kv: prev.clone(),
            prev_kv_omitted: false,
        });
        Ok(PutResponse {
            header_revision: main,
            prev_kv: if p.prev_kv { prev } else { None },
        })
    }

    fn delete(&mut self, d: &DeleteRangeRequest) -> DeleteRangeResponse {
        let doomed = self.m.live_range(&d.key, &d.range_end, self.read_rev());
        let main = self.m.current + 1;
        for prev in &doomed {
            self.m.record(&prev.key, main, None);
            self.changed = true;
            self.events.push(Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: prev.key.clone(),
                    mod_revision: main,
                    ..Default::default()
                },
                prev_kv: Some(prev.clone()),
                prev_kv_omitted: false,
            });
        }
        DeleteRangeResponse {
            header_revision: self.read_rev(),
            deleted: doomed.len() as i64,
            prev_kvs: if d.prev_kv { doomed } else { vec![] },
        }
    }

    fn compare(&self, c: &Compare) -> bool {
        let kvs = self.m.live_range(&c.key, &c.range_end, self.m.current);
        let check = |kv: &KeyValue| {
            let ord = match &c.target {
                CompareTarget::Value(v) => kv.value.cmp(v),
                CompareTarget::Create(r) => kv.create_revision.cmp(r),
                CompareTarget::Mod(r) => kv.mod_revision.cmp(r),
                CompareTarget::Version(v) => kv.version.cmp(v),
                CompareTarget::Lease(l) => kv.lease.cmp(l),
            };
            match c.result {
                CompareResult::Equal => ord.is_eq(),
                CompareResult::NotEqual => ord.is_ne(),
                CompareResult::Greater => ord.is_gt(),
                CompareResult::Less => ord.is_lt(),
            }
        };
        if kvs.is_empty() {
            return !matches!(c.target, CompareTarget::Value(_)) && check(&KeyValue::default());
        }
        kvs.iter().all(check)
    }

    /// Pre-checks the chosen path: writes nothing (compares use the pre-txn state).
    fn plan(&self, t: &TxnRequest, path: &mut Vec<bool>) -> Result<()> {
        let ok = t.compare.iter().all(|c| self.compare(c));
        path.push(ok);
        for op in if ok { &t.success } else { &t.failure } {
            match op {
                RequestOp::Txn(n) => self.plan(n, path)?,
                RequestOp::Put(p)
                    if (p.ignore_value || p.ignore_lease)
                        && self.m.live_at(&p.key, self.m.current).is_none() =>
                {
                    return Err(Error::KeyNotFound)
                }
                RequestOp::Range(r) if r.revision > self.m.current => {
                    return Err(Error::FutureRevision)
                }
                RequestOp::Range(r) if r.revision > 0 && r.revision < self.m.compacted => {
                    return Err(Error::Compacted)
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn run(&mut self, t: &TxnRequest, path: &[bool], at: &mut usize) -> TxnResponse {
        let ok = path[*at];
        *at += 1;
        let mut responses = vec![];
        for op in if ok { &t.success } else { &t.failure } {
            responses.push(match op {
                RequestOp::Range(r) => ResponseOp::Range(self.m.range(r, self.read_rev()).unwrap()),
                RequestOp::Put(p) => ResponseOp::Put(self.put(p).unwrap()),
                RequestOp::DeleteRange(d) => ResponseOp::DeleteRange(self.delete(d)),
                RequestOp::Txn(n) => ResponseOp::Txn(self.run(n, path, at)),
            });
        }
        TxnResponse {
            header_revision: 0,
            succeeded: ok,
            responses,
        }
    }
}

fn stamp(t: &mut TxnResponse, rev: i64) {
    t.header_revision = rev;
    for r in &mut t.responses {
        match r {
            ResponseOp::Put(p) => p.header_revision = rev,
            ResponseOp::DeleteRange(d) => d.header_revision = rev,
            ResponseOp::Txn(n) => stamp(n, rev),
            ResponseOp::Range(_) => {}
        }
    }
}

/// Whether a txn branch writes a key twice, by etcd's `checkIntervals` rule: this level's
/// deletes are known before nested puts are checked; nested deletes join only afterwards; the
/// two branches of a nested txn may put the same key.
fn has_duplicate(ops: &[RequestOp]) -> bool {
    type Dels = Vec<(Vec<u8>, Vec<u8>)>;
    fn check(ops: &[RequestOp]) -> Option<(Vec<Vec<u8>>, Dels)> {
        let mut dels: Dels = ops
            .iter()
            .filter_map(|op| match op {
                RequestOp::DeleteRange(d) => Some((d.key.clone(), d.range_end.clone())),
                _ => None,
            })
            .collect();
        let hit = |dels: &Dels, k: &[u8]| dels.iter().any(|(s, e)| in_range(k, s, e));
        let mut puts: Vec<Vec<u8>> = vec![];
        for op in ops {
            let RequestOp::Txn(n) = op else { continue };
            let (then_puts, then_dels) = check(&n.success)?;
            let (else_puts, else_dels) = check(&n.failure)?;
            for k in &then_puts {
                if puts.contains(k) || hit(&dels, k) {
                    return None;
                }
                puts.push(k.clone());
            }
            for k in else_puts {
                if (puts.contains(&k) && !then_puts.contains(&k)) || hit(&dels, &k) {
                    return None;
                }
                puts.push(k);
            }
            dels.extend(then_dels);
            dels.extend(else_dels);
        }
        for op in ops {
            let RequestOp::Put(p) = op else { continue };
            if puts.contains(&p.key) || hit(&dels, &p.key) {
                return None;
            }
            puts.push(p.key.clone());
        }
        Some((puts, dels))
    }
    check(ops).is_none()
}

// ---------------------------------------------------------------- operations

#[derive(Clone, Debug)]
enum Op {
    Put(PutRequest),
    Delete(DeleteRangeRequest),
    Txn(TxnRequest),
    Range(RangeRequest, i64),
    /// The reads that need no value (count, keys only, a limited page with its count) and the
    /// full range, at current - n.
    Counts(i64),
    Compact(i64, usize),
    Events(i64),
    Commit(u64),
    CommitUnsynced(u64),
    /// `commit_deferred`: left for the next op (a batch, a read, a sync, a reopen) to publish.
    CommitDeferred(u64),
    Sync,
    Abort,
    Reopen,
    Pin,
    CheckPinned,
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    proptest::sample::select(KEYS).prop_map(|k| k.to_vec())
}

fn range_end() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => Just(vec![]),
        1 => Just(vec![0]),
        2 => key(),
        1 => Just(b"b\x01".to_vec()),
    ]
}

fn put_req() -> impl Strategy<Value = PutRequest> {
    (
        key(),
        proptest::collection::vec(any::<u8>(), 0..4),
        0i64..3,
        any::<bool>(),
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.1),
    )
        .prop_map(|(key, value, lease, prev_kv, ignore_value, ignore_lease)| {
            let value = if value.len() == 3 {
                vec![value[0]; 5000]
            } else {
                value
            }; // some overflow values
            PutRequest {
                key,
                value,
                lease,
                prev_kv,
                ignore_value,
                ignore_lease,
            }
        })
}

fn delete_req() -> impl Strategy<Value = DeleteRangeRequest> {
    (key(), range_end(), any::<bool>()).prop_map(|(key, range_end, prev_kv)| DeleteRangeRequest {
        key,
        range_end,
        prev_kv,
    })
}

fn range_req() -> impl Strategy<Value = (RangeRequest, i64)> {
    let sort = (
        prop_oneof![
            Just(SortOrder::None),
            Just(SortOrder::Ascend),
            Just(SortOrder::Descend)
        ],
        prop_oneof![
            Just(SortTarget::Key),
            Just(SortTarget::Version),
            Just(SortTarget::Create),
            Just(SortTarget::Mod),
            Just(SortTarget::Value)
        ],
    );
    let filters =
        prop_oneof![4 => Just((0i64, 0i64, 0i64, 0i64)), 1 => (0i64..6, 0i64..6, 0i64..6, 0i64..6)];
    (
        key(),
        range_end(),
        0i64..4,
        -2i64..3,
        sort,
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
        filters,
    )
        .prop_map(
            |(
                key,
                range_end,
                limit,
                rev_back,
                (sort_order, sort_target),
                keys_only,
                count_only,
                (a, b, c, d),
            )| {
                // rev_back: -2 future, -1 current (0), n ≥ 0: current - n (resolved at run time)
                let r = RangeRequest {
                    key,
                    range_end,
                    limit,
                    revision: 0,
                    sort_order,
                    sort_target,
                    keys_only,
                    count_only,
                    min_mod_revision: a,
                    max_mod_revision: if b == 0 { 0 } else { a + b },
                    min_create_revision: c,
                    max_create_revision: if d == 0 { 0 } else { c + d },
                };
                (r, rev_back)
            },
        )
}

fn compare() -> impl Strategy<Value = Compare> {
    let target = prop_oneof![
        (0i64..4).prop_map(CompareTarget::Version),
        (0i64..8).prop_map(CompareTarget::Create),
        (0i64..8).prop_map(CompareTarget::Mod),
        proptest::collection::vec(any::<u8>(), 0..2).prop_map(CompareTarget::Value),
        (0i64..3).prop_map(CompareTarget::Lease),
    ];
    let result = prop_oneof![
        Just(CompareResult::Equal),
        Just(CompareResult::Greater),
        Just(CompareResult::Less),
        Just(CompareResult::NotEqual)
    ];
    (
        result,
        target,
        key(),
        prop_oneof![3 => Just(vec![]), 1 => range_end()],
    )
        .prop_map(|(result, target, key, range_end)| Compare {
            result,
            target,
            key,
            range_end,
        })
}

fn flat_op() -> impl Strategy<Value = RequestOp> {
    prop_oneof![
        put_req().prop_map(RequestOp::Put),
        delete_req().prop_map(RequestOp::DeleteRange),
        range_req().prop_map(|(r, _)| RequestOp::Range(r)),
    ]
}

fn txn_req() -> impl Strategy<Value = TxnRequest> {
    let nested = (
        proptest::collection::vec(compare(), 0..2),
        proptest::collection::vec(flat_op(), 0..2),
        proptest::collection::vec(flat_op(), 0..2),
    )
        .prop_map(|(compare, success, failure)| {
            RequestOp::Txn(TxnRequest {
                compare,
                success,
                failure,
            })
        });
    let op = prop_oneof![4 => flat_op(), 1 => nested];
    (
        proptest::collection::vec(compare(), 0..3),
        proptest::collection::vec(op.clone(), 0..4),
        proptest::collection::vec(op, 0..3),
    )
        .prop_map(|(compare, success, failure)| TxnRequest {
            compare,
            success,
            failure,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        10 => put_req().prop_map(Op::Put),
        3 => delete_req().prop_map(Op::Delete),
        4 => txn_req().prop_map(Op::Txn),
        6 => range_req().prop_map(|(r, b)| Op::Range(r, b)),
        2 => (0i64..4).prop_map(Op::Counts),
        1 => (0i64..4, 1usize..4).prop_map(|(back, budget)| Op::Compact(back, budget)),
        1 => (0i64..6).prop_map(Op::Events),
        2 => (0u64..3).prop_map(Op::Commit),
        3 => (0u64..3).prop_map(Op::CommitUnsynced),
        2 => (0u64..3).prop_map(Op::CommitDeferred),
        1 => Just(Op::Sync),
        1 => Just(Op::Abort),
        1 => Just(Op::Reopen),
        1 => Just(Op::Pin),
        1 => Just(Op::CheckPinned),
    ]
}

// ---------------------------------------------------------------- the harness

fn same<T: PartialEq + std::fmt::Debug>(
    engine: Result<T>,
    model: Result<T>,
) -> std::result::Result<(), TestCaseError> {
    match (engine, model) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
        (Err(a), Err(b)) => prop_assert_eq!(a.to_string(), b.to_string()),
        (a, b) => prop_assert!(false, "engine {:?} vs model {:?}", a, b),
    }
    Ok(())
}

fn everything() -> RangeRequest {
    RangeRequest {
        key: vec![0],
        range_end: vec![0],
        ..Default::default()
    }
}

/// Ranges over every key at `revision`: a count, keys only, a one-key page (which also counts
/// the rest), a keys-only page sorted by create revision, and the full range with values.
fn count_and_key_reads(revision: i64) -> Vec<RangeRequest> {
    let all = RangeRequest {
        revision,
        ..everything()
    };
    vec![
        RangeRequest {
            count_only: true,
            ..all.clone()
        },
        RangeRequest {
            keys_only: true,
            ..all.clone()
        },
        RangeRequest {
            limit: 1,
            ..all.clone()
        },
        RangeRequest {
            keys_only: true,
            limit: 2,
            sort_order: SortOrder::Descend,
            sort_target: SortTarget::Create,
            ..all.clone()
        },
        all,
    ]
}

fn run(ops: Vec<Op>) -> std::result::Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    {
        // The leases the generated puts name exist (the model does not track leases; a put
        // naming an unknown lease is refused, see tests/lease.rs).
        let engine = Engine::open(&path).unwrap();
        let mut b = engine.write().unwrap();
        for id in 1..3 {
            b.grant_lease(id, 60).unwrap();
        }
        b.commit().unwrap();
    }
    // A fresh store is at revision 1, as etcd's.
    let mut model = Model {
        current: 1,
        ..Model::default()
    };
    let mut committed = model.clone();
    // What a reopen returns: the last durable commit.
    let mut synced = model.clone();
    let mut ops = ops.into_iter();
    let mut finished = false;
    while !finished {
        // One engine instance per iteration: `Reopen` ends it.
        let engine = Engine::open(&path).unwrap();
        let view = engine.read().unwrap();
        same(
            view.range(&everything()),
            committed.range(&everything(), committed.current),
        )?;
        prop_assert_eq!(view.applied_index(), committed.applied_index);
        drop(view);
        let mut pinned: Option<(ReadView, Model)> = None;
        'batches: loop {
            let mut b = engine.write().unwrap();
            loop {
                let Some(op) = ops.next() else {
                    finished = true;
                    break 'batches;
                };
                match op {
                    Op::Commit(index) | Op::CommitUnsynced(index) => {
                        model.applied_index += index;
                        b.set_applied_index(model.applied_index);
                        if matches!(op, Op::Commit(_)) {
                            b.commit().unwrap();
                            synced = model.clone();
                        } else {
                            b.commit_unsynced().unwrap();
                        }
                        committed = model.clone();
                        // Page accounting, and nothing reusable that a crash would return to.
                        engine.check().unwrap();
                        let view = engine.read().unwrap();
                        prop_assert_eq!(view.applied_index(), model.applied_index);
                        prop_assert_eq!(view.current_revision(), model.current);
                        continue 'batches;
                    }
                    Op::CommitDeferred(index) => {
                        model.applied_index += index;
                        b.set_applied_index(model.applied_index);
                        b.commit_deferred().unwrap();
                        // No check here: the op after it (the next batch, a read, a sync, a
                        // reopen) is what publishes it, or loses it like an unsynced commit.
                        committed = model.clone();
                        continue 'batches;
                    }
                    Op::Abort => {
                        model = committed.clone();
                        continue 'batches;
                    }
                    Op::Sync => {
                        // The open batch is abandoned: sync waits for the writer.
                        drop(b);
                        model = committed.clone();
                        prop_assert_eq!(engine.sync().unwrap(), committed.applied_index);
                        synced = committed.clone();
                        engine.check().unwrap();
                        continue 'batches;
                    }
                    Op::Reopen => {
                        // A reopen without sync is a crash: the last durable commit returns.
                        committed = synced.clone();
                        model = committed.clone();
                        break 'batches;
                    }
                    op => step(&engine, &mut b, op, &mut model, &committed, &mut pinned)?,
                }
            }
        }
        // Dropping the engine (and any pinned view) releases the file lock.
    }
    // The last engine was dropped without a sync: the last durable commit returns.
    model = synced.clone();
    let engine = Engine::open(&path).unwrap();
    let view = engine.read().unwrap();
    same(
        view.range(&everything()),
        model.range(&everything(), model.current),
    )?;
    Ok(())
}

fn step(
    engine: &Engine,
    b: &mut WriteBatch,
    op: Op,
    model: &mut Model,
    committed: &Model,
    pinned: &mut Option<(ReadView, Model)>,
) -> std::result::Result<(), TestCaseError> {
    match op {
        Op::Put(p) => {
            let mut t = ModelTxn {
                m: model,
                changed: false,
                events: vec![],
            };
            let expected = t.put(&p).map(|r| (r, std::mem::take(&mut t.events)));
            if t.changed {
                model.current += 1;
            }
            same(b.put(&p), expected)?;
        }
        Op::Delete(d) => {
            let mut t = ModelTxn {
                m: model,
                changed: false,
                events: vec![],
            };
            let mut r = t.delete(&d);
            let events = std::mem::take(&mut t.events);
            if t.changed {
                model.current += 1;
            }
            r.header_revision = model.current;
            same(b.delete_range(&d), Ok((r, events)))?;
        }
        Op::Txn(req) => {
            if is_read_only_txn(&req) {
                // A read-only txn evaluated on the committed snapshot, as a reader on another
                // core does, answers what the committed model answers.
                let mut snapshot = committed.clone();
                let mut t = ModelTxn {
                    m: &mut snapshot,
                    changed: false,
                    events: vec![],
                };
                let mut path = vec![];
                let expected = t.plan(&req, &mut path).map(|()| {
                    let mut r = t.run(&req, &path, &mut 0);
                    stamp(&mut r, committed.current);
                    r
                });
                same(engine.read().unwrap().read_only_txn(&req), expected)?;
            } else {
                let refused = engine.read().unwrap().read_only_txn(&req);
                prop_assert!(matches!(refused, Err(Error::NotReadOnly)));
            }
            let expected = if has_duplicate(&req.success) || has_duplicate(&req.failure) {
                Err(Error::DuplicateKey)
            } else {
                let mut t = ModelTxn {
                    m: model,
                    changed: false,
                    events: vec![],
                };
                let mut path = vec![];
                match t.plan(&req, &mut path) {
                    Err(e) => Err(e),
                    Ok(()) => {
                        let mut r = t.run(&req, &path, &mut 0);
                        let events = std::mem::take(&mut t.events);
                        if t.changed {
                            model.current += 1;
                        }
                        stamp(&mut r, model.current);
                        Ok((r, events))
                    }
                }
            };
            same(b.txn(&req), expected)?;
        }
        Op::Range(mut r, back) => {
            r.revision = match back {
                -2 => model.current + 1,
                -1 => 0,
                n => (model.current - n).max(1),
            };
            same(b.range(&r), model.range(&r, model.current))?;
        }
        Op::Counts(back) => {
            let revision = (model.current - back).max(1);
            for r in count_and_key_reads(revision) {
                same(b.range(&r), model.range(&r, model.current))?;
            }
        }
        Op::Compact(back, budget) => {
            let rev = (model.current - back).max(1);
            let expected = if rev <= model.compacted {
                Err(Error::Compacted)
            } else if rev > model.current {
                Err(Error::FutureRevision)
            } else {
                Ok(())
            };
            // Finish any earlier compaction, then schedule this one with a tiny first step.
            while !b.compact_step(usize::MAX).unwrap() {}
            let hash_before = b.range(&everything());
            let got = b.compact(rev).map(|_| ());
            if got.is_ok() {
                model.compacted = rev;
                // Physical compaction in small steps must not change what any read returns.
                while !b.compact_step(budget).unwrap() {}
                same(b.range(&everything()), hash_before)?;
                // Counts and keys-only reads after the older revisions (and their values) are
                // gone, at the compaction revision too: a key whose older versions were removed
                // still reads back its kept value.
                for revision in [0, rev] {
                    for r in count_and_key_reads(revision) {
                        same(b.range(&r), model.range(&r, model.current))?;
                    }
                }
            }
            same(got, expected)?;
        }
        Op::Events(back) => {
            // Replay comes from committed views; compare against the committed model.
            let view = engine.read().unwrap();
            let from = (committed.current - back).max(committed.compacted + 1);
            if from <= committed.current {
                let got = view.events_since(from, usize::MAX, usize::MAX).unwrap();
                let mut revs: Vec<(i64, Vec<u8>)> = vec![];
                for (k, h) in &committed.history {
                    for (main, _) in h {
                        if *main >= from {
                            revs.push((*main, k.clone()));
                        }
                    }
                }
                prop_assert_eq!(got.len(), revs.len());
                // Each key's events in order, paired with the model's history entries: a key
                // can change twice in one revision (etcd accepts a put in one nested txn and a
                // delete range over it in a later one), and the second change's prev_kv is the
                // first, inside the same revision.
                let mut position: BTreeMap<Vec<u8>, usize> = BTreeMap::new();
                for e in &got {
                    let entries: Vec<&(i64, Option<KeyValue>)> = committed.history[&e.kv.key]
                        .iter()
                        .filter(|(m, _)| *m >= from)
                        .collect();
                    let at = position.entry(e.kv.key.clone()).or_insert(0);
                    let (main, kv) = entries[*at];
                    let earlier_same_revision = (*at > 0 && entries[*at - 1].0 == *main)
                        .then(|| entries[*at - 1].1.clone());
                    *at += 1;
                    prop_assert_eq!(*main, e.kv.mod_revision);
                    if let Some(previous) = earlier_same_revision {
                        match kv {
                            Some(v) => prop_assert_eq!(&e.kv, v),
                            None => prop_assert_eq!(e.kind, EventKind::Delete),
                        }
                        prop_assert_eq!(&e.prev_kv, &previous);
                        continue;
                    }
                    match kv {
                        Some(v) => prop_assert_eq!(&e.kv, v),
                        None => prop_assert_eq!(e.kind, EventKind::Delete),
                    }
                    prop_assert_eq!(
                        &e.prev_kv,
                        &committed.live_at(&e.kv.key, e.kv.mod_revision - 1)
                    );
                }
            }
        }
        Op::Pin => *pinned = Some((engine.read().unwrap(), committed.clone())),
        Op::CheckPinned => {
            if let Some((view, m)) = pinned {
                same(view.range(&everything()), m.range(&everything(), m.current))?;
                same(view.hash_kv(0).map(|h| h.header_revision), Ok(m.current))?;
            }
        }
        Op::Commit(_)
        | Op::CommitUnsynced(_)
        | Op::CommitDeferred(_)
        | Op::Sync
        | Op::Abort
        | Op::Reopen => {
            unreachable!("handled by the caller")
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("BASALT_MODEL_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn engine_matches_model(ops in proptest::collection::vec(op(), 1..80)) {
        run(ops)?;
    }
}
