//! URLs and URL lists as etcd accepts them (`types.NewURLs`): `http`/`https` with a `host:port`
//! and no path, or a `unix`/`unixs` socket; lists are comma-separated, trimmed, de-duplicated
//! and sorted. The canonical text matters beyond looks: member IDs hash it.

use std::collections::BTreeMap;
use std::fmt;

use super::go_values::Reason;

/// The transport a URL names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Scheme {
    /// Plain TCP.
    Http,
    /// TCP with TLS.
    Https,
    /// A Unix domain socket.
    Unix,
    /// A Unix domain socket with TLS.
    Unixs,
}

/// One endpoint URL, validated; `text` is the canonical form etcd prints and hashes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Url {
    /// Canonical text, e.g. `http://127.0.0.1:2379` (ordered first so lists sort as etcd's).
    pub text: String,
    /// Transport.
    pub scheme: Scheme,
    /// For TCP schemes the `host:port` (IPv6 in brackets); for Unix schemes the socket address.
    pub address: String,
}

impl Url {
    /// Parses one URL with etcd's rules and its error texts.
    pub fn parse(input: &str) -> Result<Url, Reason> {
        let input = input.trim();
        let scheme_error = || format!("URL scheme must be http, https, unix, or unixs: {input}");
        let (scheme_text, rest) = input.split_once(':').ok_or_else(scheme_error)?;
        let scheme = match scheme_text.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "unix" => Scheme::Unix,
            "unixs" => Scheme::Unixs,
            _ => return Err(scheme_error()),
        };
        let scheme_lower = scheme_text.to_ascii_lowercase();
        match scheme {
            Scheme::Unix | Scheme::Unixs => {
                // etcd takes the host of `unix://name:port`, or the path of `unix:///path`.
                let address = rest.trim_start_matches("//");
                if address.is_empty() {
                    return Err(format!("URL has no socket address: {input}"));
                }
                Ok(Url {
                    text: format!("{scheme_lower}:{rest}"),
                    scheme,
                    address: address.to_string(),
                })
            }
            Scheme::Http | Scheme::Https => {
                let host_error =
                    || format!("URL address does not have the form \"host:port\": {input}");
                let authority_and_path = rest.strip_prefix("//").ok_or_else(host_error)?;
                let (authority, path) = match authority_and_path.find(['/', '?', '#']) {
                    Some(at) => authority_and_path.split_at(at),
                    None => (authority_and_path, ""),
                };
                if !path.is_empty() {
                    return Err(format!("URL must not contain a path: {input}"));
                }
                // Credentials in a listen or advertise URL have no meaning to etcd either.
                let host_port = authority.rsplit('@').next().unwrap_or(authority);
                split_host_port(host_port).ok_or_else(host_error)?;
                Ok(Url {
                    text: format!("{scheme_lower}://{authority}"),
                    scheme,
                    address: host_port.to_string(),
                })
            }
        }
    }

    /// The host part of a TCP URL without brackets (`127.0.0.1`, `::1`, `localhost`); `None`
    /// for a Unix socket.
    pub fn host(&self) -> Option<&str> {
        match self.scheme {
            Scheme::Http | Scheme::Https => split_host_port(&self.address).map(|(host, _)| host),
            Scheme::Unix | Scheme::Unixs => None,
        }
    }

    /// The TCP port; `None` for a Unix socket.
    pub fn port(&self) -> Option<u16> {
        match self.scheme {
            Scheme::Http | Scheme::Https => split_host_port(&self.address).map(|(_, port)| port),
            Scheme::Unix | Scheme::Unixs => None,
        }
    }

    /// Whether the transport is TLS.
    pub fn is_tls(&self) -> bool {
        matches!(self.scheme, Scheme::Https | Scheme::Unixs)
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Go's `net.SplitHostPort` plus a numeric port: `host:port` or `[v6]:port`.
fn split_host_port(host_port: &str) -> Option<(&str, u16)> {
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let (host, after) = bracketed.split_once(']')?;
        (host, after.strip_prefix(':')?)
    } else {
        let (host, port) = host_port.rsplit_once(':')?;
        if host.contains(':') {
            return None; // an IPv6 address needs brackets
        }
        (host, port)
    };
    if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((host, port.parse().ok()?))
}

/// A comma-separated URL list as etcd's `UniqueURLs` flag holds it: trimmed, de-duplicated,
/// sorted. An empty text is an empty list (etcd allows `--listen-metrics-urls ''`).
pub fn parse_url_list(text: &str) -> Result<Vec<Url>, Reason> {
    let mut urls = Vec::new();
    for part in text.split(',') {
        if part.trim().is_empty() {
            if text.trim().is_empty() {
                continue;
            }
            return Err(format!("empty URL in list {text:?}"));
        }
        urls.push(Url::parse(part)?);
    }
    urls.sort();
    urls.dedup();
    Ok(urls)
}

/// `--initial-cluster`: member name to its peer URLs, parsed as etcd's `types.NewURLsMap`
/// (`name=url,name=url`; a name may repeat to give a member several URLs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InitialCluster {
    /// Member name to its peer URLs, sorted as etcd sorts them.
    pub members: BTreeMap<String, Vec<Url>>,
}

impl InitialCluster {
    /// Parses the flag's text; empty text is an empty cluster.
    pub fn parse(text: &str) -> Result<InitialCluster, Reason> {
        let mut raw: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for entry in text.split(',').filter(|entry| !entry.is_empty()) {
            let (name, url) = entry
                .split_once('=')
                .ok_or_else(|| format!("{entry:?} is not of the form name=url"))?;
            raw.entry(name.to_string())
                .or_default()
                .push(url.to_string());
        }
        let mut members = BTreeMap::new();
        for (name, urls) in raw {
            let mut parsed = urls
                .iter()
                .map(|url| Url::parse(url))
                .collect::<Result<Vec<_>, _>>()?;
            parsed.sort();
            members.insert(name, parsed);
        }
        Ok(InitialCluster { members })
    }

    /// Builds `name=url,...` from one member's URLs, as etcd's `InitialClusterFromName` does.
    pub fn single(name: &str, peer_urls: &[Url]) -> InitialCluster {
        let mut urls = peer_urls.to_vec();
        urls.sort();
        InitialCluster {
            members: BTreeMap::from([(name.to_string(), urls)]),
        }
    }

    /// Whether no member is listed.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }
}

impl fmt::Display for InitialCluster {
    /// etcd's `URLsMap.String()`: `name=url` pairs sorted by name then URL.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, urls) in &self.members {
            for url in urls {
                if !first {
                    f.write_str(",")?;
                }
                first = false;
                write!(f, "{name}={url}")?;
            }
        }
        Ok(())
    }
}

/// Joins URLs with commas, as etcd prints a URL list.
pub fn join(urls: &[Url]) -> String {
    urls.iter()
        .map(|url| url.text.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: every URL etcd accepts is accepted with the same canonical text, and every URL
    /// it rejects is rejected with etcd's reason.
    #[test]
    fn urls_follow_etcd_rules() {
        let url = Url::parse(" http://127.0.0.1:2379 ").unwrap();
        assert_eq!(url.text, "http://127.0.0.1:2379");
        assert_eq!((url.host(), url.port()), (Some("127.0.0.1"), Some(2379)));
        let v6 = Url::parse("https://[::1]:2380").unwrap();
        assert_eq!(
            (v6.host(), v6.port(), v6.is_tls()),
            (Some("::1"), Some(2380), true)
        );
        assert_eq!(
            Url::parse("HTTP://localhost:1").unwrap().text,
            "http://localhost:1"
        );
        let socket = Url::parse("unix://localhost:2379").unwrap();
        assert_eq!((socket.scheme, socket.port()), (Scheme::Unix, None));
        assert_eq!(
            Url::parse("unixs:///run/etcd.sock").unwrap().address,
            "/run/etcd.sock"
        );

        let scheme = "URL scheme must be http, https, unix, or unixs";
        assert_eq!(
            Url::parse("ftp://x:1").unwrap_err(),
            format!("{scheme}: ftp://x:1")
        );
        assert!(Url::parse("localhost:2379")
            .unwrap_err()
            .starts_with(scheme));
        assert!(Url::parse("127.0.0.1").unwrap_err().starts_with(scheme));
        let host_port = "URL address does not have the form \"host:port\"";
        for bad in [
            "http://127.0.0.1",
            "http://127.0.0.1:",
            "http://127.0.0.1:x",
            "http://::1:2379",
            "http:127.0.0.1:1",
            "http://127.0.0.1:99999",
        ] {
            assert!(Url::parse(bad).unwrap_err().starts_with(host_port), "{bad}");
        }
        assert_eq!(
            Url::parse("http://127.0.0.1:2379/v3").unwrap_err(),
            "URL must not contain a path: http://127.0.0.1:2379/v3"
        );
        assert!(Url::parse("http://127.0.0.1:2379/").is_err());
    }

    #[test]
    fn url_lists_are_sorted_and_unique() {
        let urls = parse_url_list("http://b:2,http://a:1, http://b:2").unwrap();
        assert_eq!(join(&urls), "http://a:1,http://b:2");
        assert!(parse_url_list("").unwrap().is_empty());
        assert!(parse_url_list("http://a:1,,http://b:2").is_err());
        assert!(parse_url_list("http://a:1,ftp://b:2").is_err());
    }

    #[test]
    fn initial_cluster_groups_urls_by_member() {
        let cluster = InitialCluster::parse(
            "b=http://10.0.0.2:2380,a=http://10.0.0.1:2380,a=http://1.1.1.1:1",
        )
        .unwrap();
        assert_eq!(cluster.members.len(), 2);
        assert_eq!(
            join(&cluster.members["a"]),
            "http://1.1.1.1:1,http://10.0.0.1:2380"
        );
        assert_eq!(
            cluster.to_string(),
            "a=http://1.1.1.1:1,a=http://10.0.0.1:2380,b=http://10.0.0.2:2380"
        );
        assert!(InitialCluster::parse("").unwrap().is_empty());
        assert!(InitialCluster::parse("a").is_err());
        assert!(InitialCluster::parse("a=localhost:2380").is_err());
    }
}
