//! The raft owner's task that runs the automatic compactor
//! (`state_machine/auto_compactor.rs`): it wakes at the compactor's interval, hands it the
//! current revision, and proposes the compactions it asks for through raft, as a client's
//! Compact would be.

use std::rc::Rc;
use std::time::Instant;

use basalt_net::proto::etcdserverpb as pb;

use super::raft_member::Member;
use crate::config::AutoCompaction;
use crate::server::state_machine::auto_compactor::AutoCompactor;

/// Starts the task on the current executor (nothing when automatic compaction is off).
pub fn start(member: Rc<Member>, setting: AutoCompaction) {
    let compactor = AutoCompactor::new(setting);
    if compactor.interval().is_some() {
        glommio::spawn_local(run(member, compactor)).detach();
    }
}

async fn run(member: Rc<Member>, mut compactor: AutoCompactor) {
    let Some(interval) = compactor.interval() else {
        return;
    };
    let started = Instant::now();
    loop {
        glommio::timer::sleep(interval).await;
        if member.is_stopped() {
            return;
        }
        if !member.is_leader() {
            // As etcd pauses its compactor on followers: the leader's compactions reach every
            // member through the log.
            continue;
        }
        let current = match member.shared_engine().read() {
            Ok(view) => view.current_revision(),
            Err(_) => continue, // a storage fault stops the member; nothing to do here
        };
        let Some(revision) = compactor.tick(started.elapsed(), current) else {
            continue;
        };
        let mode = compactor.mode_name();
        tracing::info!(revision, mode, "starting auto compaction");
        let request = pb::CompactionRequest {
            revision,
            physical: false,
        };
        let outcome = member.propose_write(request).await;
        // etcd counts "already compacted" as done.
        let ok = match &outcome {
            Ok(_) => true,
            Err(status) => status.message == basalt_net::EtcdStatus::Compacted.message(),
        };
        if ok {
            tracing::info!(revision, mode, "completed auto compaction");
        } else {
            tracing::warn!(revision, mode, ?outcome, "failed auto compaction");
        }
        compactor.compacted(started.elapsed(), revision, ok);
    }
}
