//! `adapter-shim`: for now, `--config FILE --check-config` loads and validates a
//! prometheus-adapter configuration and prints a summary. Serving comes next.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser as _;
use clap::error::ErrorKind;

use adapter_shim::config::{Config, Rule};

/// sysexits.h EX_USAGE: the command line, environment or configuration is wrong.
const EXIT_USAGE: u8 = 64;

/// Environment variable for `--config`.
const ENV_CONFIG: &str = "ADAPTER_SHIM_CONFIG";
/// Environment variable for `--check-config`.
const ENV_CHECK_CONFIG: &str = "ADAPTER_SHIM_CHECK_CONFIG";

/// Serves the Kubernetes custom and external metrics APIs from prometheus-adapter rules,
/// querying Prometheus or Amazon Managed Service for Prometheus through sigv4-proxy.
#[derive(Debug, clap::Parser)]
#[command(name = "adapter-shim", version, about)]
struct Args {
    /// prometheus-adapter configuration file (rules, externalRules, resourceRules).
    #[arg(long, value_name = "FILE", env = ENV_CONFIG)]
    config: PathBuf,

    /// Load and validate the configuration, print a summary, and exit.
    #[arg(long, env = ENV_CHECK_CONFIG)]
    check_config: bool,
}

fn main() -> ExitCode {
    let args = match Args::try_parse() {
        Ok(args) => args,
        Err(error) => {
            let _ = error.print();
            return match error.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(EXIT_USAGE),
            };
        }
    };
    let config = match Config::load(&args.config) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("adapter-shim: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if !args.check_config {
        eprintln!(
            "adapter-shim: serving is not implemented yet; use --check-config to validate {}",
            args.config.display()
        );
        return ExitCode::from(EXIT_USAGE);
    }
    print!("{}", summary(&config));
    ExitCode::SUCCESS
}

fn summary(config: &Config) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "ok: {} custom rule(s) ({} series queries), {} external rule(s) ({} series queries), resourceRules {}",
        config.rules.len(),
        config.custom_series_queries().len(),
        config.external_rules.len(),
        config.external_series_queries().len(),
        if config.resource_rules.is_some() {
            "present"
        } else {
            "absent"
        },
    );
    for rule in config.rules.iter().chain(&config.external_rules) {
        describe(&mut out, rule);
    }
    for warning in &config.warnings {
        let _ = writeln!(out, "warning: {warning}");
    }
    out
}

fn describe(out: &mut String, rule: &Rule) {
    use std::fmt::Write as _;
    let resources = &rule.naming.resources;
    let mut mapping: Vec<String> = resources
        .overrides()
        .iter()
        .map(|(label, gr)| format!("{label}→{gr}"))
        .collect();
    if resources.has_template() {
        mapping.push("template".into());
    }
    let _ = writeln!(
        out,
        "{}: seriesQuery {}",
        rule.location(),
        rule.series_query
    );
    let _ = writeln!(
        out,
        "  name as {:?}; resources {}{}",
        rule.naming.namer.as_template(),
        if mapping.is_empty() {
            "none".to_owned()
        } else {
            mapping.join(", ")
        },
        if rule.namespaced {
            ""
        } else {
            "; namespaced: false"
        },
    );
    let _ = writeln!(out, "  sample query: {}", rule.sample_query);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_lists_rules_and_warnings() {
        let config = Config::from_yaml(
            "rules:\n- seriesQuery: 'http_requests_total{namespace!=\"\",pod!=\"\"}'\n  resources: {overrides: {namespace: namespace, pod: {resource: pod}}}\n  name: {matches: '^(.*)_total', as: '${1}_per_second'}\n  metricsQuery: 'sum(rate(<<.Series>>{<<.LabelMatchers>>}[2m])) by (<<.GroupBy>>)'\n",
        )
        .expect("valid");
        let text = summary(&config);
        assert_eq!(
            text,
            "ok: 1 custom rule(s) (1 series queries), 0 external rule(s) (0 series queries), resourceRules absent\n\
             rules[0]: seriesQuery http_requests_total{namespace!=\"\",pod!=\"\"}\n  \
             name as \"${1}_per_second\"; resources namespace→namespace, pod→pod\n  \
             sample query: sum(rate(sample_series{namespace=\"default\",pod=~\"sample-pod-a|sample-pod-b\"}[2m])) by (pod)\n\
             warning: rules[0].resources.overrides.namespace: shorthand \"namespace\" read as {resource: namespace}; prometheus-adapter itself rejects this form\n"
        );
    }

    #[test]
    fn flags() {
        let args = Args::try_parse_from([
            "adapter-shim",
            "--config",
            "/etc/adapter/config.yaml",
            "--check-config",
        ])
        .expect("parses");
        assert!(args.check_config);
        assert_eq!(args.config, PathBuf::from("/etc/adapter/config.yaml"));
        assert!(
            Args::try_parse_from(["adapter-shim"]).is_err()
                || std::env::var_os(ENV_CONFIG).is_some()
        );
    }
}
