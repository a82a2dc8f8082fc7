//! `range`: reads of one key, a key range or a prefix (etcd `benchmark range key [end]`).

use std::sync::Arc;

use etcd_client::{Client, GetOptions};

use super::args::{CommonArgs, Consistency, LengthArgs, Workload, WorkloadFuture};
use super::connection::ClientPool;
use super::driver::{run_closed_loop, Request};

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

    fn run<'a>(&'a self, pool: &'a ClientPool) -> WorkloadFuture<'a> {
        Box::pin(async move {
            if let Some(size) = self.seed_val_size {
                pool.client(0)
                    .put(self.key.as_bytes(), vec![b'v'; size], None)
                    .await
                    .map_err(|error| format!("cannot seed {}: {error}", self.key))?;
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
