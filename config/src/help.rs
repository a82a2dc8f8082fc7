//! `--help` and `--version` texts.
//!
//! `--version` keeps etcd's four lines and their keys, because install scripts and operators
//! parse `etcd --version` (`etcd Version: 3.5.x` first): the first line carries the etcd version
//! basalt reports to clients, the Go lines say plainly that there is no Go inside, and a fifth
//! line names basalt's own version.

use super::go_values;
use super::spec::{self, Group, Kind, Support};

/// The `--help` text, built from the settings table.
pub fn help_text() -> String {
    let mut out = String::from(
        "Usage:

  basalt [flags]
    Start a basalt member (an etcd v3 compatible key-value store).

  basalt --version
    Show the version of basalt and the etcd version it reports.

  basalt -h | --help
    Show the help information about basalt.

  basalt --config-file
    Path to the server configuration file (etcd's YAML). Note that if a configuration file
    is provided, other command line flags and environment variables will be ignored.

Every flag can also be set with the environment variable ETCD_<FLAG> (upper case, '-' as
'_', e.g. ETCD_DATA_DIR); basalt's own flags use BASALT_<FLAG>. A flag and its variable
together are an error.
",
    );
    let sections = [
        (Group::Member, "Member"),
        (Group::Clustering, "Clustering"),
        (Group::Security, "Security"),
        (Group::Auth, "Auth"),
        (Group::Monitoring, "Profiling and Monitoring"),
        (Group::Logging, "Logging"),
        (Group::V2Proxy, "v2 Proxy (not served by basalt)"),
        (Group::Experimental, "Experimental feature"),
        (Group::Unsafe, "Unsafe feature"),
        (Group::Basalt, "basalt"),
    ];
    for (group, title) in sections {
        out.push_str(&format!("\n{title}:\n"));
        for spec in spec::FLAGS.iter().filter(|spec| spec.group == group) {
            let note = match spec.support {
                Support::Ignored => continue,
                Support::Honored => String::new(),
                Support::NoEffect(why) => format!(" [accepted; no effect in basalt: {why}]"),
                Support::DefaultOnly(why) => {
                    format!(" [basalt: only '{}', as {why}]", spec.default)
                }
            };
            let default = match spec.kind {
                Kind::Duration => go_values::parse_duration(spec.default)
                    .map(go_values::format_duration)
                    .unwrap_or_else(|_| spec.default.to_string()),
                _ => spec.default.to_string(),
            };
            out.push_str(&format!(
                "  --{} '{}'\n    {}{}\n",
                spec.name, default, spec.help, note
            ));
        }
    }
    out
}

/// The `--version` text; `reported_version` is the etcd version basalt reports to clients.
pub fn version_text(reported_version: &str) -> String {
    let git_sha = option_env!("BASALT_GIT_SHA").unwrap_or("not provided");
    format!(
        "etcd Version: {reported_version}\n\
         Git SHA: {git_sha}\n\
         Go Version: none (basalt is written in Rust)\n\
         Go OS/Arch: {}/{}\n\
         Basalt Version: {}\n",
        go_os(),
        go_arch(),
        env!("CARGO_PKG_VERSION"),
    )
}

/// Go's name for the operating system (`runtime.GOOS`).
fn go_os() -> &'static str {
    match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    }
}

/// Go's name for the architecture (`runtime.GOARCH`).
fn go_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "x86" => "386",
        "aarch64" => "arm64",
        "powerpc64" => "ppc64",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_keeps_etcds_lines() {
        let text = version_text("3.5.17");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "etcd Version: 3.5.17");
        assert!(lines[1].starts_with("Git SHA: "));
        assert!(lines[2].starts_with("Go Version: "));
        assert!(lines[3].starts_with("Go OS/Arch: "));
        assert!(lines[4].starts_with("Basalt Version: "));
    }

    #[test]
    fn help_lists_flags_with_defaults_in_etcds_style() {
        let text = help_text();
        assert!(text.contains("  --name 'default'\n    Human-readable name for this member.\n"));
        assert!(text.contains("  --experimental-watch-progress-notify-interval '10m0s'\n"));
        assert!(text.contains("  --enable-v2 'false'\n"));
        assert!(
            !text.contains("--vv"),
            "etcd's ignored flags are not advertised"
        );
    }
}
