//! The one `tracing` subscriber layer of the process: every `tracing::` event (raft's own log
//! included, forwarded by `node::raft_logger`) becomes a line in etcd's shape on every
//! `--log-outputs` target.

use std::sync::Arc;
use std::time::SystemTime;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::Layer;

use super::line::{self, FieldValue};
use super::outputs::LogOutputs;

/// Formats events and writes them out.
pub struct ZapLayer {
    outputs: Arc<LogOutputs>,
    json: bool,
}

impl ZapLayer {
    pub fn new(outputs: Arc<LogOutputs>, json: bool) -> ZapLayer {
        ZapLayer { outputs, json }
    }
}

/// The field that, when an event carries it, names the caller instead of the event's own source
/// location (raft's records come through one forwarding function; their origin is in raft-rs).
const CALLER_FIELD: &str = "caller";

impl<S: Subscriber> Layer<S> for ZapLayer {
    fn on_event(&self, event: &Event<'_>, _context: Context<'_, S>) {
        let metadata = event.metadata();
        let mut fields = Fields::default();
        event.record(&mut fields);
        let caller = fields.caller.take().unwrap_or_else(|| {
            line::short_caller(
                metadata.file().unwrap_or(metadata.target()),
                metadata.line().unwrap_or(0),
            )
        });
        let level = match *metadata.level() {
            Level::ERROR => "error",
            Level::WARN => "warn",
            Level::INFO => "info",
            Level::DEBUG | Level::TRACE => "debug",
        };
        let formatted = line::format(
            &line::Event {
                level,
                caller: &caller,
                message: &fields.message,
                fields: &fields.others,
            },
            self.json,
            SystemTime::now(),
        );
        self.outputs.write_line(&formatted);
    }
}

/// An event's fields: its message, a caller it names, the rest in order.
#[derive(Default)]
struct Fields {
    message: String,
    caller: Option<String>,
    others: Vec<(String, FieldValue)>,
}

impl Fields {
    fn add(&mut self, field: &Field, value: FieldValue) {
        match (field.name(), value) {
            ("message", FieldValue::Text(text)) => self.message = text,
            (CALLER_FIELD, FieldValue::Text(text)) => self.caller = Some(text),
            (name, value) => self.others.push((name.to_string(), value)),
        }
    }
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.add(field, FieldValue::Text(format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.add(field, FieldValue::Text(value.to_string()));
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.add(field, FieldValue::Signed(value));
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.add(field, FieldValue::Unsigned(value));
    }

    fn record_f64(&mut self, field: &Field, value: f64) {
        self.add(field, FieldValue::Float(value));
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.add(field, FieldValue::Bool(value));
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.add(field, FieldValue::Text(value.to_string()));
    }
}
