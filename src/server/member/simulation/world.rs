//! The simulated cluster: members, network, disks, clocks and clients driven by one queue of
//! timed events, every choice drawn from the seed. A run has a faulty phase (crashes at any
//! event, partitions, loss, duplicates, stragglers, disk stalls), a calm phase in which the
//! clients go on writing, and a settling phase; then it checks that the members agree, that
//! no acknowledged write is lost, and that the clients' history is linearizable. Safety
//! (one leader per term, the same entry at every index, every commit durable on a quorum of
//! the leader's voters — never counting a removed member —, the same membership at every
//! applied index) is checked at every event.
//!
//! Members compact their logs, so one that falls behind a compaction (crashed, partitioned)
//! catches up by a snapshot, streamed while the faults go on (`snapshot`). With
//! `Scenario::reconfigure`, an operator adds, promotes and removes members meanwhile
//! (`reconfiguration`), each change passing the real member's `--strict-reconfig-check`
//! connectivity rules on the member asked; member ids are slot positions plus one, never
//! reused. A removed member stops once a member that applied its removal refuses it, as a
//! real one does.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use raft::prelude::{ConfState, HardState, Message, MessageType};

use crate::node::RaftOptions;
use crate::server::state_machine::membership_change::MembershipChange;

use super::client::{self, Client, History, Outstanding};
use super::clock::{MemberClock, Micros, TICK};
use super::disk::DurableLog;
use super::kv::{encode_put, CheckpointedKv, Kv};
use super::linearizability::{is_linearizable, Kind};
use super::member::{Answer, CommitPoint, Compaction, Member, Outbox};
use super::network::{Fate, Network};
use super::reconfiguration::Reconfiguration;
use super::rng::Rng;
use super::snapshot::Transfer;
use crate::server::member::reconfig_health::Connectivity;

/// The shape of one run.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    pub members: usize,
    pub clients: usize,
    /// Faults are injected during `[0, faults_until)`.
    pub faults_until: Micros,
    /// Clients stop calling at this time.
    pub writes_until: Micros,
    /// The members must have converged by this time.
    pub settle_by: Micros,
    /// Whether an operator changes the membership during the run.
    pub reconfigure: bool,
}

/// Stale snapshot copies kept for replaying late (a bound on the world's memory).
const STALE_TRANSFERS_LIMIT: usize = 4;

/// How long a sender takes to notice a stream that broke.
const STREAM_FAILURE_DELAY: Micros = 50_000;

enum Event {
    /// Boxed: a message is far larger than every other event.
    Deliver(Box<Message>),
    Tick {
        member: usize,
        incarnation: u64,
    },
    FsyncDone {
        member: usize,
        incarnation: u64,
    },
    ClientCall(usize),
    ClientTimeout {
        client: usize,
        operation: u64,
    },
    Fault,
    Restart(usize),
    EndFaults,
    /// A snapshot's stream reaches its member.
    SnapshotArrives(Box<Transfer>),
    /// The member's copy is committed: it restarts into it.
    SnapshotCommitted {
        member: usize,
        incarnation: u64,
        transfer: Box<Transfer>,
    },
    /// The sender hears how its transfer to `to` ended. `ends_transfer`: false for a
    /// MsgSnapshot refused because a transfer to `to` already runs.
    SnapshotVerdict {
        leader: usize,
        incarnation: u64,
        to: u64,
        delivered: bool,
        ends_transfer: bool,
    },
    /// The operator's next look at the membership.
    Reconfigure,
    /// A member that applied this member's removal refused its connection: it stops.
    RefusedAsRemoved(usize),
    /// A crash of this life of a member (one installing a snapshot), then a restart.
    Crash {
        member: usize,
        incarnation: u64,
    },
}

/// A member slot: up, down with what survived its crash, or gone for good after applying its
/// own removal (its last durable log kept for the quorum check). A world has a handful of
/// slots, so the size of the largest variant costs nothing worth a box.
#[allow(clippy::large_enum_variant)]
enum Slot {
    Up(Box<Member>),
    Down(DurableLog, CheckpointedKv),
    Removed(DurableLog),
}

pub struct World {
    pub seed: u64,
    scenario: Scenario,
    rng: Rng,
    pub now: Micros,
    sequence: u64,
    events: BTreeMap<(Micros, u64), Event>,
    slots: Vec<Slot>,
    incarnations: Vec<u64>,
    /// When each member's current life started (its peer connections date from then).
    started_at: Vec<Micros>,
    /// The instant simulated time 0 stands for, for `reconfig_health`'s clock.
    epoch: Instant,
    clocks: Vec<MemberClock>,
    options: RaftOptions,
    compaction: Compaction,
    pub network: Network,
    clients: Vec<Client>,
    pub history: History,
    /// The (term, data) applied at each index, by whichever member applied it first.
    applied: BTreeMap<u64, (u64, Vec<u8>)>,
    /// The leader of each term seen.
    leaders: BTreeMap<u64, u64>,
    /// The membership after each membership change applied past the bootstrap entries, as
    /// the first member to apply it saw it.
    confs: BTreeMap<u64, ConfState>,
    /// The bootstrap's entries (a joining member's table grows through them alone).
    bootstrap_entries: u64,
    /// Every index up to this one was checked durable on a quorum when committed.
    quorum_checked: u64,
    /// The term and the voters counted of each entry committed past the bootstrap.
    commit_quorums: BTreeMap<u64, (u64, Vec<u64>)>,
    /// Snapshot transfers running: (sender slot, its incarnation, target id).
    sending: BTreeSet<(usize, u64, u64)>,
    /// Copies that arrived, to replay as stale ones.
    stale_transfers: VecDeque<Transfer>,
    reconfiguration: Option<Reconfiguration>,
    /// Conf change proposals, numbered as the real member's request ids.
    next_request_id: u64,
    faults: bool,
    /// A member clients do not call (the slow-disk scenario watches the others).
    pub clients_avoid: Option<usize>,
    /// What the run exercised, for the suites' check that they are not vacuous.
    pub tally: Tally,
}

/// Counts of what a run did.
#[derive(Clone, Copy, Debug, Default)]
pub struct Tally {
    pub compactions: u64,
    pub snapshots_installed: u64,
    pub snapshots_refused: u64,
    pub membership_changes: u64,
    /// Leaders that applied their own removal.
    pub leaders_removed: u64,
    /// Snapshots installed by members added during the run.
    pub joiner_snapshots: u64,
    /// Crashes of a member holding back a commit-only hard state (`Persist::commit_only`):
    /// the commit index it had reported durable is lost, and the run's checks must hold.
    pub held_commits_lost: u64,
}

impl World {
    pub fn new(seed: u64, scenario: Scenario) -> World {
        let mut rng = Rng::new(seed);
        let voters: Vec<u64> = (1..=scenario.members as u64).collect();
        let pre_vote = rng.percent(75);
        let clocks: Vec<MemberClock> = voters
            .iter()
            .map(|_| MemberClock::drifting(&mut rng))
            .collect();
        // Short logs: a run applies a few hundred entries, so members compact often and one
        // that falls a little behind needs a snapshot.
        let compaction = Compaction {
            snapshot_count: rng.between(5, 40),
            catch_up_entries: rng.between(0, 30),
        };
        let reconfiguration = scenario
            .reconfigure
            .then(|| Reconfiguration::plan(&mut rng));
        // raft's range (1 to 2 election timeouts); each draw is replaced by a seeded one.
        let options = RaftOptions {
            heartbeat_ticks: 1,
            election_ticks: 10,
            pre_vote,
            election_ticks_range: None,
        };
        let mut world = World {
            seed,
            scenario,
            rng,
            now: 0,
            sequence: 0,
            events: BTreeMap::new(),
            slots: Vec::new(),
            incarnations: vec![0; scenario.members],
            started_at: vec![0; scenario.members],
            epoch: Instant::now(),
            clocks,
            options,
            compaction,
            network: Network::default(),
            clients: (0..scenario.clients).map(|_| Client::default()).collect(),
            history: History::default(),
            applied: BTreeMap::new(),
            leaders: BTreeMap::new(),
            confs: BTreeMap::new(),
            bootstrap_entries: voters.len() as u64,
            // The bootstrap's entries are committed by construction, on every initial member.
            quorum_checked: voters.len() as u64,
            commit_quorums: BTreeMap::new(),
            sending: BTreeSet::new(),
            stale_transfers: VecDeque::new(),
            reconfiguration,
            next_request_id: 1,
            faults: scenario.faults_until > 0,
            clients_avoid: None,
            tally: Tally::default(),
        };
        // etcd's bootstrap: every initial member's log starts with one AddNode per initial
        // member, committed, and its table records them; the log's first metadata holds the
        // voters.
        let members: Vec<(u64, Vec<String>)> = voters
            .iter()
            .map(|&id| (id, vec![format!("http://sim-{id}:2380")]))
            .collect();
        let mut log = DurableLog {
            entries: MembershipChange::bootstrap_entries(&members),
            ..DurableLog::default()
        };
        log.snapshot.mut_conf_state().voters = voters.clone();
        log.hard_state = HardState {
            term: 1,
            vote: 0,
            commit: voters.len() as u64,
        };
        world
            .confs
            .insert(0, Kv::bootstrapped(&voters).cluster.conf_state());
        for member in 0..scenario.members {
            world.slots.push(Slot::Down(
                log.clone(),
                CheckpointedKv::new(Kv::bootstrapped(&voters)),
            ));
            world.restart(member);
        }
        if world.reconfiguration.is_some() {
            let at = world.rng.between(50_000, 300_000);
            world.schedule(at, Event::Reconfigure);
        }
        for client in 0..scenario.clients {
            let at = world.rng.between(0, 50_000);
            world.schedule(at, Event::ClientCall(client));
        }
        if world.faults {
            let at = world.rng.between(0, 100_000);
            world.schedule(at, Event::Fault);
            world.schedule(scenario.faults_until, Event::EndFaults);
        }
        world
    }

    fn schedule(&mut self, after: Micros, event: Event) {
        self.sequence += 1;
        self.events.insert((self.now + after, self.sequence), event);
    }

    pub fn member(&self, index: usize) -> Option<&Member> {
        match &self.slots[index] {
            Slot::Up(member) => Some(member),
            Slot::Down(..) | Slot::Removed(..) => None,
        }
    }

    pub fn member_mut(&mut self, index: usize) -> Option<&mut Member> {
        match &mut self.slots[index] {
            Slot::Up(member) => Some(member),
            Slot::Down(..) | Slot::Removed(..) => None,
        }
    }

    /// What member `index`'s log holds durably, whether it is up, down or removed.
    fn durable_log(&self, index: usize) -> &DurableLog {
        match &self.slots[index] {
            Slot::Up(member) => member.disk.durable(),
            Slot::Down(log, _) | Slot::Removed(log) => log,
        }
    }

    /// Every member id ever started.
    fn ids(&self) -> Vec<u64> {
        (1..=self.slots.len() as u64).collect()
    }

    /// The index of the member that leads with the highest term, if any is up.
    pub fn leader(&self) -> Option<usize> {
        (0..self.slots.len())
            .filter_map(|i| self.member(i).map(|m| (i, m)))
            .filter(|(_, m)| m.node.is_leader())
            .max_by_key(|(_, m)| m.node.term())
            .map(|(i, _)| i)
    }

    /// Runs events until simulated time `until` (or the queue empties).
    pub fn run_until(&mut self, until: Micros, mut after_event: impl FnMut(&World)) {
        while let Some(entry) = self.events.first_entry() {
            if entry.key().0 > until {
                break;
            }
            let ((at, _), event) = entry.remove_entry();
            assert!(at >= self.now, "time runs forward");
            self.now = at;
            self.handle(event);
            self.check_safety();
            after_event(self);
        }
        self.now = self.now.max(until);
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver(message) => {
                if !self.network.arrive(&message) {
                    return;
                }
                let to = (message.to - 1) as usize;
                if to >= self.slots.len() {
                    return;
                }
                let Some(member) = self.member_mut(to) else {
                    return;
                };
                if member.kv.live.cluster.is_removed(message.from) {
                    // The peer transport of a member that applied the removal refuses the
                    // removed member's connection, which then stops for good (etcd's 410
                    // Gone, `peer_link`'s `Refusal::Removed`): the refusal travels back.
                    let from = message.from;
                    if self.network.is_open(message.to, from) {
                        let after = self.rng.between(100, 2_000);
                        self.schedule(after, Event::RefusedAsRemoved((from - 1) as usize));
                    }
                    return;
                }
                // Raft stands still while a snapshot commits.
                if member.frozen {
                    return;
                }
                // A message from an earlier life of a member, or a stale one, is raft's
                // to judge; an error here is raft refusing it, which a member logs and drops.
                let _ = member.node.step(*message);
                self.pump(to);
            }
            Event::Tick {
                member,
                incarnation,
            } => {
                if incarnation != self.incarnations[member] {
                    return;
                }
                let tick = self.clocks[member].tick;
                let checkpoint = self.rng.percent(10);
                let node = self.member_mut(member).expect("a live incarnation is up");
                if !node.frozen {
                    node.node.tick();
                }
                if checkpoint {
                    node.kv.checkpoint();
                }
                self.pump(member);
                self.schedule(
                    tick,
                    Event::Tick {
                        member,
                        incarnation,
                    },
                );
            }
            Event::FsyncDone {
                member,
                incarnation,
            } => {
                if incarnation != self.incarnations[member] {
                    return;
                }
                let now = self.now;
                let stalled_until = self.member(member).expect("up").disk.stalled_until;
                if now < stalled_until {
                    // The fdatasync hangs until the stall ends.
                    let latency = self.fsync_latency();
                    self.schedule(
                        stalled_until - now + latency,
                        Event::FsyncDone {
                            member,
                            incarnation,
                        },
                    );
                    return;
                }
                let mut out = Outbox::default();
                self.member_mut(member).expect("up").on_fsync(&mut out);
                self.deliver(member, out);
            }
            Event::ClientCall(client) => self.client_call(client),
            Event::ClientTimeout { client, operation } => {
                let Some(outstanding) = self.clients[client]
                    .outstanding
                    .take_if(|o| o.operation == operation)
                else {
                    return;
                };
                if let Some(member) = self.member_mut(outstanding.member) {
                    member.forget(operation);
                }
                self.give_up(outstanding);
                self.schedule_call(client);
            }
            Event::Fault => self.inject_fault(),
            Event::Restart(member) => {
                if matches!(self.slots[member], Slot::Down(..)) {
                    self.restart(member);
                }
            }
            Event::EndFaults => {
                self.faults = false;
                self.network.heal(self.now);
                for member in 0..self.slots.len() {
                    match &mut self.slots[member] {
                        Slot::Up(up) => up.disk.stalled_until = 0,
                        Slot::Down(..) => self.restart(member),
                        Slot::Removed(_) => {}
                    }
                }
            }
            Event::SnapshotArrives(transfer) => self.snapshot_arrives(*transfer),
            Event::SnapshotCommitted {
                member,
                incarnation,
                transfer,
            } => self.snapshot_committed(member, incarnation, *transfer),
            Event::SnapshotVerdict {
                leader,
                incarnation,
                to,
                delivered,
                ends_transfer,
            } => {
                if ends_transfer {
                    self.sending.remove(&(leader, incarnation, to));
                }
                if incarnation != self.incarnations[leader] {
                    return; // The sender crashed meanwhile: nobody waits.
                }
                let Some(sender) = self.member_mut(leader) else {
                    return;
                };
                sender.node.report_snapshot(to, delivered);
                self.pump(leader);
            }
            Event::Reconfigure => self.reconfigure(),
            Event::RefusedAsRemoved(member) => self.stop_removed(member),
            Event::Crash {
                member,
                incarnation,
            } => {
                if incarnation == self.incarnations[member] && self.member(member).is_some() {
                    self.crash(member);
                    let down_for = self.rng.between(10_000, 300_000);
                    self.schedule(down_for, Event::Restart(member));
                }
            }
        }
    }

    /// A leader's raft wants `message` (a MsgSnapshot) sent: a copy of its state machine
    /// streams to the target, one transfer per target at a time; one that cannot start is
    /// reported failed at once.
    fn start_transfer(&mut self, leader: usize, message: &Message) {
        let incarnation = self.incarnations[leader];
        let to = message.to;
        let fail = |world: &mut World, ends_transfer: bool, after: Micros| {
            world.schedule(
                after,
                Event::SnapshotVerdict {
                    leader,
                    incarnation,
                    to,
                    delivered: false,
                    ends_transfer,
                },
            );
        };
        if !self.sending.insert((leader, incarnation, to)) {
            return fail(self, false, 0);
        }
        let sender = self.member(leader).expect("a sender is up");
        let Ok(transfer) = Transfer::for_message(message, sender, incarnation) else {
            return fail(self, true, 0);
        };
        match self.network.stream(message.from, to, &mut self.rng) {
            Some(delay) => self.schedule(delay, Event::SnapshotArrives(Box::new(transfer))),
            None => fail(self, true, STREAM_FAILURE_DELAY),
        }
    }

    /// Tells the sender of `transfer` its verdict, over the network (a cut link breaks the
    /// stream: the sender hears a failure).
    fn send_verdict(&mut self, transfer: &Transfer, delivered: bool) {
        if !transfer.awaited {
            return;
        }
        let open = self.network.is_open(transfer.to, transfer.from);
        let after = if open {
            self.rng.between(100, 2_000)
        } else {
            STREAM_FAILURE_DELAY
        };
        self.schedule(
            after,
            Event::SnapshotVerdict {
                leader: (transfer.from - 1) as usize,
                incarnation: transfer.sender_incarnation,
                to: transfer.to,
                delivered: delivered && open,
                ends_transfer: true,
            },
        );
    }

    /// A copy reaches its member: refused by the installer's rules, or accepted — the member
    /// stands still and the copy commits after one disk write.
    fn snapshot_arrives(&mut self, transfer: Transfer) {
        let index = (transfer.to - 1) as usize;
        let open = self.network.is_open(transfer.from, transfer.to);
        let accepted = match self.member_mut(index) {
            Some(member) if open && !member.frozen => {
                member.freeze_for_snapshot(transfer.from, &transfer.metadata)
            }
            _ => Err("not taken".into()),
        };
        if accepted.is_err() {
            self.tally.snapshots_refused += 1;
            if self.member(index).is_some_and(|m| !m.frozen) {
                // A refusal as stale answered raft (`Member::freeze_for_snapshot`).
                self.pump(index);
            }
            return self.send_verdict(&transfer, false);
        }
        let incarnation = self.incarnations[index];
        let stalled_until = self.member(index).expect("up").disk.stalled_until;
        let commit_after = stalled_until.saturating_sub(self.now) + self.fsync_latency();
        if self.faults && self.rng.percent(15) {
            // A crash while the copy commits: the member restarts on its old state.
            let at = self.rng.below(commit_after);
            self.schedule(
                at,
                Event::Crash {
                    member: index,
                    incarnation,
                },
            );
        }
        self.schedule(
            commit_after,
            Event::SnapshotCommitted {
                member: index,
                incarnation,
                transfer: Box::new(transfer),
            },
        );
    }

    /// The copy's commit point is durable: the member restarts into it (its log reset after
    /// the snapshot's index, its state machine the copy), and the sender hears it arrived. A
    /// crash before this point lost the copy (the sender hears a failure).
    fn snapshot_committed(&mut self, index: usize, incarnation: u64, transfer: Transfer) {
        if incarnation != self.incarnations[index] {
            return self.send_verdict(&transfer, false);
        }
        let metadata = transfer.metadata.clone();
        let member = self.member(index).expect("a live incarnation is up");
        assert!(
            member.frozen,
            "a copy commits only on a member standing still"
        );
        let hard_state = transfer.hard_state(member.disk.written_hard_state());
        self.check_conf_at(metadata.index, transfer.kv.cluster.conf_state());
        // The process restarts: what its log had in flight is torn as in a crash.
        self.crash(index);
        let Slot::Down(log, _) = &mut self.slots[index] else {
            unreachable!("a crashed member is down");
        };
        log.reset_to_snapshot(metadata, hard_state);
        let log = log.clone();
        self.slots[index] = Slot::Down(log, CheckpointedKv::new(transfer.kv.clone()));
        self.restart(index);
        self.check_committed_still_durable(transfer.metadata.index);
        self.tally.snapshots_installed += 1;
        if index >= self.scenario.members {
            self.tally.joiner_snapshots += 1;
        }
        self.send_verdict(&transfer, true);
        if self.stale_transfers.len() == STALE_TRANSFERS_LIMIT {
            self.stale_transfers.pop_front();
        }
        self.stale_transfers.push_back(transfer.stale_copy());
        if self.faults && self.rng.percent(20) {
            // A crash right after the install.
            self.crash(index);
            let down_for = self.rng.between(10_000, 300_000);
            self.schedule(down_for, Event::Restart(index));
        }
    }

    /// An install drops the entries after its index from its member's log: every committed
    /// entry among them must still be durable on a majority of the voters its commit counted
    /// (were this member one of them, raft's promise would now rest on fewer).
    fn check_committed_still_durable(&self, after: u64) {
        for (&entry, (term, voters)) in self.commit_quorums.range(after + 1..) {
            let holders = voters
                .iter()
                .filter(|&&voter| self.durable_log(voter as usize - 1).holds(entry, *term))
                .count();
            assert!(
                2 * holders > voters.len(),
                "seed {}: after a snapshot install at {after}, committed entry {entry} is durable \
                 on only {holders} of voters {voters:?}",
                self.seed
            );
        }
    }

    /// The membership at `index` (as the world recorded it) must be `conf_state`.
    fn check_conf_at(&self, index: u64, conf_state: ConfState) {
        if index <= self.bootstrap_entries {
            return;
        }
        let (at, recorded) = self
            .confs
            .range(..=index)
            .next_back()
            .expect("the initial membership is recorded");
        assert_eq!(
            *recorded, conf_state,
            "seed {}: a snapshot at {index} holds a membership other than the one applied at {at}",
            self.seed
        );
    }

    /// The operator: finishes the current change once the leader applied it, proposes it
    /// again while it is not, or starts the next one.
    fn reconfigure(&mut self) {
        let retry = self.rng.between(20_000, 100_000);
        let Some(leader) = self.leader() else {
            return self.schedule(retry, Event::Reconfigure);
        };
        let leader_id = leader as u64 + 1;
        let cluster = self.member(leader).expect("up").kv.live.cluster.clone();
        let new_id = self.slots.len() as u64 + 1;
        let change = {
            let Some(plan) = self.reconfiguration.as_mut() else {
                return;
            };
            if plan.finish_if_applied(&cluster) {
                self.tally.membership_changes += 1;
            }
            match &plan.current {
                Some(change) => change.clone(),
                None => match plan.next_change(&cluster, leader_id, new_id, &mut self.rng) {
                    Some(change) => change,
                    None => return, // The plan is done.
                },
            }
        };
        if let MembershipChange::Add { member_id, .. } = change {
            if member_id as usize > self.slots.len() {
                // etcd's order: MemberAdd, then the new member starts with an empty log.
                assert_eq!(
                    member_id as usize,
                    self.slots.len() + 1,
                    "ids are slots + 1"
                );
                self.slots
                    .push(Slot::Down(DurableLog::default(), CheckpointedKv::default()));
                self.incarnations.push(0);
                self.started_at.push(0);
                self.clocks.push(MemberClock::drifting(&mut self.rng));
                self.restart(member_id as usize - 1);
            }
        }
        if let MembershipChange::Promote { member_id } = change {
            // etcd's rule: only a learner in sync with the leader is promoted.
            let leader_node = &self.member(leader).expect("up").node;
            if leader_node.learner_in_sync(member_id) != Some(true) {
                return self.schedule(retry, Event::Reconfigure);
            }
        }
        // Proposed on a member of the world's choosing; a follower forwards it.
        let proposer = self.rng.below(self.slots.len() as u64) as usize;
        if !self.connected_enough_for(proposer, &change) {
            // etcd's "unhealthy cluster" (`--strict-reconfig-check`): asked again later.
            return self.schedule(retry, Event::Reconfigure);
        }
        let request_id = self.next_request_id;
        self.next_request_id += 1;
        if let Some(member) = self.member_mut(proposer) {
            if !member.frozen && !member.node.is_learner() {
                let _ = member
                    .node
                    .propose_conf_change(change.to_conf_change(request_id));
                self.pump(proposer);
            }
        }
        self.schedule(retry, Event::Reconfigure);
    }

    /// The real member's `--strict-reconfig-check` connectivity rules (`reconfig_health`,
    /// on by default, as in etcd) on `proposer`, as its table and its links see the voters.
    /// etcd's health interval of 5 s is five of its default election timeouts; here it is five
    /// of the simulation's, so a change waits for links that held that long, as a real one
    /// does. A member that is not up proposes nothing: no check.
    fn connected_enough_for(&self, proposer: usize, change: &MembershipChange) -> bool {
        let Some(member) = self.member(proposer) else {
            return true;
        };
        let own = proposer as u64 + 1;
        let cluster = &member.kv.live.cluster;
        let at = |micros: Micros| self.epoch + Duration::from_micros(micros);
        let voters: Vec<(u64, Option<Instant>)> = cluster
            .voters()
            .into_iter()
            .map(|id| {
                let since = (id != own)
                    .then(|| self.active_since(proposer, id as usize - 1))
                    .flatten();
                (id, since.map(at))
            })
            .collect();
        let connectivity = Connectivity {
            own,
            voters: &voters,
            now: at(self.now),
            health_interval: Duration::from_micros(5 * self.options.election_ticks as u64 * TICK),
        };
        let learners = cluster.learners();
        connectivity.allows(change, |id| learners.contains(&id))
    }

    /// Since when members `a` and `b` (slots) have been connected without a break: both up
    /// since then and the links both ways open; `None` if they are not now.
    fn active_since(&self, a: usize, b: usize) -> Option<Micros> {
        self.member(a)?;
        self.member(b)?;
        let (id_a, id_b) = (a as u64 + 1, b as u64 + 1);
        let links = self
            .network
            .open_since(id_a, id_b)?
            .max(self.network.open_since(id_b, id_a)?);
        Some(links.max(self.started_at[a]).max(self.started_at[b]))
    }

    fn fsync_latency(&mut self) -> Micros {
        self.rng.between(200, 4_000)
    }

    /// Carries out a member's effects after an input.
    fn pump(&mut self, member: usize) {
        let mut out = Outbox::default();
        self.member_mut(member).expect("up").pump(&mut out);
        self.deliver(member, out);
    }

    /// Sends a member's messages, answers its clients, records its applies, and starts an
    /// fdatasync if its disk has writes waiting.
    fn deliver(&mut self, member: usize, out: Outbox) {
        for message in out.messages {
            if message.get_msg_type() == MessageType::MsgSnapshot {
                self.start_transfer(member, &message);
                continue;
            }
            match self.network.send(&message, &mut self.rng) {
                Fate::Lost => {}
                Fate::Deliver(delays) => {
                    for delay in delays {
                        self.schedule(delay, Event::Deliver(Box::new(message.clone())));
                    }
                }
            }
        }
        for (index, term, data) in out.applied {
            let first = self
                .applied
                .entry(index)
                .or_insert_with(|| (term, data.clone()));
            assert!(
                *first == (term, data),
                "seed {}: two members applied different entries at index {index}",
                self.seed
            );
        }
        for (index, conf_state) in out.conf_changes {
            if index <= self.bootstrap_entries {
                continue; // A joining member's table grows through the bootstrap alone.
            }
            let first = self
                .confs
                .entry(index)
                .or_insert_with(|| conf_state.clone());
            assert!(
                *first == conf_state,
                "seed {}: members disagree on the membership after index {index}: \
                 {first:?} and {conf_state:?}",
                self.seed
            );
        }
        self.check_commit_quorum(member, &out.commit_points);
        self.tally.compactions += out.compactions;
        for (operation, answer) in out.answers {
            self.answer(operation, answer);
        }
        let up = self.member(member).expect("up");
        if up.removed {
            if up.node.is_leader() {
                self.tally.leaders_removed += 1;
            }
            // It applied its own removal: it stops for good, as a real member exits.
            self.stop_removed(member);
            return;
        }
        let incarnation = self.incarnations[member];
        if self.member_mut(member).expect("up").disk.start_fsync() {
            let latency = self.fsync_latency();
            self.schedule(
                latency,
                Event::FsyncDone {
                    member,
                    incarnation,
                },
            );
        }
    }

    /// Member `index` stops for good, removed from the cluster (what its disk holds stays
    /// for the quorum checks). A member that is down has nothing to stop: its next life is
    /// refused in turn when it reaches a member that applied its removal.
    fn stop_removed(&mut self, index: usize) {
        if self.member(index).is_none() {
            return;
        }
        self.crash(index);
        if let Slot::Down(log, _) = &self.slots[index] {
            self.slots[index] = Slot::Removed(log.clone());
        }
    }

    fn answer(&mut self, operation: u64, answer: Answer) {
        let client = (operation >> 32) as usize;
        let Some(outstanding) = self.clients[client]
            .outstanding
            .take_if(|o| o.operation == operation)
        else {
            return; // The client gave up on it.
        };
        match answer {
            Answer::Put { revision } => self.history.put_returned(
                outstanding.record,
                operation.to_le_bytes().to_vec(),
                revision,
            ),
            Answer::Get { value } => self.history.get_returned(outstanding.record, value),
        }
        self.schedule_call(client);
    }

    /// The client stops waiting: a put's outcome stays unknown, a get is dropped.
    fn give_up(&mut self, outstanding: Outstanding) {
        let is_get = outstanding.operation & 1 == 1;
        if is_get {
            self.history.drop_get(outstanding.record);
        }
    }

    fn schedule_call(&mut self, client: usize) {
        let think = self.rng.between(0, 20_000);
        self.schedule(think, Event::ClientCall(client));
    }

    fn client_call(&mut self, client: usize) {
        if self.now >= self.scenario.writes_until {
            return;
        }
        assert!(
            self.clients[client].outstanding.is_none(),
            "one operation at a time"
        );
        let mut member = self.rng.below(self.slots.len() as u64) as usize;
        if self.clients_avoid == Some(member) {
            member = (member + 1) % self.slots.len();
        }
        let key = format!("k{}", self.rng.below(client::KEYS)).into_bytes();
        // Odd sequence numbers are gets, even ones puts.
        let is_get = self.rng.percent(40);
        let sequence = {
            let c = &mut self.clients[client];
            let mut s = c.next_sequence;
            if (s & 1 == 1) != is_get {
                s += 1;
            }
            c.next_sequence = s + 1;
            s
        };
        let operation = client::operation_id(client, sequence);
        let Some(up) = self.member_mut(member) else {
            // Connection refused: nothing happened; try again shortly.
            return self.schedule_call(client);
        };
        if up.node.leader() == 0 || up.frozen || up.node.is_learner() {
            // etcd answers `no leader` at once (raft-rs would drop the read silently), refuses
            // a learner's client requests, and a member installing a snapshot serves none.
            return self.schedule_call(client);
        }
        let record = if is_get {
            up.read(operation, key.clone());
            self.history.call(key.clone(), Kind::Get(None))
        } else {
            if !up.propose(
                operation,
                encode_put(operation, &key, &operation.to_le_bytes()),
            ) {
                // Refused at once (no leader): nothing will be applied.
                return self.schedule_call(client);
            }
            self.history.call(key.clone(), Kind::Put(operation))
        };
        self.clients[client].outstanding = Some(Outstanding {
            operation,
            member,
            record,
        });
        self.schedule(client::TIMEOUT, Event::ClientTimeout { client, operation });
        self.pump(member);
    }

    /// Stops member `index` at this very event: its writes in flight are torn, its waiters lost.
    pub fn crash(&mut self, index: usize) {
        let slot = std::mem::replace(
            &mut self.slots[index],
            Slot::Down(DurableLog::default(), CheckpointedKv::default()),
        );
        let Slot::Up(member) = slot else {
            self.slots[index] = slot;
            return;
        };
        if member.disk.holds_back_a_commit() {
            self.tally.held_commits_lost += 1;
        }
        let (log, kv) = member.crash(&mut self.rng);
        self.slots[index] = Slot::Down(log, kv);
        self.incarnations[index] += 1;
    }

    pub fn restart(&mut self, index: usize) {
        let slot = std::mem::replace(
            &mut self.slots[index],
            Slot::Down(DurableLog::default(), CheckpointedKv::default()),
        );
        let Slot::Down(log, kv) = slot else {
            panic!("restarting a member that is not down");
        };
        let id = index as u64 + 1;
        if kv.live.cluster.is_removed(id) {
            // A real member refuses to start once its table says it was removed.
            self.slots[index] = Slot::Removed(log);
            return;
        }
        let member = Member::start(self.seed, id, self.options, self.compaction, log, kv);
        self.slots[index] = Slot::Up(Box::new(member));
        self.incarnations[index] += 1;
        self.started_at[index] = self.now;
        let incarnation = self.incarnations[index];
        let first_tick = self.rng.between(0, TICK);
        self.schedule(
            first_tick,
            Event::Tick {
                member: index,
                incarnation,
            },
        );
        self.pump(index);
    }

    fn inject_fault(&mut self) {
        if !self.faults {
            return;
        }
        let n = self.slots.len() as u64;
        let member = self.rng.below(n) as usize;
        match self.rng.below(100) {
            0..=24 => {
                self.crash(member);
                let down_for = self.rng.between(10_000, 800_000);
                self.schedule(down_for, Event::Restart(member));
            }
            25..=44 => {
                let ids = self.ids();
                let side: Vec<u64> = ids
                    .iter()
                    .copied()
                    .filter(|_| self.rng.percent(40))
                    .collect();
                let both_ways = self.rng.percent(70);
                self.network.partition(&side, &ids, both_ways);
            }
            45..=59 => self.network.heal_partitions(self.now),
            60..=74 => {
                let stall = self.rng.between(20_000, 600_000);
                let until = self.now + stall;
                if let Some(up) = self.member_mut(member) {
                    up.disk.stalled_until = until;
                }
            }
            75..=89 => {
                self.network.loss_percent = [0, 0, 1, 5, 20][self.rng.below(5) as usize];
                self.network.duplicate_percent = [0, 1, 5][self.rng.below(3) as usize];
                self.network.straggler_percent = [0, 1, 10][self.rng.below(3) as usize];
            }
            90..=94 => {
                if let Some(up) = self.member_mut(member) {
                    up.kv.checkpoint();
                }
            }
            _ => {
                // A stale copy arrives late (a deposed leader's slow stream), at the member it
                // was for or at another one the copy's membership holds.
                if !self.stale_transfers.is_empty() {
                    let pick = self.rng.below(self.stale_transfers.len() as u64) as usize;
                    let mut copy = self.stale_transfers[pick].stale_copy();
                    let conf_state = copy.metadata.get_conf_state();
                    let targets: Vec<u64> = conf_state
                        .voters
                        .iter()
                        .chain(&conf_state.learners)
                        .copied()
                        .filter(|&id| id != copy.from)
                        .collect();
                    if !targets.is_empty() {
                        copy.to = targets[self.rng.below(targets.len() as u64) as usize];
                    }
                    let delay = self.rng.between(1_000, 50_000);
                    self.schedule(delay, Event::SnapshotArrives(Box::new(copy)));
                }
            }
        }
        let next = self.rng.between(5_000, 150_000);
        self.schedule(next, Event::Fault);
    }

    /// Election safety: at most one leader per term.
    fn check_safety(&mut self) {
        for slot in &self.slots {
            if let Slot::Up(member) = slot {
                if member.node.is_leader() {
                    let term = member.node.term();
                    let leader = *self.leaders.entry(term).or_insert(member.id);
                    assert_eq!(
                        leader, member.id,
                        "seed {}: two leaders in term {term}",
                        self.seed
                    );
                }
            }
        }
    }

    /// Every commit is durable on a majority of the voters its leader counted (its raft
    /// membership when it reached the commit; `Member::note_commit` checks it holds no member
    /// the table says removed). Checked on `member`'s commit points right after each of its inputs: a commit
    /// index first passes what was checked on the leader that advanced it (a follower learns
    /// one only from a leader's message, a restart or a snapshot only recovers one reached).
    fn check_commit_quorum(&mut self, member: usize, points: &[CommitPoint]) {
        let mut counted = Vec::new();
        let mut checked = self.quorum_checked;
        let leader = self.member(member).expect("up");
        for point in points {
            if point.commit <= checked {
                continue;
            }
            assert!(
                point.is_leader,
                "seed {}: member {} is the first to reach commit {} and does not lead",
                self.seed, leader.id, point.commit
            );
            for entry in checked + 1..=point.commit {
                let term = leader
                    .node
                    .term_of(entry)
                    .or_else(|| self.applied.get(&entry).map(|(term, _)| *term))
                    .expect("a committed entry is in the leader's log or applied");
                let holders = point
                    .voters
                    .iter()
                    .filter(|&&voter| {
                        (voter as usize) <= self.slots.len()
                            && self.durable_log(voter as usize - 1).holds(entry, term)
                    })
                    .count();
                assert!(
                    2 * holders > point.voters.len(),
                    "seed {}: leader {} committed {entry} durable on {holders} of voters {:?}",
                    self.seed,
                    leader.id,
                    point.voters
                );
                counted.push((entry, term, point.voters.clone()));
            }
            checked = point.commit;
        }
        self.quorum_checked = checked;
        for (entry, term, voters) in counted {
            self.commit_quorums.insert(entry, (term, voters));
        }
    }

    /// The members of the leader's table (voters and learners).
    fn final_members(&self, leader: usize) -> Vec<usize> {
        let cluster = &self.member(leader).expect("up").kv.live.cluster;
        let conf_state = cluster.conf_state();
        let mut members: Vec<usize> = conf_state
            .voters
            .iter()
            .chain(&conf_state.learners)
            .map(|&id| id as usize - 1)
            .collect();
        members.sort_unstable();
        members
    }

    /// Whether the operator is done, and every member of the leader's table is up, standing
    /// still for nothing, and has applied everything the leader committed.
    fn converged(&self) -> bool {
        if self.reconfiguration.as_ref().is_some_and(|r| !r.is_done()) {
            return false;
        }
        let Some(leader) = self.leader() else {
            return false;
        };
        let commit = self.member(leader).expect("up").node.commit_index();
        self.final_members(leader).into_iter().all(|i| {
            self.member(i).is_some_and(|m| {
                !m.frozen
                    && m.kv.live.applied_index == commit
                    && m.node.leader() == leader as u64 + 1
            })
        })
    }

    /// Every member's state and the operator's, for a failure's message.
    fn describe(&self) -> String {
        let mut lines = Vec::new();
        for (index, slot) in self.slots.iter().enumerate() {
            lines.push(match slot {
                Slot::Up(m) => format!(
                    "member {}: up, leader {} term {} commit {} applied {} frozen {} \
                     log {}..={} raft {:?} table {:?}",
                    index + 1,
                    m.node.leader(),
                    m.node.term(),
                    m.node.commit_index(),
                    m.kv.live.applied_index,
                    m.frozen,
                    m.disk.durable().snapshot.index,
                    m.disk.durable().last_index(),
                    m.node.conf_state(),
                    m.kv.live.cluster.conf_state(),
                ),
                Slot::Down(log, _) => {
                    format!("member {}: down, log to {}", index + 1, log.last_index())
                }
                Slot::Removed(_) => format!("member {}: removed", index + 1),
            });
        }
        if let Some(plan) = &self.reconfiguration {
            lines.push(format!(
                "operator: {:?}, done {}",
                plan.current,
                plan.is_done()
            ));
        }
        lines.join("\n")
    }

    /// Runs the scenario to its end and checks everything; panics with the seed on failure.
    pub fn run_and_check(mut self) -> World {
        let writes_until = self.scenario.writes_until;
        self.run_until(writes_until, |_| {});
        // Settle: no new calls; outstanding ones finish or time out.
        while !self.converged() {
            assert!(
                self.now < self.scenario.settle_by,
                "seed {}: the members did not converge after the faults ended:\n{}",
                self.seed,
                self.describe()
            );
            let until = self.now + TICK;
            self.run_until(until, |_| {});
        }
        self.check_agreement();
        self.check_history();
        self
    }

    /// A digest of the run so far (time, events, acknowledgements, every member's state), to
    /// show that a seed replays exactly.
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        (self.now, self.sequence, &self.history.acknowledged).hash(&mut hasher);
        for index in 0..self.slots.len() {
            if let Some(member) = self.member(index) {
                let hard_state = member.node.hard_state();
                (hard_state.term, hard_state.vote, hard_state.commit).hash(&mut hasher);
                member.kv.live.writes.hash(&mut hasher);
            }
        }
        hasher.finish()
    }

    /// Every member holds every acknowledged write at the revision it was answered with, and
    /// all hold the same writes.
    pub fn check_agreement(&self) {
        let leader = self.leader().expect("converged under a leader");
        let reference = &self.member(leader).expect("up").kv.live;
        for index in self.final_members(leader) {
            let kv = &self.member(index).expect("up").kv.live;
            for (key, value, revision) in &self.history.acknowledged {
                let held = kv.writes.get((*revision - 1) as usize);
                assert_eq!(
                    held,
                    Some(&(key.clone(), value.clone())),
                    "seed {}: member {} lost the acknowledged write of {:?} at revision {revision}",
                    self.seed,
                    index + 1,
                    String::from_utf8_lossy(key)
                );
            }
            assert!(
                kv == reference,
                "seed {}: member {} diverged from the leader, member {}",
                self.seed,
                index + 1,
                leader + 1
            );
        }
    }

    /// The clients' history is linearizable, key by key.
    pub fn check_history(&mut self) {
        for client in 0..self.clients.len() {
            if let Some(outstanding) = self.clients[client].outstanding.take() {
                self.give_up(outstanding);
            }
        }
        for (key, operations) in self.history.per_key() {
            assert!(
                is_linearizable(&operations),
                "seed {}: the history of {:?} is not linearizable: {operations:?}",
                self.seed,
                String::from_utf8_lossy(&key)
            );
        }
    }
}
