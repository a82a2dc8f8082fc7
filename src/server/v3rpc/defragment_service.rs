//! Maintenance.Defragment: the engine's online defragmentation (`Engine::defragment`), run on
//! a thread of its own so no executor stalls while it works. The engine's writer lock
//! interleaves its short steps with the raft owner's apply commits, and readers never wait,
//! so the member keeps serving throughout — unlike etcd, whose defrag stops the world.

use std::rc::Rc;

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::Metadata;
use basalt_net::{Router, Status};
use futures_channel::oneshot;

use super::defragment_turn::DefragTurns;
use crate::server::routing::gateway::Gateway;
use crate::server::state_machine::apply::status_of;

/// Paths copied per defragmentation step: each step holds the writer for one short commit.
const DEFRAG_KEYS_PER_STEP: usize = 256;

/// Registers Defragment on `router`; `turns` is this core's place in the process-wide line.
pub fn register(router: &mut Router, member: Rc<Gateway>, turns: DefragTurns) {
    router.unary(
        "/etcdserverpb.Maintenance/Defragment",
        move |metadata: Metadata, _request: pb::DefragmentRequest| {
            let (member, turns) = (member.clone(), turns.clone());
            async move {
                member.caller(&metadata)?.check_admin()?;
                defragment(&member, &turns).await
            }
        },
    );
}

async fn defragment(
    member: &Gateway,
    turns: &DefragTurns,
) -> Result<pb::DefragmentResponse, Status> {
    // Waiting here, in the call: a client that leaves while queued takes its request along.
    let turn = turns.wait().await;
    let engine = member.shared_engine();
    let (done, report) = oneshot::channel();
    // Once started, the work and its turn belong to a task of their own: a client that gives up
    // now (its call is dropped) must not free the turn while its defragmentation runs.
    glommio::spawn_local(async move {
        let _turn = turn;
        let (finished, result) = oneshot::channel();
        let started = std::thread::Builder::new()
            .name("basalt-defrag".into())
            .spawn(move || {
                let _ = finished.send(engine.defragment(DEFRAG_KEYS_PER_STEP));
            });
        let outcome = match started {
            Ok(_) => result
                .await
                .map_err(|_| "the defragmentation thread died".to_string()),
            Err(e) => Err(format!("cannot start the defragmentation: {e}")),
        };
        let _ = done.send(outcome);
    })
    .detach();
    let report = report
        .await
        .map_err(|_| Status::internal("the defragmentation task ended"))?
        .map_err(Status::internal)?
        .map_err(|e| {
            tracing::error!(error = %e, "defragmentation failed");
            status_of(&e)
        })?;
    tracing::info!(
        bytes_before = report.bytes_before,
        bytes_after = report.bytes_after,
        steps = report.steps,
        "finished defragmenting the backend database"
    );
    let revision = member
        .engine()
        .read()
        .map_err(|e| status_of(&e))?
        .current_revision();
    Ok(pb::DefragmentResponse {
        header: Some(member.header(revision)),
    })
}
