//! The connection pool: `--conns` gRPC connections that `--clients` workers share round-robin.
//!
//! One `etcd_client::Client` owns one HTTP/2 connection (its own tonic channel). Clones of its
//! KV/watch/lease clients multiplex streams over that same connection, which is what etcd's
//! `benchmark` does with `--conns` and `--clients`.

use std::time::Duration;

use etcd_client::{Certificate, Client, ConnectOptions, Identity, TlsOptions};

use super::args::ConnectionArgs;

/// `--conns` connected clients to one endpoint set (none for a workload that opens its own).
pub struct ClientPool {
    connections: Vec<Client>,
    options: ConnectOptions,
    dial_timeout: Duration,
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
            options,
            dial_timeout,
            endpoints: endpoints.to_vec(),
            clients: args.clients,
        };
        pool.check_reachable(dial_timeout, endpoints).await?;
        Ok(pool)
    }

    /// A pool of no connections, for a workload that opens its own (the lean client): while
    /// it runs, the server sees exactly its `--conns` connections, not one more idle one. (A
    /// server may place connections by how many each core serves; basalt hands a lone client
    /// to its raft core.) The lean client reports an endpoint it cannot reach itself.
    pub fn unconnected(args: &ConnectionArgs, endpoints: &[String]) -> Result<Self, String> {
        Ok(ClientPool {
            connections: Vec::new(),
            options: connect_options(args)?,
            dial_timeout: Duration::from_secs(args.dial_timeout.max(1)),
            endpoints: endpoints.to_vec(),
            clients: args.clients,
        })
    }

    /// A client for setting up a workload (seeding keys): the pool's first connection, or for
    /// an unconnected pool a connection of its own, closed when the client is dropped.
    pub async fn setup_client(&self) -> Result<Client, String> {
        if let Some(client) = self.connections.first() {
            return Ok(client.clone());
        }
        let endpoints = self.endpoints.join(",");
        tokio::time::timeout(
            self.dial_timeout,
            Client::connect(&self.endpoints, Some(self.options.clone())),
        )
        .await
        .map_err(|_| format!("timed out connecting to {endpoints}"))?
        .map_err(|error| format!("cannot connect to {endpoints}: {error}"))
    }

    /// The connection client `index` uses: round-robin over the pool.
    pub fn client(&self, index: usize) -> Client {
        assert!(
            !self.connections.is_empty(),
            "an unconnected pool hands out no client"
        );
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
