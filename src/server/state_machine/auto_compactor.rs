//! `--auto-compaction-mode` / `--auto-compaction-retention`: etcd's automatic compaction,
//! decided here as plain code on an explicit clock (unit-tested), proposed through raft by a
//! thin task on the raft owner, exactly like a client's Compact.
//!
//! - periodic (retention = a duration): every tenth of min(retention, 1 h) the current revision
//!   is sampled; once a retention has passed since the start (afterwards: min(retention, 1 h)
//!   since the last success) the oldest sample — the revision of one retention ago — is
//!   compacted. A failure retries at the next sample.
//! - revision (retention = N): every 5 minutes, compact at current revision − N unless that is
//!   not positive or was compacted at the previous check.
//!
//! "Already compacted" counts as success, as in etcd.

use std::collections::VecDeque;
use std::time::Duration;

use crate::config::AutoCompaction;

/// How often the revision compactor looks (etcd's revision compactor interval).
const REVISION_CHECK_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Samples per compaction interval in periodic mode (etcd's retry divisor).
const SAMPLES_PER_INTERVAL: u32 = 10;
/// The longest compaction interval in periodic mode (longer retentions compact hourly).
const PERIODIC_INTERVAL_MAX: Duration = Duration::from_secs(3600);

/// The automatic compactor's state.
#[derive(Debug)]
pub struct AutoCompactor {
    mode: Mode,
}

#[derive(Debug)]
enum Mode {
    Disabled,
    Periodic {
        period: Duration,
        /// Between samples and between retries.
        sample_interval: Duration,
        /// Samples kept: the oldest is the revision of one period ago.
        retained: usize,
        samples: VecDeque<i64>,
        /// Time since start or since the last success that must pass before compacting.
        wait: Duration,
        /// When the last compaction succeeded (or the compactor started).
        last_success: Duration,
    },
    Revision {
        retention: i64,
        /// The revision compacted at the previous check.
        previous: Option<i64>,
    },
}

impl AutoCompactor {
    pub fn new(setting: AutoCompaction) -> AutoCompactor {
        let mode = match setting {
            AutoCompaction::Disabled => Mode::Disabled,
            AutoCompaction::Periodic(period) => {
                let interval = period.min(PERIODIC_INTERVAL_MAX);
                let sample_interval =
                    (interval / SAMPLES_PER_INTERVAL).max(Duration::from_millis(1));
                let retained = (period.as_nanos() / sample_interval.as_nanos()) as usize + 1;
                Mode::Periodic {
                    period,
                    sample_interval,
                    retained,
                    samples: VecDeque::with_capacity(retained),
                    wait: period,
                    last_success: Duration::ZERO,
                }
            }
            AutoCompaction::Revision(retention) => Mode::Revision {
                retention: i64::try_from(retention).unwrap_or(i64::MAX),
                previous: None,
            },
        };
        AutoCompactor { mode }
    }

    /// How long to wait between calls to `tick`; `None` when disabled.
    pub fn interval(&self) -> Option<Duration> {
        match &self.mode {
            Mode::Disabled => None,
            Mode::Periodic {
                sample_interval, ..
            } => Some(*sample_interval),
            Mode::Revision { .. } => Some(REVISION_CHECK_INTERVAL),
        }
    }

    /// Called every `interval` with the time since start and the current revision: the
    /// revision to compact at now, if any. Report the outcome with `compacted`.
    pub fn tick(&mut self, now: Duration, current_revision: i64) -> Option<i64> {
        match &mut self.mode {
            Mode::Disabled => None,
            Mode::Periodic {
                retained,
                samples,
                wait,
                last_success,
                ..
            } => {
                samples.push_back(current_revision);
                while samples.len() > *retained {
                    samples.pop_front();
                }
                if now.saturating_sub(*last_success) < *wait {
                    return None;
                }
                samples.front().copied().filter(|&revision| revision > 0)
            }
            Mode::Revision {
                retention,
                previous,
            } => {
                let revision = current_revision.saturating_sub(*retention);
                if revision <= 0 || *previous == Some(revision) {
                    return None;
                }
                Some(revision)
            }
        }
    }

    /// The compaction at `revision` that `tick` asked for ended, at `now`; `ok` also when it
    /// was already compacted.
    pub fn compacted(&mut self, now: Duration, revision: i64, ok: bool) {
        match &mut self.mode {
            Mode::Disabled => {}
            Mode::Periodic {
                period,
                wait,
                last_success,
                ..
            } => {
                if ok {
                    *last_success = now;
                    *wait = (*period).min(PERIODIC_INTERVAL_MAX);
                }
            }
            Mode::Revision { previous, .. } => {
                if ok {
                    *previous = Some(revision);
                }
            }
        }
    }

    /// etcd's name for the mode, for its log lines.
    pub fn mode_name(&self) -> &'static str {
        match self.mode {
            Mode::Disabled => "disabled",
            Mode::Periodic { .. } => "periodic",
            Mode::Revision { .. } => "revision",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn periodic_compacts_the_revision_of_one_retention_ago() {
        // Retention 10 s: a sample every second, 11 kept.
        let mut compactor = AutoCompactor::new(AutoCompaction::Periodic(10 * S));
        assert_eq!(compactor.interval(), Some(S));
        let mut asked = Vec::new();
        for second in 1..=25u32 {
            let now = second * S;
            // 100 revisions per second.
            if let Some(revision) = compactor.tick(now, i64::from(second) * 100) {
                asked.push((second, revision));
                compactor.compacted(now, revision, true);
            }
        }
        // Nothing for the first retention; then the sample of ten seconds earlier, every
        // 10 s (the interval is the retention when it is below an hour).
        assert_eq!(asked, vec![(10, 100), (20, 1000)]);
    }

    #[test]
    fn periodic_retries_a_failure_at_the_next_sample() {
        let mut compactor = AutoCompactor::new(AutoCompaction::Periodic(10 * S));
        for second in 1..10u32 {
            assert_eq!(compactor.tick(second * S, i64::from(second)), None);
        }
        let first = compactor.tick(10 * S, 10).unwrap();
        compactor.compacted(10 * S, first, false);
        let retry = compactor.tick(11 * S, 11).unwrap();
        assert!(
            retry >= first,
            "the window never moves back: {first} then {retry}"
        );
        compactor.compacted(11 * S, retry, true);
        assert_eq!(compactor.tick(12 * S, 12), None);
    }

    #[test]
    fn long_periods_sample_every_six_minutes_and_compact_hourly() {
        let compactor = AutoCompactor::new(AutoCompaction::Periodic(24 * 3600 * S));
        assert_eq!(compactor.interval(), Some(360 * S));
    }

    #[test]
    fn revision_mode_keeps_the_last_n_revisions() {
        let mut compactor = AutoCompactor::new(AutoCompaction::Revision(1000));
        assert_eq!(compactor.interval(), Some(300 * S));
        assert_eq!(compactor.tick(300 * S, 900), None);
        assert_eq!(compactor.tick(600 * S, 5000), Some(4000));
        compactor.compacted(600 * S, 4000, true);
        // No writes since: the same revision is not compacted twice.
        assert_eq!(compactor.tick(900 * S, 5000), None);
        assert_eq!(compactor.tick(1200 * S, 5001), Some(4001));
    }

    #[test]
    fn disabled_never_ticks() {
        let mut compactor = AutoCompactor::new(AutoCompaction::Disabled);
        assert_eq!(compactor.interval(), None);
        assert_eq!(compactor.tick(S, 100), None);
    }
}
