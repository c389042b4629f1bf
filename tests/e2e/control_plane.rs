//! The control-plane scripts fail clearly in a wrong environment: Go missing or
//! too old, a port taken, a stale state dir, a killed etcd.

use std::net::TcpListener;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::{self, Cluster, ClusterOptions, repo_root};

fn script(name: &str) -> PathBuf {
    repo_root().join("hack/control-plane").join(name)
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A temporary directory removed when dropped (also when the test fails).
fn temp_dir(prefix: &str) -> tempfile::TempDir {
    tempfile::Builder::new().prefix(prefix).tempdir().unwrap()
}

/// A PATH with only the tools build.sh needs besides Go, plus `extra` links.
fn path_without_go(extra: &[(&str, &Path)]) -> tempfile::TempDir {
    let tmp = temp_dir("nogo-path");
    let dir = tmp.path();
    for tool in [
        "bash", "dirname", "basename", "cat", "grep", "mkdir", "mktemp", "rm", "mv", "du", "cut",
        "date", "printf", "ls", "sed",
    ] {
        let out = Command::new("bash")
            .args(["-c", &format!("command -v {tool}")])
            .output()
            .unwrap();
        let found = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if found.starts_with('/') {
            symlink(found, dir.join(tool)).unwrap();
        }
    }
    for (name, target) in extra {
        symlink(target, dir.join(name)).unwrap();
    }
    tmp
}

#[test]
fn build_without_go_says_so() {
    let bin = temp_dir("empty-bin");
    let path = path_without_go(&[]);
    let out = Command::new(script("build.sh"))
        .env("PATH", path.path())
        .env("SOC2_CP_BIN_DIR", bin.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Go is not installed"),
        "unexpected error: {}",
        stderr(&out)
    );
}

#[test]
fn build_with_an_old_go_says_so() {
    let bin = temp_dir("empty-bin");
    let fake_dir = temp_dir("fake-go");
    let fake = fake_dir.path().join("go");
    std::fs::write(&fake, "#!/bin/sh\necho go1.21.0\n").unwrap();
    Command::new("chmod").arg("+x").arg(&fake).status().unwrap();
    let path = path_without_go(&[("go", &fake)]);
    let out = Command::new(script("build.sh"))
        .env("PATH", path.path())
        .env("SOC2_CP_BIN_DIR", bin.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("Go go1.21.0 is too old"),
        "unexpected error: {}",
        stderr(&out)
    );
}

#[test]
fn up_on_a_taken_port_fails_and_starts_nothing() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let state = std::env::temp_dir().join(support::unique_name("taken-port"));
    let out = Command::new(script("cluster.sh"))
        .args(["up", "--state-dir"])
        .arg(&state)
        .env("SOC2_CP_APISERVER_PORT", port.to_string())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("port {port} on 127.0.0.1 is already in use")),
        "unexpected error: {}",
        stderr(&out)
    );
    assert!(!state.exists(), "a failed start must not leave a state dir");
}

#[test]
fn up_refuses_a_stale_state_dir() {
    let tmp = temp_dir("stale");
    let state = tmp.path().join("state");
    std::fs::create_dir(&state).unwrap();
    // A pid that cannot be ours: the state of a crashed earlier run.
    std::fs::write(state.join("etcd.pid"), "999999999\n").unwrap();
    std::fs::write(state.join("apiserver.port"), "1\n").unwrap();
    let out = Command::new(script("cluster.sh"))
        .args(["up", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("etcd is not running"),
        "unexpected error: {err}"
    );
    assert!(
        err.contains("cluster.sh down --state-dir"),
        "no remedy named: {err}"
    );
    // down cleans it up.
    let down = Command::new(script("cluster.sh"))
        .args(["down", "--state-dir"])
        .arg(&state)
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", stderr(&down));
    assert!(!state.exists());
}

#[test]
fn down_refuses_a_directory_that_is_not_a_state_dir() {
    let tmp = temp_dir("not-state");
    let dir = tmp.path();
    std::fs::write(dir.join("precious.txt"), "keep me").unwrap();
    let out = Command::new(script("cluster.sh"))
        .args(["down", "--state-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        dir.join("precious.txt").exists(),
        "down removed a foreign dir"
    );
}

#[test]
fn a_killed_etcd_is_reported_by_status_and_up() {
    let state = std::env::temp_dir().join(support::unique_name("killed-etcd"));
    let cp = Cluster::up(&state, &ClusterOptions::default()).expect("second control plane starts");
    assert!(cp.kubeconfig.exists());
    let status = |args: &[&str]| {
        Command::new(script("cluster.sh"))
            .args(args)
            .arg("--state-dir")
            .arg(&state)
            .output()
            .unwrap()
    };
    assert!(status(&["status"]).status.success());
    let pid = std::fs::read_to_string(state.join("etcd.pid")).unwrap();
    Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    // The process may take a moment to be reaped by its parent (init).
    let mut out = status(&["status"]);
    for _ in 0..50 {
        if !out.status.success() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        out = status(&["status"]);
    }
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("etcd is not running"),
        "{}",
        stderr(&out)
    );
    let up = status(&["up"]);
    assert!(!up.status.success());
    assert!(stderr(&up).contains("not healthy"), "{}", stderr(&up));
    cp.down();
    assert!(!state.exists());
}

#[test]
fn up_rejects_bad_arguments_before_starting_anything() {
    let tmp = temp_dir("bad-args");
    let state = tmp.path().join("state");
    let run = |args: &[&str], env: &[(&str, &str)]| {
        let mut c = Command::new(script("cluster.sh"));
        c.args(args).arg("--state-dir").arg(&state);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    for (args, env, message) in [
        (
            vec!["up", "--watch-pid", "notapid"],
            vec![],
            "--watch-pid must be a process id",
        ),
        (
            vec!["up", "--encryption", "kms"],
            vec![],
            "--encryption supports only 'aescbc'",
        ),
        (vec!["up", "--bogus"], vec![], "unknown argument '--bogus'"),
        (
            vec!["up"],
            vec![("SOC2_CP_APISERVER_PORT", "abc")],
            "must be a port number",
        ),
    ] {
        let out = run(&args, &env);
        assert!(!out.status.success(), "{args:?}");
        assert!(stderr(&out).contains(message), "{args:?}: {}", stderr(&out));
        assert!(!state.exists(), "{args:?} left a state dir");
    }
}
