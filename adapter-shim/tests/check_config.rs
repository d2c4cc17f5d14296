//! `adapter-shim --config FILE --check-config` as a user runs it.

use std::path::PathBuf;
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_adapter-shim"));
    cmd.args(args)
        .env_remove("ADAPTER_SHIM_CONFIG")
        .env_remove("ADAPTER_SHIM_CHECK_CONFIG");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn every_fixture_that_should_load_does() {
    for name in [
        "seed-canonical.yaml",
        "seed-shorthand.yaml",
        "seed-ho11y.yaml",
        "deploy-manifest-default.yaml",
        "legacy-default-rules.yaml",
        "template-constructs.yaml",
    ] {
        let path = fixture(name);
        let out = run(
            &[
                "--config",
                path.to_str().expect("utf-8 path"),
                "--check-config",
            ],
            &[],
        );
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).starts_with("ok: "),
            "{name}: {}",
            text(&out.stdout)
        );
    }
}

#[test]
fn summary_shows_sample_queries() {
    let path = fixture("template-constructs.yaml");
    let out = run(
        &[
            "--config",
            path.to_str().expect("utf-8 path"),
            "--check-config",
        ],
        &[],
    );
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            r#"  sample query: sum(rate(sample_series{service=~"sample-pod-a|sample-pod-b",namespace="default"}[2m])) by (service)"#
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("externalRules[0]: seriesQuery sqs_messages_visible"),
        "{stdout}"
    );
    assert!(
        stdout.contains("  sample query: sum(sample_series{}) by (queue)"),
        "{stdout}"
    );
}

#[test]
fn environment_variables_work_like_flags() {
    let path = fixture("seed-canonical.yaml");
    let out = run(
        &[],
        &[
            ("ADAPTER_SHIM_CONFIG", path.to_str().expect("utf-8 path")),
            ("ADAPTER_SHIM_CHECK_CONFIG", "true"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn a_bad_config_exits_64_with_one_line() {
    let path = fixture("typo-delimiter.yaml");
    let out = run(
        &[
            "--config",
            path.to_str().expect("utf-8 path"),
            "--check-config",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(64));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("adapter-shim: rules[0]: metricsQuery: template: metricsQuery:1:"),
        "{stderr}"
    );

    let out = run(&["--config", "/nonexistent.yaml", "--check-config"], &[]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        text(&out.stderr).starts_with("adapter-shim: cannot read config file /nonexistent.yaml")
    );
}

#[test]
fn usage_errors_exit_64_and_help_exits_0() {
    assert_eq!(run(&[], &[]).status.code(), Some(64));
    assert_eq!(run(&["--no-such-flag"], &[]).status.code(), Some(64));
    let help = run(&["--help"], &[]);
    assert_eq!(help.status.code(), Some(0));
    assert!(text(&help.stdout).contains("ADAPTER_SHIM_CONFIG"));
}

#[test]
fn serving_usage_errors_exit_64_before_binding() {
    let path = fixture("seed-canonical.yaml");
    let config = path.to_str().expect("utf-8 path");
    let cases: &[(&[&str], &str)] = &[
        (&[], "--prometheus-url is required"),
        (
            &["--prometheus-url", "localhost:8080"],
            "must be an http:// or https:// URL",
        ),
        (
            &[
                "--prometheus-url",
                "http://localhost:8080/workspaces/ws-1",
                "--metrics-relist-interval",
                "5m",
                "--metrics-max-age",
                "1m",
            ],
            "--metrics-max-age (1m) must not be less than --metrics-relist-interval (5m)",
        ),
        (
            &[
                "--prometheus-url",
                "http://localhost:8080/workspaces/ws-1",
                "--tls-cert-file",
                "/nonexistent.crt",
                "--tls-private-key-file",
                "/nonexistent.key",
                // A port that would be busy or privileged: the error must come first.
                "--secure-port",
                "1",
            ],
            "cannot read certificate chain /nonexistent.crt",
        ),
    ];
    for (extra, message) in cases {
        let mut args = vec!["--config", config];
        args.extend_from_slice(extra);
        let out = run(&args, &[]);
        assert_eq!(
            out.status.code(),
            Some(64),
            "{extra:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(message),
            "{extra:?}: {}",
            text(&out.stderr)
        );
    }
}
