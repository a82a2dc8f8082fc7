//! `range`: reads of one key, a key range or a prefix (etcd `benchmark range key [end]`).

use std::sync::Arc;

use etcd_client::{Client, GetOptions};

use super::args::{
    ClientArgs, ClientKind, CommonArgs, Consistency, LengthArgs, Workload, WorkloadFuture,
};
use super::connection::ClientPool;
use super::driver::{run_closed_loop, run_lean, Request};
use super::lean;

/// Flags of `basalt-bench range`.
#[derive(clap::Args, Clone, Debug)]
pub struct RangeArgs {
    /// The key to read (the start of the range with END or --prefix).
    // Its own id: the flattened connection flags have `--key` (mutual TLS), and a shared id
    // made `--key FILE` fill this argument instead.
    #[arg(id = "range_key", value_name = "KEY")]
    pub key: String,
    /// End of the range (exclusive).
    pub end: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub length: LengthArgs,
    /// l: linearizable, s: serializable.
    #[arg(long, value_enum, default_value = "l")]
    pub consistency: Consistency,
    /// Maximum keys per response (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub limit: i64,
    /// Return keys without values.
    #[arg(long)]
    pub keys_only: bool,
    /// Return only the count of keys.
    #[arg(long)]
    pub count_only: bool,
    /// Read every key with KEY as prefix.
    #[arg(long, conflicts_with = "end")]
    pub prefix: bool,
    /// Before measuring, put KEY with a value of this many bytes (so a one-key range reads
    /// something on a fresh server).
    #[arg(long, value_name = "BYTES")]
    pub seed_val_size: Option<usize>,
    #[command(flatten)]
    pub client: ClientArgs,
}

impl RangeArgs {
    /// The request options the flags describe.
    pub fn options(&self) -> GetOptions {
        let mut options = GetOptions::new();
        if let Some(end) = &self.end {
            options = options.with_range(end.as_bytes());
        }
        if self.prefix {
            options = options.with_prefix();
        }
        if self.consistency == Consistency::Serializable {
            options = options.with_serializable();
        }
        if self.limit > 0 {
            options = options.with_limit(self.limit);
        }
        if self.keys_only {
            options = options.with_keys_only();
        }
        if self.count_only {
            options = options.with_count_only();
        }
        options
    }

    /// The same request as `options` says, as the lean client's RangeRequest fields.
    pub fn lean_fields(&self) -> lean::RangeFields {
        let mut key = self.key.as_bytes().to_vec();
        let range_end = match (&self.end, self.prefix) {
            (Some(end), _) => end.as_bytes().to_vec(),
            (None, true) if key.is_empty() => {
                // etcd-client's with_prefix of "": every key, from "\0" to "\0".
                key = vec![0];
                vec![0]
            }
            (None, true) => prefix_end(&key),
            (None, false) => Vec::new(),
        };
        lean::RangeFields {
            key,
            range_end,
            limit: self.limit.max(0),
            serializable: self.consistency == Consistency::Serializable,
            keys_only: self.keys_only,
            count_only: self.count_only,
        }
    }
}

/// The end of the range of keys with `prefix`: the prefix with its last byte below 0xff
/// incremented and what follows dropped ("\0": to the end, when every byte is 0xff).
fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    match prefix.iter().rposition(|&byte| byte < 0xff) {
        Some(last) => {
            let mut end = prefix[..=last].to_vec();
            end[last] += 1;
            end
        }
        None => vec![0],
    }
}

struct RangeRequest {
    key: Vec<u8>,
    options: GetOptions,
}

impl Request for RangeRequest {
    async fn issue(&self, client: &mut Client, _sequence: u64) -> Result<(), etcd_client::Error> {
        client
            .get(self.key.clone(), Some(self.options.clone()))
            .await
            .map(drop)
    }
}

impl Workload for RangeArgs {
    fn name(&self) -> &'static str {
        "range"
    }

    fn common(&self) -> &CommonArgs {
        &self.common
    }

    fn check(&self) -> Result<(), String> {
        self.client.kind(&self.common).map(drop)
    }

    fn connects_itself(&self) -> bool {
        self.client.kind(&self.common) == Ok(ClientKind::Lean)
    }

    fn run<'a>(&'a self, pool: &'a ClientPool) -> WorkloadFuture<'a> {
        Box::pin(async move {
            let kind = self.client.kind(&self.common)?;
            if let Some(size) = self.seed_val_size {
                pool.setup_client()
                    .await?
                    .put(self.key.as_bytes(), vec![b'v'; size], None)
                    .await
                    .map_err(|error| format!("cannot seed {}: {error}", self.key))?;
            }
            if kind == ClientKind::Lean {
                let fields = self.lean_fields();
                let calls = lean::Calls {
                    path: lean::RANGE_PATH,
                    message: Box::new(move |_, out| {
                        lean::grpc_message(out, |body| lean::range_request(body, &fields));
                    }),
                };
                return run_lean(self.name(), pool, &self.common, &self.length, calls).await;
            }
            let request = Arc::new(RangeRequest {
                key: self.key.as_bytes().to_vec(),
                options: self.options(),
            });
            run_closed_loop(self.name(), pool, &self.length, request).await
        })
    }
}

#[cfg(test)]
mod key_flag_tests {
    //! Goal: KEY and the mutual-TLS `--key FILE` are two arguments (they shared clap's id, so
    //! `range foo --key client.key` was refused as KEY given twice).
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Probe {
        #[command(flatten)]
        range: RangeArgs,
    }

    // Goal: the lean request's key range is the one etcd-client's options make: END as given,
    // --prefix as the prefix's end (0xff bytes carried), and a single key without either.
    #[test]
    fn lean_fields_follow_end_and_prefix() {
        let parse = |args: &[&str]| {
            Probe::try_parse_from(std::iter::once("probe").chain(args.iter().copied()))
                .unwrap()
                .range
                .lean_fields()
        };
        let single = parse(&["k", "--consistency", "s", "--limit", "5"]);
        assert_eq!((single.key, single.range_end), (b"k".to_vec(), vec![]));
        assert!(single.serializable && single.limit == 5);
        assert_eq!(parse(&["a", "c"]).range_end, b"c");
        assert_eq!(parse(&["ab", "--prefix"]).range_end, b"ac");
        assert_eq!(prefix_end(b"a\xff"), b"b");
        assert_eq!(prefix_end(b"\xff\xff"), [0]);
        let everything = parse(&["", "--prefix", "--count-only"]);
        assert_eq!((everything.key, everything.range_end), (vec![0], vec![0]));
        assert!(everything.count_only && !everything.serializable);
    }

    #[test]
    fn key_and_tls_key_are_distinct() {
        let probe =
            Probe::try_parse_from(["probe", "foo", "--cert", "c.pem", "--key", "k.pem"]).unwrap();
        assert_eq!(probe.range.key, "foo");
        assert_eq!(
            probe.range.common.connection.key,
            Some(std::path::PathBuf::from("k.pem"))
        );
    }
}
