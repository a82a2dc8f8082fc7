//! The process collector's numbers (`process_*`, as Prometheus' Go client exports for etcd),
//! read from `/proc/self` at scrape time.

/// One reading of the process; a field the kernel does not give is `None` and not exported.
#[derive(Debug, Default)]
pub struct ProcessReading {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
}

pub fn read() -> ProcessReading {
    let mut reading = ProcessReading {
        open_fds: std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|entries| entries.count() as u64),
        max_fds: max_fds(),
        ..ProcessReading::default()
    };
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // The command name (field 2) may hold spaces and parentheses: fields count from the
        // last ')'. After it, field 3 (state) is index 0, so field N is index N - 3.
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
            // SAFETY: sysconf only reads a configuration value.
            let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
            // SAFETY: as above.
            let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
            if let (Some(user), Some(system)) = (field(14), field(15)) {
                if ticks > 0 {
                    reading.cpu_seconds = Some((user + system) as f64 / ticks as f64);
                }
            }
            reading.virtual_bytes = field(23);
            if page > 0 {
                reading.resident_bytes = field(24).map(|pages| pages * page as u64);
            }
        }
    }
    reading
}

fn max_fds() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid rlimit for getrlimit to fill.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    Some(limit.rlim_cur)
}

#[cfg(test)]
mod tests {
    #[test]
    fn this_process_has_cpu_time_memory_and_descriptors() {
        let reading = super::read();
        assert!(reading.resident_bytes.is_some_and(|bytes| bytes > 0));
        assert!(reading.virtual_bytes.is_some_and(|bytes| bytes > 0));
        assert!(reading.cpu_seconds.is_some());
        // stdin, stdout and stderr at least.
        assert!(reading.open_fds.is_some_and(|fds| fds >= 3));
        assert!(reading.max_fds.is_some_and(|max| max >= 3));
    }
}
