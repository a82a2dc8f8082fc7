//! The raft member on the owner core: the node loop and log writer around the sans-IO raft
//! node, the lease operations and drivers and the auto-compaction driver that propose through
//! it, the operations other cores ask of the owner (`owner_op`), and the helpers that run
//! blocking work off the executor. May import `watch` and
//! `state_machine`.

pub mod auto_compaction_driver;
mod chunk_pipe;
mod direct_file;
mod id_generator;
pub mod identity_file;
pub mod join;
pub mod lease_driver;
pub mod lease_forward;
pub mod lease_ids;
pub mod lease_owner;
pub mod offload;
pub mod owner_op;
pub mod peer_link;
pub mod raft_member;
pub mod snapshot_installer;
mod snapshot_sender;

#[cfg(test)]
mod simulation;
