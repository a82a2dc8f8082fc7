//! The connection pool: `--conns` gRPC connections that `--clients` workers share round-robin.
//!
//! One `etcd_client::Client` owns one HTTP/2 connection (its own tonic channel). Clones of its
//! KV/watch/lease clients multiplex streams over that same connection, which is what etcd's
//! `benchmark` does with `--conns` and `--clients`.

use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use super::args::ConnectionArgs;

/// `--conns` connected clients to one endpoint set.
pub struct ClientPool {
    connections: Vec<Client>,
    /// The endpoints the pool is connected to.
    pub endpoints: Vec<String>,
    /// Concurrent workers (`--clients`) the workload should run.
    pub clients: u32,
}

impl ClientPool {
    /// Opens `args.conns` connections to `endpoints` (they may differ from `args.endpoints`
    /// under `--vs`).
    pub async fn connect(args: &ConnectionArgs, endpoints: &[String]) -> Result<Self, String> {
        let options = connect_options(args)?;
        let dial_timeout = Duration::from_secs(args.dial_timeout.max(1));
        let mut connections = Vec::with_capacity(args.conns as usize);
        for _ in 0..args.conns {
            let connect = Client::connect(endpoints, Some(options.clone()));
            let client = tokio::time::timeout(dial_timeout, connect)
                .await
                .map_err(|_| format!("timed out connecting to {}", endpoints.join(",")))?
                .map_err(|error| format!("cannot connect to {}: {error}", endpoints.join(",")))?;
            connections.push(client);
        }
        let pool = ClientPool {
            connections,
            endpoints: endpoints.to_vec(),
            clients: args.clients,
        };
        pool.check_reachable(dial_timeout, endpoints).await?;
        Ok(pool)
    }

    /// The connection client `index` uses: round-robin over the pool.
    pub fn client(&self, index: usize) -> Client {
        self.connections[index % self.connections.len()].clone()
    }

    /// tonic connects lazily; one cheap request fails fast on a wrong endpoint instead of
    /// letting every worker time out.
    async fn check_reachable(&self, timeout: Duration, endpoints: &[String]) -> Result<(), String> {
        let mut client = self.client(0);
        let probe = client.get("basalt-bench-probe", None);
        match tokio::time::timeout(timeout, probe).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(error)) => Err(format!("{} does not answer: {error}", endpoints.join(","))),
            Err(_) => Err(format!("{} does not answer in time", endpoints.join(","))),
        }
    }
}

fn connect_options(args: &ConnectionArgs) -> Result<ConnectOptions, String> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(Duration::from_secs(args.dial_timeout.max(1)))
        .with_keep_alive(Duration::from_secs(30), Duration::from_secs(10));
    if let Some((name, password)) = args.credentials()? {
        options = options.with_user(name, password);
    }
    if let Some(tls) = tls_options(args)? {
        options = options.with_tls(tls);
    }
    Ok(options)
}

fn tls_options(args: &ConnectionArgs) -> Result<Option<TlsOptions>, String> {
    if args.cacert.is_none() && args.cert.is_none() && args.key.is_none() {
        return Ok(None);
    }
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|error| format!("cannot read {}: {error}", path.display()))
    };
    let mut tls = TlsOptions::new();
    if let Some(path) = &args.cacert {
        tls = tls.ca_certificate(Certificate::from_pem(read(path)?));
    }
    match (&args.cert, &args.key) {
        (Some(cert), Some(key)) => {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        (None, None) => {}
        _ => return Err("--cert and --key go together".into()),
    }
    Ok(Some(tls))
}
