//! Maintenance.Snapshot: streams a consistent copy of the database (what `etcdctl snapshot
//! save` writes to a file), as etcd 3.5 does.
//!
//! Protocol (etcd's `maintenanceServer.Snapshot`): chunks of at most 32 KiB, each saying how
//! many bytes remain after it, then one last message (remaining 0) whose blob is the 32-byte
//! SHA-256 of everything sent before — `snapshot restore` checks it. The copy comes from a
//! pinned read view (copy-on-write): writes go on while it streams, and the stream holds one
//! chunk at a time, waiting on the client's flow control between chunks.

use std::rc::Rc;

use basalt_net::proto::etcdserverpb as pb;
use basalt_net::Metadata;
use basalt_net::Router;
use sha2::{Digest, Sha256};

use crate::server::member::offload::on_own_thread;
use crate::server::routing::gateway::Gateway;
use crate::server::state_machine::apply::status_of;

/// Bytes per chunk, as etcd's `snapshotSendBufferSize`.
pub const SNAPSHOT_CHUNK_BYTES: usize = 32 * 1024;

/// Registers Snapshot on `router`.
pub fn register(router: &mut Router, member: Rc<Gateway>) {
    router.server_streaming(
        "/etcdserverpb.Maintenance/Snapshot",
        move |metadata: Metadata, _request: pb::SnapshotRequest, mut sink| {
            let member = member.clone();
            async move {
                member.caller(&metadata)?.check_admin()?;
                // As etcd commits its backend before a snapshot: the copy is of a durable commit.
                // Off this core: the sync's fdatasyncs would stop every connection on it.
                let engine = member.shared_engine();
                let view = on_own_thread("basalt-snapshot", move || engine.durable_view())
                    .await
                    .map_err(|e| status_of(&e))?;
                let revision = view.current_revision();
                let snapshot = view.into_snapshot().map_err(|e| status_of(&e))?;
                let total = snapshot.size_bytes();
                tracing::info!(
                    size_bytes = total,
                    revision,
                    "sending database snapshot to client"
                );
                let mut digest = Sha256::new();
                let mut sent = 0u64;
                while sent < total {
                    let mut blob = vec![0u8; SNAPSHOT_CHUNK_BYTES.min((total - sent) as usize)];
                    let n = snapshot
                        .read_at(sent, &mut blob)
                        .map_err(|e| status_of(&e))?;
                    assert_eq!(n, blob.len(), "a snapshot yields every byte it sized");
                    sent += n as u64;
                    digest.update(&blob);
                    sink.send(&pb::SnapshotResponse {
                        header: None,
                        remaining_bytes: total - sent,
                        blob,
                    })
                    .await?;
                }
                tracing::info!(
                    size_bytes = total,
                    "sending database sha256 checksum to client"
                );
                sink.send(&pb::SnapshotResponse {
                    header: None,
                    remaining_bytes: 0,
                    blob: digest.finalize().to_vec(),
                })
                .await?;
                tracing::info!(
                    size_bytes = total,
                    "successfully sent database snapshot to client"
                );
                Ok(())
            }
        },
    );
}
