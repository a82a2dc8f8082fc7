//! Protocol versions and cipher suites from etcd's `--tls-min-version`, `--tls-max-version` and
//! `--cipher-suites`, checked as etcd checks them, mapped onto rustls' ring provider.
//!
//! Go's semantics, kept here: the cipher suite list restricts TLS 1.2 only (Go never lets TLS
//! 1.3 suites be configured, so naming one is accepted and changes nothing); the minimum version
//! defaults to TLS 1.2 and the maximum to the newest (TLS 1.3). rustls has no TLS 1.0/1.1 and
//! no CBC, RC4, 3DES or RSA-key-exchange suites: naming one of Go's suites of that kind is an
//! error that says so, instead of a silently weaker or different configuration.

use std::sync::Arc;

use rustls::crypto::{ring as ring_provider, CryptoProvider};
use rustls::{SupportedCipherSuite, SupportedProtocolVersion};

use super::{go_quoted_list, TlsError};

/// A TLS protocol version etcd's version flags can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum TlsVersion {
    /// `TLS1.2`.
    Tls12,
    /// `TLS1.3`.
    Tls13,
}

impl TlsVersion {
    /// Parses an etcd flag value: `""` (let the library decide), `TLS1.2` or `TLS1.3`, with
    /// etcd's message for anything else.
    pub fn from_etcd_flag(value: &str) -> Result<Option<TlsVersion>, TlsError> {
        match value {
            "" => Ok(None),
            "TLS1.2" => Ok(Some(TlsVersion::Tls12)),
            "TLS1.3" => Ok(Some(TlsVersion::Tls13)),
            other => Err(TlsError::Setting(format!(
                "unexpected TLS version {other:?} (must be one of: TLS1.2, TLS1.3)"
            ))),
        }
    }

    fn etcd_name(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "TLS1.2",
            TlsVersion::Tls13 => "TLS1.3",
        }
    }
}

/// Which protocol versions and TLS 1.2 cipher suites a TLS endpoint offers; the default is
/// etcd's (TLS 1.2 and 1.3, every suite the provider has).
#[derive(Clone, Debug, Default)]
pub struct TlsPolicy {
    /// TLS 1.2 suites in the order given; `None`: all of the provider's.
    tls12_cipher_suites: Option<Vec<SupportedCipherSuite>>,
    min_version: Option<TlsVersion>,
    max_version: Option<TlsVersion>,
}

/// Go's names of the suites rustls' ring provider implements (Go's two short CHACHA20 aliases
/// included, as etcd accepts them).
fn implemented_suite(go_name: &str) -> Option<SupportedCipherSuite> {
    use ring_provider::cipher_suite as suite;
    Some(match go_name {
        "TLS_AES_128_GCM_SHA256" => suite::TLS13_AES_128_GCM_SHA256,
        "TLS_AES_256_GCM_SHA384" => suite::TLS13_AES_256_GCM_SHA384,
        "TLS_CHACHA20_POLY1305_SHA256" => suite::TLS13_CHACHA20_POLY1305_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256" => suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384" => suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" => suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" => suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256" | "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305" => {
            suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256
        }
        "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        | "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305" => {
            suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
        }
        _ => return None,
    })
}

/// Suites Go (hence etcd) knows and rustls does not implement.
const GO_SUITES_NOT_IMPLEMENTED: &[&str] = &[
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_RC4_128_SHA",
    "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA",
    "TLS_RSA_WITH_AES_256_CBC_SHA",
    "TLS_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
    "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
    "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
];

impl TlsPolicy {
    /// Checks etcd's `--cipher-suites`, `--tls-min-version` and `--tls-max-version` in etcd's
    /// order and with its messages: version names, min above max, suites with TLS 1.3 as the
    /// minimum (Go cannot configure TLS 1.3 suites), then each suite name. etcd runs these
    /// checks at start-up whether or not any listener uses TLS; so should the caller.
    pub fn from_etcd_flags(
        cipher_suites: &[String],
        min_version: &str,
        max_version: &str,
    ) -> Result<TlsPolicy, TlsError> {
        let min = TlsVersion::from_etcd_flag(min_version)?;
        let max = TlsVersion::from_etcd_flag(max_version)?;
        TlsPolicy::new(cipher_suites, min, max)
    }

    /// The same checks on typed versions (`None`: the default, TLS 1.2 as minimum and TLS 1.3
    /// as maximum).
    pub fn new(
        cipher_suites: &[String],
        min_version: Option<TlsVersion>,
        max_version: Option<TlsVersion>,
    ) -> Result<TlsPolicy, TlsError> {
        if let (Some(min), Some(max)) = (min_version, max_version) {
            if min > max {
                return Err(TlsError::Setting(format!(
                    "min version ({}) is greater than max version ({})",
                    min.etcd_name(),
                    max.etcd_name()
                )));
            }
        }
        if min_version == Some(TlsVersion::Tls13) && !cipher_suites.is_empty() {
            return Err(TlsError::Setting(
                "cipher suites cannot be configured when only TLS1.3 is enabled".into(),
            ));
        }
        let mut tls12_cipher_suites = Vec::new();
        for name in cipher_suites {
            let Some(suite) = implemented_suite(name) else {
                if GO_SUITES_NOT_IMPLEMENTED.contains(&name.as_str()) {
                    return Err(TlsError::Setting(format!(
                        "TLS cipher suite {name:?} is not implemented by basalt's TLS library \
                         (rustls implements only ECDHE key exchange with AES-GCM or \
                         CHACHA20-POLY1305)"
                    )));
                }
                return Err(TlsError::Setting(format!(
                    "unexpected TLS cipher suite {name:?}"
                )));
            };
            // Go ignores TLS 1.3 names in its list: every TLS 1.3 suite stays enabled.
            if suite.version() == &rustls::version::TLS12 && !tls12_cipher_suites.contains(&suite) {
                tls12_cipher_suites.push(suite);
            }
        }
        let policy = TlsPolicy {
            tls12_cipher_suites: (!cipher_suites.is_empty()).then_some(tls12_cipher_suites),
            min_version,
            max_version,
        };
        if policy.versions().iter().all(|version| {
            !policy
                .provider()
                .cipher_suites
                .iter()
                .any(|suite| suite.version() == *version)
        }) {
            return Err(TlsError::Setting(format!(
                "no TLS 1.2 cipher suite among {} and TLS 1.3 is disabled: no client could connect",
                go_quoted_list(cipher_suites)
            )));
        }
        Ok(policy)
    }

    /// The lowest version offered.
    pub fn min_version(&self) -> TlsVersion {
        self.min_version.unwrap_or(TlsVersion::Tls12)
    }

    /// The highest version offered.
    pub fn max_version(&self) -> TlsVersion {
        self.max_version.unwrap_or(TlsVersion::Tls13)
    }

    /// The rustls protocol versions offered, newest first.
    pub(crate) fn versions(&self) -> Vec<&'static SupportedProtocolVersion> {
        let mut versions = Vec::new();
        for (version, rustls_version) in [
            (TlsVersion::Tls13, &rustls::version::TLS13),
            (TlsVersion::Tls12, &rustls::version::TLS12),
        ] {
            if self.min_version() <= version && version <= self.max_version() {
                versions.push(rustls_version);
            }
        }
        versions
    }

    /// The ring provider with this policy's suites: every TLS 1.3 suite, then the TLS 1.2 ones.
    pub(crate) fn provider(&self) -> Arc<CryptoProvider> {
        let mut provider = ring_provider::default_provider();
        if let Some(tls12) = &self.tls12_cipher_suites {
            let mut suites: Vec<SupportedCipherSuite> = provider
                .cipher_suites
                .iter()
                .copied()
                .filter(|suite| suite.version() == &rustls::version::TLS13)
                .collect();
            suites.extend(tls12.iter().copied());
            provider.cipher_suites = suites;
        }
        Arc::new(provider)
    }
}

#[cfg(test)]
mod tests {
    //! Goal: etcd's flag checks refuse what etcd refuses, with etcd's words, and the accepted
    //! flags become the versions and suites Go would offer.
    use super::*;

    fn names(names: &[&str]) -> Vec<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    fn error(result: Result<TlsPolicy, TlsError>) -> String {
        result.expect_err("expected a refusal").to_string()
    }

    #[test]
    fn versions_are_checked_as_etcd_checks_them() {
        assert_eq!(
            error(TlsPolicy::from_etcd_flags(&[], "TLS1.1", "")),
            r#"unexpected TLS version "TLS1.1" (must be one of: TLS1.2, TLS1.3)"#
        );
        assert_eq!(
            error(TlsPolicy::from_etcd_flags(&[], "TLS1.3", "TLS1.2")),
            "min version (TLS1.3) is greater than max version (TLS1.2)"
        );
        let suites = names(&["TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"]);
        assert_eq!(
            error(TlsPolicy::from_etcd_flags(&suites, "TLS1.3", "")),
            "cipher suites cannot be configured when only TLS1.3 is enabled"
        );
        // etcd's rule is on the minimum: suites with TLS 1.3 as maximum are fine.
        let policy = TlsPolicy::from_etcd_flags(&suites, "TLS1.2", "TLS1.3").unwrap();
        assert_eq!(policy.versions().len(), 2);
        let policy = TlsPolicy::from_etcd_flags(&[], "TLS1.3", "").unwrap();
        assert_eq!(policy.versions(), vec![&rustls::version::TLS13]);
        let policy = TlsPolicy::from_etcd_flags(&[], "", "TLS1.2").unwrap();
        assert_eq!(policy.versions(), vec![&rustls::version::TLS12]);
    }

    #[test]
    fn suite_names_are_go_names() {
        assert_eq!(
            error(TlsPolicy::from_etcd_flags(&names(&["TLS_FANCY"]), "", "")),
            r#"unexpected TLS cipher suite "TLS_FANCY""#
        );
        let refused = error(TlsPolicy::from_etcd_flags(
            &names(&["TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"]),
            "",
            "",
        ));
        assert!(
            refused.starts_with(
                r#"TLS cipher suite "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA" is not implemented"#
            ),
            "{refused}"
        );
        // A restriction keeps every TLS 1.3 suite and only the named TLS 1.2 ones, in order;
        // Go's short CHACHA20 alias is accepted.
        let policy = TlsPolicy::from_etcd_flags(
            &names(&[
                "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305",
                "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
                "TLS_AES_128_GCM_SHA256",
            ]),
            "",
            "",
        )
        .unwrap();
        let tls12: Vec<_> = policy
            .provider()
            .cipher_suites
            .iter()
            .filter(|suite| suite.version() == &rustls::version::TLS12)
            .map(|suite| suite.suite())
            .collect();
        assert_eq!(
            tls12,
            [
                rustls::CipherSuite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
                rustls::CipherSuite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256
            ]
        );
        let tls13 = policy.provider().cipher_suites.len() - tls12.len();
        assert_eq!(tls13, 3);
        // Only TLS 1.3 names with TLS 1.2 as the maximum leaves nothing to negotiate.
        let nothing = error(TlsPolicy::from_etcd_flags(
            &names(&["TLS_AES_128_GCM_SHA256"]),
            "",
            "TLS1.2",
        ));
        assert!(nothing.contains("no client could connect"), "{nothing}");
    }
}
