//! Checks across settings, with etcd's rules and wording (`embed.Config.Validate` and the
//! listener set-up): raft timing, bind and advertise URLs, the advertise-client rule, lease
//! checkpoint dependencies, TLS material for https URLs.

use std::net::IpAddr;

use super::error::ConfigError;
use super::settings::Settings;
use super::urls::{self, Url};
use super::{Config, Source};

/// etcd's upper bound on `--election-timeout`.
const ELECTION_TIMEOUT_MS_MAX: u64 = 50_000;

/// Refuses a configuration etcd would refuse.
pub fn validate(config: &Config, settings: &Settings) -> Result<(), ConfigError> {
    for listen in [
        &config.urls.listen_peer,
        &config.urls.listen_client,
        &config.urls.listen_metrics,
    ] {
        check_bind_urls(listen)?;
    }
    check_host_urls("initial-advertise-peer-urls", &config.urls.advertise_peer)?;
    check_host_urls("advertise-client-urls", &config.urls.advertise_client)?;

    let heartbeat_ms = config.raft.heartbeat_interval.as_millis() as u64;
    let election_ms = config.raft.election_timeout.as_millis() as u64;
    if heartbeat_ms == 0 {
        return Err(ConfigError::HeartbeatZero(heartbeat_ms));
    }
    if election_ms == 0 {
        return Err(ConfigError::ElectionTimeoutZero(election_ms));
    }
    if 5 * heartbeat_ms > election_ms {
        return Err(ConfigError::ElectionTimeoutTooShort {
            election_ms,
            heartbeat_ms,
        });
    }
    if election_ms > ELECTION_TIMEOUT_MS_MAX {
        return Err(ConfigError::ElectionTimeoutTooLong(election_ms));
    }

    // etcd drops the default advertise URL when the listen URL is set explicitly, so a member
    // listening on a real address never advertises "localhost" to its clients by accident.
    // Like etcd, this applies to flags and variables, not to a config file.
    if config.source == Source::FlagsAndEnv
        && settings.is_set("listen-client-urls")
        && !settings.is_set("advertise-client-urls")
    {
        return Err(ConfigError::AdvertiseClientUrlsRequired);
    }

    check_tls_material(
        "client",
        &config.urls.listen_client,
        &config.client_tls,
        ("--cert-file", "--key-file"),
    )?;
    // etcd serves https metrics URLs with the client certificate.
    check_tls_material(
        "metrics",
        &config.urls.listen_metrics,
        &config.client_tls,
        ("--cert-file", "--key-file"),
    )?;
    check_tls_material(
        "peer",
        &config.urls.listen_peer,
        &config.peer_tls,
        ("--peer-cert-file", "--peer-key-file"),
    )?;

    if config.experimental.lease_checkpoint_persist && !config.experimental.lease_checkpoint {
        return Err(ConfigError::LeaseCheckpointPersistWithoutCheckpoint);
    }
    Ok(())
}

/// etcd's `checkBindURLs`: a listen URL names an IP address or `localhost`, not a host name.
fn check_bind_urls(listen: &[Url]) -> Result<(), ConfigError> {
    for url in listen {
        let Some(host) = url.host() else {
            continue; // a Unix socket
        };
        if host != "localhost" && host.parse::<IpAddr>().is_err() {
            return Err(ConfigError::BindUrlNotIp(url.text.clone()));
        }
    }
    Ok(())
}

/// etcd's `checkHostURLs`: an advertised URL must name a host.
fn check_host_urls(flag: &'static str, advertised: &[Url]) -> Result<(), ConfigError> {
    for url in advertised {
        if url.host() == Some("") {
            return Err(ConfigError::AdvertiseUrlEmptyHost {
                flag,
                urls: urls::join(advertised),
                url: url.text.clone(),
            });
        }
    }
    Ok(())
}

/// An https listener needs a certificate and key, or `--auto-tls` (etcd's wording); half a pair
/// is a mistake.
fn check_tls_material(
    side: &str,
    listen: &[Url],
    tls: &super::TlsConfig,
    (cert_flag, key_flag): (&str, &str),
) -> Result<(), ConfigError> {
    if tls.cert_file.is_some() != tls.key_file.is_some() {
        return Err(ConfigError::TlsIncomplete(format!(
            "{cert_flag} and {key_flag} must be given together"
        )));
    }
    if let Some(url) = listen.iter().find(|url| url.is_tls()) {
        if !tls.has_certificate() && !tls.auto_tls {
            return Err(ConfigError::TlsIncomplete(format!(
                "TLS key/cert ({cert_flag}, {key_flag}) must be provided for {side} url {url} \
                 with HTTPS scheme"
            )));
        }
    }
    Ok(())
}
