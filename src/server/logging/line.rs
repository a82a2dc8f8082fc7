//! One log line in etcd's shapes: zap's JSON object (`level`, `ts`, `caller`, `msg`, then the
//! event's fields) or capnslog's plain text, with etcd's timestamp format.

use std::time::{SystemTime, UNIX_EPOCH};

/// A field's value: JSON numbers and booleans stay typed, everything else is a string.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldValue {
    Text(String),
    Signed(i64),
    Unsigned(u64),
    Float(f64),
    Bool(bool),
}

impl FieldValue {
    fn to_json(&self) -> serde_json::Value {
        match self {
            FieldValue::Text(text) => text.as_str().into(),
            FieldValue::Signed(value) => (*value).into(),
            FieldValue::Unsigned(value) => (*value).into(),
            FieldValue::Float(value) => (*value).into(),
            FieldValue::Bool(value) => (*value).into(),
        }
    }

    fn to_text(&self) -> String {
        match self {
            FieldValue::Text(text) => text.clone(),
            FieldValue::Signed(value) => value.to_string(),
            FieldValue::Unsigned(value) => value.to_string(),
            FieldValue::Float(value) => value.to_string(),
            FieldValue::Bool(value) => value.to_string(),
        }
    }
}

/// What one line says.
pub struct Event<'a> {
    /// zap's level name: `debug`, `info`, `warn`, `error`.
    pub level: &'a str,
    /// Where the event was raised (`dir/file.rs:line`, zap's short caller).
    pub caller: &'a str,
    pub message: &'a str,
    pub fields: &'a [(String, FieldValue)],
}

/// The line (with its newline) as zap's JSON encoder (`json`) or capnslog writes it.
pub fn format(event: &Event<'_>, json: bool, now: SystemTime) -> String {
    let ts = iso8601(now);
    let mut line = if json {
        // Written by hand, not through a map: zap puts level, ts, caller and msg first, then the
        // fields in the order the event gave them.
        let mut line = format!(
            "{{\"level\":{},\"ts\":\"{ts}\",\"caller\":{},\"msg\":{}",
            json_string(event.level),
            json_string(event.caller),
            json_string(event.message)
        );
        for (key, value) in event.fields {
            line.push_str(&format!(",{}:{}", json_string(key), value.to_json()));
        }
        line.push('}');
        line
    } else {
        let mut line = format!(
            "{ts} {} | {}: {}",
            event.level.to_uppercase(),
            event.caller,
            event.message
        );
        for (key, value) in event.fields {
            line.push_str(&format!(" {key}={}", value.to_text()));
        }
        line
    };
    line.push('\n');
    line
}

/// `text` as a JSON string literal.
fn json_string(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

/// zap's short caller: the file's last directory and name, and the line.
pub fn short_caller(file: &str, line: u32) -> String {
    let mut parts = file.rsplit('/');
    let name = parts.next().unwrap_or(file);
    match parts.next() {
        Some(dir) => format!("{dir}/{name}:{line}"),
        None => format!("{name}:{line}"),
    }
}

/// `time` in UTC as `2006-01-02T15:04:05.000Z` (zap's ISO 8601 encoder).
fn iso8601(time: SystemTime) -> String {
    let elapsed = time.duration_since(UNIX_EPOCH).unwrap_or_default();
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
    use std::time::{Duration, UNIX_EPOCH};

    use super::{civil_from_days, format, short_caller, Event, FieldValue};

    #[test]
    fn days_map_to_calendar_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(20_414), (2025, 11, 22));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn zap_json_and_capnslog_lines_carry_the_same_event() {
        let fields = vec![
            ("revision".to_string(), FieldValue::Signed(-3)),
            ("path".to_string(), FieldValue::Text("a b".into())),
            ("ok".to_string(), FieldValue::Bool(true)),
        ];
        let event = Event {
            level: "warn",
            caller: "member/raft_member.rs:12",
            message: "hello",
            fields: &fields,
        };
        let at = UNIX_EPOCH + Duration::from_millis(1_704_067_200_123);
        assert_eq!(
            format(&event, true, at),
            "{\"level\":\"warn\",\"ts\":\"2024-01-01T00:00:00.123Z\",\
             \"caller\":\"member/raft_member.rs:12\",\"msg\":\"hello\",\"revision\":-3,\
             \"path\":\"a b\",\"ok\":true}\n"
        );
        assert_eq!(
            format(&event, false, at),
            "2024-01-01T00:00:00.123Z WARN | member/raft_member.rs:12: hello revision=-3 \
             path=a b ok=true\n"
        );
    }

    #[test]
    fn callers_keep_the_last_directory() {
        assert_eq!(short_caller("src/server/member/x.rs", 7), "member/x.rs:7");
        assert_eq!(short_caller("x.rs", 7), "x.rs:7");
    }
}
