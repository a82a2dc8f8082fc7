//! The process's log: one set of `--log-outputs`, one line format (`--logger`: zap's JSON or
//! capnslog's text), one threshold (`--log-level`), for the milestone lines, every `tracing::`
//! event and raft's own records.

mod line;
mod milestones;
mod outputs;
mod zap_layer;

use std::sync::{Arc, OnceLock};

use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;

use crate::config::{Config, LogLevel, Logger};
use crate::server::error::ServerError;

pub use milestones::Milestones;

/// The milestone writer of the process, once installed.
static MILESTONES: OnceLock<Milestones> = OnceLock::new();

/// Opens the outputs and makes them the process's log; returns the milestone writer. A second
/// call (a test starting two members in one process) keeps the first log.
pub fn install(config: &Config) -> Result<Milestones, ServerError> {
    if let Some(installed) = MILESTONES.get() {
        return Ok(installed.clone());
    }
    let outputs = Arc::new(outputs::LogOutputs::open(&config.log.outputs)?);
    let json = config.log.logger == Logger::Zap;
    let threshold = match config.log.level {
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Error => LevelFilter::ERROR,
        // Nothing basalt traces is a panic or fatal: those levels silence every event.
        LogLevel::Panic | LogLevel::Fatal => LevelFilter::OFF,
    };
    let subscriber = tracing_subscriber::registry()
        .with(zap_layer::ZapLayer::new(outputs.clone(), json))
        .with(threshold);
    // Fails only when a subscriber is already set, which only `install` does.
    let _ = tracing::subscriber::set_global_default(subscriber);
    let milestones = Milestones::new(outputs, json, config.log.level);
    Ok(MILESTONES.get_or_init(|| milestones).clone())
}

/// The installed milestone writer.
pub fn milestones() -> Milestones {
    MILESTONES
        .get()
        .expect("server::run installs the log before starting executors")
        .clone()
}
