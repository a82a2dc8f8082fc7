//! The milestone lines etcd logs and that scripts and supervisors wait for (`ready to serve
//! client requests`, ...), with etcd's field names, through the same formatting and outputs as
//! every other event.

use std::sync::Arc;
use std::time::SystemTime;

use crate::config::LogLevel;

use super::line::{self, FieldValue};
use super::outputs::LogOutputs;

/// Writes milestone lines in the configured shape.
#[derive(Clone)]
pub struct Milestones {
    json: bool,
    level: LogLevel,
    outputs: Arc<LogOutputs>,
}

impl Milestones {
    pub fn new(outputs: Arc<LogOutputs>, json: bool, level: LogLevel) -> Milestones {
        Milestones {
            json,
            level,
            outputs,
        }
    }

    /// An info line.
    #[track_caller]
    pub fn info(&self, message: &str, fields: &[(&str, &str)]) {
        if self.level <= LogLevel::Info {
            self.write("info", message, fields);
        }
    }

    /// A warning line.
    #[track_caller]
    pub fn warn(&self, message: &str, fields: &[(&str, &str)]) {
        if self.level <= LogLevel::Warn {
            self.write("warn", message, fields);
        }
    }

    #[track_caller]
    fn write(&self, level: &str, message: &str, fields: &[(&str, &str)]) {
        let location = std::panic::Location::caller();
        let caller = line::short_caller(location.file(), location.line());
        let fields: Vec<(String, FieldValue)> = fields
            .iter()
            .map(|(key, value)| (key.to_string(), FieldValue::Text(value.to_string())))
            .collect();
        let formatted = line::format(
            &line::Event {
                level,
                caller: &caller,
                message,
                fields: &fields,
            },
            self.json,
            SystemTime::now(),
        );
        self.outputs.write_line(&formatted);
    }
}
