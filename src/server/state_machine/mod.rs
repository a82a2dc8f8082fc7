//! The replicated state machine: what a raft entry carries (proposals), how committed entries
//! apply to the engine, the cluster state and its alarms, compaction policy, the lessor, write
//! costs, and the header and identity every answer carries. The bottom layer: it imports no
//! other layer of the server.

pub mod alarm;
pub mod apply;
pub mod auth_caller;
pub mod auth_hub;
pub mod auth_perms;
pub mod auth_store;
pub mod auth_tokens;
pub mod auto_compactor;
pub mod cluster_state;
pub mod convert;
pub mod header;
pub mod lease_lessor;
pub mod membership_change;
pub mod proposal;
pub mod proposal_check;
pub mod proposal_summary;
pub mod typed_write;
pub mod write_cost;
