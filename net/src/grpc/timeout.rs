//! The `grpc-timeout` request header: the client's deadline for the call, which the server
//! enforces by ending the call with DEADLINE_EXCEEDED (and dropping the handler's future).

use std::time::Duration;

/// Deadlines longer than this are treated as none: clients send "infinite" as huge values,
/// and timers that far out would only overflow.
const TIMEOUT_MAX: Duration = Duration::from_secs(24 * 60 * 60);

/// Parses a `grpc-timeout` value (1 to 8 digits and a unit: H, M, S, m, u, n). `None` for an
/// absent, malformed or practically infinite deadline.
pub fn parse_grpc_timeout(value: &str) -> Option<Duration> {
    if value.len() < 2 || value.len() > 9 {
        return None;
    }
    let (digits, unit) = value.split_at(value.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    let timeout = match unit {
        "H" => Duration::from_secs(amount.checked_mul(3600)?),
        "M" => Duration::from_secs(amount.checked_mul(60)?),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    };
    (timeout <= TIMEOUT_MAX).then_some(timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_malformed_values() {
        assert_eq!(parse_grpc_timeout("5S"), Some(Duration::from_secs(5)));
        assert_eq!(
            parse_grpc_timeout("1500m"),
            Some(Duration::from_millis(1500))
        );
        assert_eq!(parse_grpc_timeout("2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_grpc_timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_grpc_timeout("250u"), Some(Duration::from_micros(250)));
        assert_eq!(
            parse_grpc_timeout("99999999n"),
            Some(Duration::from_nanos(99_999_999))
        );
        assert_eq!(
            parse_grpc_timeout("99999999H"),
            None,
            "beyond the cap: no deadline"
        );
        for bad in ["", "S", "5", "5s", "-5S", "123456789S", "1.5S"] {
            assert_eq!(parse_grpc_timeout(bad), None, "{bad:?}");
        }
    }
}
