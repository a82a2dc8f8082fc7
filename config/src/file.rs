//! `--config-file`: etcd's YAML configuration. Top-level keys are the flag names
//! (`data-dir`, `listen-client-urls`, `heartbeat-interval`, ...); TLS settings sit under
//! `client-transport-security` and `peer-transport-security`, socket options under
//! `socket-options`. As in etcd, a duration given as a number is nanoseconds (Go unmarshals
//! `time.Duration` that way); basalt also takes a duration string such as "10m". Unlike etcd,
//! an unknown key is an error: etcd ignores it, which turns a typo into a silent default.

use std::path::Path;

use yaml_rust2::{Yaml, YamlLoader};

use super::error::ConfigError;
use super::spec::{self, FlagSpec, Kind};

/// One setting read from the file.
#[derive(Debug)]
pub struct FileSetting {
    /// The flag it sets.
    pub spec: &'static FlagSpec,
    /// The key as written (`peer-transport-security.cert-file` for nested ones).
    pub key: String,
    /// The value as flag text.
    pub text: String,
}

/// What the file says.
#[derive(Debug, Default)]
pub struct FileSettings {
    /// Settings in file order.
    pub settings: Vec<FileSetting>,
    /// Keys etcd knows that basalt does not use.
    pub warnings: Vec<String>,
}

/// Keys etcd versions have accepted in a config file that are neither flags nor nested maps.
const KEYS_WITHOUT_EFFECT: &[&str] = &[
    "debug",
    "log-package-levels",
    "log-format",
    "feature-gates",
    "experimental-backend-bbolt-freelist-type",
];

/// Reads and interprets the file at `path`.
pub fn read(path: &Path) -> Result<FileSettings, ConfigError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| ConfigError::ConfigFileUnreadable {
            path: path.to_path_buf(),
            source,
        })?;
    parse(path, &text)
}

/// Interprets YAML text; `path` names the file in errors.
pub fn parse(path: &Path, text: &str) -> Result<FileSettings, ConfigError> {
    let malformed = |reason: String| ConfigError::ConfigFileMalformed {
        path: path.to_path_buf(),
        reason,
    };
    let documents =
        YamlLoader::load_from_str(text).map_err(|error| malformed(error.to_string()))?;
    let mut out = FileSettings::default();
    let root = match documents.as_slice() {
        [] => return Ok(out), // an empty file sets nothing, as in etcd
        [root] => root,
        _ => return Err(malformed("expected one YAML document".to_string())),
    };
    let entries = match root {
        Yaml::Hash(entries) => entries,
        Yaml::Null => return Ok(out),
        _ => return Err(malformed("expected a mapping of settings".to_string())),
    };
    for (key, value) in entries {
        let key = key_text(key).ok_or_else(|| malformed("a key is not a string".to_string()))?;
        match key.as_str() {
            "client-transport-security" => {
                nested(path, &key, value, &client_tls_flag, &mut out)?;
            }
            "peer-transport-security" => {
                nested(path, &key, value, &peer_tls_flag, &mut out)?;
            }
            "socket-options" => {
                nested(path, &key, value, &socket_flag, &mut out)?;
            }
            _ => {
                if let Some(spec) = spec::lookup(&key) {
                    push(path, spec, key.clone(), value, &mut out)?;
                } else if KEYS_WITHOUT_EFFECT.contains(&key.as_str()) {
                    out.warnings
                        .push(format!("config file key {key:?} has no effect in basalt"));
                } else {
                    return Err(ConfigError::UnknownConfigKey {
                        path: path.to_path_buf(),
                        key,
                    });
                }
            }
        }
    }
    Ok(out)
}

fn client_tls_flag(key: &str) -> Option<&'static str> {
    Some(match key {
        "cert-file" => "cert-file",
        "key-file" => "key-file",
        "client-cert-file" => "client-cert-file",
        "client-key-file" => "client-key-file",
        "client-cert-auth" => "client-cert-auth",
        "trusted-ca-file" => "trusted-ca-file",
        "auto-tls" => "auto-tls",
        "crl-file" => "client-crl-file",
        "allowed-hostname" => "client-cert-allowed-hostname",
        _ => return None,
    })
}

fn peer_tls_flag(key: &str) -> Option<&'static str> {
    Some(match key {
        "cert-file" => "peer-cert-file",
        "key-file" => "peer-key-file",
        "client-cert-file" => "peer-client-cert-file",
        "client-key-file" => "peer-client-key-file",
        "client-cert-auth" => "peer-client-cert-auth",
        "trusted-ca-file" => "peer-trusted-ca-file",
        "auto-tls" => "peer-auto-tls",
        "crl-file" => "peer-crl-file",
        "allowed-cn" => "peer-cert-allowed-cn",
        "allowed-hostname" => "peer-cert-allowed-hostname",
        "skip-client-san-verification" => "experimental-peer-skip-client-san-verification",
        _ => return None,
    })
}

fn socket_flag(key: &str) -> Option<&'static str> {
    Some(match key {
        "reuse-port" => "socket-reuse-port",
        "reuse-address" => "socket-reuse-address",
        _ => return None,
    })
}

/// A nested map whose keys translate to flags.
fn nested(
    path: &Path,
    section: &str,
    value: &Yaml,
    flag_for: &dyn Fn(&str) -> Option<&'static str>,
    out: &mut FileSettings,
) -> Result<(), ConfigError> {
    let entries = match value {
        Yaml::Hash(entries) => entries,
        Yaml::Null => return Ok(()),
        _ => {
            return Err(ConfigError::ConfigFileMalformed {
                path: path.to_path_buf(),
                reason: format!("{section} must be a mapping"),
            })
        }
    };
    for (key, value) in entries {
        let inner = key_text(key).unwrap_or_default();
        let full_key = format!("{section}.{inner}");
        let spec = flag_for(&inner).and_then(spec::lookup).ok_or_else(|| {
            ConfigError::UnknownConfigKey {
                path: path.to_path_buf(),
                key: full_key.clone(),
            }
        })?;
        push(path, spec, full_key, value, out)?;
    }
    Ok(())
}

/// Converts one YAML value to the flag text for `spec`; null leaves the default in force.
fn push(
    path: &Path,
    spec: &'static FlagSpec,
    key: String,
    value: &Yaml,
    out: &mut FileSettings,
) -> Result<(), ConfigError> {
    let wrong_type = |expected: &str| ConfigError::ConfigFileMalformed {
        path: path.to_path_buf(),
        reason: format!("{key:?} must be {expected}"),
    };
    let text = match (spec.kind, value) {
        (_, Yaml::Null) => return Ok(()),
        // YAML 1.1 (which etcd's parser speaks) also reads yes/no/on/off as booleans.
        (Kind::Bool, Yaml::String(word)) => match word.as_str() {
            "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "y" | "Y" => "true".to_string(),
            "no" | "No" | "NO" | "off" | "Off" | "OFF" | "n" | "N" => "false".to_string(),
            other => other.to_string(),
        },
        // etcd unmarshals a number into a time.Duration as nanoseconds.
        (Kind::Duration, Yaml::Integer(nanos)) => format!("{nanos}ns"),
        (Kind::Urls | Kind::List, Yaml::Array(items)) => {
            let mut texts = Vec::new();
            for item in items {
                texts.push(scalar_text(item).ok_or_else(|| wrong_type("a list of strings"))?);
            }
            texts.join(",")
        }
        (_, scalar) => scalar_text(scalar).ok_or_else(|| wrong_type("a single value"))?,
    };
    out.settings.push(FileSetting { spec, key, text });
    Ok(())
}

/// A YAML scalar as text (etcd's YAML layer converts scalars to the string a field expects).
fn scalar_text(value: &Yaml) -> Option<String> {
    match value {
        Yaml::String(text) | Yaml::Real(text) => Some(text.clone()),
        Yaml::Integer(number) => Some(number.to_string()),
        Yaml::Boolean(flag) => Some(flag.to_string()),
        _ => None,
    }
}

fn key_text(key: &Yaml) -> Option<String> {
    scalar_text(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml: &str) -> Vec<(String, String)> {
        parse(Path::new("etcd.yml"), yaml)
            .unwrap()
            .settings
            .into_iter()
            .map(|setting| (setting.spec.name.to_string(), setting.text))
            .collect()
    }

    fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(name, text)| (name.to_string(), text.to_string()))
            .collect()
    }

    /// Goal: a file in etcd's documented format (its sample config) reads as the same flags.
    #[test]
    fn etcd_sample_config_reads_as_flags() {
        let yaml = r#"
# This is the configuration file for the etcd server.
name: 'infra0'
data-dir: /var/lib/etcd
wal-dir:
snapshot-count: 10000
heartbeat-interval: 100
election-timeout: 1000
quota-backend-bytes: 0
listen-peer-urls: http://10.0.0.1:2380
listen-client-urls: http://10.0.0.1:2379,http://127.0.0.1:2379
max-snapshots: 5
max-wals: 5
initial-advertise-peer-urls: http://10.0.0.1:2380
advertise-client-urls: http://10.0.0.1:2379
initial-cluster: infra0=http://10.0.0.1:2380
initial-cluster-token: 'etcd-cluster'
initial-cluster-state: 'new'
strict-reconfig-check: false
enable-v2: false
enable-pprof: true
proxy: 'off'
auto-compaction-retention: 1
grpc-keepalive-interval: 7200000000000
client-transport-security:
  cert-file: /etc/etcd/server.crt
  client-cert-auth: true
  auto-tls: no
peer-transport-security:
  trusted-ca-file: /etc/etcd/ca.crt
  client-cert-auth: yes
log-level: debug
log-outputs: [stderr]
"#;
        let expected = pairs(&[
            ("name", "infra0"),
            ("data-dir", "/var/lib/etcd"),
            ("snapshot-count", "10000"),
            ("heartbeat-interval", "100"),
            ("election-timeout", "1000"),
            ("quota-backend-bytes", "0"),
            ("listen-peer-urls", "http://10.0.0.1:2380"),
            (
                "listen-client-urls",
                "http://10.0.0.1:2379,http://127.0.0.1:2379",
            ),
            ("max-snapshots", "5"),
            ("max-wals", "5"),
            ("initial-advertise-peer-urls", "http://10.0.0.1:2380"),
            ("advertise-client-urls", "http://10.0.0.1:2379"),
            ("initial-cluster", "infra0=http://10.0.0.1:2380"),
            ("initial-cluster-token", "etcd-cluster"),
            ("initial-cluster-state", "new"),
            ("strict-reconfig-check", "false"),
            ("enable-v2", "false"),
            ("enable-pprof", "true"),
            ("proxy", "off"),
            ("auto-compaction-retention", "1"),
            ("grpc-keepalive-interval", "7200000000000ns"),
            ("cert-file", "/etc/etcd/server.crt"),
            ("client-cert-auth", "true"),
            ("auto-tls", "false"),
            ("peer-trusted-ca-file", "/etc/etcd/ca.crt"),
            ("peer-client-cert-auth", "true"),
            ("log-level", "debug"),
            ("log-outputs", "stderr"),
        ]);
        assert_eq!(settings(yaml), expected);
    }

    #[test]
    fn empty_files_set_nothing() {
        assert!(settings("").is_empty());
        assert!(settings("# only a comment\n").is_empty());
    }

    /// Goal: every malformed file is refused with the file and key named.
    #[test]
    fn malformed_files_are_refused() {
        let path = Path::new("/etc/etcd.yml");
        let error = parse(path, "data-dri: /x\n").unwrap_err();
        assert_eq!(
            error.to_string(),
            "config file /etc/etcd.yml: unknown key \"data-dri\""
        );
        let error = parse(path, "peer-transport-security:\n  cert: x\n").unwrap_err();
        assert!(error.to_string().contains("peer-transport-security.cert"));
        assert!(parse(path, "name: [a, b]\n").is_err());
        assert!(parse(path, "- a\n- b\n").is_err());
        assert!(parse(path, "name: 'unterminated\n").is_err());
        assert!(parse(path, "client-transport-security: 3\n").is_err());
        let warned = parse(path, "debug: true\n").unwrap();
        assert_eq!(warned.warnings.len(), 1);
    }
}
