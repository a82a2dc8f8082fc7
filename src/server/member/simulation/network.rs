//! The simulated network between members: each message is lost, delayed (so reordered),
//! sometimes duplicated, or cut by a partition, as the seed decides. Partitions are per
//! direction, so a one-way cut (a member that hears but is not heard) is expressible.

use std::collections::{BTreeMap, BTreeSet};

use raft::prelude::{Message, MessageType};

use super::clock::Micros;
use super::rng::Rng;

/// Messages in flight at most; beyond it a send is dropped, as a full peer queue drops.
const IN_FLIGHT_LIMIT: usize = 20_000;

/// What the network does to a message handed to it.
pub enum Fate {
    /// Delivered after these delays (two for a duplicate).
    Deliver(Vec<Micros>),
    Lost,
}

#[derive(Default)]
pub struct Network {
    /// Directed links that carry nothing: (from, to).
    cut: BTreeSet<(u64, u64)>,
    /// When each directed link that was ever cut was last healed (a connection across it
    /// dates from then at the earliest).
    healed_at: BTreeMap<(u64, u64), Micros>,
    pub loss_percent: u64,
    pub duplicate_percent: u64,
    /// Percent of messages that take a long detour (tens of ms), overtaking later ones.
    pub straggler_percent: u64,
    in_flight: usize,
}

impl Network {
    /// Decides what happens to `message` sent now.
    pub fn send(&mut self, message: &Message, rng: &mut Rng) -> Fate {
        if !self.is_open(message.from, message.to)
            || rng.percent(self.loss_percent)
            || self.in_flight >= IN_FLIGHT_LIMIT
        {
            return Fate::Lost;
        }
        let mut delays = vec![self.delay(rng)];
        // A forwarded proposal is the one message raft does not expect twice: a copy would
        // commit the client's write twice. basalt's peer links are TCP streams, which never
        // duplicate; duplicates here exercise raft's idempotence for its own messages.
        if message.get_msg_type() != MessageType::MsgPropose && rng.percent(self.duplicate_percent)
        {
            delays.push(self.delay(rng));
        }
        self.in_flight += delays.len();
        Fate::Deliver(delays)
    }

    /// How long a snapshot's stream from `from` to `to` takes, or `None` if it breaks (a cut
    /// link, or a loss: a stream is one long TCP transfer, so a lossy link breaks it now and
    /// then). A straggler arrives long after (a stale copy).
    pub fn stream(&self, from: u64, to: u64, rng: &mut Rng) -> Option<Micros> {
        if !self.is_open(from, to) || rng.percent(self.loss_percent) {
            return None;
        }
        Some(if rng.percent(self.straggler_percent) {
            rng.between(50_000, 300_000)
        } else {
            rng.between(2_000, 20_000)
        })
    }

    fn delay(&self, rng: &mut Rng) -> Micros {
        if rng.percent(self.straggler_percent) {
            rng.between(5_000, 60_000)
        } else {
            rng.between(100, 2_000)
        }
    }

    /// Called when a message leaves the wire; whether it reaches its member (a partition that
    /// began while it travelled swallows it).
    pub fn arrive(&mut self, message: &Message) -> bool {
        assert!(self.in_flight > 0, "a message arrived that was never sent");
        self.in_flight -= 1;
        self.is_open(message.from, message.to)
    }

    pub fn is_open(&self, from: u64, to: u64) -> bool {
        !self.cut.contains(&(from, to))
    }

    /// Since when the link from `from` to `to` has carried messages without a cut (the start
    /// of the run if it never was cut), or `None` while it is cut.
    pub fn open_since(&self, from: u64, to: u64) -> Option<Micros> {
        if !self.is_open(from, to) {
            return None;
        }
        Some(self.healed_at.get(&(from, to)).copied().unwrap_or(0))
    }

    /// Cuts every link between `side` and the other members, both ways or only from `side`.
    pub fn partition(&mut self, side: &[u64], members: &[u64], both_ways: bool) {
        for &a in side {
            for &b in members.iter().filter(|b| !side.contains(b)) {
                self.cut.insert((a, b));
                if both_ways {
                    self.cut.insert((b, a));
                }
            }
        }
    }

    /// Ends every partition and every lossy, duplicating or slow behaviour, at `now`.
    pub fn heal(&mut self, now: Micros) {
        self.heal_partitions(now);
        self.loss_percent = 0;
        self.duplicate_percent = 0;
        self.straggler_percent = 0;
    }

    /// Ends every partition at `now`.
    pub fn heal_partitions(&mut self, now: Micros) {
        for link in std::mem::take(&mut self.cut) {
            self.healed_at.insert(link, now);
        }
    }
}
