//! Watchers and the feed that reaches them.
//!
//! A watcher is either *synced* (it has seen everything up to the current revision and gets new
//! events as they are applied) or *unsynced* (it catches up from the engine's history, from its
//! `next_revision`). A watcher that starts in the past begins unsynced; so does a live watcher
//! whose stream's bounded queue is full (a slow client): it falls behind and catches up from
//! history later, instead of growing memory or blocking anyone. Everything runs on the member's
//! executor, so reading history up to the current revision and marking a watcher synced happen
//! with no apply in between: no gap, no duplicate.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::Arc;
use std::task::{Poll, Waker};

use basalt_engine::{self as engine, Engine, EventKind};
use basalt_net::proto::{etcdserverpb as pb, mvccpb};
use bytes::Bytes;

use prost014::Message as _;

use crate::server::metrics::SlowWatchers;
use crate::server::state_machine::header::HeaderSource;
use crate::server::watch::event_fanout::{wire_event, EventFanOut};
use crate::server::watch::watch_limits::{self, WatchLimits};
use crate::server::watch::watcher_presence::WatcherPresence;

/// Responses a stream may have waiting to be sent; past it, its watchers fall behind.
pub const STREAM_QUEUE_LIMIT: usize = 256;
/// Encoded bytes a stream may have waiting to be sent; past it, its watchers fall behind. With
/// values of up to 1.5 MiB the count alone would let one slow client hold hundreds of MiB.
pub const STREAM_QUEUE_BYTES_LIMIT: usize = 8 * 1024 * 1024;
/// Responses a stream's sender takes from its queue for one send to HTTP/2, and their bytes
/// (whole responses; a larger one goes alone). They stay counted, against the stream's and the
/// member's bounds, until the send returns: a client that does not read holds them there.
const SEND_BATCH_RESPONSES: usize = 128;
const SEND_BATCH_BYTES: usize = 256 * 1024;
/// Watchers one stream may hold.
pub const WATCHERS_PER_STREAM_LIMIT: usize = 10_000;
/// Events read from history per catch-up step of one watcher.
const CATCH_UP_EVENTS: usize = 1000;
/// Key and value bytes read from history per step (whole revisions, so at least one): a step
/// of a thousand 1.5 MiB values would otherwise hold 1.5 GiB, and one response carry it all.
/// Above the default fragment size, so a fragmenting watcher's catch-up is still fragmented.
const CATCH_UP_BYTES: usize = 4 * 1024 * 1024;
/// Catch-up steps one call may take (all watchers together): a watcher whose filter matches
/// nothing never fills its queue, so without a bound one call could scan the whole history
/// and stall the executor. The member's ticker and later sends continue where it stopped.
const CATCH_UP_STEPS_PER_CALL: usize = 32;

/// etcd's default `--max-request-bytes`, the fragment size until the server sets its own.
const DEFAULT_FRAGMENT_BYTES: usize = 1536 * 1024;

/// Bytes one event adds to a response's encoding (field tag, length, body).
fn event_len(event: &mvccpb::Event) -> usize {
    let body = event.encoded_len();
    1 + prost014::encoding::encoded_len_varint(body as u64) + body
}

/// Batches of up to CATCH_UP_EVENTS one `publish_from_engine` call reads before yielding.
const PULL_BATCHES_PER_CALL: usize = 8;

/// The response queue of one Watch stream: filled by the hub, drained by the stream's sender.
pub struct StreamQueue {
    /// The member's limits: its queued bytes are counted there too.
    limits: Arc<WatchLimits>,
    /// The next id the server chooses for this stream's watchers (etcd counts up from 0 and
    /// never reuses one within a stream).
    next_watch_id: Cell<i64>,
    /// A progress request waits for every watcher of the stream to be synced.
    progress_wanted: Cell<bool>,
    /// Each waiting response, encoded (a fan-out builds them so; the rest are encoded as they
    /// are queued, which also gives the exact bytes they count).
    responses: RefCell<VecDeque<Bytes>>,
    /// The encoded bytes of `responses`.
    queued_bytes: Cell<usize>,
    /// The encoded bytes of the batch the sender has taken and not yet sent.
    sending_bytes: Cell<usize>,
    waker: RefCell<Option<Waker>>,
    /// The request reader waiting for the queue to drain below its limit.
    room_waker: RefCell<Option<Waker>>,
    closed: Cell<bool>,
}

impl StreamQueue {
    fn new(limits: Arc<WatchLimits>) -> StreamQueue {
        StreamQueue {
            limits,
            next_watch_id: Cell::default(),
            progress_wanted: Cell::default(),
            responses: RefCell::default(),
            queued_bytes: Cell::default(),
            sending_bytes: Cell::default(),
            waker: RefCell::default(),
            room_waker: RefCell::default(),
            closed: Cell::default(),
        }
    }

    /// Whether event responses may be queued: the stream is below its own count and byte
    /// limits, and the member below its byte limit over every stream (one response may take
    /// either past its byte limit; then nothing more until they drain).
    fn has_room(&self) -> bool {
        self.has_own_room() && self.limits.has_queue_room()
    }

    /// Below the stream's own limits (the batch being sent counts). A full member does not
    /// stop a stream reading its client's requests: only its own sends would wake it, and an
    /// empty queue has none.
    fn has_own_room(&self) -> bool {
        self.responses.borrow().len() < STREAM_QUEUE_LIMIT
            && self.queued_bytes.get() + self.sending_bytes.get() < STREAM_QUEUE_BYTES_LIMIT
    }

    /// Queues a response. Control responses (created, canceled) are queued whatever the room:
    /// they are few (one per request the client sent, and requests stop being read while the
    /// queue is full). Event responses are queued only after `has_room`.
    fn push(&self, response: pb::WatchResponse) {
        self.push_encoded(Bytes::from(response.encode_to_vec()));
    }

    /// Queues a response already encoded (`push`'s rules).
    fn push_encoded(&self, response: Bytes) {
        let bytes = response.len();
        self.queued_bytes.set(self.queued_bytes.get() + bytes);
        self.limits.queue_bytes(bytes);
        self.responses.borrow_mut().push_back(response);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// The next response, uncounted as it is taken (an in-process reader); `None` once the
    /// stream is closed.
    pub async fn next(&self) -> Option<pb::WatchResponse> {
        self.wait_and_take(StreamQueue::pop).await
    }

    /// Waits until `take` gives a response or the stream is closed (`None`).
    async fn wait_and_take<T>(&self, take: fn(&StreamQueue) -> Option<T>) -> Option<T> {
        poll_fn(|cx| {
            if let Some(response) = take(self) {
                return Poll::Ready(Some(response));
            }
            if self.closed.get() {
                return Poll::Ready(None);
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    /// Waits for at least one response, then takes the oldest ones together: up to
    /// `SEND_BATCH_RESPONSES` or until `SEND_BATCH_BYTES` are reached (always at least one), so
    /// the sender hands them to HTTP/2 in one send. Their bytes stay counted until `sent`.
    /// `None` once the stream is closed and empty.
    pub async fn next_batch(&self) -> Option<Vec<Bytes>> {
        assert_eq!(
            self.sending_bytes.get(),
            0,
            "a batch taken before the previous one was sent"
        );
        let first = self.wait_and_take(StreamQueue::take_for_sending).await?;
        let mut batch = vec![first];
        while batch.len() < SEND_BATCH_RESPONSES {
            let Some(next_bytes) = self.responses.borrow().front().map(Bytes::len) else {
                break;
            };
            if self.sending_bytes.get() + next_bytes > SEND_BATCH_BYTES {
                break;
            }
            batch.push(self.take_for_sending().expect("the front was just seen"));
        }
        Some(batch)
    }

    /// Uncounts the batch `next_batch` took, once its send returned (sent, or failed), waking
    /// a request reader waiting for room.
    pub fn sent(&self) {
        let bytes = self.sending_bytes.replace(0);
        self.limits.unqueue_bytes(bytes);
        self.wake_room_waiter();
    }

    /// Takes the oldest response for the sender's batch: its bytes move from the queue's
    /// count to the batch's.
    fn take_for_sending(&self) -> Option<Bytes> {
        let response = self.responses.borrow_mut().pop_front()?;
        let bytes = response.len();
        let queued = self.queued_bytes.get();
        assert!(bytes <= queued, "the queue's byte count lost track");
        self.queued_bytes.set(queued - bytes);
        self.sending_bytes.set(self.sending_bytes.get() + bytes);
        Some(response)
    }

    /// Takes the oldest response and uncounts it at once, waking a request reader waiting for
    /// room.
    fn pop(&self) -> Option<pb::WatchResponse> {
        let response = self.responses.borrow_mut().pop_front()?;
        let bytes = response.len();
        let queued = self.queued_bytes.get();
        assert!(bytes <= queued, "the queue's byte count lost track");
        self.queued_bytes.set(queued - bytes);
        self.limits.unqueue_bytes(bytes);
        self.wake_room_waiter();
        Some(pb::WatchResponse::decode(response).expect("the queue holds what it encoded"))
    }

    fn wake_room_waiter(&self) {
        if let Some(waker) = self.room_waker.borrow_mut().take() {
            waker.wake();
        }
    }

    /// Waits while the queue is over its limit: the stream stops reading a client's requests
    /// while that client does not read its responses.
    pub async fn room(&self) {
        poll_fn(|cx| {
            if self.has_own_room() || self.closed.get() {
                return Poll::Ready(());
            }
            self.room_waker.borrow_mut().replace(cx.waker().clone());
            Poll::Pending
        })
        .await
    }

    fn close(&self) {
        self.closed.set(true);
        if let Some(waker) = self.waker.borrow_mut().take() {
            waker.wake();
        }
    }
}

impl Drop for StreamQueue {
    /// A closed stream's unsent responses leave the member's count with it.
    fn drop(&mut self) {
        let unsent = self.queued_bytes.get() + self.sending_bytes.get();
        if unsent > 0 {
            self.limits.unqueue_bytes(unsent);
        }
    }
}

struct Watcher {
    stream: u64,
    watch_id: i64,
    key: Vec<u8>,
    range_end: Vec<u8>,
    no_put: bool,
    no_delete: bool,
    prev_kv: bool,
    /// The client accepts a large response split into fragments.
    fragment: bool,
    /// The client wants an empty response every progress interval without events.
    progress_notify: bool,
    /// Events went out since the last progress interval began.
    sent_since_progress: bool,
    /// The first revision this watcher has not seen yet.
    next_revision: i64,
    synced: bool,
}

impl Watcher {
    fn matches(&self, event: &engine::Event) -> bool {
        // A watcher that starts in the future skips the revisions before its start.
        if event.kv.mod_revision < self.next_revision {
            return false;
        }
        let wanted = match event.kind {
            EventKind::Put => !self.no_put,
            EventKind::Delete => !self.no_delete,
        };
        wanted && key_in_range(&event.kv.key, &self.key, &self.range_end)
    }

    fn to_wire(&self, event: &engine::Event) -> mvccpb::Event {
        wire_event(event, self.prev_kv)
    }
}

/// etcd's range convention: empty end = the key alone; "\0" = every key from `key` on.
fn key_in_range(candidate: &[u8], key: &[u8], range_end: &[u8]) -> bool {
    if range_end.is_empty() {
        candidate == key
    } else if range_end == [0] {
        candidate >= key
    } else {
        candidate >= key && candidate < range_end
    }
}

/// Every watcher of the member, by (stream, watch id).
pub struct WatchHub {
    engine: Arc<Engine>,
    headers: HeaderSource,
    /// The newest revision handed to `publish` (on a core that pulls events from the engine).
    published_through: Cell<i64>,
    /// Size from which a fragmenting watcher's response is split (`--max-request-bytes`).
    fragment_bytes: Cell<usize>,
    /// Set when this hub is fed by `publish_from_engine` (a core that is not the raft owner):
    /// what it has delivered may lag the engine, so progress answers use `published_through`;
    /// and it counts its watchers here, so that the owner rings this core only when a watcher
    /// is here to be fed.
    presence: RefCell<Option<WatcherPresence>>,
    watchers: RefCell<BTreeMap<(u64, i64), Watcher>>,
    streams: RefCell<HashMap<u64, Rc<StreamQueue>>>,
    next_stream: Cell<u64>,
    /// The member's bounds on watchers (counted here) and Watch streams (counted by the
    /// Watch service), shared by every core's hub.
    limits: RefCell<Arc<WatchLimits>>,
    /// This hub's unsynced watchers (`etcd_debugging_mvcc_slow_watcher_total`), kept as
    /// watchers change state; written by this core only.
    slow: RefCell<Arc<SlowWatchers>>,
    /// The keys of this hub's unsynced watchers: exactly those of `watchers` whose `synced` is
    /// false. Catching up runs after every response a stream sends and after every apply
    /// batch; with this index it visits only watchers that have catching up to do, not every
    /// watcher of the stream (100 per send under 1000 watchers on 10 streams).
    unsynced: RefCell<BTreeSet<(u64, i64)>>,
    /// This hub's watchers that asked for `prev_kv`: with none, the owner's applies skip
    /// looking up each put's previous value for the events (see `wants_prev_kv`).
    prev_kv_watchers: Cell<usize>,
}

/// Why a watch could not be created.
pub enum CreateError {
    DuplicateId,
    TooManyWatchers,
    TooManyWatchersOnMember,
}

impl WatchHub {
    /// A hub reading history from `engine`; `header` builds response headers.
    pub fn new(engine: Arc<Engine>, headers: HeaderSource) -> Rc<WatchHub> {
        let current = engine.read().map_or(0, |view| view.current_revision());
        Rc::new(WatchHub {
            engine,
            headers,
            published_through: Cell::new(current),
            fragment_bytes: Cell::new(DEFAULT_FRAGMENT_BYTES),
            presence: RefCell::new(None),
            watchers: RefCell::new(BTreeMap::new()),
            streams: RefCell::new(HashMap::new()),
            next_stream: Cell::new(1),
            limits: RefCell::new(WatchLimits::unlimited()),
            slow: RefCell::new(Arc::default()),
            unsynced: RefCell::new(BTreeSet::new()),
            prev_kv_watchers: Cell::new(0),
        })
    }

    /// Sets the member's shared limits (before any watcher is created).
    pub fn set_limits(&self, limits: Arc<WatchLimits>) {
        assert!(
            self.watchers.borrow().is_empty(),
            "limits set after watchers were created"
        );
        *self.limits.borrow_mut() = limits;
    }

    /// Counts this hub's unsynced watchers into `slow` (before any watcher is created).
    pub fn set_slow_watchers(&self, slow: Arc<SlowWatchers>) {
        assert!(
            self.watchers.borrow().is_empty(),
            "the slow watcher count set after watchers were created"
        );
        *self.slow.borrow_mut() = slow;
    }

    /// Marks `watcher` synced or not, counting and indexing the unsynced.
    fn mark_synced(&self, watcher: &mut Watcher, synced: bool) {
        if watcher.synced != synced {
            watcher.synced = synced;
            self.slow.borrow().add(if synced { -1 } else { 1 });
            let key = (watcher.stream, watcher.watch_id);
            let mut unsynced = self.unsynced.borrow_mut();
            let changed = if synced {
                unsynced.remove(&key)
            } else {
                unsynced.insert(key)
            };
            assert!(changed, "the unsynced index follows the watchers' state");
        }
    }

    /// Whether a watcher here asked for `prev_kv`: the owner's apply asks before each batch
    /// whether its events must carry previous values (a lookup per put when they must). A
    /// watcher created between that question and the publish still gets them: `publish` sends
    /// it back to history for an event whose previous value was omitted.
    pub fn wants_prev_kv(&self) -> bool {
        self.prev_kv_watchers.get() > 0
    }

    /// Whether some watcher catches up from the engine's history (`catch_up_all` reads it).
    pub fn any_catching_up(&self) -> bool {
        !self.unsynced.borrow().is_empty()
    }

    /// Uncounts `removed` watchers; `unsynced` are the keys of those that were unsynced, and
    /// `with_prev_kv` how many asked for `prev_kv`.
    fn forget_watchers(&self, removed: usize, unsynced: &[(u64, i64)], with_prev_kv: usize) {
        let counted = self.prev_kv_watchers.get();
        assert!(
            with_prev_kv <= counted,
            "{with_prev_kv} prev_kv watchers removed of {counted} counted"
        );
        self.prev_kv_watchers.set(counted - with_prev_kv);
        self.limits.borrow().remove_watchers(removed);
        if let Some(presence) = self.presence.borrow().as_ref() {
            presence.leave(removed);
        }
        if !unsynced.is_empty() {
            self.slow.borrow().add(-(unsynced.len() as i64));
            let mut index = self.unsynced.borrow_mut();
            for key in unsynced {
                assert!(index.remove(key), "an unsynced watcher is indexed");
            }
        }
    }

    /// The keys of `stream`'s unsynced watchers.
    fn unsynced_of(&self, stream: u64) -> Vec<(u64, i64)> {
        self.unsynced
            .borrow()
            .range((stream, i64::MIN)..=(stream, i64::MAX))
            .copied()
            .collect()
    }

    /// The member's shared limits.
    pub fn limits(&self) -> Arc<WatchLimits> {
        self.limits.borrow().clone()
    }

    fn current_revision(&self) -> i64 {
        self.engine
            .read()
            .map(|view| view.current_revision())
            .unwrap_or(0)
    }

    /// Opens a stream; returns its id and response queue.
    pub fn open_stream(&self) -> (u64, Rc<StreamQueue>) {
        let id = self.next_stream.get();
        self.next_stream.set(id + 1);
        let queue = Rc::new(StreamQueue::new(self.limits()));
        self.streams.borrow_mut().insert(id, queue.clone());
        (id, queue)
    }

    /// Closes a stream and drops its watchers.
    pub fn close_stream(&self, stream: u64) {
        if let Some(queue) = self.streams.borrow_mut().remove(&stream) {
            queue.close();
        }
        let mut watchers = self.watchers.borrow_mut();
        let before = watchers.len();
        let mut with_prev_kv = 0;
        watchers.retain(|(s, _), watcher| {
            let kept = *s != stream;
            with_prev_kv += usize::from(!kept && watcher.prev_kv);
            kept
        });
        let unsynced = self.unsynced_of(stream);
        self.forget_watchers(before - watchers.len(), &unsynced, with_prev_kv);
    }

    /// Creates a watcher on `stream` and answers with `created`; a watcher starting in the past
    /// catches up from history first.
    pub fn create(&self, stream: u64, request: &pb::WatchCreateRequest) {
        let queue = self.streams.borrow().get(&stream).cloned();
        let Some(queue) = queue else { return };
        let presence = self.presence.borrow().clone();
        if let Some(presence) = &presence {
            // Before reading the revision to start from (see `WatcherPresence`).
            presence.enter();
        }
        let current = self.current_revision();
        if presence.is_some() && self.watchers.borrow().is_empty() {
            // No watcher here, so the owner has not rung since the last one left: what was
            // committed meanwhile concerns no one here, and reading it later would be waste.
            self.published_through
                .set(self.published_through.get().max(current));
        }
        let watch_id = match self.add_watcher(stream, &queue, request, current) {
            Ok(id) => id,
            Err(error) => {
                if let Some(presence) = &presence {
                    presence.leave(1);
                }
                let reason = match error {
                    CreateError::DuplicateId => "mvcc: duplicate watch ID",
                    CreateError::TooManyWatchers => "etcdserver: too many watchers on this stream",
                    CreateError::TooManyWatchersOnMember => watch_limits::TOO_MANY_WATCHERS,
                };
                queue.push(pb::WatchResponse {
                    header: Some(self.headers.header(current)),
                    watch_id: request.watch_id,
                    created: true,
                    canceled: true,
                    cancel_reason: reason.into(),
                    ..Default::default()
                });
                return;
            }
        };
        queue.push(pb::WatchResponse {
            header: Some(self.headers.header(current)),
            watch_id,
            created: true,
            ..Default::default()
        });
        self.catch_up(stream);
    }

    /// Answers a create the caller may not make (etcd's `isWatchPermitted`): created and
    /// canceled at once, watch id -1, the auth error's text as the reason.
    pub fn refuse_create(&self, stream: u64, reason: &str) {
        let queue = self.streams.borrow().get(&stream).cloned();
        let Some(queue) = queue else { return };
        queue.push(pb::WatchResponse {
            header: Some(self.headers.header(self.current_revision())),
            watch_id: -1,
            created: true,
            canceled: true,
            cancel_reason: reason.into(),
            ..Default::default()
        });
    }

    fn add_watcher(
        &self,
        stream: u64,
        queue: &StreamQueue,
        request: &pb::WatchCreateRequest,
        current: i64,
    ) -> Result<i64, CreateError> {
        use pb::watch_create_request::FilterType;
        let mut watchers = self.watchers.borrow_mut();
        let on_stream = watchers
            .range((stream, i64::MIN)..=(stream, i64::MAX))
            .count();
        if on_stream >= WATCHERS_PER_STREAM_LIMIT {
            return Err(CreateError::TooManyWatchers);
        }
        // etcd: watch_id 0 asks the server to choose; it counts up, skipping ids in use, and
        // never reuses an id within a stream.
        let watch_id = if request.watch_id == 0 {
            let mut id = queue.next_watch_id.get();
            while watchers.contains_key(&(stream, id)) {
                id += 1;
            }
            queue.next_watch_id.set(id + 1);
            id
        } else if watchers.contains_key(&(stream, request.watch_id)) {
            return Err(CreateError::DuplicateId);
        } else {
            request.watch_id
        };
        if !self.limits.borrow().try_add_watcher() {
            return Err(CreateError::TooManyWatchersOnMember);
        }
        let start = if request.start_revision <= 0 {
            current + 1
        } else {
            request.start_revision
        };
        watchers.insert(
            (stream, watch_id),
            Watcher {
                stream,
                watch_id,
                key: request.key.clone(),
                range_end: request.range_end.clone(),
                no_put: request.filters.contains(&(FilterType::Noput as i32)),
                no_delete: request.filters.contains(&(FilterType::Nodelete as i32)),
                prev_kv: request.prev_kv,
                fragment: request.fragment,
                progress_notify: request.progress_notify,
                sent_since_progress: false,
                next_revision: start,
                synced: start > current,
            },
        );
        if request.prev_kv {
            self.prev_kv_watchers.set(self.prev_kv_watchers.get() + 1);
        }
        if start <= current {
            self.slow.borrow().add(1);
            self.unsynced.borrow_mut().insert((stream, watch_id));
        }
        Ok(watch_id)
    }

    /// Cancels a watcher and answers with `canceled`.
    pub fn cancel(&self, stream: u64, watch_id: i64) {
        let removed = self.watchers.borrow_mut().remove(&(stream, watch_id));
        if let Some(watcher) = &removed {
            let key = [(stream, watch_id)];
            let unsynced: &[_] = if watcher.synced { &[] } else { &key };
            self.forget_watchers(1, unsynced, usize::from(watcher.prev_kv));
        }
        let removed = removed.is_some();
        let queue = self.streams.borrow().get(&stream).cloned();
        if let (true, Some(queue)) = (removed, queue) {
            queue.push(pb::WatchResponse {
                header: Some(self.headers.header(self.current_revision())),
                watch_id,
                canceled: true,
                ..Default::default()
            });
        }
    }

    /// Answers a progress request with the current revision (watch id -1, as etcd) — but only
    /// once every watcher of the stream is synced: a watcher still catching up has not seen
    /// everything up to the current revision, and the answer would tell the client it has.
    pub fn progress(&self, stream: u64) {
        let queue = self.streams.borrow().get(&stream).cloned();
        if let Some(queue) = queue {
            queue.progress_wanted.set(true);
            self.answer_progress_if_synced(stream, &queue);
        }
    }

    fn answer_progress_if_synced(&self, stream: u64, queue: &StreamQueue) {
        if !queue.progress_wanted.get() {
            return;
        }
        let revision = self.progress_revision();
        let all_synced = self
            .unsynced
            .borrow()
            .range((stream, i64::MIN)..=(stream, i64::MAX))
            .next()
            .is_none();
        if all_synced {
            queue.progress_wanted.set(false);
            queue.push(pb::WatchResponse {
                header: Some(self.headers.header(revision)),
                watch_id: -1,
                ..Default::default()
            });
        }
    }

    /// Delivers the events of a just-committed apply batch (in revision order) to synced
    /// watchers; a watcher whose stream has no room falls behind and catches up later.
    pub fn publish(&self, events: &[engine::Event]) {
        let Some(last) = events.last() else { return };
        let revision = last.kv.mod_revision;
        let streams = self.streams.borrow();
        let mut watchers = self.watchers.borrow_mut();
        let mut fanout: Option<EventFanOut> = None;
        let mut matching = Vec::with_capacity(events.len());
        for watcher in watchers.values_mut().filter(|w| w.synced) {
            matching.clear();
            matching.extend((0..events.len()).filter(|&i| watcher.matches(&events[i])));
            let Some(queue) = streams.get(&watcher.stream) else {
                continue;
            };
            if watcher.prev_kv
                && events
                    .iter()
                    .any(|e| e.prev_kv_omitted && watcher.matches(e))
            {
                // The apply was told no watcher wants previous values; history has them.
                self.mark_synced(watcher, false);
                continue;
            }
            if matching.is_empty() {
                // A watcher that starts in the future keeps its start.
                watcher.next_revision = watcher.next_revision.max(revision + 1);
                continue;
            }
            if !queue.has_room() {
                self.mark_synced(watcher, false); // next_revision still points at these events
                continue;
            }
            let fanout = fanout
                .get_or_insert_with(|| EventFanOut::new(events, &self.headers.header(revision)));
            let fragmented = watcher.fragment
                && matching.len() >= 2
                && fanout.response_len(watcher.watch_id, watcher.prev_kv, &matching)
                    >= self.fragment_bytes.get();
            if fragmented {
                let whole = matching
                    .iter()
                    .map(|&i| watcher.to_wire(&events[i]))
                    .collect();
                self.push_events(queue, watcher, revision, whole);
            } else {
                watcher.sent_since_progress = true;
                queue.push_encoded(fanout.response(watcher.watch_id, watcher.prev_kv, &matching));
            }
            watcher.next_revision = watcher.next_revision.max(revision + 1);
        }
    }

    /// Marks this hub as fed by `publish_from_engine` (a core that is not the raft owner), and
    /// counting its watchers into `presence`, which the owner reads (before any watcher is
    /// created).
    pub fn set_pulls_from_engine(&self, presence: WatcherPresence) {
        assert!(
            self.watchers.borrow().is_empty(),
            "the hub's presence set after watchers were created"
        );
        *self.presence.borrow_mut() = Some(presence);
    }

    fn pulls_from_engine(&self) -> bool {
        self.presence.borrow().is_some()
    }

    /// The revision a progress answer may claim: every event up to it has been handed to the
    /// watchers' queues (etcd's promise: a progress response at N follows every event ≤ N). On
    /// the owner that is the engine's revision (apply publishes before anything else runs);
    /// elsewhere this core first publishes what the engine has, then answers what it published.
    fn progress_revision(&self) -> i64 {
        if !self.pulls_from_engine() {
            return self.current_revision();
        }
        while self.publish_from_engine() {}
        self.published_through.get()
    }

    /// Sets the size from which the responses of watchers that asked for `fragment` are split
    /// (etcd splits at `--max-request-bytes`).
    pub fn set_fragment_bytes(&self, bytes: usize) {
        self.fragment_bytes.set(bytes.max(1));
    }

    /// Queues `events` for `watcher` at `revision`: in one response, or — when the watcher
    /// asked for fragments and the response would reach the fragment size — in several, each
    /// with at least one event and below the size where possible, all but the last marked
    /// `fragment`, as etcd's `sendFragments` does.
    fn push_events(
        &self,
        queue: &StreamQueue,
        watcher: &mut Watcher,
        revision: i64,
        events: Vec<mvccpb::Event>,
    ) {
        watcher.sent_since_progress = true;
        let whole = pb::WatchResponse {
            header: Some(self.headers.header(revision)),
            watch_id: watcher.watch_id,
            events,
            ..Default::default()
        };
        let limit = self.fragment_bytes.get();
        if !watcher.fragment || whole.events.len() < 2 || whole.encoded_len() < limit {
            queue.push(whole);
            return;
        }
        let mut remaining = whole.events.into_iter().peekable();
        let template = pb::WatchResponse {
            header: whole.header,
            watch_id: whole.watch_id,
            fragment: true,
            ..Default::default()
        };
        // The part's length is kept as events are added (encoding the part again per event
        // would make a large revision quadratic in its events).
        let empty_part_len = template.encoded_len();
        while remaining.peek().is_some() {
            let mut part = template.clone();
            let mut part_len = empty_part_len;
            while let Some(event) = remaining.peek() {
                let grown = part_len + event_len(event);
                if !part.events.is_empty() && grown >= limit {
                    break;
                }
                part_len = grown;
                part.events.push(remaining.next().expect("peeked"));
            }
            part.fragment = remaining.peek().is_some();
            queue.push(part);
        }
    }

    /// Every progress interval: an empty response at the current revision for each synced
    /// watcher that asked for progress notifications and got no events during the interval
    /// (etcd's progress notify), if its stream has room.
    pub fn notify_progress(&self) {
        let current = self.progress_revision();
        let streams = self.streams.borrow();
        let mut watchers = self.watchers.borrow_mut();
        for watcher in watchers.values_mut().filter(|w| w.progress_notify) {
            let sent = std::mem::replace(&mut watcher.sent_since_progress, false);
            if sent || !watcher.synced {
                continue;
            }
            let Some(queue) = streams.get(&watcher.stream) else {
                continue;
            };
            if queue.has_room() {
                queue.push(pb::WatchResponse {
                    header: Some(self.headers.header(current)),
                    watch_id: watcher.watch_id,
                    ..Default::default()
                });
            }
        }
    }

    /// On a core that is not the raft owner: reads the revisions committed since the last call
    /// from the engine and publishes them (the owner rang this core's doorbell after applying
    /// them). Bounded per call; the caller calls again while there is more.
    ///
    /// Returns whether revisions remain unpublished.
    pub fn publish_from_engine(&self) -> bool {
        for _ in 0..PULL_BATCHES_PER_CALL {
            let Ok(view) = self.engine.read() else {
                return false;
            };
            let current = view.current_revision();
            if self.watchers.borrow().is_empty() {
                // Nothing here to feed (a ring or the idle beat while the last watcher left).
                self.published_through
                    .set(self.published_through.get().max(current));
                return false;
            }
            let from = self.published_through.get() + 1;
            if from > current {
                return false;
            }
            match view.events_since(from, CATCH_UP_EVENTS, CATCH_UP_BYTES) {
                Ok(events) => {
                    // A revision without events (none is expected) must not stall the feed.
                    let through = events.last().map_or(current, |e| e.kv.mod_revision);
                    drop(view);
                    self.publish(&events);
                    self.published_through.set(through);
                }
                Err(engine::Error::Compacted) => {
                    // This core fell behind a compaction: its synced watchers missed revisions
                    // that are gone. They catch up from history like lagging watchers, which
                    // cancels the ones whose next revision was compacted, as etcd does.
                    for watcher in self.watchers.borrow_mut().values_mut() {
                        self.mark_synced(watcher, false);
                    }
                    self.published_through.set(current);
                }
                Err(_) => return false,
            }
        }
        true
    }

    /// Catches up the unsynced watchers of `stream` from history, while its queue has room.
    pub fn catch_up(&self, stream: u64) {
        let queue = self.streams.borrow().get(&stream).cloned();
        let Some(queue) = queue else { return };
        let keys = self.unsynced_of(stream);
        let mut steps = 0;
        for key in keys {
            while queue.has_room() && steps < CATCH_UP_STEPS_PER_CALL {
                steps += 1;
                match self.catch_up_step(&queue, key) {
                    Step::More => continue,
                    Step::Done => break,
                }
            }
        }
        self.answer_progress_if_synced(stream, &queue);
    }

    /// Unsynced streams with room: called after each apply batch.
    pub fn catch_up_all(&self) {
        let streams: Vec<u64> = {
            let mut streams: Vec<u64> = self
                .unsynced
                .borrow()
                .iter()
                .map(|(stream, _)| *stream)
                .collect();
            streams.dedup();
            streams
        };
        for stream in streams {
            self.catch_up(stream);
        }
    }

    fn catch_up_step(&self, queue: &StreamQueue, key: (u64, i64)) -> Step {
        let view = match self.engine.read() {
            Ok(view) => view,
            Err(_) => return Step::Done,
        };
        let current = view.current_revision();
        let mut watchers = self.watchers.borrow_mut();
        let Some(watcher) = watchers.get_mut(&key) else {
            return Step::Done;
        };
        if watcher.next_revision > current {
            self.mark_synced(watcher, true);
            return Step::Done;
        }
        match view.events_since(watcher.next_revision, CATCH_UP_EVENTS, CATCH_UP_BYTES) {
            Ok(events) => {
                let Some(last) = events.last() else {
                    watcher.next_revision = current + 1;
                    self.mark_synced(watcher, true);
                    return Step::Done;
                };
                let revision = last.kv.mod_revision;
                let matching: Vec<mvccpb::Event> = events
                    .iter()
                    .filter(|e| watcher.matches(e))
                    .map(|e| watcher.to_wire(e))
                    .collect();
                if !matching.is_empty() {
                    self.push_events(queue, watcher, revision, matching);
                }
                watcher.next_revision = revision + 1;
                if watcher.next_revision > current {
                    self.mark_synced(watcher, true);
                    return Step::Done;
                }
                Step::More
            }
            Err(engine::Error::Compacted) => {
                // etcd cancels a watcher whose next revision was compacted away, telling it
                // the compaction revision so it can start over.
                let watcher = watchers.remove(&key).expect("present");
                let keys = [key];
                let unsynced: &[_] = if watcher.synced { &[] } else { &keys };
                self.forget_watchers(1, unsynced, usize::from(watcher.prev_kv));
                queue.push(pb::WatchResponse {
                    header: Some(self.headers.header(current)),
                    watch_id: watcher.watch_id,
                    canceled: true,
                    compact_revision: view.compact_revision(),
                    cancel_reason: "mvcc: required revision has been compacted".into(),
                    ..Default::default()
                });
                Step::Done
            }
            Err(_) => Step::Done,
        }
    }
}

enum Step {
    More,
    Done,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::state_machine::header::Identity;

    impl WatchHub {
        /// The unsynced index holds exactly the watchers whose `synced` is false.
        fn assert_unsynced_index(&self) {
            let from_watchers: BTreeSet<(u64, i64)> = self
                .watchers
                .borrow()
                .iter()
                .filter(|(_, w)| !w.synced)
                .map(|(key, _)| *key)
                .collect();
            assert_eq!(*self.unsynced.borrow(), from_watchers);
            assert_eq!(self.slow.borrow().get(), from_watchers.len() as i64);
        }
    }

    fn watch_from(hub: &WatchHub, stream: u64, key: &str, start_revision: i64) {
        hub.create(
            stream,
            &pb::WatchCreateRequest {
                key: key.as_bytes().to_vec(),
                start_revision,
                ..Default::default()
            },
        );
    }

    // Goal: the sender takes what waits in one batch, in order, within its bounds; a response
    // above the byte bound goes alone; the queue's byte count ends at zero.
    #[test]
    fn a_send_batch_takes_the_waiting_responses_in_order_within_its_bounds() {
        let queue = StreamQueue::new(WatchLimits::unlimited());
        let response = |watch_id: i64, value_bytes: usize| pb::WatchResponse {
            watch_id,
            events: vec![mvccpb::Event {
                kv: Some(mvccpb::KeyValue {
                    value: vec![b'v'; value_bytes],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let ids = |batch: Vec<Bytes>| {
            queue.sent();
            batch
                .into_iter()
                .map(|r| pb::WatchResponse::decode(r).unwrap().watch_id)
                .collect::<Vec<_>>()
        };
        for id in 0..SEND_BATCH_RESPONSES as i64 + 3 {
            queue.push(response(id, 10));
        }
        let first = futures_lite::future::block_on(queue.next_batch()).unwrap();
        assert_eq!(
            ids(first),
            (0..SEND_BATCH_RESPONSES as i64).collect::<Vec<_>>()
        );
        queue.push(response(1000, SEND_BATCH_BYTES));
        queue.push(response(1001, 10));
        let second = futures_lite::future::block_on(queue.next_batch()).unwrap();
        let last = SEND_BATCH_RESPONSES as i64;
        assert_eq!(ids(second), vec![last, last + 1, last + 2]);
        let big = futures_lite::future::block_on(queue.next_batch()).unwrap();
        assert_eq!(ids(big), vec![1000]);
        let rest = futures_lite::future::block_on(queue.next_batch()).unwrap();
        assert_eq!(ids(rest), vec![1001]);
        assert_eq!(queue.queued_bytes.get(), 0);
        queue.close();
        assert!(futures_lite::future::block_on(queue.next_batch()).is_none());
    }

    // Goal: a batch taken for sending still counts against the member's and the stream's byte
    // bounds until its send returns, so streams whose clients do not read cannot each hold a
    // batch outside the member's bound; once sent, its bytes leave both counts.
    #[test]
    fn a_batch_being_sent_counts_until_it_is_sent() {
        let limits = WatchLimits::new(usize::MAX, usize::MAX, 1 << 20);
        let queue = StreamQueue::new(limits.clone());
        let big = pb::WatchResponse {
            events: vec![mvccpb::Event {
                kv: Some(mvccpb::KeyValue {
                    value: vec![b'v'; 1 << 20],
                    ..Default::default()
                }),
                ..Default::default()
            }],
            ..Default::default()
        };
        let bytes = big.encoded_len();
        queue.push(big);
        let batch = futures_lite::future::block_on(queue.next_batch()).unwrap();
        assert_eq!(batch.len(), 1);
        assert_eq!(limits.queued_bytes(), bytes, "counted while being sent");
        assert!(!queue.has_room(), "the member is full while it is sent");
        queue.sent();
        assert_eq!(limits.queued_bytes(), 0);
        assert!(queue.has_room());
        // A stream closed mid-send uncounts its batch with it.
        queue.push(pb::WatchResponse {
            watch_id: 1,
            ..Default::default()
        });
        let _batch = futures_lite::future::block_on(queue.next_batch()).unwrap();
        assert!(limits.queued_bytes() > 0);
        drop(queue);
        assert_eq!(limits.queued_bytes(), 0);
    }

    // Goal: the index of unsynced watchers (what catching up visits) follows every way a
    // watcher changes state or goes away: falling behind on a full queue, created in the past,
    // caught up, cancelled or its stream closed while unsynced.
    #[test]
    fn the_unsynced_index_follows_every_watcher() {
        let (_dir, engine, hub) = hub_fed_from_a_fresh_engine();
        let (a, queue_a) = hub.open_stream();
        let (b, queue_b) = hub.open_stream();
        watch_from(&hub, a, "k", 0);
        watch_from(&hub, b, "k", 0);
        let puts = STREAM_QUEUE_LIMIT + 10;
        let fill = |hub: &WatchHub| {
            for _ in 0..puts {
                put(&engine, "k");
                while hub.publish_from_engine() {}
            }
        };
        fill(&hub);
        hub.assert_unsynced_index();
        assert_eq!(hub.unsynced_of(a).len(), 1, "a's live watcher fell behind");
        watch_from(&hub, a, "k", 1); // in the past, on a full queue: stays unsynced
        hub.assert_unsynced_index();
        assert_eq!(hub.unsynced_of(a).len(), 2);
        let past = hub.unsynced_of(a)[1];
        hub.cancel(a, past.1);
        hub.assert_unsynced_index();
        assert_eq!(hub.unsynced_of(a).len(), 1);
        for queue in [&queue_a, &queue_b] {
            while queue.pop().is_some() {}
        }
        for _ in 0..puts {
            hub.catch_up_all();
            for queue in [&queue_a, &queue_b] {
                while queue.pop().is_some() {}
            }
            hub.assert_unsynced_index();
        }
        assert!(hub.unsynced.borrow().is_empty(), "both caught up");
        fill(&hub);
        hub.assert_unsynced_index();
        assert!(!hub.unsynced_of(a).is_empty());
        hub.close_stream(a);
        hub.close_stream(b);
        hub.assert_unsynced_index();
        assert!(hub.unsynced.borrow().is_empty());
    }

    fn put(engine: &Engine, key: &str) -> i64 {
        put_value(engine, key, b"v".to_vec())
    }

    fn put_value(engine: &Engine, key: &str, value: Vec<u8>) -> i64 {
        let mut batch = engine.write().unwrap();
        batch
            .put(&engine::PutRequest {
                key: key.into(),
                value,
                ..Default::default()
            })
            .unwrap();
        let revision = batch.current_revision();
        batch.commit_unsynced().unwrap();
        revision
    }

    // Goal: a live batch at or above the fragment size reaches a watcher that asked for
    // fragments in several responses (all but the last marked, every event once, in order) and
    // any other watcher whole; both move past the batch, and the queue counts exactly the bytes
    // it holds.
    #[test]
    fn a_live_batch_is_fragmented_only_for_watchers_that_asked() {
        let (_dir, engine, hub) = owner_hub_over_a_fresh_engine();
        hub.set_fragment_bytes(1000);
        let (stream, queue) = hub.open_stream();
        for fragment in [true, false] {
            hub.create(
                stream,
                &pb::WatchCreateRequest {
                    key: b"f/".to_vec(),
                    range_end: b"f0".to_vec(),
                    fragment,
                    ..Default::default()
                },
            );
        }
        assert_eq!(std::iter::from_fn(|| queue.pop()).count(), 2, "two created");
        let mut batch = engine.write().unwrap();
        for i in 0..5 {
            batch
                .put(&engine::PutRequest {
                    key: format!("f/{i}").into(),
                    value: vec![b'x'; 400],
                    ..Default::default()
                })
                .unwrap();
        }
        let last = batch.current_revision();
        batch.commit_unsynced().unwrap();
        let events = engine
            .read()
            .unwrap()
            .events_since(1, 100, 1 << 20)
            .unwrap();
        assert_eq!(events.len(), 5);
        hub.publish(&events);
        let held: usize = queue.responses.borrow().iter().map(Bytes::len).sum();
        assert_eq!(queue.queued_bytes.get(), held);
        let responses: Vec<pb::WatchResponse> = std::iter::from_fn(|| queue.pop()).collect();
        let revisions = |parts: &[&pb::WatchResponse]| -> Vec<i64> {
            parts
                .iter()
                .flat_map(|r| r.events.iter().map(|e| e.kv.as_ref().unwrap().mod_revision))
                .collect()
        };
        let expected: Vec<i64> = events.iter().map(|e| e.kv.mod_revision).collect();
        let parts: Vec<&pb::WatchResponse> = responses.iter().filter(|r| r.watch_id == 0).collect();
        assert!(parts.len() >= 2, "{} parts", parts.len());
        let (final_part, marked) = parts.split_last().unwrap();
        assert!(marked.iter().all(|p| p.fragment) && !final_part.fragment);
        assert!(parts
            .iter()
            .all(|p| p.events.len() == 1 || p.encoded_len() < 1000));
        assert_eq!(revisions(&parts), expected);
        let whole: Vec<&pb::WatchResponse> = responses.iter().filter(|r| r.watch_id == 1).collect();
        assert_eq!(whole.len(), 1);
        assert!(!whole[0].fragment);
        assert_eq!(revisions(&whole), expected);
        for watch_id in [0, 1] {
            let watchers = hub.watchers.borrow();
            let watcher = &watchers[&(stream, watch_id)];
            assert_eq!(watcher.next_revision, last + 1);
            assert!(watcher.synced && watcher.sent_since_progress);
        }
    }

    /// A hub on a core that is not the owner (fed from the engine), over an empty engine.
    fn hub_fed_from_a_fresh_engine() -> (tempfile::TempDir, Arc<Engine>, Rc<WatchHub>) {
        let (dir, engine, hub, _) = hub_fed_from_a_fresh_engine_with_presence();
        (dir, engine, hub)
    }

    /// A hub on the owner core (fed by the applies' `publish`), over an empty engine.
    fn owner_hub_over_a_fresh_engine() -> (tempfile::TempDir, Arc<Engine>, Rc<WatchHub>) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Arc::new(Engine::open(dir.path().join("db")).unwrap());
        let hub = WatchHub::new(
            engine.clone(),
            HeaderSource::new(Identity {
                cluster_id: 1,
                member_id: 2,
            }),
        );
        (dir, engine, hub)
    }

    /// The same, with the watcher count the owner would read.
    fn hub_fed_from_a_fresh_engine_with_presence() -> (
        tempfile::TempDir,
        Arc<Engine>,
        Rc<WatchHub>,
        WatcherPresence,
    ) {
        let (dir, engine, hub) = owner_hub_over_a_fresh_engine();
        let presence = WatcherPresence::default();
        hub.set_pulls_from_engine(presence.clone());
        (dir, engine, hub, presence)
    }

    /// The revisions of the events `queue` holds for `watch_id`, taking every response.
    fn event_revisions(queue: &StreamQueue) -> Vec<(i64, i64)> {
        std::iter::from_fn(|| queue.pop())
            .flat_map(|r| {
                let id = r.watch_id;
                r.events
                    .into_iter()
                    .map(move |e| (id, e.kv.unwrap().mod_revision))
            })
            .collect()
    }

    // Goal: the owner rings a core only while it has watchers, so the core counts exactly
    // its watchers (a refused create counts nothing); and a core that was not rung while it
    // had none misses nothing its next watcher wants, sees nothing twice, and does not read
    // what was committed while it had no watcher.
    #[test]
    fn a_core_counts_its_watchers_and_its_next_watcher_misses_nothing() {
        let (_dir, engine, hub, presence) = hub_fed_from_a_fresh_engine_with_presence();
        assert!(!presence.any_after_publish());
        // Writes while no watcher is here: the owner does not ring.
        for _ in 0..3 {
            put(&engine, "k");
        }
        let (stream, queue) = hub.open_stream();
        let watch = |watch_id: i64| pb::WatchCreateRequest {
            key: b"k".to_vec(),
            watch_id,
            ..Default::default()
        };
        hub.create(stream, &watch(7));
        assert!(presence.any_after_publish());
        hub.create(stream, &watch(7)); // a duplicate id: refused
        let refused: Vec<pb::WatchResponse> = std::iter::from_fn(|| queue.pop()).collect();
        assert!(refused.last().unwrap().canceled, "{refused:?}");
        hub.create(stream, &watch(8));
        let _ = event_revisions(&queue);
        let revision = put(&engine, "k");
        while hub.publish_from_engine() {}
        assert_eq!(event_revisions(&queue), vec![(7, revision), (8, revision)]);
        hub.cancel(stream, 7);
        assert!(presence.any_after_publish(), "watcher 8 is left");
        hub.close_stream(stream);
        assert!(!presence.any_after_publish(), "every watcher left");
        // Unrung again: the idle beat finds no watcher and reads nothing.
        let unread = put(&engine, "k");
        assert!(!hub.publish_from_engine());
        assert_eq!(hub.published_through.get(), unread);
    }

    // Goal: the owner's applies look up previous values only while a watcher here wants
    // them (the hub counts such watchers through every way they leave), and a prev_kv watcher
    // that an apply did not account for still gets its previous values, from history.
    #[test]
    fn prev_kv_watchers_are_counted_and_never_miss_a_previous_value() {
        let (_dir, engine, hub) = owner_hub_over_a_fresh_engine();
        put_value(&engine, "k", b"old".to_vec());
        let (stream, queue) = hub.open_stream();
        let watch = |watch_id: i64, prev_kv: bool| pb::WatchCreateRequest {
            key: b"k".to_vec(),
            watch_id,
            prev_kv,
            ..Default::default()
        };
        hub.create(stream, &watch(1, false));
        assert!(!hub.wants_prev_kv());
        // An apply that asked before watcher 2 existed: its events omit previous values.
        let mut batch = engine.write().unwrap();
        batch.set_events_prev_kv(hub.wants_prev_kv());
        hub.create(stream, &watch(2, true));
        assert!(hub.wants_prev_kv());
        let _created: Vec<pb::WatchResponse> = std::iter::from_fn(|| queue.pop()).collect();
        let (_, events) = batch
            .put(&engine::PutRequest {
                key: b"k".to_vec(),
                value: b"new".to_vec(),
                ..Default::default()
            })
            .unwrap();
        assert!(events[0].prev_kv_omitted);
        batch.commit_unsynced().unwrap();
        hub.publish(&events);
        hub.catch_up_all();
        hub.assert_unsynced_index();
        let mut prev_values = BTreeMap::new();
        for response in std::iter::from_fn(|| queue.pop()) {
            for event in response.events {
                let prev = event.prev_kv.map(|kv| kv.value);
                assert_eq!(event.kv.unwrap().value, b"new");
                assert!(prev_values.insert(response.watch_id, prev).is_none());
            }
        }
        let expected = BTreeMap::from([(1, None), (2, Some(b"old".to_vec()))]);
        assert_eq!(
            prev_values, expected,
            "one event each, previous value for watcher 2"
        );

        // Every way out uncounts: a cancel, and a closed stream.
        hub.cancel(stream, 2);
        assert!(!hub.wants_prev_kv());
        hub.create(stream, &watch(3, true));
        assert!(hub.wants_prev_kv());
        hub.close_stream(stream);
        assert!(!hub.wants_prev_kv());
    }

    // Goal: on a core fed from the engine, a progress answer at N comes after every event ≤ N
    // (etcd's promise, which Kubernetes' consistent reads rely on), even when the owner's
    // doorbell has not been served yet.
    #[test]
    fn progress_on_a_lagging_core_follows_the_events_it_claims() {
        let (_dir, engine, hub) = hub_fed_from_a_fresh_engine();
        let (stream, queue) = hub.open_stream();
        hub.create(
            stream,
            &pb::WatchCreateRequest {
                key: b"k".to_vec(),
                ..Default::default()
            },
        );
        // The owner applied a put; this core has not published it yet.
        let revision = put(&engine, "k");
        hub.progress(stream);
        let responses: Vec<pb::WatchResponse> = std::iter::from_fn(|| queue.pop()).collect();
        let event_at = responses
            .iter()
            .position(|r| r.events.len() == 1)
            .expect("the event was delivered");
        let progress_at = responses
            .iter()
            .position(|r| r.watch_id == -1)
            .expect("the progress answer");
        assert!(event_at < progress_at, "{responses:?}");
        let claimed = responses[progress_at].header.as_ref().unwrap().revision;
        assert_eq!(claimed, revision);
    }

    // Goal: a stream's queue is bounded in bytes, not only in responses: with 1 MiB values a
    // client that does not read holds at most the byte limit plus one response (one history
    // step and a revision) of our memory;
    // its watcher falls behind and, once the client reads again, catches up from history with
    // no gap and no duplicate.
    #[test]
    fn a_slow_streams_queue_is_bounded_in_bytes_and_catches_up_in_order() {
        let (_dir, engine, hub) = hub_fed_from_a_fresh_engine();
        let (stream, queue) = hub.open_stream();
        hub.create(
            stream,
            &pb::WatchCreateRequest {
                key: b"big/".to_vec(),
                range_end: b"big0".to_vec(),
                ..Default::default()
            },
        );
        const VALUE_BYTES: usize = 1 << 20;
        let puts = 3 * STREAM_QUEUE_BYTES_LIMIT / VALUE_BYTES;
        let revisions: Vec<i64> = (0..puts)
            .map(|i| put_value(&engine, &format!("big/{i:03}"), vec![b'x'; VALUE_BYTES]))
            .collect();
        while hub.publish_from_engine() {}
        assert_eq!(hub.slow.borrow().get(), 1, "the watcher fell behind");
        let queued = queue.queued_bytes.get();
        assert!(
            queued <= STREAM_QUEUE_BYTES_LIMIT + CATCH_UP_BYTES + VALUE_BYTES + 1024,
            "{queued} bytes queued"
        );
        let mut seen = Vec::new();
        for _ in 0..puts {
            while let Some(response) = queue.pop() {
                seen.extend(
                    response
                        .events
                        .iter()
                        .map(|e| e.kv.as_ref().unwrap().mod_revision),
                );
            }
            if seen.len() == puts {
                break;
            }
            hub.catch_up(stream);
        }
        assert_eq!(seen, revisions, "every event once, in order");
        assert_eq!(queue.queued_bytes.get(), 0);
        assert_eq!(hub.slow.borrow().get(), 0, "caught up");
        // One starting in the past is slow until it catches up; closing the stream uncounts it.
        hub.create(
            stream,
            &pb::WatchCreateRequest {
                key: b"big/".to_vec(),
                range_end: b"big0".to_vec(),
                start_revision: 1,
                ..Default::default()
            },
        );
        assert_eq!(hub.slow.borrow().get(), 1);
        hub.close_stream(stream);
        assert_eq!(hub.slow.borrow().get(), 0);
    }
}
