//! `make test` sets itself up: `hack/prerequisites.sh` installs what is missing
//! or stops before any test, naming the tools, their Debian packages and the
//! command; `make test` runs it first; Helm built from source has a default
//! Kubernetes version (no `--kube-version` needed). No cluster needed.
//!
//! The script runs with a doctored PATH: links to the real tools it checks,
//! stubs for prometheus, promtool and chromium (or nothing, to make them
//! missing) and fake `apt-get` and `sudo` that record what they are asked.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Where `tool` is on the test's own PATH.
fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(tool))
        .find(|p| {
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn write_script(path: &Path, body: &str) {
    fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// The tools `make test` needs that the tests below keep present (real links).
const BASE: [&str; 10] = [
    "bash", "env", "openssl", "curl", "make", "git", "flock", "setsid", "comm", "cargo",
];
/// The tools the issue found missing on a fresh machine.
const OPTIONAL: [&str; 3] = ["prometheus", "promtool", "chromium"];

/// A PATH directory for the script, and a log the fakes write to.
struct FakePath {
    dir: tempfile::TempDir,
}

impl FakePath {
    /// Real links for BASE and `go` except `without`; stubs for OPTIONAL
    /// unless `optional_present` is false; fake `apt-get` (records its
    /// arguments and DEBIAN_FRONTEND, installs nothing, or the OPTIONAL stubs
    /// with `apt_installs`) and `sudo` (runs its command).
    fn new(without: &[&str], optional_present: bool, apt_installs: bool) -> FakePath {
        let dir = tempfile::Builder::new()
            .prefix("prereq-path")
            .tempdir()
            .unwrap();
        let bin = dir.path().join("bin");
        fs::create_dir(&bin).unwrap();
        for tool in BASE.iter().chain(&["go"]) {
            if without.contains(tool) {
                continue;
            }
            let real = which(tool).unwrap_or_else(|| panic!("{tool} is not on PATH"));
            symlink(real, bin.join(tool)).unwrap();
        }
        if optional_present {
            for tool in OPTIONAL {
                write_script(&bin.join(tool), "exit 0");
            }
        }
        let log = dir.path().join("log");
        // "Installing" writes the OPTIONAL stubs next to apt-get; chmod is
        // not on the doctored PATH, so it is called by its real path.
        let chmod = which("chmod").expect("chmod on PATH");
        let install = if apt_installs {
            OPTIONAL
                .iter()
                .map(|t| {
                    format!(
                        "printf '#!/bin/sh\\n' >\"$here/{t}\"; {} +x \"$here/{t}\"",
                        chmod.display()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ")
        } else {
            String::from(":")
        };
        write_script(
            &bin.join("apt-get"),
            &format!(
                "here=$(cd \"${{0%/*}}\" && pwd)\necho \"apt-get $* [DEBIAN_FRONTEND=$DEBIAN_FRONTEND]\" >>{log}\ncase \"$*\" in *install*) {install} ;; esac",
                log = log.display()
            ),
        );
        write_script(&bin.join("sudo"), "[ \"$1\" = -n ] && shift\n\"$@\"");
        FakePath { dir }
    }

    fn bin(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn remove(&self, tool: &str) {
        fs::remove_file(self.bin().join(tool)).unwrap();
    }

    /// What the fakes logged (apt-get calls, make's fake steps).
    fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Runs hack/prerequisites.sh on this PATH; returns its output and run time.
    fn run_script(&self, no_install: bool) -> Output {
        let mut cmd = Command::new(repo_root().join("hack/prerequisites.sh"));
        cmd.env("PATH", self.bin()).env_remove("SOC2_NO_INSTALL");
        if no_install {
            cmd.env("SOC2_NO_INSTALL", "1");
        }
        cmd.output().expect("run hack/prerequisites.sh")
    }
}

/// Asserts the message names every OPTIONAL tool, its package and the command.
fn assert_names_the_optional_tools(err: &str) {
    for (tool, package) in [
        ("prometheus", "prometheus"),
        ("promtool", "prometheus"),
        ("chromium", "chromium"),
    ] {
        assert!(
            err.lines().any(|l| l.trim_start().starts_with(tool)
                && l.contains(&format!("Debian package {package}"))),
            "{tool} ({package}) not named:\n{err}"
        );
    }
    assert!(
        err.contains("apt-get install -y --no-install-recommends prometheus chromium"),
        "no install command:\n{err}"
    );
}

/// Runs the script on `path`, which lacks the OPTIONAL tools: it must fail
/// naming them. Returns its stderr.
fn fails_naming_the_optional_tools(path: &FakePath, no_install: bool) -> String {
    let out = path.run_script(no_install);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(out.stdout.is_empty());
    assert_names_the_optional_tools(&err);
    err
}

#[test]
fn missing_tools_stop_at_once_naming_tools_packages_and_the_command() {
    let path = FakePath::new(&[], false, false);
    let err = fails_naming_the_optional_tools(&path, true);
    assert!(err.contains("SOC2_NO_INSTALL is set"), "{err}");
    assert_eq!(path.log(), "", "apt-get ran despite SOC2_NO_INSTALL");
}

#[test]
fn without_apt_get_the_message_says_so_and_names_the_command() {
    let path = FakePath::new(&[], false, false);
    path.remove("apt-get");
    let err = fails_naming_the_optional_tools(&path, false);
    assert!(err.contains("apt-get is not available"), "{err}");
}

#[test]
fn everything_present_passes_silently_and_installs_nothing() {
    let path = FakePath::new(&[], true, false);
    let out = path.run_script(false);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        out.stderr.is_empty() && out.stdout.is_empty(),
        "{}",
        stderr(&out)
    );
    assert_eq!(path.log(), "", "apt-get ran with nothing missing");
}

#[test]
fn missing_packages_are_installed_with_apt_get_then_checked() {
    let path = FakePath::new(&[], false, true);
    let out = path.run_script(false);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        path.log(),
        "apt-get update -qq [DEBIAN_FRONTEND=noninteractive]\n\
         apt-get install -y -qq --no-install-recommends prometheus chromium [DEBIAN_FRONTEND=noninteractive]\n"
    );
    // Now present: a second run is silent and installs nothing more.
    let again = path.run_script(false);
    assert!(again.status.success() && again.stderr.is_empty());
    assert_eq!(path.log().lines().count(), 2);
}

#[test]
fn a_package_that_installs_without_its_tool_still_fails_naming_it() {
    let path = FakePath::new(&[], false, false);
    let err = fails_naming_the_optional_tools(&path, false);
    assert!(path.log().contains("install -y"), "apt-get not run");
    assert!(err.contains("still not on PATH"), "{err}");
}

#[test]
fn missing_rust_and_go_are_named_with_where_to_get_them() {
    let path = FakePath::new(&["cargo", "go"], true, false);
    let out = path.run_script(true);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("Rust (cargo) is not on PATH") && err.contains("https://rustup.rs"),
        "{err}"
    );
    assert!(
        err.contains("Go is not on PATH") && err.contains("https://go.dev/doc/install"),
        "{err}"
    );
    assert!(
        !err.contains("apt-get install"),
        "nothing apt can install:\n{err}"
    );
}

/// `make test` with fake control-plane and cargo steps that log themselves.
fn make_test(path: &FakePath) -> Output {
    let cp = path.dir.path().join("cp");
    fs::create_dir_all(&cp).unwrap();
    let log = path.dir.path().join("log");
    write_script(
        &cp.join("build.sh"),
        &format!("echo build.sh >>{}", log.display()),
    );
    let cargo = path.dir.path().join("fake-cargo");
    write_script(&cargo, &format!("echo \"cargo $*\" >>{}", log.display()));
    Command::new(path.bin().join("make"))
        .arg("-C")
        .arg(repo_root())
        .args(["--no-print-directory", "test"])
        .arg(format!("CP={}", cp.display()))
        .arg(format!("CARGO={}", cargo.display()))
        .env("PATH", path.bin())
        .env("SOC2_NO_INSTALL", "1")
        .env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .output()
        .expect("run make")
}

#[test]
fn make_test_runs_the_prerequisites_before_anything_else() {
    // What make would run, in order.
    let dry = Command::new("make")
        .arg("-C")
        .arg(repo_root())
        .args(["--no-print-directory", "-n", "test"])
        .env_remove("MAKEFLAGS")
        .env_remove("MAKELEVEL")
        .output()
        .unwrap();
    let dry = String::from_utf8_lossy(&dry.stdout);
    let pos = |s: &str| {
        dry.lines()
            .position(|l| l.contains(s))
            .unwrap_or_else(|| panic!("{s} not in make -n test:\n{dry}"))
    };
    assert_eq!(pos("hack/prerequisites.sh"), 0, "{dry}");
    assert!(pos("build.sh") < pos("test --all-targets"), "{dry}");

    // Something missing: make stops at the prerequisites, nothing else runs.
    let missing = FakePath::new(&[], false, false);
    let out = make_test(&missing);
    assert!(!out.status.success());
    assert_names_the_optional_tools(&stderr(&out));
    assert_eq!(
        missing.log(),
        "",
        "a step ran after the prerequisites failed"
    );

    // Everything there: the control plane, then the tests.
    let present = FakePath::new(&[], true, false);
    let out = make_test(&present);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(present.log(), "build.sh\ncargo test --all-targets\n");
}

/// Kubernetes v1.X that Helm defaults to: from client-go v0.X.Y in the helm
/// wrapper's go.mod, as Helm's Makefile derives it.
fn helm_default_kube_version() -> String {
    let gomod = fs::read_to_string(repo_root().join("hack/control-plane/helm/go.mod")).unwrap();
    let version = gomod
        .lines()
        .find_map(|l| l.trim().strip_prefix("k8s.io/client-go "))
        .expect("client-go in helm/go.mod");
    let minor = version.trim_start_matches("v0.").split('.').next().unwrap();
    format!("v1.{minor}.0")
}

#[test]
fn helm_template_needs_no_kube_version() {
    let out = Command::new(repo_root().join("hack/control-plane/build.sh"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let helm = PathBuf::from(String::from_utf8(out.stdout).unwrap().trim()).join("helm");
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(&helm)
            .args(args)
            .env("HELM_CACHE_HOME", home.path().join("cache"))
            .env("HELM_CONFIG_HOME", home.path().join("config"))
            .env("HELM_DATA_HOME", home.path().join("data"))
            .output()
            .unwrap()
    };

    // The chart requires kubeVersion >=1.29; Helm's old default was v1.20.0.
    let chart = repo_root().join("charts/soc2-operator");
    let out = run(&["template", "x", chart.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("kind: Deployment"));

    // The default is the client-go version's, as in release Helm.
    let probe = home.path().join("probe");
    fs::create_dir_all(probe.join("templates")).unwrap();
    fs::write(
        probe.join("Chart.yaml"),
        "apiVersion: v2\nname: probe\nversion: 0.1.0\n",
    )
    .unwrap();
    fs::write(
        probe.join("templates/v.yaml"),
        "kube: {{ .Capabilities.KubeVersion.Version }}\n",
    )
    .unwrap();
    let out = run(&["template", "p", probe.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let want = format!("kube: {}", helm_default_kube_version());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&want),
        "want {want}:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );

    // And its own version is the pinned one.
    let versions = fs::read_to_string(repo_root().join("hack/control-plane/versions.env")).unwrap();
    let pinned = versions
        .lines()
        .find_map(|l| l.strip_prefix("HELM_VERSION="))
        .unwrap();
    let out = run(&["version", "--template", "{{.Version}}"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), pinned);
}
