//! The explicit settings of one start, merged from their sources by etcd's precedence, each
//! with its origin; a setting nobody gave falls back to the table's default.

use std::collections::BTreeMap;
use std::path::PathBuf;

use super::args::CommandLine;
use super::error::{ConfigError, Origin};
use super::spec::{self, FlagSpec};
use super::{env, file, Source};

/// Explicit settings by flag name, and what reading them had to say.
#[derive(Debug)]
pub struct Settings {
    explicit: BTreeMap<&'static str, (String, Origin)>,
    /// Where they came from.
    pub source: Source,
    /// Warnings gathered while reading.
    pub warnings: Vec<String>,
}

impl Settings {
    /// etcd without a config file: flags, then variables for the flags not on the command line.
    pub fn from_command_line_and_env(
        line: &CommandLine,
        env_vars: &[(String, String)],
    ) -> Result<Settings, ConfigError> {
        let env_settings = env::read(env_vars, line)?;
        let mut settings = Settings {
            explicit: BTreeMap::new(),
            source: Source::FlagsAndEnv,
            warnings: env_settings.warnings,
        };
        for (spec, value) in &line.flags {
            settings
                .explicit
                .insert(spec.name, (value.clone(), Origin::Flag(spec.name)));
        }
        for (spec, var, value) in env_settings.flags {
            settings
                .explicit
                .insert(spec.name, (value, Origin::Env(var)));
        }
        Ok(settings)
    }

    /// etcd with a config file: the file alone; flags and variables are ignored.
    pub fn from_file(
        path: PathBuf,
        line: &CommandLine,
        env_vars: &[(String, String)],
    ) -> Result<Settings, ConfigError> {
        let from_file = file::read(&path)?;
        let mut settings = Settings {
            explicit: BTreeMap::new(),
            source: Source::File(path.clone()),
            warnings: from_file.warnings,
        };
        if !line.flags.is_empty() {
            let mut ignored: Vec<String> = line
                .flags
                .iter()
                .map(|(spec, _)| format!("--{}", spec.name))
                .collect();
            ignored.dedup();
            settings.warnings.push(format!(
                "loaded server configuration from {}; other configuration command line flags \
                 and environment variables are ignored (ignored: {})",
                path.display(),
                ignored.join(" ")
            ));
        }
        let ignored_vars: Vec<String> = spec::FLAGS
            .iter()
            .map(|spec| spec.env_var())
            .filter(|var| env_vars.iter().any(|(name, _)| name == var))
            .collect();
        if !ignored_vars.is_empty() {
            settings.warnings.push(format!(
                "environment variables are ignored with a config file (ignored: {})",
                ignored_vars.join(" ")
            ));
        }
        for setting in from_file.settings {
            let origin = Origin::File {
                path: path.clone(),
                key: setting.key,
            };
            settings
                .explicit
                .insert(setting.spec.name, (setting.text, origin));
        }
        Ok(settings)
    }

    /// Whether the setting was given explicitly (etcd's `flags.IsSet`).
    pub fn is_set(&self, name: &str) -> bool {
        self.explicit.contains_key(name)
    }

    /// The setting's text and origin, or its default.
    pub fn get(&self, name: &'static str) -> (&str, Origin) {
        match self.explicit.get(name) {
            Some((text, origin)) => (text.as_str(), origin.clone()),
            None => {
                let spec = spec::lookup(name).expect("setting names come from the table");
                (spec.default, Origin::Default(spec.name))
            }
        }
    }

    /// Every explicit setting with its spec.
    pub fn explicit(&self) -> impl Iterator<Item = (&'static FlagSpec, &str, &Origin)> + '_ {
        self.explicit.iter().map(|(name, (text, origin))| {
            (
                spec::lookup(name).expect("setting names come from the table"),
                text.as_str(),
                origin,
            )
        })
    }
}
