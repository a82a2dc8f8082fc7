//! Lease reuse as kube-apiserver does it: one lease (TTL 3660 s) attached to every event
//! written during 60 s, or to at most 1000 objects, then a fresh grant.
//!
//! The check and the grant happen under one async mutex, so concurrent writers never grant
//! two leases at once (kube-apiserver's lease manager holds a lock the same way).

use std::time::{Duration, Instant};

use etcd_client::Client;
use tokio::sync::Mutex;

/// When a lease stops being reused.
#[derive(Clone, Copy, Debug)]
pub struct LeasePolicy {
    pub ttl_seconds: i64,
    pub reuse_for: Duration,
    pub objects_per_lease_limit: u64,
}

struct CurrentLease {
    id: i64,
    granted_at: Instant,
    objects: u64,
}

/// The shared lease writers attach their events to.
pub struct LeasePool {
    policy: LeasePolicy,
    current: Mutex<Option<CurrentLease>>,
    grants: std::sync::atomic::AtomicU64,
}

impl LeasePool {
    /// A pool with no lease yet.
    pub fn new(policy: LeasePolicy) -> Self {
        LeasePool {
            policy,
            current: Mutex::new(None),
            grants: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The lease the next object goes under (granting a new one when the policy says so).
    pub async fn lease_for_object(&self, client: &mut Client) -> Result<i64, etcd_client::Error> {
        let mut current = self.current.lock().await;
        let reusable = current.as_ref().is_some_and(|lease| {
            reuse_allowed(&self.policy, lease.granted_at.elapsed(), lease.objects)
        });
        if !reusable {
            let granted = client.lease_grant(self.policy.ttl_seconds, None).await?;
            self.grants
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            *current = Some(CurrentLease {
                id: granted.id(),
                granted_at: Instant::now(),
                objects: 0,
            });
        }
        let lease = current.as_mut().expect("a lease was just ensured");
        lease.objects += 1;
        Ok(lease.id)
    }

    /// Leases granted so far.
    pub fn grants(&self) -> u64 {
        self.grants.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// Whether a lease of this age holding this many objects may take one more.
pub fn reuse_allowed(policy: &LeasePolicy, age: Duration, objects: u64) -> bool {
    age < policy.reuse_for && objects < policy.objects_per_lease_limit
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a lease is reused until it is 60 s old or holds 1000 objects, whichever first.
    #[test]
    fn reuse_stops_at_age_or_object_count() {
        let policy = LeasePolicy {
            ttl_seconds: 3660,
            reuse_for: Duration::from_secs(60),
            objects_per_lease_limit: 1000,
        };
        assert!(reuse_allowed(&policy, Duration::from_secs(59), 999));
        assert!(!reuse_allowed(&policy, Duration::from_secs(60), 1));
        assert!(!reuse_allowed(&policy, Duration::from_secs(1), 1000));
    }
}
