//! Keys and values of the request workloads: `--key-size`, `--key-space-size`,
//! `--sequential-keys`, `--val-size`.
//!
//! A key is the decimal index in the key space, zero-padded to `--key-size` bytes (readable in
//! etcdctl, unlike etcd's varint keys, and the same size on the wire). Random keys come from a
//! hash of the request's sequence number: no shared RNG state between workers, and a run is
//! reproducible.

/// Key shape flags shared by put-like workloads.
#[derive(clap::Args, Clone, Debug)]
pub struct KeyArgs {
    /// Key size in bytes.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..=1_048_576))]
    pub key_size: u64,
    /// Value size in bytes.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(0..=16_777_216))]
    pub val_size: u64,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub key_space_size: u64,
    /// Use keys 0, 1, 2, ... (mod --key-space-size) instead of random ones.
    #[arg(long)]
    pub sequential_keys: bool,
    /// Fill each value with pseudo-random bytes drawn from its request's sequence number
    /// (incompressible, and different per request) instead of one repeated byte.
    #[arg(long)]
    pub random_values: bool,
}

impl KeyArgs {
    /// The key request `sequence` writes.
    pub fn key(&self, sequence: u64) -> Vec<u8> {
        self.key_at(self.index(sequence))
    }

    /// The index in the key space of request `sequence`'s key.
    pub fn index(&self, sequence: u64) -> u64 {
        if self.sequential_keys {
            sequence % self.key_space_size
        } else {
            mix(sequence) % self.key_space_size
        }
    }

    /// The key at `index` (taken modulo the key space).
    pub fn key_at(&self, index: u64) -> Vec<u8> {
        padded_key(index % self.key_space_size, self.key_size as usize)
    }

    /// The value every request writes (with `--random-values`, the template that
    /// [`KeyArgs::value_for`] overwrites).
    pub fn value(&self) -> Vec<u8> {
        vec![b'v'; self.val_size as usize]
    }

    /// The value request `sequence` writes: `template` (from [`KeyArgs::value`]), or with
    /// `--random-values` bytes of a splitmix64 stream seeded by the sequence number.
    pub fn value_for(&self, template: &[u8], sequence: u64) -> Vec<u8> {
        if !self.random_values {
            return template.to_vec();
        }
        let mut value = Vec::with_capacity(template.len());
        let mut state = mix(sequence);
        while value.len() < template.len() {
            state = mix(state);
            let take = (template.len() - value.len()).min(8);
            value.extend_from_slice(&state.to_le_bytes()[..take]);
        }
        value
    }
}

/// `index` in decimal, left-padded with zeros to `size` bytes (its last `size` digits when
/// longer, so the size on the wire is exact).
pub fn padded_key(index: u64, size: usize) -> Vec<u8> {
    let digits = format!("{index:0size$}");
    digits.as_bytes()[digits.len() - size..].to_vec()
}

/// splitmix64: a cheap, well-spread hash of a sequence number.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(sequential: bool) -> KeyArgs {
        KeyArgs {
            key_size: 8,
            val_size: 256,
            key_space_size: 1000,
            sequential_keys: sequential,
            random_values: false,
        }
    }

    // Goal: keys have exactly --key-size bytes and stay inside --key-space-size.
    #[test]
    fn keys_have_the_asked_size_and_space() {
        assert_eq!(padded_key(42, 8), b"00000042");
        assert_eq!(padded_key(123_456_789, 4), b"6789");
        let sequential = args(true);
        assert_eq!(sequential.key(0), b"00000000");
        assert_eq!(sequential.key(1001), b"00000001");
        let random = args(false);
        let distinct: std::collections::HashSet<_> = (0..10_000).map(|s| random.key(s)).collect();
        assert!(distinct.len() > 900 && distinct.len() <= 1000);
        assert!(distinct.iter().all(|key| key.len() == 8));
        assert_eq!(random.value().len(), 256);
    }

    // Goal: --random-values gives each request its own value of the asked size, with no long
    // run of one byte (so no compressor can shrink a load to nothing).
    #[test]
    fn random_values_differ_per_request_and_keep_their_size() {
        let mut random = args(false);
        random.random_values = true;
        let template = random.value();
        let (first, second) = (
            random.value_for(&template, 1),
            random.value_for(&template, 2),
        );
        assert_eq!((first.len(), second.len()), (256, 256));
        assert_ne!(first, second);
        assert_eq!(random.value_for(&template, 1), first, "reproducible");
        let distinct: std::collections::HashSet<u8> = first.iter().copied().collect();
        assert!(distinct.len() > 64, "bytes spread: {}", distinct.len());
        assert_eq!(args(false).value_for(&template, 1), template);
    }
}
