//! raft-rs logs through `slog`; this drain hands each record to `tracing`, so raft's own lines
//! reach the process's one log in etcd's shape (`target: "raft"`, its source location as the
//! caller, its key-value pairs after the message).

use std::fmt::{self, Write as _};

/// Forwards slog records to `tracing` events.
pub struct TracingDrain;

/// The logger raft-rs is given.
pub fn raft_logger() -> slog::Logger {
    slog::Logger::root(TracingDrain, slog::o!())
}

impl slog::Drain for TracingDrain {
    type Ok = ();
    type Err = slog::Never;

    fn log(
        &self,
        record: &slog::Record<'_>,
        values: &slog::OwnedKVList,
    ) -> Result<(), slog::Never> {
        let level = match record.level() {
            slog::Level::Critical | slog::Level::Error => tracing::Level::ERROR,
            slog::Level::Warning => tracing::Level::WARN,
            slog::Level::Info => tracing::Level::INFO,
            slog::Level::Debug | slog::Level::Trace => tracing::Level::DEBUG,
        };
        // Cheap refusal before any formatting: most of raft's records are below the threshold.
        if level > tracing::level_filters::LevelFilter::current() {
            return Ok(());
        }
        let mut message = record.msg().to_string();
        let mut pairs = PairWriter(&mut message);
        let _ = slog::KV::serialize(&record.kv(), record, &mut pairs);
        let _ = slog::KV::serialize(values, record, &mut pairs);
        // `caller` is the field the log's layer takes as the caller (`CALLER_FIELD` in `server/logging/zap_layer.rs`).
        let caller = format!("raft/{}:{}", file_name(record.file()), record.line());
        match level {
            tracing::Level::ERROR => {
                tracing::error!(target: "raft", caller = caller.as_str(), "{message}")
            }
            tracing::Level::WARN => {
                tracing::warn!(target: "raft", caller = caller.as_str(), "{message}")
            }
            tracing::Level::INFO => {
                tracing::info!(target: "raft", caller = caller.as_str(), "{message}")
            }
            _ => tracing::debug!(target: "raft", caller = caller.as_str(), "{message}"),
        }
        Ok(())
    }
}

fn file_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Appends `, key: value` for each pair, as slog's terminal format does.
struct PairWriter<'a>(&'a mut String);

impl slog::Serializer for PairWriter<'_> {
    fn emit_arguments(&mut self, key: slog::Key, value: &fmt::Arguments<'_>) -> slog::Result {
        let _ = write!(self.0, ", {key}: {value}");
        Ok(())
    }
}
