//! The command line, read with the grammar of Go's `flag` package that etcd uses, so every
//! command line that starts etcd means the same to basalt: `-name x` and `--name x` are the
//! same flag, `--name=x` works, a boolean takes `--flag` or `--flag=false` (never a separate
//! word), a repeated flag keeps its last value, `--` ends the flags, and the first word that
//! is not a flag ends them too.

use super::error::ConfigError;
use super::spec::{self, FlagSpec, Kind, Support};

/// What the command line asked for, before any value is interpreted.
#[derive(Debug, Default)]
pub struct CommandLine {
    /// Flags in the order given, with their text (booleans without `=value` hold "true").
    pub flags: Vec<(&'static FlagSpec, String)>,
    /// `--config-file`, if given.
    pub config_file: Option<String>,
    /// `-h`, `-help` or `--help`.
    pub help: bool,
    /// `--version` (a Go boolean: `--version=false` turns it back off).
    pub version: bool,
}

impl CommandLine {
    /// The last value given for a flag on the command line.
    pub fn last(&self, name: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(spec, _)| spec.name == name)
            .map(|(_, value)| value.as_str())
    }
}

/// Reads the arguments after the program name.
pub fn parse(args: &[String]) -> Result<CommandLine, ConfigError> {
    if let Some(first) = args.first() {
        if first == "gateway" || first == "grpc-proxy" {
            return Err(ConfigError::UnsupportedSubcommand(first.clone()));
        }
    }
    let mut line = CommandLine::default();
    let mut index = 0;
    while index < args.len() {
        let arg = &args[index];
        index += 1;
        if arg.len() < 2 || !arg.starts_with('-') {
            return Err(ConfigError::NotAFlag(arg.clone()));
        }
        if arg == "--" {
            // Go stops at "--"; anything after it is a stray argument to etcd.
            return match args.get(index) {
                Some(stray) => Err(ConfigError::NotAFlag(stray.clone())),
                None => Ok(line),
            };
        }
        let body = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .unwrap_or(arg);
        if body.starts_with('-') || body.starts_with('=') {
            return Err(ConfigError::BadFlagSyntax(arg.clone()));
        }
        let (name, inline_value) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value.to_string())),
            None => (body, None),
        };
        if name == spec::CONFIG_FILE {
            let value = take_value(name, inline_value, args, &mut index)?;
            line.config_file = Some(value);
            continue;
        }
        if name == "version" {
            line.version = match inline_value {
                None => true,
                Some(text) => bool_value(name, &text)?,
            };
            continue;
        }
        let Some(flag) = spec::lookup(name) else {
            if name == "h" || name == "help" {
                line.help = true;
                return Ok(line);
            }
            return Err(ConfigError::UnknownFlag(format!("--{name}")));
        };
        let is_boolean = flag.kind == Kind::Bool || flag.support == Support::Ignored;
        let value = if is_boolean {
            match inline_value {
                None => "true".to_string(),
                Some(text) => {
                    if flag.kind == Kind::Bool {
                        bool_value(flag.name, &text)?;
                    }
                    text
                }
            }
        } else {
            take_value(name, inline_value, args, &mut index)?
        };
        line.flags.push((flag, value));
    }
    Ok(line)
}

/// A non-boolean flag's value: after `=`, or else the next argument whatever it looks like.
fn take_value(
    name: &str,
    inline_value: Option<String>,
    args: &[String],
    index: &mut usize,
) -> Result<String, ConfigError> {
    if let Some(value) = inline_value {
        return Ok(value);
    }
    let value = args
        .get(*index)
        .cloned()
        .ok_or_else(|| ConfigError::MissingArgument(format!("--{name}")))?;
    *index += 1;
    Ok(value)
}

fn bool_value(name: &str, text: &str) -> Result<bool, ConfigError> {
    super::go_values::parse_bool(text).map_err(|reason| ConfigError::InvalidValue {
        origin: super::error::Origin::Flag(static_name(name)),
        value: text.to_string(),
        reason,
    })
}

/// `--version` is not in the table, so its name is supplied here for error messages.
fn static_name(name: &str) -> &'static str {
    spec::lookup(name)
        .map(|spec| spec.name)
        .unwrap_or("version")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_words(line: &str) -> Result<CommandLine, ConfigError> {
        let args: Vec<String> = line.split_whitespace().map(str::to_string).collect();
        parse(&args)
    }

    fn values(line: &CommandLine) -> Vec<(&str, &str)> {
        line.flags
            .iter()
            .map(|(spec, value)| (spec.name, value.as_str()))
            .collect()
    }

    /// Goal: each spelling Go's flag package accepts is accepted with the same meaning.
    #[test]
    fn go_flag_spellings_are_accepted() {
        let line = parse_words(
            "--name a -data-dir /d --wal-dir=/w -heartbeat-interval=50 --client-cert-auth \
             --peer-auto-tls=false --name b",
        )
        .unwrap();
        assert_eq!(
            values(&line),
            [
                ("name", "a"),
                ("data-dir", "/d"),
                ("wal-dir", "/w"),
                ("heartbeat-interval", "50"),
                ("client-cert-auth", "true"),
                ("peer-auto-tls", "false"),
                ("name", "b"),
            ]
        );
        assert_eq!(
            line.last("name"),
            Some("b"),
            "a repeated flag keeps its last value"
        );
    }

    #[test]
    fn a_value_may_start_with_a_dash_and_be_empty() {
        let line = parse_words("--initial-cluster-token -odd --wal-dir=").unwrap();
        assert_eq!(
            values(&line),
            [("initial-cluster-token", "-odd"), ("wal-dir", "")]
        );
    }

    #[test]
    fn special_flags_are_recognised() {
        assert!(parse_words("--version").unwrap().version);
        assert!(!parse_words("--version=false").unwrap().version);
        assert!(parse_words("-h").unwrap().help);
        assert!(
            parse_words("--help --bogus").unwrap().help,
            "help stops parsing, as in Go"
        );
        let line = parse_words("--config-file /etc/etcd.yml").unwrap();
        assert_eq!(line.config_file.as_deref(), Some("/etc/etcd.yml"));
        assert!(parse_words("--").unwrap().flags.is_empty());
        assert!(
            parse_words("--v --snapshot --name x").is_ok(),
            "etcd's ignored flags"
        );
    }

    /// Goal: every malformed command line is refused with Go's wording and exit status 2
    /// (or etcd's exit status 1 for a stray word).
    #[test]
    fn malformed_command_lines_are_refused() {
        let error = parse_words("--bogus").unwrap_err();
        assert_eq!(error.to_string(), "flag provided but not defined: --bogus");
        assert_eq!(error.exit_code(), 2);
        let error = parse_words("--name").unwrap_err();
        assert_eq!(error.to_string(), "flag needs an argument: --name");
        assert_eq!(error.exit_code(), 2);
        let error = parse_words("---name x").unwrap_err();
        assert_eq!(error.to_string(), "bad flag syntax: ---name");
        let error = parse_words("--client-cert-auth=maybe").unwrap_err();
        assert_eq!(
            error.to_string(),
            "invalid value \"maybe\" for flag --client-cert-auth: \"maybe\" is not a boolean \
             (true or false)"
        );
        assert_eq!(error.exit_code(), 2);
        // A boolean never takes the next word: "true" is then a stray argument.
        let error = parse_words("--client-cert-auth true").unwrap_err();
        assert_eq!(error.to_string(), "\"true\" is not a valid flag");
        assert_eq!(error.exit_code(), 1);
        assert!(matches!(
            parse_words("-- --name x").unwrap_err(),
            ConfigError::NotAFlag(_)
        ));
        assert!(matches!(
            parse_words("grpc-proxy start").unwrap_err(),
            ConfigError::UnsupportedSubcommand(_)
        ));
    }
}
