//! The simulated cluster: members, network, disks, clocks and clients driven by one queue of
//! timed events, every choice drawn from the seed. A run has a faulty phase (crashes at any
//! event, partitions, loss, duplicates, stragglers, disk stalls), a calm phase in which the
//! clients go on writing, and a settling phase; then it checks that the members agree, that
//! no acknowledged write is lost, and that the clients' history is linearizable. Safety
//! (one leader per term, the same entry at every index) is checked at every event.

use std::collections::BTreeMap;

use raft::prelude::Message;

use crate::node::RaftOptions;

use super::client::{self, Client, History, Outstanding};
use super::clock::{MemberClock, Micros, TICK};
use super::disk::DurableLog;
use super::kv::{encode_put, CheckpointedKv};
use super::linearizability::{is_linearizable, Kind};
use super::member::{Answer, Member, Outbox};
use super::network::{Fate, Network};
use super::rng::Rng;

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
}

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
}

/// A member slot: up, or down with what survived its crash.
enum Slot {
    Up(Box<Member>),
    Down(DurableLog, CheckpointedKv),
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
    clocks: Vec<MemberClock>,
    options: RaftOptions,
    voters: Vec<u64>,
    pub network: Network,
    clients: Vec<Client>,
    pub history: History,
    /// The data applied at each index, by whichever member applied it first.
    applied: BTreeMap<u64, Vec<u8>>,
    /// The leader of each term seen.
    leaders: BTreeMap<u64, u64>,
    faults: bool,
    /// A member clients do not call (the slow-disk scenario watches the others).
    pub clients_avoid: Option<usize>,
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
            clocks,
            options,
            voters,
            network: Network::default(),
            clients: (0..scenario.clients).map(|_| Client::default()).collect(),
            history: History::default(),
            applied: BTreeMap::new(),
            leaders: BTreeMap::new(),
            faults: scenario.faults_until > 0,
            clients_avoid: None,
        };
        for member in 0..scenario.members {
            world
                .slots
                .push(Slot::Down(DurableLog::default(), CheckpointedKv::default()));
            world.restart(member);
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
            Slot::Down(..) => None,
        }
    }

    pub fn member_mut(&mut self, index: usize) -> Option<&mut Member> {
        match &mut self.slots[index] {
            Slot::Up(member) => Some(member),
            Slot::Down(..) => None,
        }
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
                let Some(member) = self.member_mut(to) else {
                    return;
                };
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
                node.node.tick();
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
                if self.member(member).is_none() {
                    self.restart(member);
                }
            }
            Event::EndFaults => {
                self.faults = false;
                self.network.heal();
                for member in 0..self.slots.len() {
                    match self.member_mut(member) {
                        Some(up) => up.disk.stalled_until = 0,
                        None => self.restart(member),
                    }
                }
            }
        }
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
            match self.network.send(&message, &mut self.rng) {
                Fate::Lost => {}
                Fate::Deliver(delays) => {
                    for delay in delays {
                        self.schedule(delay, Event::Deliver(Box::new(message.clone())));
                    }
                }
            }
        }
        for (index, data) in out.applied {
            let first = self.applied.entry(index).or_insert_with(|| data.clone());
            assert!(
                *first == data,
                "seed {}: two members applied different entries at index {index}",
                self.seed
            );
        }
        for (operation, answer) in out.answers {
            self.answer(operation, answer);
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
        if up.node.leader() == 0 {
            // etcd answers `no leader` at once; raft-rs would drop the read silently.
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
        let (log, kv) = member.crash(&mut self.rng);
        self.slots[index] = Slot::Down(log, kv);
        self.incarnations[index] += 1;
    }

    fn restart(&mut self, index: usize) {
        let slot = std::mem::replace(
            &mut self.slots[index],
            Slot::Down(DurableLog::default(), CheckpointedKv::default()),
        );
        let Slot::Down(log, kv) = slot else {
            panic!("restarting a member that is up");
        };
        let id = index as u64 + 1;
        let member = Member::start(self.seed, id, &self.voters, self.options, log, kv);
        self.slots[index] = Slot::Up(Box::new(member));
        self.incarnations[index] += 1;
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
                let ids = self.voters.clone();
                let side: Vec<u64> = ids
                    .iter()
                    .copied()
                    .filter(|_| self.rng.percent(40))
                    .collect();
                let both_ways = self.rng.percent(70);
                self.network.partition(&side, &ids, both_ways);
            }
            45..=59 => self.network.heal_partitions(),
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
            _ => {
                if let Some(up) = self.member_mut(member) {
                    up.kv.checkpoint();
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

    /// Whether every member is up and has applied everything the leader committed.
    fn converged(&self) -> bool {
        let Some(leader) = self.leader() else {
            return false;
        };
        let commit = self.member(leader).expect("up").node.commit_index();
        (0..self.slots.len()).all(|i| {
            self.member(i).is_some_and(|m| {
                m.kv.live.applied_index == commit && m.node.leader() == leader as u64 + 1
            })
        })
    }

    /// Runs the scenario to its end and checks everything; panics with the seed on failure.
    pub fn run_and_check(mut self) -> World {
        let writes_until = self.scenario.writes_until;
        self.run_until(writes_until, |_| {});
        // Settle: no new calls; outstanding ones finish or time out.
        while !self.converged() {
            assert!(
                self.now < self.scenario.settle_by,
                "seed {}: the members did not converge after the faults ended",
                self.seed
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
        let reference = &self.member(0).expect("up").kv.live;
        for index in 0..self.slots.len() {
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
                "seed {}: member {} diverged from member 1",
                self.seed,
                index + 1
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
