//! Deterministic simulation of whole replicated members, without sockets or executors: each
//! member is the sans-IO raft node, a simulated disk for its log, and the real state machine
//! (`apply_entries` over a real engine in a temporary directory). One thread drives three of
//! them through message loss, reordering, delays and crash-restarts chosen by a seeded
//! generator; each member's election timeout is fixed (10 + id ticks), so a seed replays
//! exactly.
//!
//! Checked: every write whose proposal was answered `Ok` by an apply is, once the faults stop
//! and the members catch up, in every member's engine at the revision it was answered with
//! and with the value it was written with (no compaction here, so every revision stays
//! readable); and every member's engine ends at the same revision with the same HashKV, i.e.
//! the state machine is deterministic over the replicated log. Engines are synced at seeded
//! moments, so a crash-restart resumes from a checkpoint and replays the log after it (the
//! log itself is not truncated at checkpoints here).

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;

use basalt_engine::{Engine, RangeRequest};
use basalt_net::proto::etcdserverpb as pb;
use raft::prelude::{Entry, HardState, Message, SnapshotMetadata};

use crate::node::{Persist, RaftNode, RaftOptions, Recovered};
use crate::server::state_machine::apply::{apply_entries, Applied};
use crate::server::state_machine::auth_hub::AuthHub;
use crate::server::state_machine::auth_tokens::Tokens;
use crate::server::state_machine::cluster_state::ClusterState;
use crate::server::state_machine::proposal::Proposal;

/// xorshift64*: small, deterministic, good enough to pick actions.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % n
    }
}

/// An acknowledged write: key, value, and the revision it was answered with.
type Acknowledged = (Vec<u8>, Vec<u8>, i64);

/// What a member's disk holds durably.
#[derive(Clone, Default)]
struct DurableLog {
    entries: Vec<Entry>,
    hard_state: HardState,
}

impl DurableLog {
    fn apply(&mut self, persist: &Persist) {
        assert!(persist.snapshot.is_none(), "no snapshots in this scenario");
        if let Some(after) = persist.truncate_after {
            self.entries.retain(|e| e.index <= after);
        }
        self.entries.extend(persist.entries.iter().cloned());
        if let Some(hard_state) = &persist.hard_state {
            self.hard_state = hard_state.clone();
        }
    }
}

/// One member: raft node, simulated log disk, writes in flight, and its state machine.
struct SimMember {
    id: u64,
    node: RaftNode,
    disk: DurableLog,
    in_flight: VecDeque<Persist>,
    engine: Engine,
    cluster: ClusterState,
    auth: std::sync::Arc<AuthHub>,
}

const VOTERS: [u64; 3] = [1, 2, 3];

impl SimMember {
    /// Starts (or restarts, after a crash) member `id` from its disk and its engine: raft
    /// hands out only the committed entries after what the engine has applied.
    fn start(id: u64, disk: DurableLog, engine: Engine) -> SimMember {
        let recovered = Recovered {
            snapshot: SnapshotMetadata::default(),
            entries: disk.entries.clone(),
            hard_state: disk.hard_state.clone(),
            applied_index: engine.read().unwrap().applied_index(),
        };
        // One election timeout per member (10 + id ticks): raft's own random draw would make
        // a seed's elections differ between runs.
        let election_ticks = 10 + id as usize;
        let options = RaftOptions {
            heartbeat_ticks: 1,
            election_ticks: 10,
            pre_vote: true,
            election_ticks_range: Some((election_ticks, election_ticks + 1)),
        };
        let node = RaftNode::new(id, &VOTERS, options, recovered).expect("node starts");
        let cluster = ClusterState::load(&engine, (id, Vec::new()), false).expect("cluster state");
        SimMember {
            id,
            node,
            disk,
            in_flight: VecDeque::new(),
            engine,
            cluster,
            auth: AuthHub::new(
                Tokens::from_flag("simple", std::time::Duration::from_secs(300)).expect("simple"),
                4,
                false,
            ),
        }
    }

    /// Takes raft's effects: queues its writes, sends its messages, applies what committed
    /// (recording each answered proposal in `acknowledged`).
    fn drain(
        &mut self,
        network: &mut VecDeque<Message>,
        acknowledged: &mut BTreeMap<u64, Acknowledged>,
        proposed: &BTreeMap<u64, (Vec<u8>, Vec<u8>)>,
    ) {
        while let Some(effects) = self.node.advance() {
            network.extend(effects.messages);
            if let Some(persist) = effects.persist {
                self.in_flight.push_back(persist);
            }
            // As the member does: entries the engine already holds are not applied twice.
            let applied_before = self.engine.read().unwrap().applied_index();
            let fresh: Vec<Entry> = effects
                .committed
                .into_iter()
                .filter(|e| e.index > applied_before)
                .collect();
            if let Some(last) = fresh.last() {
                let last_index = last.index;
                let batch = apply_entries(
                    &self.engine,
                    &fresh,
                    pb::ResponseHeader::default(),
                    false,
                    1_000,
                    &mut self.cluster,
                    &self.auth,
                )
                .expect("apply");
                for (id, answer) in batch.answers {
                    if let Ok(Applied::Put(response)) = answer {
                        let (key, value) = proposed[&id].clone();
                        let revision = response.header.expect("a header").revision;
                        let seen = acknowledged.insert(id, (key, value, revision));
                        // Every member answers a committed write with the same revision.
                        assert!(seen.is_none_or(|(_, _, earlier)| earlier == revision));
                    }
                }
                self.node.on_applied(last_index);
            }
        }
    }

    /// Completes the oldest write in flight: durable, and its held messages go out.
    fn complete_one_write(&mut self, network: &mut VecDeque<Message>) {
        if let Some(persist) = self.in_flight.pop_front() {
            self.disk.apply(&persist);
            network.extend(persist.messages_after);
            self.node.on_persisted(persist.ready_number);
        }
    }
}

fn open_engine(dir: &Path, id: u64) -> Engine {
    Engine::open(dir.join(format!("member-{id}.db"))).expect("engine opens")
}

/// The value of `key` in `engine` as of `revision`, with its mod revision.
fn value_at(engine: &Engine, key: &[u8], revision: i64) -> Option<(Vec<u8>, i64)> {
    let response = engine
        .read()
        .unwrap()
        .range(&RangeRequest {
            key: key.to_vec(),
            revision,
            ..Default::default()
        })
        .unwrap();
    response
        .kvs
        .first()
        .map(|kv| (kv.value.clone(), kv.mod_revision))
}

/// Steps with faults, then steps without.
const CHAOS_STEPS: u64 = 3_000;
/// Steps after the faults stop during which writes still arrive.
const CALM_WRITE_STEPS: u64 = 1_000;
/// Bound on the calm phase: long enough for re-election and catch-up whatever raft's timeouts.
const CALM_STEPS_MAX: u64 = 50_000;

#[test]
fn replicated_state_machines_agree_and_keep_every_acknowledged_write() {
    for seed in 1..=20u64 {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut members: Vec<SimMember> = VOTERS
            .iter()
            .map(|&id| SimMember::start(id, DurableLog::default(), open_engine(dir.path(), id)))
            .collect();
        let mut network: VecDeque<Message> = VecDeque::new();
        let mut proposed: BTreeMap<u64, (Vec<u8>, Vec<u8>)> = BTreeMap::new();
        let mut acknowledged: BTreeMap<u64, Acknowledged> = BTreeMap::new();
        let mut next_id = 1u64;
        let mut step = 0u64;
        loop {
            let chaos = step < CHAOS_STEPS;
            // Writes go on for a while after the faults stop, then the members settle.
            let writing = step < CHAOS_STEPS + CALM_WRITE_STEPS;
            let who = rng.below(3) as usize;
            match rng.below(100) {
                0..=19 if writing => {
                    if let Some(leader) = members.iter_mut().find(|m| m.node.is_leader()) {
                        // A few keys, rewritten often, so later writes overwrite earlier ones.
                        let key = format!("k{}", next_id % 7).into_bytes();
                        let value = format!("v{next_id}").into_bytes();
                        let put = pb::PutRequest {
                            key: key.clone(),
                            value: value.clone(),
                            ..Default::default()
                        };
                        if leader
                            .node
                            .propose(Proposal::Put(put).encode(next_id))
                            .is_ok()
                        {
                            proposed.insert(next_id, (key, value));
                        }
                        next_id += 1;
                    }
                }
                20..=34 => members[who].node.tick(),
                35..=59 => members[who].complete_one_write(&mut network),
                60..=97 => {
                    let pick = if rng.below(4) == 0 {
                        rng.below(network.len().max(1) as u64) as usize
                    } else {
                        0
                    };
                    if let Some(message) = network.remove(pick) {
                        if !(chaos && rng.below(30) == 0) {
                            let to = members.iter_mut().find(|m| m.id == message.to).unwrap();
                            let _ = to.node.step(message);
                        }
                    }
                }
                98 => {
                    // A checkpoint: the engine's commits so far become durable.
                    members[who].engine.sync().expect("engine sync");
                }
                _ if chaos => {
                    // Crash: writes in flight are lost; the log disk survives, and the engine
                    // as of its last sync (unsynced commits are gone on reopen); raft replays
                    // the committed entries after the engine's applied index.
                    let crashed = members.remove(who);
                    let (id, disk) = (crashed.id, crashed.disk.clone());
                    let engine_path = dir.path().join(format!("member-{id}.db"));
                    drop(crashed);
                    let engine = Engine::open(&engine_path).expect("engine reopens");
                    members.insert(who, SimMember::start(id, disk, engine));
                    network.retain(|m| m.to != id);
                }
                _ => {}
            }
            for member in members.iter_mut() {
                member.drain(&mut network, &mut acknowledged, &proposed);
            }
            assert!(
                network.len() < 100_000,
                "seed {seed}: the network grows without bound"
            );
            step += 1;
            if !chaos {
                let caught_up = !writing
                    && members.windows(2).all(|pair| {
                        pair[0].engine.read().unwrap().applied_index()
                            == pair[1].engine.read().unwrap().applied_index()
                    })
                    && members.iter().any(|m| m.node.is_leader());
                if caught_up {
                    break;
                }
                assert!(
                    step < CHAOS_STEPS + CALM_STEPS_MAX,
                    "seed {seed}: the members did not catch up after the faults stopped"
                );
            }
        }
        assert!(
            acknowledged.len() >= 20,
            "seed {seed}: only {} writes were acknowledged",
            acknowledged.len()
        );
        let revision = members[0].engine.read().unwrap().current_revision();
        let hash = members[0].engine.read().unwrap().hash_kv(revision).unwrap();
        for member in &members {
            for (key, value, written_at) in acknowledged.values() {
                assert_eq!(
                    value_at(&member.engine, key, *written_at),
                    Some((value.clone(), *written_at)),
                    "seed {seed}: member {} lost the write of {:?} at revision {written_at}",
                    member.id,
                    String::from_utf8_lossy(key)
                );
            }
            assert_eq!(
                member.engine.read().unwrap().current_revision(),
                revision,
                "seed {seed}"
            );
            assert_eq!(
                member.engine.read().unwrap().hash_kv(revision).unwrap(),
                hash,
                "seed {seed}: member {} diverged",
                member.id
            );
        }
    }
}
