//! Event objects: their keys under `/registry/events/<namespace>/<name>` and their values.
//!
//! Names start with the run id, so a run recognises its own objects among leftovers of
//! earlier runs on the same server.

/// The prefix kube-apiserver stores events under (and watches, lists and counts).
pub const EVENTS_PREFIX: &str = "/registry/events/";

/// The key of object `sequence` of `writer` in this run.
pub fn object_key(run_id: &str, namespaces: u32, writer: u32, sequence: u64) -> String {
    let namespace = (writer as u64 + sequence) % namespaces.max(1) as u64;
    format!("{EVENTS_PREFIX}ns-{namespace}/{run_id}.{writer}.{sequence}")
}

/// Whether `key` is an object of the run `run_id`.
pub fn belongs_to_run(key: &[u8], run_id: &str) -> bool {
    let Some(rest) = key.strip_prefix(EVENTS_PREFIX.as_bytes()) else {
        return false;
    };
    let name = rest.rsplit(|&b| b == b'/').next().unwrap_or_default();
    name.strip_prefix(run_id.as_bytes())
        .is_some_and(|after| after.first() == Some(&b'.'))
}

/// The end of the events prefix range (the prefix with its last byte incremented).
pub fn prefix_end() -> Vec<u8> {
    let mut end = EVENTS_PREFIX.as_bytes().to_vec();
    *end.last_mut().expect("non-empty prefix") += 1;
    end
}

/// A value of about `size` bytes shaped like a serialised v1 Event (kube stores protobuf;
/// only the size matters to the server).
pub fn object_value(key: &str, count: u64, size: usize) -> Vec<u8> {
    let mut value = format!(
        "{{\"kind\":\"Event\",\"apiVersion\":\"v1\",\"metadata\":{{\"name\":\"{key}\"}},\
         \"reason\":\"Scheduled\",\"count\":{count},\"message\":\""
    )
    .into_bytes();
    value.resize(size.saturating_sub(2).max(value.len()), b'x');
    value.extend_from_slice(b"\"}");
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a run finds its own keys and no other run's, whatever the namespace.
    #[test]
    fn keys_are_recognised_by_run() {
        let key = object_key("r1a2", 100, 3, 250);
        assert_eq!(key, "/registry/events/ns-53/r1a2.3.250");
        assert!(belongs_to_run(key.as_bytes(), "r1a2"));
        assert!(!belongs_to_run(key.as_bytes(), "r1a"));
        assert!(!belongs_to_run(b"/registry/pods/ns-1/r1a2.3.250", "r1a2"));
        assert_eq!(prefix_end(), b"/registry/events0");
    }

    // Goal: values have the asked size.
    #[test]
    fn values_have_the_asked_size() {
        assert_eq!(object_value("/registry/events/ns-1/x", 1, 1536).len(), 1536);
    }
}
