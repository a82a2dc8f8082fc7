//! The raft member on the owner core: the raft loop (`raft_member`) around the sans-IO raft
//! node, with its log writer (`log_writer`) and the state machine's runtime (`applier`); the
//! lease operations and drivers and the auto-compaction driver that propose through it; the
//! operations other cores ask of the owner (`owner_op`); and the helpers that run blocking
//! work off the executor. May import `watch` and `state_machine`.

pub mod applier;
pub mod auto_compaction_driver;
mod chunk_pipe;
pub mod data_dir_lock;
mod deadline_wait;
mod direct_file;
mod forwarded_proposals;
mod id_generator;
mod id_map;
pub mod identity_file;
#[cfg(test)]
mod in_process_cluster;
pub mod join;
pub mod leader_forward;
pub mod lease_driver;
pub mod lease_ids;
pub mod lease_owner;
mod log_writer;
pub mod offload;
pub mod owner_op;
pub mod peer_link;
pub mod raft_member;
mod reconfig_health;
pub mod snapshot_installer;
mod snapshot_sender;
mod task_signal;

#[cfg(test)]
mod simulation;
