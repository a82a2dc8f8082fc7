//! Three whole members in one glommio executor, joined by an in-memory network instead of
//! sockets: each is the real raft loop (`raft_member`) with its log writer on a real WAL and
//! its applier on a real engine, each in its own temporary directory. The simulation
//! (`simulation/`) explores faults over thousands of seeds with a copy of the Ready handling;
//! this drives the code the server runs, so what the simulation checks of the copy is checked
//! here of the real thing on a few scenarios.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use basalt_engine::{Engine, RangeRequest};
use basalt_net::proto::etcdserverpb as pb;
use basalt_wal::{Wal, WalOptions};
use glommio::channels::local_channel::{self, LocalSender};
use raft::prelude::{Message, MessageType};

use super::applier::CompactionPacing;
use super::leader_forward::{LeaderQuery, LeaderReply};
use super::raft_member::{Member, MembershipOptions, PeerOutlet};
use crate::node::RaftOptions;
use crate::server::metrics::{MemberFacts, MetricsLevel, ServerMetrics};
use crate::server::state_machine::auth_hub::AuthHub;
use crate::server::state_machine::auth_tokens::Tokens;
use crate::server::state_machine::header::Identity;
use crate::server::state_machine::lease_lessor::LessorConfig;

/// Messages in flight to one member; a full inbox drops, as a full peer queue does.
const INBOX_LIMIT: usize = 4096;
const CLUSTER_ID: u64 = 0xc1;
/// Short ticks so elections take tens of milliseconds.
const HEARTBEAT_MS: u64 = 10;
const ELECTION_MS: u64 = 100;
/// Bound on every wait for a condition.
const PATIENCE: Duration = Duration::from_secs(20);

/// Each member's inbox, by member ID.
type Inboxes = Rc<RefCell<Vec<(u64, LocalSender<raft::prelude::Message>)>>>;

/// The directed links (from, to) that deliver nothing, shared by every member's outlet.
type Cuts = Rc<RefCell<Vec<(u64, u64)>>>;

/// Messages of one type on one directed link (from, to) that are held back instead of
/// delivered, with the ones held so far, until `InProcessCluster::release`.
type Holds = Rc<RefCell<Vec<(u64, u64, MessageType, Vec<Message>)>>>;

/// One member's way out: raft messages go into the receiver's bounded inbox, unless the link
/// is cut (dropped) or the message's type is held on it (kept for later).
struct InMemoryOutlet {
    from: u64,
    inboxes: Inboxes,
    cuts: Cuts,
    holds: Holds,
    started: Instant,
}

impl PeerOutlet for InMemoryOutlet {
    fn send(&self, message: raft::prelude::Message) -> bool {
        if self.cuts.borrow().contains(&(self.from, message.to)) {
            return false;
        }
        let mut holds = self.holds.borrow_mut();
        let held = holds.iter_mut().find(|(from, to, kind, _)| {
            (*from, *to, *kind) == (self.from, message.to, message.get_msg_type())
        });
        if let Some((.., messages)) = held {
            messages.push(message);
            return true;
        }
        drop(holds);
        let inboxes = self.inboxes.borrow();
        let Some((_, inbox)) = inboxes.iter().find(|(id, _)| *id == message.to) else {
            return false;
        };
        inbox.try_send(message).is_ok()
    }

    fn forward_to_leader(
        &self,
        _to: u64,
        _query: LeaderQuery,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<LeaderReply>>>> {
        Box::pin(async { None })
    }

    fn active_since(&self, peer: u64) -> Option<std::time::Instant> {
        // Every uncut link counts as up since the cluster started.
        (!self.cuts.borrow().contains(&(self.from, peer))).then_some(self.started)
    }

    fn set_peer(&self, _id: u64, _peer_urls: Option<&[String]>) {}
}

struct InProcessCluster {
    members: Vec<Rc<Member>>,
    engines: Vec<Arc<Engine>>,
    inboxes: Inboxes,
    cuts: Cuts,
    holds: Holds,
    _dirs: Vec<tempfile::TempDir>,
}

impl InProcessCluster {
    async fn start(size: u64) -> InProcessCluster {
        let ids: Vec<u64> = (1..=size).collect();
        let initial: Vec<(u64, Vec<String>)> = ids
            .iter()
            .map(|id| (*id, vec![format!("http://member-{id}:2380")]))
            .collect();
        let inboxes: Inboxes = Rc::default();
        let cuts: Cuts = Rc::default();
        let holds: Holds = Rc::default();
        let (mut members, mut engines, mut dirs) = (Vec::new(), Vec::new(), Vec::new());
        for &id in &ids {
            let dir = tempfile::tempdir().unwrap();
            let engine = Arc::new(Engine::open(dir.path().join("db")).unwrap());
            let wal = Rc::new(
                Wal::open(
                    dir.path().join("wal"),
                    WalOptions {
                        // Small segments and records (the puts are small), so each member's
                        // spare segment is written quickly.
                        segment_bytes: 8 << 20,
                        record_bytes_limit: 2 << 20,
                        spare_segments: 1,
                        ..WalOptions::default()
                    },
                )
                .await
                .unwrap(),
            );
            let timing = RaftOptions::from_etcd_flags(HEARTBEAT_MS, ELECTION_MS, true);
            let metrics = Arc::new(ServerMetrics::new(
                MetricsLevel::Basic,
                MemberFacts {
                    member_id: id,
                    server_version: "test".into(),
                    cluster_version: "test".into(),
                    quota_backend_bytes: 1 << 30,
                },
                engine.clone(),
            ));
            let member = Member::start(
                Identity {
                    cluster_id: CLUSTER_ID,
                    member_id: id,
                },
                wal,
                engine.clone(),
                timing,
                Duration::from_millis(HEARTBEAT_MS),
                1 << 20,
                10_000,
                initial[id as usize - 1].1.clone(),
                initial.clone(),
                MembershipOptions {
                    joining: false,
                    strict_reconfig_check: true,
                },
                LessorConfig {
                    ttl_min_s: 1,
                    checkpoint_interval_ms: 300_000,
                    expired_retry_ms: 1_000,
                },
                CompactionPacing {
                    step_revisions: 1_000,
                    step_interval: Duration::from_millis(10),
                },
                metrics,
                AuthHub::new(
                    Tokens::from_flag("simple", Duration::from_secs(300)).unwrap(),
                    4,
                    false,
                ),
            )
            .await
            .unwrap();
            let (sender, receiver) = local_channel::new_bounded(INBOX_LIMIT);
            inboxes.borrow_mut().push((id, sender));
            let receiving = member.clone();
            glommio::spawn_local(async move {
                while let Some(message) = receiver.recv().await {
                    receiving.receive(message);
                }
            })
            .detach();
            members.push(member);
            engines.push(engine);
            dirs.push(dir);
        }
        for (member, &id) in members.iter().zip(&ids) {
            member.attach_peers(Rc::new(InMemoryOutlet {
                from: id,
                inboxes: inboxes.clone(),
                cuts: cuts.clone(),
                holds: holds.clone(),
                started: Instant::now(),
            }));
        }
        InProcessCluster {
            members,
            engines,
            inboxes,
            cuts,
            holds,
            _dirs: dirs,
        }
    }

    fn member(&self, id: u64) -> &Rc<Member> {
        &self.members[id as usize - 1]
    }

    /// The leader every member in `among` agrees on, once they agree (bounded wait).
    async fn agreed_leader(&self, among: &[u64]) -> u64 {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let leaders: Vec<u64> = among
                .iter()
                .map(|id| self.member(*id).raft_status().leader)
                .collect();
            let leader = leaders[0];
            if leader != 0
                && leaders.iter().all(|l| *l == leader)
                && among.contains(&leader)
                && self.member(leader).is_leader()
            {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "no agreed leader among {among:?}: {leaders:?}"
            );
            glommio::timer::sleep(Duration::from_millis(5)).await;
        }
    }

    /// Cuts every link between `id` and the others, both ways.
    fn isolate(&self, id: u64) {
        let mut cuts = self.cuts.borrow_mut();
        for other in 1..=self.members.len() as u64 {
            if other != id {
                cuts.push((id, other));
                cuts.push((other, id));
            }
        }
    }

    fn heal(&self) {
        self.cuts.borrow_mut().clear();
    }

    /// Holds back the messages of type `kind` from `from` to `to` until [`Self::release`].
    fn hold(&self, from: u64, to: u64, kind: MessageType) {
        self.holds.borrow_mut().push((from, to, kind, Vec::new()));
    }

    /// Ends the hold of `kind` from `from` to `to`, delivering what it held, in order.
    fn release(&self, from: u64, to: u64, kind: MessageType) {
        let held = {
            let mut holds = self.holds.borrow_mut();
            let at = holds
                .iter()
                .position(|(f, t, k, _)| (*f, *t, *k) == (from, to, kind))
                .expect("a hold to release");
            holds.remove(at).3
        };
        let inboxes = self.inboxes.borrow();
        let (_, inbox) = inboxes
            .iter()
            .find(|(id, _)| *id == to)
            .expect("an inbox per member");
        for message in held {
            inbox.try_send(message).expect("room in the inbox");
        }
    }

    /// Every key and value of member `id`'s engine, with its revisions.
    fn contents(&self, id: u64) -> Vec<(Vec<u8>, Vec<u8>, i64, i64)> {
        let everything = RangeRequest {
            key: vec![0],
            range_end: vec![0],
            ..Default::default()
        };
        let view = self.engines[id as usize - 1].read().unwrap();
        view.range(&everything)
            .unwrap()
            .kvs
            .into_iter()
            .map(|kv| (kv.key, kv.value, kv.create_revision, kv.mod_revision))
            .collect()
    }
}

fn put(key: &str, value: &str) -> pb::PutRequest {
    pb::PutRequest {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        ..Default::default()
    }
}

fn run<Test, Done>(test: Test)
where
    Test: FnOnce() -> Done + Send + 'static,
    Done: std::future::Future<Output = ()> + 'static,
{
    glommio::LocalExecutorBuilder::default()
        .spawn(test)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn writes_through_any_member_reach_every_engine_identically() {
    run(|| async {
        let cluster = InProcessCluster::start(3).await;
        let leader = cluster.agreed_leader(&[1, 2, 3]).await;
        let follower = (1..=3).find(|id| *id != leader).unwrap();
        for round in 0..20 {
            let through = if round % 2 == 0 { leader } else { follower };
            let answer = cluster
                .member(through)
                .propose_write(put(&format!("k{round:02}"), &format!("v{round}")))
                .await
                .unwrap();
            let revision = answer.header.unwrap().revision;
            assert_eq!(revision, round + 2, "one revision per put, in order");
        }
        // ReadIndex on every member first (the leader too: a put acknowledged by a follower
        // may be committed but not yet applied on the leader), then every engine holds every
        // acknowledged put.
        for id in 1..=3 {
            cluster.member(id).wait_linearizable().await.unwrap();
        }
        for id in 1..=3 {
            let contents = cluster.contents(id);
            assert_eq!(contents.len(), 20, "member {id}");
            assert_eq!(contents, cluster.contents(leader), "member {id}");
        }
    });
}

#[test]
fn an_isolated_leader_is_replaced_and_catches_up_when_healed() {
    run(|| async {
        let cluster = InProcessCluster::start(3).await;
        let old = cluster.agreed_leader(&[1, 2, 3]).await;
        cluster
            .member(old)
            .propose_write(put("before", "1"))
            .await
            .unwrap();
        cluster.isolate(old);
        let majority: Vec<u64> = (1..=3).filter(|id| *id != old).collect();
        let new = cluster.agreed_leader(&majority).await;
        assert_ne!(new, old);
        for round in 0..10 {
            cluster
                .member(majority[round % 2])
                .propose_write(put(&format!("during{round}"), "2"))
                .await
                .unwrap();
        }
        // The new leader has applied all of them (one may have been acknowledged by the other
        // member first); the cut-off member never learns of them while cut off.
        cluster.member(new).wait_linearizable().await.unwrap();
        assert_eq!(cluster.contents(new).len(), 11);
        assert_eq!(cluster.contents(old).len(), 1);
        cluster.heal();
        let deadline = Instant::now() + PATIENCE;
        while cluster.contents(old) != cluster.contents(new) {
            assert!(Instant::now() < deadline, "the old leader never caught up");
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(cluster.contents(old).len(), 11);
        let leader = cluster.agreed_leader(&[1, 2, 3]).await;
        assert!(cluster.member(leader).is_leader());
    });
}

/// Goal: a write and a linearizable read the member cannot complete (cut off from the
/// majority) are answered with etcd's "request timed out" once their deadline has passed, and
/// not much later: the tick expires them (`DeadlineWait`), not a timer per request.
#[test]
fn a_cut_off_member_times_its_callers_out_at_their_deadline() {
    run(|| async {
        let cluster = InProcessCluster::start(3).await;
        let leader = cluster.agreed_leader(&[1, 2, 3]).await;
        cluster.isolate(leader);
        assert_a_write_and_a_read_time_out(cluster.member(leader), "cut").await;
        assert!(cluster.contents(leader).is_empty());
    });
}

/// Goal: a linearizable read has one deadline, from its call, for its ReadIndex round and its
/// wait for apply together (etcd's one request context), not a fresh one for the apply wait.
/// Method: a follower that gets no entries (the leader's appends to it are held) is asked for
/// a read after a write it lacks; the leader's ReadIndex answer to it is held for half the
/// request timeout, then delivered; the follower can never apply up to that index, so the
/// read must time out at its deadline. With a fresh deadline for the apply wait it answered
/// half a timeout late.
#[test]
fn a_linearizable_read_has_one_deadline_for_its_round_and_its_apply() {
    run(|| async {
        let cluster = InProcessCluster::start(3).await;
        let leader = cluster.agreed_leader(&[1, 2, 3]).await;
        let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
        cluster.hold(leader, follower, MessageType::MsgAppend);
        cluster
            .member(leader)
            .propose_write(put("unseen", "v"))
            .await
            .expect("the write commits on the other two");
        cluster.hold(leader, follower, MessageType::MsgReadIndexResp);
        let member = cluster.member(follower).clone();
        let limit = member.request_timeout();
        let started = Instant::now();
        let release = async {
            glommio::timer::sleep(limit / 2).await;
            cluster.release(leader, follower, MessageType::MsgReadIndexResp);
            glommio::timer::sleep(limit + PATIENCE).await;
            panic!("no answer {PATIENCE:?} after the {limit:?} deadline");
        };
        let read = futures_lite::future::or(member.wait_linearizable(), release).await;
        let took = started.elapsed();
        let timed_out = basalt_net::Status::from(basalt_net::EtcdStatus::Timeout);
        assert_eq!(read.unwrap_err(), timed_out);
        assert!(
            took >= limit,
            "answered after {took:?}, before the {limit:?} deadline"
        );
        assert!(
            took < limit + limit / 4,
            "answered {took:?} after asking: the deadline was {limit:?}, from the call"
        );
    });
}

/// Goal: a member frozen for a snapshot install (raft stepped, ticked and pumped no more) still
/// answers its callers with "request timed out" at their deadline: the tick expires waits
/// before it skips a frozen member's raft work. Method: freeze a follower of a healthy cluster
/// at a snapshot far ahead of its log; a write and a linearizable read asked there can only
/// end by the deadline.
#[test]
fn a_frozen_member_times_its_callers_out_at_their_deadline() {
    run(|| async {
        let cluster = InProcessCluster::start(3).await;
        let leader = cluster.agreed_leader(&[1, 2, 3]).await;
        let follower = [1, 2, 3].into_iter().find(|id| *id != leader).unwrap();
        let member = cluster.member(follower).clone();
        member
            .freeze_for_snapshot(leader, u64::MAX / 2, 1)
            .expect("a snapshot far ahead is news");
        assert_a_write_and_a_read_time_out(&member, "frozen").await;
    });
}

/// Asks `member` for a write of `key` and a linearizable read, and checks both are answered
/// with "request timed out" at their deadline: not before it, and at most one tick (plus room
/// for a loaded machine) after it.
async fn assert_a_write_and_a_read_time_out(member: &Rc<Member>, key: &str) {
    let limit = member.request_timeout();
    let started = Instant::now();
    let answers = futures_lite::future::zip(
        member.propose_write(put(key, "v")),
        member.wait_linearizable(),
    );
    let never = async {
        glommio::timer::sleep(limit + PATIENCE).await;
        panic!("no answer {PATIENCE:?} after the {limit:?} deadline");
    };
    let (write, read) = futures_lite::future::or(answers, never).await;
    let took = started.elapsed();
    let timed_out = basalt_net::Status::from(basalt_net::EtcdStatus::Timeout);
    assert_eq!(write.unwrap_err(), timed_out);
    assert_eq!(read.unwrap_err(), timed_out);
    assert!(
        took >= limit,
        "answered after {took:?}, before the {limit:?} deadline"
    );
    assert!(
        took < limit + Duration::from_secs(2),
        "answered {took:?} after asking, the deadline was {limit:?}"
    );
}

/// Goal: a snapshot install never throws away what the member may have acknowledged. A copy
/// whose index is committed here, or whose entry the log already holds, is refused (raft's
/// `restore` rule); an accepted one stops raft on the member until it restarts, so it
/// acknowledges nothing the install would drop.
#[test]
fn a_snapshot_install_is_refused_once_stale_and_freezes_raft_while_it_commits() {
    run(|| async {
        let cluster = InProcessCluster::start(3).await;
        let leader = cluster.agreed_leader(&[1, 2, 3]).await;
        let follower = (1..=3).find(|id| *id != leader).unwrap();
        for round in 0..5 {
            cluster
                .member(leader)
                .propose_write(put(&format!("k{round}"), "v"))
                .await
                .unwrap();
        }
        let installing = cluster.member(follower);
        installing.wait_linearizable().await.unwrap();
        let status = installing.raft_status();
        let committed = installing
            .freeze_for_snapshot(leader, status.commit_index, status.term)
            .unwrap_err();
        assert!(committed.contains("has committed"), "{committed}");
        let beyond = status.commit_index + 100;
        installing
            .freeze_for_snapshot(leader, beyond, status.term)
            .unwrap();
        // Frozen: the others go on, this member applies and acknowledges nothing.
        let applied = installing.raft_status().applied_index;
        for round in 5..10 {
            cluster
                .member(leader)
                .propose_write(put(&format!("k{round}"), "v"))
                .await
                .unwrap();
        }
        assert_eq!(installing.raft_status().applied_index, applied);
        assert_eq!(cluster.contents(follower).len(), 5);
        // A copy that failed its check lets raft run again: the member catches up by log.
        installing.unfreeze();
        let deadline = Instant::now() + PATIENCE;
        while cluster.contents(follower) != cluster.contents(leader) {
            assert!(
                Instant::now() < deadline,
                "the unfrozen member never caught up"
            );
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
        let holds = installing.raft_status();
        let known = installing
            .freeze_for_snapshot(leader, holds.applied_index, holds.term)
            .unwrap_err();
        assert!(known.contains("stale snapshot"), "{known}");
    });
}
