//! The node logic of a basalt member, as sans-IO state machines: inputs (client proposals,
//! raft messages, ticks, completed disk writes) in, effects (writes to persist, messages to
//! send, entries to apply) out. The glommio shell does the I/O; tests drive the same code in one
//! thread with a simulated disk, network and clock, deterministically from a seed.

mod log_metadata;
mod raft_logger;
mod raft_node;

pub use log_metadata::LogMetadata;
pub use raft_node::{Effects, NodeError, Persist, RaftNode, RaftOptions, Recovered};
