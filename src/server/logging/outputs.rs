//! The `--log-outputs` targets, opened once for the process: standard error, standard output,
//! files appended to.

use std::fs::{File, OpenOptions};
use std::io::Write;

use crate::config::LogOutput;
use crate::server::error::ServerError;

/// Every target a line goes to.
pub struct LogOutputs {
    sinks: Vec<Sink>,
}

enum Sink {
    Stderr,
    Stdout,
    File(File),
}

impl LogOutputs {
    /// Opens `outputs`; fails when a file cannot be opened, as etcd refuses to start then.
    pub fn open(outputs: &[LogOutput]) -> Result<LogOutputs, ServerError> {
        let mut sinks = Vec::with_capacity(outputs.len());
        for output in outputs {
            sinks.push(match output {
                LogOutput::Stderr => Sink::Stderr,
                LogOutput::Stdout => Sink::Stdout,
                LogOutput::File(path) => Sink::File(
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .map_err(|source| ServerError::LogOutput {
                            path: path.clone(),
                            source,
                        })?,
                ),
            });
        }
        Ok(LogOutputs { sinks })
    }

    /// Writes one whole line to every target: one write per line and target, so lines from two
    /// cores never interleave within a line (files are opened for appending). A log that cannot
    /// be written must not stop the member, so errors are dropped.
    pub fn write_line(&self, line: &str) {
        for sink in &self.sinks {
            let _ = match sink {
                Sink::Stderr => std::io::stderr().lock().write_all(line.as_bytes()),
                Sink::Stdout => std::io::stdout().lock().write_all(line.as_bytes()),
                Sink::File(file) => (&*file).write_all(line.as_bytes()),
            };
        }
    }
}
