//! A user's key permissions merged over its roles, and etcd's rule for whether a request's key
//! or range is covered by them (etcd's `range_perm_cache`).
//!
//! A permission is a half-open interval of keys: `[key, range_end)`; an empty `range_end` is
//! the single key (`[key, key\0)`), and `range_end = "\0"` is open-ended (every key from `key`
//! on). A point request is permitted when one interval holds the key; a range request when the
//! union of the intervals covers the whole range (two adjacent grants together cover a range
//! neither covers alone, as etcd's interval tree answers).

use std::cmp::Ordering;

use basalt_net::proto::authpb;

/// The upper bound of an interval: a key (exclusive), or no bound at all.
#[derive(Clone, Debug, PartialEq, Eq)]
enum End {
    Key(Vec<u8>),
    Open,
}

impl End {
    fn of(key: &[u8], range_end: &[u8]) -> End {
        match range_end {
            [] => {
                let mut end = key.to_vec();
                end.push(0);
                End::Key(end)
            }
            [0] => End::Open,
            end => End::Key(end.to_vec()),
        }
    }

    fn cmp_key(&self, key: &[u8]) -> Ordering {
        match self {
            End::Key(end) => end.as_slice().cmp(key),
            End::Open => Ordering::Greater,
        }
    }
}

impl PartialOrd for End {
    fn partial_cmp(&self, other: &End) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for End {
    fn cmp(&self, other: &End) -> Ordering {
        match (self, other) {
            (End::Open, End::Open) => Ordering::Equal,
            (End::Open, _) => Ordering::Greater,
            (_, End::Open) => Ordering::Less,
            (End::Key(a), End::Key(b)) => a.cmp(b),
        }
    }
}

/// Key intervals, sorted by start, for one kind of access.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Intervals(Vec<(Vec<u8>, End)>);

impl Intervals {
    fn add(&mut self, key: &[u8], range_end: &[u8]) {
        self.0.push((key.to_vec(), End::of(key, range_end)));
    }

    fn sort(&mut self) {
        self.0.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
    }

    fn holds_key(&self, key: &[u8]) -> bool {
        self.0
            .iter()
            .any(|(start, end)| start.as_slice() <= key && end.cmp_key(key) == Ordering::Greater)
    }

    /// Whether the union covers `[key, end)`.
    fn covers(&self, key: &[u8], end: &End) -> bool {
        // Walk the intervals in start order, extending what is covered from `key` on.
        let mut covered_to = End::Key(key.to_vec());
        for (start, interval_end) in &self.0 {
            if covered_to >= *end {
                return true;
            }
            if covered_to.cmp_key(start) == Ordering::Less {
                return false; // a gap before this interval: later ones start later still
            }
            if *interval_end > covered_to {
                covered_to = interval_end.clone();
            }
        }
        covered_to >= *end
    }
}

/// What one user may read and write, merged over its roles.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserPerms {
    read: Intervals,
    write: Intervals,
}

/// Read or write access, as a permission check asks for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl UserPerms {
    /// The permissions of `roles` together.
    pub fn merge<'r>(roles: impl IntoIterator<Item = &'r authpb::Role>) -> UserPerms {
        use authpb::permission::Type;
        let mut perms = UserPerms::default();
        for role in roles {
            for perm in &role.key_permission {
                match Type::try_from(perm.perm_type) {
                    Ok(Type::Read) => perms.read.add(&perm.key, &perm.range_end),
                    Ok(Type::Write) => perms.write.add(&perm.key, &perm.range_end),
                    Ok(Type::Readwrite) => {
                        perms.read.add(&perm.key, &perm.range_end);
                        perms.write.add(&perm.key, &perm.range_end);
                    }
                    Err(_) => {}
                }
            }
        }
        perms.read.sort();
        perms.write.sort();
        perms
    }

    /// Whether `access` to `key` (with `range_end`, etcd's request encoding: empty for the one
    /// key, `"\0"` for every key from `key` on) is permitted.
    pub fn permits(&self, access: Access, key: &[u8], range_end: &[u8]) -> bool {
        let intervals = match access {
            Access::Read => &self.read,
            Access::Write => &self.write,
        };
        if range_end.is_empty() {
            return intervals.holds_key(key);
        }
        intervals.covers(key, &End::of(key, range_end))
    }
}

/// Whether a permission's range is one etcd accepts: a key, and an end after it (or none, or
/// `"\0"` for open-ended).
pub fn is_valid_permission_range(key: &[u8], range_end: &[u8]) -> bool {
    !key.is_empty() && (range_end.is_empty() || key < range_end || range_end == [0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use authpb::permission::Type;

    fn role(perms: &[(Type, &str, &str)]) -> authpb::Role {
        authpb::Role {
            name: b"r".to_vec(),
            key_permission: perms
                .iter()
                .map(|(t, k, e)| authpb::Permission {
                    perm_type: *t as i32,
                    key: k.as_bytes().to_vec(),
                    range_end: e.as_bytes().to_vec(),
                })
                .collect(),
        }
    }

    #[test]
    fn points_ranges_prefixes_and_unions_as_etcds_interval_tree() {
        let perms = UserPerms::merge([
            &role(&[(Type::Read, "a", ""), (Type::Readwrite, "foo", "fop")]),
            &role(&[(Type::Write, "m", "p"), (Type::Write, "p", "r")]),
        ]);
        assert!(perms.permits(Access::Read, b"a", b""));
        assert!(!perms.permits(Access::Write, b"a", b""));
        assert!(!perms.permits(Access::Read, b"a0", b""));
        // A point grant covers the range of that one key.
        assert!(perms.permits(Access::Read, b"a", b"a\0"));
        assert!(!perms.permits(Access::Read, b"a", b"b"));
        // A prefix.
        assert!(perms.permits(Access::Read, b"foo/x", b""));
        assert!(perms.permits(Access::Write, b"foo", b"fop"));
        assert!(perms.permits(Access::Read, b"foo/", b"foo0"));
        assert!(!perms.permits(Access::Read, b"fo", b"fop"));
        assert!(!perms.permits(Access::Read, b"foo", b"\0"));
        // Two adjacent grants cover what neither covers alone.
        assert!(perms.permits(Access::Write, b"m", b"r"));
        assert!(perms.permits(Access::Write, b"n", b"q"));
        assert!(!perms.permits(Access::Write, b"m", b"s"));
        assert!(!perms.permits(Access::Read, b"m", b""));
        // Open-ended grants cover open-ended requests.
        let all = UserPerms::merge([&role(&[(Type::Read, "\0", "\0")])]);
        assert!(all.permits(Access::Read, b"\0", b"\0"));
        assert!(all.permits(Access::Read, b"anything", b""));
        assert!(all.permits(Access::Read, b"x", b"\0"));
        assert!(!all.permits(Access::Write, b"x", b""));
    }

    #[test]
    fn permission_ranges_etcd_refuses() {
        assert!(is_valid_permission_range(b"a", b""));
        assert!(is_valid_permission_range(b"a", b"b"));
        assert!(is_valid_permission_range(b"a", b"\0"));
        assert!(!is_valid_permission_range(b"", b""));
        assert!(!is_valid_permission_range(b"b", b"a"));
        assert!(!is_valid_permission_range(b"a", b"a"));
    }
}
