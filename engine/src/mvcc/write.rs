//! Put, DeleteRange and Txn: one MVCC write transaction = one main revision, possibly many
//! changes (sub revisions); every change is returned as an event.

use super::keys::{checked_user_key, encode_user_key, index_key, Revision};
use super::lease;
use super::log;
use super::read::{compare, entry, get_at, range, resolve_revision, visit_live, KeyRange};
use super::record::Record;
use super::response_budget::ResponseBudget;
use super::txn_check::check_duplicates;
use super::types::{
    DeleteRangeRequest, DeleteRangeResponse, Event, EventKind, KeyValue, PutRequest, PutResponse,
    RangeRequest, RangeResponse, RequestOp, ResponseOp, TxnRequest, TxnResponse,
};
use crate::btree::VALUE_BYTES_MAX;
use crate::db::{Table, WriteTxn};
use crate::error::{Error, Result};

/// One MVCC write transaction in progress inside a B+tree write transaction.
pub(crate) struct Writer<'t, 'a> {
    pub(crate) txn: &'t mut WriteTxn<'a>,
    /// Current revision before this MVCC transaction.
    pub(crate) current: i64,
    pub(crate) compacted: i64,
    /// Next sub revision; > 0 once something changed.
    sub: i64,
    pub(crate) events: Vec<Event>,
    /// Whether a put's event carries the previous version's value even when its request does
    /// not ask for it (see `WriteBatch::set_events_prev_kv`).
    events_prev_kv: bool,
}

impl<'t, 'a> Writer<'t, 'a> {
    pub(crate) fn new(
        txn: &'t mut WriteTxn<'a>,
        current: i64,
        compacted: i64,
        events_prev_kv: bool,
    ) -> Self {
        Writer {
            txn,
            current,
            compacted,
            sub: 0,
            events: Vec::new(),
            events_prev_kv,
        }
    }

    fn main(&self) -> i64 {
        self.current + 1
    }

    /// The revision reads see: this transaction's own changes once it has made any.
    fn read_revision(&self) -> i64 {
        if self.sub > 0 {
            self.main()
        } else {
            self.current
        }
    }

    /// The revision after this transaction (what response headers carry).
    pub(crate) fn end_revision(&self) -> i64 {
        self.read_revision()
    }

    /// A Range inside a write txn, charged to the txn's `budget`. Once the budget is spent the
    /// range answers nothing and the txn goes on: its writes are decided by the request and the
    /// state alone (every member applies them alike), only its answer is lost, and the caller
    /// refuses that answer with [`ResponseBudget::check`] as etcd's send would fail.
    fn range_within(
        &self,
        request: &RangeRequest,
        budget: &mut ResponseBudget,
    ) -> Result<RangeResponse> {
        match range(
            &*self.txn,
            request,
            self.read_revision(),
            self.compacted,
            budget,
        ) {
            Err(Error::ResponseTooLarge { .. }) => {
                debug_assert!(budget.is_exceeded());
                Ok(RangeResponse::default())
            }
            other => other,
        }
    }

    pub(crate) fn put(&mut self, request: &PutRequest) -> Result<PutResponse> {
        let encoded = checked_user_key(&request.key)?;
        if request.value.len() > VALUE_BYTES_MAX {
            return Err(Error::ValueTooLarge {
                len: request.value.len(),
                limit: VALUE_BYTES_MAX,
            });
        }
        if !request.ignore_lease {
            // Before any change, so the error leaves the batch clean (etcd checks its lessor).
            lease::check_exists(&*self.txn, request.lease)?;
        }
        let revision = Revision {
            main: self.main(),
            sub: self.sub,
        };
        let key = index_key(&encoded, revision);
        // The new index key sorts right after the key's newest existing revision (nothing newer
        // than this revision exists), so the insert's own descent finds the previous version:
        // one tree descent per put instead of a lookup plus an insert. The new record needs
        // only the previous record, never its value.
        let mut prev: Option<(Revision, Record)> = None;
        let mut record: Option<Record> = None;
        let view_error = |what: &str| Error::Corrupt {
            path: Default::default(),
            page: 0,
            reason: format!(
                "index entry before {:?}: {what}",
                String::from_utf8_lossy(&request.key)
            ),
        };
        let inserted = self
            .txn
            .put_after_predecessor(Table::Index, &key, &mut |predecessor| {
                prev = match predecessor {
                    Some((k, v)) if k.len() == key.len() && k.starts_with(&encoded) => {
                        let found = entry(k, v).ok_or_else(|| view_error("malformed"))?;
                        (!found.record.tombstone).then_some((found.revision, found.record))
                    }
                    _ => None,
                };
                let new = new_record(request, prev.map(|(_, r)| r), revision.main)?;
                record = Some(new);
                Ok(new.encode().to_vec())
            })?;
        if !inserted {
            prev = get_at(&*self.txn, &request.key, self.read_revision())?
                .map(|found| (found.revision, found.record));
            let new = new_record(request, prev.map(|(_, r)| r), revision.main)?;
            self.txn.put(Table::Index, &key, &new.encode())?;
            record = Some(new);
        }
        let record = record.expect("the new record was built");
        // The previous version's value, for prev_kv and ignore_value: one lookup in the change
        // log when the put replaces a live version, made only when something wants the value
        // (the request, or the events' consumer), as it cost a tenth of a put's apply.
        let prev_lease = prev.map_or(0, |(_, record)| record.lease);
        let prev_value_wanted = request.prev_kv || request.ignore_value || self.events_prev_kv;
        let prev_kv_omitted = prev.is_some() && !prev_value_wanted;
        let prev = match prev {
            Some((prev_revision, prev_record)) if prev_value_wanted => Some(KeyValue {
                key: request.key.clone(),
                create_revision: prev_record.create_revision,
                mod_revision: prev_revision.main,
                version: prev_record.version,
                value: log::value(&*self.txn, &request.key, prev_revision)?.to_vec(),
                lease: prev_record.lease,
            }),
            _ => None,
        };
        let value = match (&prev, request.ignore_value) {
            (Some(prev), true) => prev.value.clone(),
            _ => request.value.clone(),
        };
        log::put(self.txn, revision, &request.key, &value)?;
        let kv = KeyValue {
            key: request.key.clone(),
            create_revision: record.create_revision,
            mod_revision: revision.main,
            version: record.version,
            value,
            lease: record.lease,
        };
        if prev_lease != kv.lease {
            if prev_lease != 0 {
                lease::detach(self.txn, prev_lease, &request.key)?;
            }
            if kv.lease != 0 {
                lease::attach(self.txn, kv.lease, &request.key)?;
            }
        }
        self.sub += 1;
        self.events.push(Event {
            kind: EventKind::Put,
            kv,
            prev_kv: prev.clone(),
            prev_kv_omitted,
        });
        Ok(PutResponse {
            header_revision: revision.main,
            prev_kv: if request.prev_kv { prev } else { None },
        })
    }

    pub(crate) fn delete_range(
        &mut self,
        request: &DeleteRangeRequest,
    ) -> Result<DeleteRangeResponse> {
        if request.key.is_empty() {
            return Err(Error::EmptyKey);
        }
        let key_range = KeyRange::new(&request.key, &request.range_end);
        // The deleted versions' values are looked up for the events' prev_kv.
        let tables = &*self.txn;
        let mut doomed = Vec::new();
        visit_live(tables, &key_range, self.read_revision(), &mut |found| {
            doomed.push(found.to_kv(tables)?);
            Ok(true)
        })?;
        for prev in &doomed {
            let revision = Revision {
                main: self.main(),
                sub: self.sub,
            };
            let encoded = encode_user_key(&prev.key);
            self.txn.put(
                Table::Index,
                &index_key(&encoded, revision),
                &Record::TOMBSTONE.encode(),
            )?;
            log::put(self.txn, revision, &prev.key, &[])?;
            if prev.lease != 0 {
                lease::detach(self.txn, prev.lease, &prev.key)?;
            }
            self.sub += 1;
            self.events.push(Event {
                kind: EventKind::Delete,
                kv: KeyValue {
                    key: prev.key.clone(),
                    mod_revision: revision.main,
                    ..KeyValue::default()
                },
                prev_kv: Some(prev.clone()),
                prev_kv_omitted: false,
            });
        }
        Ok(DeleteRangeResponse {
            header_revision: self.end_revision(),
            deleted: doomed.len() as i64,
            prev_kvs: if request.prev_kv { doomed } else { Vec::new() },
        })
    }

    /// Writes one historical change at `revision` (a migration from another store): the key's
    /// record and log entry exactly as given (`kv` is ignored but for its key when `tombstone`),
    /// its lease attachment moved. Changes must come in revision order, after everything stored.
    pub(crate) fn import(
        &mut self,
        revision: Revision,
        kv: &KeyValue,
        tombstone: bool,
    ) -> Result<()> {
        let encoded = checked_user_key(&kv.key)?;
        if kv.value.len() > VALUE_BYTES_MAX {
            return Err(Error::ValueTooLarge {
                len: kv.value.len(),
                limit: VALUE_BYTES_MAX,
            });
        }
        let prev = get_at(&*self.txn, &kv.key, self.current)?.map(|found| found.record);
        let record = if tombstone {
            Record::TOMBSTONE
        } else {
            Record {
                tombstone: false,
                create_revision: kv.create_revision,
                version: kv.version,
                lease: kv.lease,
            }
        };
        self.txn.put(
            Table::Index,
            &index_key(&encoded, revision),
            &record.encode(),
        )?;
        let value: &[u8] = if tombstone { &[] } else { &kv.value };
        log::put(self.txn, revision, &kv.key, value)?;
        let prev_lease = prev.map_or(0, |r| r.lease);
        if prev_lease != record.lease {
            if prev_lease != 0 {
                lease::detach(self.txn, prev_lease, &kv.key)?;
            }
            if record.lease != 0 {
                lease::attach(self.txn, record.lease, &kv.key)?;
            }
        }
        Ok(())
    }

    /// etcd's lease revoke: deletes every key attached to lease `id` (in key order, so the
    /// deletes have the same sub revisions on every member), then the lease, in this one
    /// transaction — one revision for all its deletes, none if it had no keys.
    pub(crate) fn revoke_lease(&mut self, id: i64) -> Result<()> {
        if id == 0 || lease::get(&*self.txn, id)?.is_none() {
            return Err(Error::LeaseNotFound);
        }
        for key in lease::keys(&*self.txn, id)? {
            self.delete_range(&DeleteRangeRequest {
                key,
                range_end: Vec::new(),
                prev_kv: false,
            })?;
        }
        lease::remove(self.txn, id)
    }

    /// etcd's Txn: duplicate-key check, every compare of the chosen path evaluated against the
    /// state before the txn, request checks, then the ops — so an error changes nothing.
    /// Its ranges' answers are charged to `budget` (see [`Self::range_within`]).
    pub(crate) fn txn(
        &mut self,
        request: &TxnRequest,
        budget: &mut ResponseBudget,
    ) -> Result<TxnResponse> {
        check_duplicates(request)?;
        let mut path = Vec::new();
        self.compare_path(request, &mut path)?;
        self.check_path(request, &path, &mut 0)?;
        let mut response = self.execute(request, &path, &mut 0, budget)?;
        set_headers(&mut response, self.end_revision());
        Ok(response)
    }

    fn compare_path(&self, request: &TxnRequest, path: &mut Vec<bool>) -> Result<()> {
        let mut succeeded = true;
        for c in &request.compare {
            if !compare(&*self.txn, c, self.current)? {
                succeeded = false;
                break;
            }
        }
        path.push(succeeded);
        let ops = if succeeded {
            &request.success
        } else {
            &request.failure
        };
        for op in ops {
            if let RequestOp::Txn(nested) = op {
                self.compare_path(nested, path)?;
            }
        }
        Ok(())
    }

    /// The checks etcd runs before applying a txn (ignore_* puts need the key; ranges need a
    /// readable revision), against the state before the txn.
    fn check_path(&self, request: &TxnRequest, path: &[bool], at: &mut usize) -> Result<()> {
        let ops = if path[*at] {
            &request.success
        } else {
            &request.failure
        };
        *at += 1;
        for op in ops {
            match op {
                RequestOp::Range(r) => {
                    resolve_revision(r.revision, self.current, self.compacted)?;
                }
                RequestOp::Put(p) if p.ignore_value || p.ignore_lease => {
                    checked_user_key(&p.key)?;
                    if get_at(&*self.txn, &p.key, self.current)?.is_none() {
                        return Err(Error::KeyNotFound);
                    }
                    if !p.ignore_lease {
                        lease::check_exists(&*self.txn, p.lease)?;
                    }
                }
                RequestOp::Put(p) => {
                    checked_user_key(&p.key)?;
                    if p.value.len() > VALUE_BYTES_MAX {
                        return Err(Error::ValueTooLarge {
                            len: p.value.len(),
                            limit: VALUE_BYTES_MAX,
                        });
                    }
                    lease::check_exists(&*self.txn, p.lease)?;
                }
                RequestOp::DeleteRange(d) if d.key.is_empty() => return Err(Error::EmptyKey),
                RequestOp::DeleteRange(_) => {}
                RequestOp::Txn(nested) => self.check_path(nested, path, at)?,
            }
        }
        Ok(())
    }

    fn execute(
        &mut self,
        request: &TxnRequest,
        path: &[bool],
        at: &mut usize,
        budget: &mut ResponseBudget,
    ) -> Result<TxnResponse> {
        let succeeded = path[*at];
        *at += 1;
        let ops = if succeeded {
            &request.success
        } else {
            &request.failure
        };
        let mut responses = Vec::with_capacity(ops.len());
        for op in ops {
            responses.push(match op {
                RequestOp::Range(r) => ResponseOp::Range(self.range_within(r, budget)?),
                RequestOp::Put(p) => ResponseOp::Put(self.put(p)?),
                RequestOp::DeleteRange(d) => ResponseOp::DeleteRange(self.delete_range(d)?),
                RequestOp::Txn(nested) => ResponseOp::Txn(self.execute(nested, path, at, budget)?),
            });
        }
        Ok(TxnResponse {
            header_revision: 0,
            succeeded,
            responses,
        })
    }
}

/// The key index record of a put over the key's previous live version, if any.
fn new_record(request: &PutRequest, prev: Option<Record>, main: i64) -> Result<Record> {
    if (request.ignore_value || request.ignore_lease) && prev.is_none() {
        return Err(Error::KeyNotFound);
    }
    Ok(Record {
        tombstone: false,
        create_revision: prev.map_or(main, |p| p.create_revision),
        version: prev.map_or(1, |p| p.version + 1),
        lease: match (prev, request.ignore_lease) {
            (Some(prev), true) => prev.lease,
            _ => request.lease,
        },
    })
}

/// Stamps the txn's final revision on every write response header, like etcd's single header.
fn set_headers(response: &mut TxnResponse, revision: i64) {
    response.header_revision = revision;
    for op in &mut response.responses {
        match op {
            ResponseOp::Put(p) => p.header_revision = revision,
            ResponseOp::DeleteRange(d) => d.header_revision = revision,
            ResponseOp::Txn(t) => set_headers(t, revision),
            ResponseOp::Range(_) => {}
        }
    }
}
