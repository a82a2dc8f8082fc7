//! Simulated time. One global clock orders every event (microseconds since the start); each
//! member's ticker runs off its own oscillator, a little fast or slow, as real hosts drift, so
//! heartbeats and election timeouts of different members slide against each other.

/// Microseconds of simulated time.
pub type Micros = u64;

/// The nominal tick (one heartbeat interval): 10 ms, ten times etcd's default rate, which
/// changes nothing for raft (it counts ticks) and makes a simulated second cheaper.
pub const TICK: Micros = 10_000;

/// How far a member's oscillator may drift from nominal, in parts per thousand.
const MAX_DRIFT_PER_MILLE: u64 = 50;

/// One member's ticker.
#[derive(Clone, Copy, Debug)]
pub struct MemberClock {
    /// The real length of this member's tick.
    pub tick: Micros,
}

impl MemberClock {
    /// A clock drifting by a seeded amount within ±5 %.
    pub fn drifting(rng: &mut super::rng::Rng) -> MemberClock {
        let per_mille = rng.between(1_000 - MAX_DRIFT_PER_MILLE, 1_000 + MAX_DRIFT_PER_MILLE + 1);
        MemberClock {
            tick: TICK * per_mille / 1_000,
        }
    }
}
