//! Sizes in SI units as etcdutl prints them (go-humanize's `Bytes`: "2.1 MB", "20 kB").

pub fn bytes(size: u64) -> String {
    const UNITS: [&str; 7] = ["B", "kB", "MB", "GB", "TB", "PB", "EB"];
    if size < 10 {
        return format!("{size} B");
    }
    let exponent = ((size as f64).ln() / 1000f64.ln()).floor() as usize;
    let exponent = exponent.min(UNITS.len() - 1);
    let value = size as f64 / 1000f64.powi(exponent as i32);
    // One decimal below 10 of a unit, none above, as go-humanize rounds.
    let rounded = (value * 10.0 + 0.5).floor() / 10.0;
    if rounded < 10.0 {
        format!("{rounded:.1} {}", UNITS[exponent])
    } else {
        format!("{rounded:.0} {}", UNITS[exponent])
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sizes_read_as_etcdutl_prints_them() {
        assert_eq!(super::bytes(0), "0 B");
        assert_eq!(super::bytes(20_480), "20 kB");
        assert_eq!(super::bytes(2_105_344), "2.1 MB");
        assert_eq!(super::bytes(4096), "4.1 kB");
    }
}
