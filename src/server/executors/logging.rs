//! The milestone lines etcd logs and that scripts and supervisors wait for (`ready to serve
//! client requests`, ...), in etcd's zap JSON shape or as plain lines (`--logger`), to each of
//! `--log-outputs` (stderr by default, as etcd writes them outside systemd).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::config::{Config, LogLevel, LogOutput, Logger};
use crate::server::error::ServerError;

/// Writes milestone lines in the configured shape.
pub struct Milestones {
    json: bool,
    level: LogLevel,
    outputs: Vec<Sink>,
}

/// One opened `--log-outputs` target.
enum Sink {
    Stderr,
    Stdout,
    File(File),
}

impl Milestones {
    /// Milestone logging as `config` asks for; fails when a log file cannot be opened, as
    /// etcd refuses to start then.
    pub fn new(config: &Config) -> Result<Milestones, ServerError> {
        let mut outputs = Vec::with_capacity(config.log.outputs.len());
        for output in &config.log.outputs {
            outputs.push(match output {
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
        Ok(Milestones {
            json: config.log.logger == Logger::Zap,
            level: config.log.level,
            outputs,
        })
    }

    /// An info line.
    pub fn info(&self, message: &str, fields: &[(&str, &str)]) {
        if matches!(self.level, LogLevel::Debug | LogLevel::Info) {
            self.write("info", message, fields);
        }
    }

    /// A warning line.
    pub fn warn(&self, message: &str, fields: &[(&str, &str)]) {
        if matches!(
            self.level,
            LogLevel::Debug | LogLevel::Info | LogLevel::Warn
        ) {
            self.write("warn", message, fields);
        }
    }

    fn write(&self, level: &str, message: &str, fields: &[(&str, &str)]) {
        let line = if self.json {
            let mut object = serde_json::Map::new();
            object.insert("level".into(), level.into());
            object.insert("ts".into(), iso8601_now().into());
            object.insert("caller".into(), "basalt".into());
            object.insert("msg".into(), message.into());
            for (key, value) in fields {
                object.insert((*key).into(), (*value).into());
            }
            serde_json::Value::Object(object).to_string()
        } else {
            let rest: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!(
                "{} {} | basalt: {message} {}",
                iso8601_now(),
                level.to_uppercase(),
                rest.join(" ")
            )
        };
        // One write per line and sink, so lines from two cores never interleave within a line;
        // a log that cannot be written must not stop the member.
        let line = format!("{line}\n");
        for sink in &self.outputs {
            let _ = match sink {
                Sink::Stderr => std::io::stderr().lock().write_all(line.as_bytes()),
                Sink::Stdout => std::io::stdout().lock().write_all(line.as_bytes()),
                Sink::File(file) => (&*file).write_all(line.as_bytes()),
            };
        }
    }
}

/// The current UTC time as `2006-01-02T15:04:05.000Z`.
fn iso8601_now() -> String {
    let elapsed = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let seconds = elapsed.as_secs();
    let (days, day_seconds) = ((seconds / 86_400) as i64, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        day_seconds / 3600,
        day_seconds / 60 % 60,
        day_seconds % 60,
        elapsed.subsec_millis()
    )
}

/// Days since 1970-01-01 as a (year, month, day) date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::civil_from_days;

    #[test]
    fn days_map_to_calendar_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_414), (2025, 11, 22));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }
}
