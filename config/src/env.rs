//! Settings from the environment, with etcd's rules (`flags.SetFlagsFromEnv`): each flag has a
//! variable `ETCD_<FLAG>` (upper case, `-` → `_`); an empty variable is not a setting; a
//! variable for a flag that is also on the command line is an error (etcd exits rather than
//! guess which one the operator meant); an `ETCD_*` variable that names no flag draws a warning.

use super::args::CommandLine;
use super::error::ConfigError;
use super::spec::{self, FlagSpec, BASALT_ENV_PREFIX, ETCD_ENV_PREFIX};

/// Settings taken from the environment, in table order.
#[derive(Debug, Default)]
pub struct EnvSettings {
    /// Each flag set by a variable: its spec, the variable's name and its value.
    pub flags: Vec<(&'static FlagSpec, String, String)>,
    /// What the operator should hear about (unrecognized variables, ignored ones).
    pub warnings: Vec<String>,
}

/// Variables basalt no longer reads, each with why: one that is set draws a warning of its own
/// (the operator set it on purpose, so "unrecognized" would mislead).
const OBSOLETE: &[(&str, &str)] = &[(
    "BASALT_EXPERIMENTAL_CLUSTERING",
    "clustering is always on: every member serves --listen-peer-urls, multi-member \
     --initial-cluster, --initial-cluster-state=existing and MemberAdd need no switch",
)];

/// basalt's variables that are not flags, read where they are used: never "unrecognized".
const NOT_FLAGS: &[&str] = &[
    "BASALT_LEASE_CHECKPOINT_INTERVAL_MS",
    "BASALT_TEST_WATCH_QUEUE_BYTES",
    "BASALT_TEST_READ_MEMORY_BYTES",
];

/// One warning per obsolete variable set in `env`, whatever else is read (flags, variables or
/// a config file).
pub fn obsolete_warnings(env: &[(String, String)]) -> Vec<String> {
    OBSOLETE
        .iter()
        .filter(|(name, _)| lookup(env, name).is_some())
        .map(|(name, why)| {
            format!("environment variable {name} is obsolete and has no effect: {why}")
        })
        .collect()
}

/// `ETCD_CONFIG_FILE`, read on its own because it decides whether the rest is read at all.
pub fn config_file(env: &[(String, String)]) -> Option<String> {
    let var = format!("{ETCD_ENV_PREFIX}_CONFIG_FILE");
    lookup(env, &var).filter(|value| !value.is_empty())
}

/// `BASALT_REPORTED_VERSION`, for `--version`, which answers before anything else is read.
pub fn reported_version(env: &[(String, String)]) -> Option<String> {
    lookup(env, &format!("{BASALT_ENV_PREFIX}_REPORTED_VERSION")).filter(|value| !value.is_empty())
}

/// Reads every flag's variable; `line` is the command line, whose flags win over nothing:
/// a variable that repeats one of them is refused.
pub fn read(env: &[(String, String)], line: &CommandLine) -> Result<EnvSettings, ConfigError> {
    let mut settings = EnvSettings::default();
    for spec in spec::FLAGS {
        let var = spec.env_var();
        let Some(value) = lookup(env, &var) else {
            continue;
        };
        if line.last(spec.name).is_some() {
            return Err(ConfigError::EnvShadowedByFlag(var));
        }
        if !value.is_empty() {
            settings.flags.push((spec, var, value));
        }
    }
    let version_var = format!("{ETCD_ENV_PREFIX}_VERSION");
    for (name, value) in env {
        let ours = name.starts_with(&format!("{ETCD_ENV_PREFIX}_"))
            || name.starts_with(&format!("{BASALT_ENV_PREFIX}_"));
        let known_elsewhere = *name == format!("{ETCD_ENV_PREFIX}_CONFIG_FILE")
            || NOT_FLAGS.contains(&name.as_str())
            || OBSOLETE.iter().any(|(obsolete, _)| obsolete == name);
        if !ours || known_elsewhere {
            continue;
        }
        if *name == version_var {
            settings.warnings.push(format!(
                "cannot set special environment variable {name}={value}; ignored"
            ));
        } else if !spec::FLAGS.iter().any(|spec| spec.env_var() == *name) {
            settings
                .warnings
                .push(format!("unrecognized environment variable {name}={value}"));
        }
    }
    Ok(settings)
}

fn lookup(env: &[(String, String)], var: &str) -> Option<String> {
    // The last definition wins, as getenv sees it.
    env.iter()
        .rev()
        .find(|(name, _)| name == var)
        .map(|(_, value)| value.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn line(words: &[&str]) -> CommandLine {
        let args: Vec<String> = words.iter().map(|word| word.to_string()).collect();
        args::parse(&args).unwrap()
    }

    /// Goal: variables map to flags by etcd's naming rule, empty ones are no setting, and
    /// unknown `ETCD_*` names are reported, not silently dropped.
    #[test]
    fn variables_map_to_flags() {
        let vars = env(&[
            ("ETCD_DATA_DIR", "/var/lib/etcd"),
            ("ETCD_LISTEN_CLIENT_URLS", "http://10.0.0.1:2379"),
            ("ETCD_WAL_DIR", ""),
            ("ETCD_NAEM", "typo"),
            ("ETCDCTL_API", "3"),
            ("BASALT_CORES", "2"),
            ("PATH", "/bin"),
        ]);
        let settings = read(&vars, &line(&[])).unwrap();
        let names: Vec<(&str, &str)> = settings
            .flags
            .iter()
            .map(|(spec, _, value)| (spec.name, value.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("data-dir", "/var/lib/etcd"),
                ("listen-client-urls", "http://10.0.0.1:2379"),
                ("cores", "2"),
            ]
        );
        assert_eq!(
            settings.warnings,
            ["unrecognized environment variable ETCD_NAEM=typo"]
        );
    }

    /// Goal: the same setting from a flag and a variable is refused, as etcd refuses it.
    #[test]
    fn a_variable_shadowed_by_a_flag_is_an_error() {
        let vars = env(&[("ETCD_NAME", "from-env")]);
        let error = read(&vars, &line(&["--name", "from-flag"])).unwrap_err();
        assert_eq!(
            error.to_string(),
            "conflicting environment variable \"ETCD_NAME\" is shadowed by corresponding \
             command-line flag (either unset environment variable or disable flag)"
        );
        assert_eq!(error.exit_code(), 1);
    }

    /// Goal: the obsolete clustering switch draws exactly one warning, saying it has no effect
    /// (not "unrecognized"), and basalt's variables read outside the flag table draw none.
    #[test]
    fn obsolete_and_non_flag_variables_are_not_unrecognized() {
        let vars = env(&[
            ("BASALT_EXPERIMENTAL_CLUSTERING", "1"),
            ("BASALT_LEASE_CHECKPOINT_INTERVAL_MS", "500"),
            ("BASALT_CLUSTERING", "1"),
        ]);
        let settings = read(&vars, &line(&[])).unwrap();
        assert_eq!(
            settings.warnings,
            ["unrecognized environment variable BASALT_CLUSTERING=1"]
        );
        let obsolete = obsolete_warnings(&vars);
        assert_eq!(obsolete.len(), 1, "{obsolete:?}");
        assert!(
            obsolete[0].starts_with(
                "environment variable BASALT_EXPERIMENTAL_CLUSTERING is obsolete and has no \
                 effect: clustering is always on"
            ),
            "{obsolete:?}"
        );
        assert!(obsolete_warnings(&env(&[("PATH", "/bin")])).is_empty());
    }

    #[test]
    fn special_variables() {
        let vars = env(&[("ETCD_VERSION", "1"), ("ETCD_CONFIG_FILE", "/etc/etcd.yml")]);
        let settings = read(&vars, &line(&[])).unwrap();
        assert!(settings.flags.is_empty());
        assert_eq!(settings.warnings.len(), 1);
        assert!(settings.warnings[0].contains("ETCD_VERSION"));
        assert_eq!(config_file(&vars).as_deref(), Some("/etc/etcd.yml"));
        assert_eq!(config_file(&env(&[("ETCD_CONFIG_FILE", "")])), None);
    }
}
