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
        if !ours || *name == format!("{ETCD_ENV_PREFIX}_CONFIG_FILE") {
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
