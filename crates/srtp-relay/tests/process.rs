//! The `srtp-relay` binary as an operator runs it: first run with no configuration generates
//! development certificates, `ctl` talks to it with them, SIGHUP reloads, SIGTERM drains and
//! exits cleanly, JSON logs on request.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_srtp-relay"))
}

/// Polls `f` until it is true or `limit` passes.
fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + limit;
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name}");
}

#[test]
fn first_run_ctl_reload_and_drain() {
    let dir = support::TempDir::new("process");
    let state = dir.0.join("state");
    // A test-specific API port, below the kernel's ephemeral ports (32768 on), where no
    // outgoing connection's local port can take it; media on its own range; ng on an
    // OS-assigned port.
    let api = "127.0.0.1:25543";
    let mut child = bin()
        .args([
            "serve",
            "--log-format",
            "json",
            "--api-listen",
            api,
            "--ng-listen",
            "127.0.0.1:0",
        ])
        .args(["--ports", "47000-47099", "--drain-secs", "5", "--state-dir"])
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let ctl = |role: &str, method: &str, path: &str| {
        bin()
            .args(["ctl", "--api", api, "--role", role, "--state-dir"])
            .arg(&state)
            .args([method, path])
            .output()
            .unwrap()
    };
    let up = wait_for(Duration::from_secs(20), || {
        ctl("admin", "GET", "/healthz").status.success()
    });
    assert!(
        up,
        "the relay answered /healthz with the generated certificates"
    );
    assert!(state.join("ca.pem").is_file() && state.join("client-operator.key").is_file());
    let out = ctl("auditor", "GET", "/v1/calls");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"calls\""));
    assert!(
        !ctl("metrics", "GET", "/v1/calls").status.success(),
        "metrics may not read calls"
    );

    signal(&child, "HUP");
    assert!(wait_for(Duration::from_secs(5), || ctl(
        "admin", "GET", "/healthz"
    )
    .status
    .success()));
    signal(&child, "TERM");
    let exited = wait_for(Duration::from_secs(15), || {
        child.try_wait().unwrap().is_some()
    });
    assert!(exited, "SIGTERM with no calls stops at once");
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("generated development certificates"),
        "{stdout}"
    );
    let logs = String::from_utf8_lossy(&output.stderr);
    assert!(
        logs.lines()
            .any(|l| l.starts_with('{') && l.contains("reloaded certificates and roles")),
        "{logs}"
    );
    assert!(logs.contains("api request denied"), "{logs}");
    assert!(logs.contains("drained"), "{logs}");
    assert!(!logs.contains("inline:"), "no key material in logs");
}
