//! etcd's check of a peer's client certificate against the address it connects from
//! (`checkSAN` in etcd's `transport/listener_tls.go`, run on every peer listener unless
//! `--experimental-peer-skip-client-san-verification`): a verified client certificate that
//! names IP addresses or DNS names must name the connection's remote IP, directly or through a
//! DNS name that resolves to it (or that the remote IP's reverse lookup gives). A certificate
//! naming neither passes, as in etcd.
//!
//! The IP comparison is cheap and comes first; the DNS lookups block, so they run on the
//! executor's blocking thread. They happen once per accepted peer connection (members keep
//! their connections), and only for a certificate whose IP SANs did not match.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

use rustls::pki_types::CertificateDer;

use super::go_quoted_list;
use super::x509::{self, SubjectAltNames};

/// Checks `end_entity` (a client certificate the handshake verified) against `remote`, the
/// IP the connection comes from. The error is etcd's (Go's) wording of the refusal.
pub async fn check_client_san(
    end_entity: &CertificateDer<'_>,
    remote: IpAddr,
) -> Result<(), String> {
    let names = x509::subject_alt_names(end_entity)
        .map_err(|problem| format!("x509: malformed certificate: {problem}"))?;
    match ip_verdict(&names, remote) {
        Verdict::Accepted => Ok(()),
        Verdict::Refused(error) => Err(error),
        Verdict::AskDns => {
            let dns_names = names.dns_names.clone();
            glommio::executor()
                .spawn_blocking(move || dns_verdict(remote, &dns_names))
                .await
        }
    }
}

/// What the certificate's IP SANs alone decide.
#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    Accepted,
    Refused(String),
    /// Only the DNS names can tell.
    AskDns,
}

/// etcd's order: no SANs at all passes; an IP SAN equal to the remote IP passes; a mismatch
/// with no DNS names fails with Go's `VerifyHostname` error; else the DNS names decide.
fn ip_verdict(names: &SubjectAltNames, remote: IpAddr) -> Verdict {
    if names.ip_addresses.is_empty() && names.dns_names.is_empty() {
        return Verdict::Accepted;
    }
    // Go's net.IP.Equal holds an IPv4 address equal to its IPv4-mapped IPv6 form.
    let remote = remote.to_canonical();
    if names
        .ip_addresses
        .iter()
        .any(|ip| ip.to_canonical() == remote)
    {
        return Verdict::Accepted;
    }
    if !names.dns_names.is_empty() {
        return Verdict::AskDns;
    }
    let valid: Vec<String> = names.ip_addresses.iter().map(IpAddr::to_string).collect();
    Verdict::Refused(format!(
        "x509: certificate is valid for {}, not {remote}",
        valid.join(", ")
    ))
}

/// etcd's `isHostInDNS`: the reverse lookup of `remote` ends with a wildcard name's suffix or
/// equals a name, or a (non-wildcard) name resolves to `remote`. Blocks on the resolver.
fn dns_verdict(remote: IpAddr, dns_names: &[String]) -> Result<(), String> {
    let (wildcard_suffixes, names): (Vec<&str>, Vec<&str>) = {
        let mut wildcard_suffixes = Vec::new();
        let mut names = Vec::new();
        for name in dns_names {
            match name.strip_prefix('*') {
                Some(suffix) if suffix.starts_with('.') => wildcard_suffixes.push(suffix),
                _ => names.push(name.as_str()),
            }
        }
        (wildcard_suffixes, names)
    };
    let mut last_error = None;
    match reverse_lookup(remote) {
        Ok(Some(found)) => {
            let found = found.strip_suffix('.').unwrap_or(&found);
            if wildcard_suffixes
                .iter()
                .any(|suffix| found.ends_with(suffix))
                || names.contains(&found)
            {
                return Ok(());
            }
        }
        Ok(None) => {}
        Err(error) => last_error = Some(error),
    }
    for name in names {
        match (name, 0).to_socket_addrs() {
            Ok(addresses) => {
                let remote = remote.to_canonical();
                if addresses
                    .map(|address: SocketAddr| address.ip().to_canonical())
                    .any(|ip| ip == remote)
                {
                    return Ok(());
                }
            }
            Err(error) => last_error = Some(format!("lookup {name}: {error}")),
        }
    }
    let detail = last_error
        .map(|error| format!(" ({error})"))
        .unwrap_or_default();
    Err(format!(
        "tls: {:?} does not match any of DNSNames {}{detail}",
        remote.to_string(),
        go_quoted_list(dns_names)
    ))
}

/// The name the system's resolver gives `ip` (hosts file, then PTR records), `None` when it
/// has none. Go's `LookupAddr` may return several names; getnameinfo gives the first.
fn reverse_lookup(ip: IpAddr) -> Result<Option<String>, String> {
    let address = socket2::SockAddr::from(SocketAddr::new(ip, 0));
    let mut host = [0 as libc::c_char; libc::NI_MAXHOST as usize];
    // SAFETY: `address` is a valid sockaddr of `address.len()` bytes; `host` is a writable
    // buffer of the length passed; no service buffer is asked for.
    let status = unsafe {
        libc::getnameinfo(
            address.as_ptr().cast(),
            address.len(),
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    match status {
        0 => {
            // SAFETY: on success getnameinfo wrote a NUL-terminated string into `host`.
            let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
            Ok(Some(name.to_string_lossy().into_owned()))
        }
        libc::EAI_NONAME => Ok(None),
        error => {
            // SAFETY: gai_strerror returns a static NUL-terminated message for any code.
            let message = unsafe { std::ffi::CStr::from_ptr(libc::gai_strerror(error)) };
            Err(format!("lookup {ip}: {}", message.to_string_lossy()))
        }
    }
}

#[cfg(test)]
mod tests {
    //! Goal: etcd's decision for each shape of certificate, on loopback (whose names the hosts
    //! file gives, so no network resolver is needed).
    use super::*;

    fn names(dns: &[&str], ips: &[&str]) -> SubjectAltNames {
        SubjectAltNames {
            dns_names: dns.iter().map(|name| name.to_string()).collect(),
            ip_addresses: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
        }
    }

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn ip_sans_decide_without_dns() {
        assert_eq!(ip_verdict(&names(&[], &[]), LOOPBACK), Verdict::Accepted);
        assert_eq!(
            ip_verdict(&names(&[], &["10.0.0.1", "127.0.0.1"]), LOOPBACK),
            Verdict::Accepted
        );
        assert_eq!(
            ip_verdict(&names(&[], &["::ffff:127.0.0.1"]), LOOPBACK),
            Verdict::Accepted
        );
        assert_eq!(
            ip_verdict(&names(&[], &["127.0.0.2", "10.0.0.1"]), LOOPBACK),
            Verdict::Refused(
                "x509: certificate is valid for 127.0.0.2, 10.0.0.1, not 127.0.0.1".into()
            )
        );
        assert_eq!(
            ip_verdict(&names(&["localhost"], &["127.0.0.2"]), LOOPBACK),
            Verdict::AskDns
        );
    }

    #[test]
    fn dns_names_that_resolve_to_the_remote_ip_pass() {
        assert_eq!(dns_verdict(LOOPBACK, &["localhost".to_string()]), Ok(()));
        let refused = dns_verdict(LOOPBACK, &["basalt.invalid".to_string()]).unwrap_err();
        assert!(
            refused.starts_with(
                "tls: \"127.0.0.1\" does not match any of DNSNames [\"basalt.invalid\"]"
            ),
            "{refused}"
        );
    }
}
