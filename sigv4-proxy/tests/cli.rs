//! The command line: drop-in flags, environment bindings, and usage errors that stop the
//! process with status 64 before any port is bound.

mod support;

use support::proxy_process::{ProxyProcess, run_proxy};

fn stderr(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).to_string()
}

#[test]
fn config_errors_exit_64_before_binding() {
    // Hold the port: a proxy that tried to bind first would report "cannot listen" instead.
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = format!("127.0.0.1:{}", held.local_addr().expect("addr").port());
    let cases: &[(&[&str], &str)] = &[
        (&["--host", "127.0.0.1:9090"], "missing --name"),
        (
            &["--name", "aps", "--region", "us-east-1"],
            "--host is required",
        ),
        (
            &["--host", "https://aps-workspaces.us-east-1.amazonaws.com"],
            "drop the scheme",
        ),
        (
            &[
                "--host",
                "aps-workspaces.us-east-1.amazonaws.com",
                "--custom-headers",
                "nope",
            ],
            "name=value",
        ),
        (
            &[
                "--host",
                "aps-workspaces.us-east-1.amazonaws.com",
                "--role-arn",
                "role",
            ],
            "IAM role ARN",
        ),
        (
            &["--host", "x:1", "--name", "aps", "--region", "moon"],
            "not an AWS region",
        ),
        (
            &[
                "--host",
                "aps-workspaces.us-east-1.amazonaws.com",
                "--transport.idle-conn-timeout",
                "soon",
            ],
            "duration",
        ),
        (
            &[
                "--host",
                "aps-workspaces.us-east-1.amazonaws.com",
                "--no-such-flag",
            ],
            "unexpected argument",
        ),
    ];
    for (args, expected) in cases {
        let mut argv = vec!["--port", port.as_str()];
        argv.extend_from_slice(args);
        let output = run_proxy(&argv, &[]);
        assert_eq!(
            output.status.code(),
            Some(64),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(expected),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(!stderr(&output).contains("cannot listen"), "{args:?}");
    }
    drop(held);
}

#[test]
fn every_flag_reads_an_environment_variable() {
    let output = run_proxy(
        &["--check-config"],
        &[
            (
                "SIGV4_PROXY_HOST",
                "aps-workspaces.ap-southeast-2.amazonaws.com",
            ),
            ("SIGV4_PROXY_PORT", "127.0.0.1:18999"),
            ("SIGV4_PROXY_ROLE_ARN", "arn:aws:iam::123456789012:role/amp"),
            ("SIGV4_PROXY_STRIP", "x-a,x-b"),
            ("SIGV4_PROXY_UNSIGNED_PAYLOAD", "true"),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stdout.contains("listen 127.0.0.1:18999"), "{stdout}");
    assert!(stdout.contains("signing aps in ap-southeast-2"), "{stdout}");
    assert!(
        stdout.contains("assuming arn:aws:iam::123456789012:role/amp"),
        "{stdout}"
    );

    let help = run_proxy(&["--help"], &[]);
    assert!(help.status.success());
    let help = String::from_utf8_lossy(&help.stdout);
    for name in [
        "SIGV4_PROXY_NAME",
        "SIGV4_PROXY_REGION",
        "SIGV4_PROXY_HOST",
        "SIGV4_PROXY_SIGN_HOST",
        "SIGV4_PROXY_PORT",
        "SIGV4_PROXY_UPSTREAM_URL_SCHEME",
        "SIGV4_PROXY_ROLE_ARN",
        "SIGV4_PROXY_UNSIGNED_PAYLOAD",
        "SIGV4_PROXY_STRIP",
        "SIGV4_PROXY_DUPLICATE_HEADERS",
        "SIGV4_PROXY_CUSTOM_HEADERS",
        "SIGV4_PROXY_NO_VERIFY_SSL",
        "SIGV4_PROXY_IDLE_CONN_TIMEOUT",
        "SIGV4_PROXY_MAX_IDLE_CONNS_PER_HOST",
        "SIGV4_PROXY_MAX_REQUEST_BODY_SIZE",
        "SIGV4_PROXY_VERBOSE",
        "SIGV4_PROXY_LOG_FAILED_REQUESTS",
        "SIGV4_PROXY_LOG_SIGNING_PROCESS",
    ] {
        assert!(help.contains(name), "--help does not mention {name}");
    }
    let version = run_proxy(&["--version"], &[]);
    assert!(version.status.success());
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn sigterm_exits_cleanly() {
    let proxy = ProxyProcess::start(
        &["--host", "aps-workspaces.us-east-1.amazonaws.com"],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
        ],
    );
    let status = proxy.terminate();
    assert!(status.success(), "{status}");
}

#[test]
fn secrets_never_reach_the_log_even_verbose() {
    let secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYSECRETKEY";
    let token = "FwoGZXIvYXdzSESSIONTOKENVALUE";
    let proxy = ProxyProcess::start(
        &[
            "--host",
            "127.0.0.1:9",
            "--upstream-url-scheme",
            "http",
            "--name",
            "aps",
            "--region",
            "us-east-1",
            "-v",
        ],
        &[
            ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
            ("AWS_SECRET_ACCESS_KEY", secret),
            ("AWS_SESSION_TOKEN", token),
        ],
    );
    let answer = support::proxy_process::curl(&[
        "-H",
        "Authorization: Bearer client-bearer-secret",
        &format!(
            "{}/workspaces/ws/api/v1/query?query=secret_metric_name",
            proxy.url()
        ),
    ]);
    assert_eq!(answer.status, 502);
    let log = proxy.log();
    assert!(
        log.contains("signed request"),
        "verbose logging is on:\n{log}"
    );
    for leaked in [
        secret,
        token,
        "client-bearer-secret",
        "secret_metric_name",
        "AKIAIOSFODNN7EXAMPLE",
        "Signature=",
    ] {
        assert!(!log.contains(leaked), "{leaked} in log:\n{log}");
    }
}
