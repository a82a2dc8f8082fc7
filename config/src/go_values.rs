//! Scalars written the way etcd reads them: etcd parses its flags with Go's `flag` package, so
//! `--snapshot-count=0x2710`, `--client-cert-auth=T` and `--grpc-keepalive-interval=1h30m` are
//! all valid there, and must be here. Each parser returns a reason on failure, which the caller
//! wraps with the flag, variable or key it came from.

use std::time::Duration;

/// Why a scalar did not parse; shown to the operator after the value.
pub type Reason = String;

/// Go's `strconv.ParseUint(text, 0, 64)`: decimal, `0x`/`0o`/`0b` prefixes, a leading `0` for
/// octal, and `_` between digits.
pub fn parse_uint(text: &str) -> Result<u64, Reason> {
    let not_a_number = || format!("{text:?} is not a non-negative integer");
    if text.starts_with(['-', '+']) {
        return Err(not_a_number());
    }
    let lower = text.to_ascii_lowercase();
    let (radix, digits) = if let Some(rest) = lower.strip_prefix("0x") {
        (16, rest)
    } else if let Some(rest) = lower.strip_prefix("0o") {
        (8, rest)
    } else if let Some(rest) = lower.strip_prefix("0b") {
        (2, rest)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    // Go allows one `_` between digits (and right after a base prefix); nothing else.
    let prefixed = radix != 10;
    let digits = digits
        .strip_prefix('_')
        .filter(|_| prefixed)
        .unwrap_or(digits);
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return Err(not_a_number());
    }
    let cleaned: String = digits.chars().filter(|&c| c != '_').collect();
    u64::from_str_radix(&cleaned, radix).map_err(|error| match error.kind() {
        std::num::IntErrorKind::PosOverflow => format!("{text:?} is out of range"),
        _ => not_a_number(),
    })
}

/// Go's `strconv.ParseInt(text, 0, 64)`: [`parse_uint`] with an optional sign.
pub fn parse_int(text: &str) -> Result<i64, Reason> {
    let (negative, magnitude) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let value = parse_uint(magnitude).map_err(|_| format!("{text:?} is not an integer"))?;
    let out_of_range = || format!("{text:?} is out of range");
    if negative {
        0i64.checked_sub_unsigned(value).ok_or_else(out_of_range)
    } else {
        i64::try_from(value).map_err(|_| out_of_range())
    }
}

/// Go's `strconv.ParseBool`, the grammar of `--flag=value` for boolean flags.
pub fn parse_bool(text: &str) -> Result<bool, Reason> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        _ => Err(format!("{text:?} is not a boolean (true or false)")),
    }
}

/// Go's `time.ParseDuration` ("300ms", "1h30m", "1.5s", "0"), restricted to non-negative
/// values: every etcd duration is an interval or a timeout, and a negative one is a mistake.
pub fn parse_duration(text: &str) -> Result<Duration, Reason> {
    let invalid = || format!("{text:?} is not a duration (for example 300ms, 5s, 1h30m)");
    if text == "0" || text == "+0" || text == "-0" {
        return Ok(Duration::ZERO);
    }
    let rest = match text.as_bytes().first() {
        Some(b'-') => return Err(format!("{text:?} is negative; a duration must be >= 0")),
        Some(b'+') => &text[1..],
        _ => text,
    };
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut total_nanos: u128 = 0;
    let mut remaining = rest;
    while !remaining.is_empty() {
        // A number: digits, optionally a fraction.
        let number_len = remaining
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| format!("{text:?} is missing a unit (ns, us, ms, s, m or h)"))?;
        let (number, after) = remaining.split_at(number_len);
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        if (whole.is_empty() && fraction.is_empty()) || fraction.contains('.') {
            return Err(invalid());
        }
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, next) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            "" => {
                return Err(format!(
                    "{text:?} is missing a unit (ns, us, ms, s, m or h)"
                ))
            }
            _ => return Err(format!("{text:?} has an unknown unit {unit:?}")),
        };
        let whole_value: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        let mut nanos = whole_value.checked_mul(unit_nanos).ok_or_else(invalid)?;
        // The fraction contributes fraction * unit, truncated to whole nanoseconds as Go does.
        let mut scale = unit_nanos;
        for digit in fraction.bytes() {
            scale /= 10;
            if scale == 0 {
                break;
            }
            nanos += u128::from(digit - b'0') * scale;
        }
        total_nanos = total_nanos.checked_add(nanos).ok_or_else(invalid)?;
        remaining = next;
    }
    // Go's Duration is an int64 of nanoseconds; stay inside what etcd itself can represent.
    if total_nanos > i64::MAX as u128 {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Duration::from_nanos(total_nanos as u64))
}

/// A duration in Go's `time.Duration.String()` form, so `--help` and the summary print the
/// defaults the way etcd does ("10m0s", "100ms", "2h0m0s").
pub fn format_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000_000_000 {
        let (value, unit) = if nanos < 1_000 {
            return format!("{nanos}ns");
        } else if nanos < 1_000_000 {
            (nanos as f64 / 1e3, "µs")
        } else {
            (nanos as f64 / 1e6, "ms")
        };
        return format!("{}{unit}", trim_float(value));
    }
    let hours = nanos / 3_600_000_000_000;
    let minutes = nanos / 60_000_000_000 % 60;
    let seconds = (nanos % 60_000_000_000) as f64 / 1e9;
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    out.push_str(&format!("{}s", trim_float(seconds)));
    out
}

fn trim_float(value: f64) -> String {
    let text = format!("{value:.9}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: the integer grammar is Go's base-0 grammar, so values etcd accepts are accepted
    /// with the same meaning and values etcd rejects are rejected.
    #[test]
    fn unsigned_integers_follow_go_literal_syntax() {
        assert_eq!(parse_uint("100"), Ok(100));
        assert_eq!(parse_uint("0"), Ok(0));
        assert_eq!(parse_uint("0x10"), Ok(16));
        assert_eq!(parse_uint("0o17"), Ok(15));
        assert_eq!(parse_uint("0b101"), Ok(5));
        assert_eq!(parse_uint("010"), Ok(8), "a leading 0 is octal in Go");
        assert_eq!(parse_uint("1_000_000"), Ok(1_000_000));
        assert_eq!(parse_uint("0x_ff"), Ok(255));
        for bad in [
            "", "-1", "+1", "abc", "1.5", "1__0", "_1", "1_", "08", "1e3", " 1",
        ] {
            assert!(parse_uint(bad).is_err(), "{bad:?} must be rejected");
        }
        assert!(parse_uint("18446744073709551616")
            .unwrap_err()
            .contains("out of range"));
    }

    #[test]
    fn signed_integers_accept_a_sign() {
        assert_eq!(parse_int("-5"), Ok(-5));
        assert_eq!(parse_int("+5"), Ok(5));
        assert_eq!(parse_int("-0x10"), Ok(-16));
        assert_eq!(parse_int("-9223372036854775808"), Ok(i64::MIN));
        assert!(parse_int("9223372036854775808").is_err());
        assert!(parse_int("--5").is_err());
    }

    #[test]
    fn booleans_follow_go_parse_bool() {
        for yes in ["1", "t", "T", "true", "TRUE", "True"] {
            assert_eq!(parse_bool(yes), Ok(true));
        }
        for no in ["0", "f", "F", "false", "FALSE", "False"] {
            assert_eq!(parse_bool(no), Ok(false));
        }
        for bad in ["yes", "maybe", "", "tRuE"] {
            assert!(parse_bool(bad).is_err(), "{bad:?}");
        }
    }

    /// Goal: durations parse as Go's time.ParseDuration does, negative ones are refused.
    #[test]
    fn durations_follow_go_parse_duration() {
        let ms = Duration::from_millis;
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("300ms"), Ok(ms(300)));
        assert_eq!(parse_duration("5s"), Ok(ms(5_000)));
        assert_eq!(parse_duration("1h30m"), Ok(ms(5_400_000)));
        assert_eq!(parse_duration("1.5s"), Ok(ms(1_500)));
        assert_eq!(parse_duration(".5s"), Ok(ms(500)));
        assert_eq!(parse_duration("2h45m10.5s"), Ok(ms(9_910_500)));
        assert_eq!(parse_duration("10us"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("10µs"), Ok(Duration::from_micros(10)));
        assert_eq!(parse_duration("7ns"), Ok(Duration::from_nanos(7)));
        assert_eq!(parse_duration("+1m"), Ok(ms(60_000)));
        for bad in ["", "5", "1x", "s", "1..5s", "1h-5m", "abc", "."] {
            assert!(parse_duration(bad).is_err(), "{bad:?} must be rejected");
        }
        assert!(parse_duration("-1s").unwrap_err().contains("negative"));
        assert!(parse_duration("3000000h")
            .unwrap_err()
            .contains("out of range"));
    }

    #[test]
    fn durations_print_like_go() {
        let ms = Duration::from_millis;
        assert_eq!(format_duration(Duration::ZERO), "0s");
        assert_eq!(format_duration(ms(100)), "100ms");
        assert_eq!(format_duration(ms(5_000)), "5s");
        assert_eq!(format_duration(ms(600_000)), "10m0s");
        assert_eq!(format_duration(ms(7_200_000)), "2h0m0s");
        assert_eq!(format_duration(ms(1_500)), "1.5s");
        assert_eq!(format_duration(Duration::from_micros(10)), "10µs");
    }
}
