//! Watch: every core's hub of watchers and the feed of applied events that reaches them. May
//! import `state_machine`.

pub mod event_fanout;
pub mod watch_hub;
pub mod watch_limits;
pub mod watcher_presence;
