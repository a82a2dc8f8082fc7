//! What a k8s-events run saw, kept for the verifier: the writes it sent and how they ended,
//! the events its prefix watch delivered, the LIST snapshots and the counts it read.
//!
//! Only this run's objects are recorded (their names carry the run id), so keys left by an
//! earlier run on the same server never confuse the verifier.

/// Whether a write created an object or updated one the writer created.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    /// `If mod_revision(key) == 0 Then Put Else Get`.
    Create,
    /// `If mod_revision(key) == last Then Put Else Get`.
    Update,
}

/// How a write ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// The guard held and the put was applied at this revision.
    Applied { revision: i64 },
    /// The guard failed: the server says the key's mod_revision was not the expected one.
    GuardFailed,
    /// The request failed or timed out: it may or may not have been applied.
    Unknown,
}

/// One guarded write the workload sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriteRecord {
    pub key: String,
    pub kind: WriteKind,
    pub outcome: WriteOutcome,
}

/// One put event delivered by the prefix watch (with prev_kv).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchedEvent {
    pub key: String,
    pub mod_revision: i64,
    /// The previous version's mod_revision, from prev_kv (`None` for a create).
    pub prev_mod_revision: Option<i64>,
}

/// One paginated LIST at a fixed revision, pages concatenated in order (this run's keys only).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListSnapshot {
    /// The revision every page was read at (the first page's header revision).
    pub revision: i64,
    /// (key, mod_revision) in the order the pages returned them.
    pub items: Vec<(String, i64)>,
}

/// Everything the verifier checks.
#[derive(Clone, Debug, Default)]
pub struct History {
    pub writes: Vec<WriteRecord>,
    /// Events in delivery order.
    pub events: Vec<WatchedEvent>,
    /// The watch must have delivered every applied write up to this revision (inclusive).
    pub watch_complete_through: i64,
    /// Why the watch ended early, if it did (canceled, compacted, broken stream).
    pub watch_failure: Option<String>,
    pub lists: Vec<ListSnapshot>,
    /// Count-only range results over the whole prefix, in the order they were read.
    pub counts: Vec<i64>,
}
