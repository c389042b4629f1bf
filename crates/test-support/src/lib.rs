//! Support shared by soc2-operator's end-to-end tests (`tests/e2e`) and its
//! scale benchmark (`benches/scale`): the repository and the control-plane
//! binaries, a local control plane run by `hack/control-plane/cluster.sh`
//! ([`Cluster`]), clients and ServiceAccount identities ([`access`]), the Helm
//! chart's RBAC ([`helm`]), the operator process ([`operator::Operator`]), a
//! namespace per test ([`TestNamespace`]) and polling ([`eventually`]).
//!
//! It does not depend on the `soc2-operator` package (a dev-dependency cycle
//! would link a second copy of the library): the operator runs as a process
//! whose binary path the caller passes, and helpers that need the operator's
//! types stay with the tests.
//!
//! Errors: what the benchmark uses returns [`anyhow::Result`] with context;
//! the helpers only tests use ([`TestNamespace`], [`operator::Operator`],
//! [`eventually`]) panic with context, as a failing test does.
#![forbid(unsafe_code)]

pub mod access;
mod cluster;
mod guard;
pub mod helm;
pub mod operator;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};

pub use cluster::{Cluster, ClusterOptions};
pub use guard::{TestNamespace, with_fresh_client};

/// Root of the repository (where the root `Cargo.toml` is), two levels above
/// this crate (`crates/test-support`).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("crates/test-support lies two levels below the repository root")
}

/// The directory of the control-plane binaries (etcd, kube-apiserver,
/// kube-controller-manager, kubectl, helm). `hack/control-plane/build.sh`
/// builds what is missing (minutes the first time; it waits for a build
/// already under way) and prints it; the answer is remembered for the rest of
/// the process.
///
/// Errors: build.sh cannot run or fails (the error carries its stderr).
pub fn bin_dir() -> Result<PathBuf> {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    if let Some(dir) = DIR.get() {
        return Ok(dir.clone());
    }
    let out = run(&mut Command::new(
        repo_root().join("hack/control-plane/build.sh"),
    ))
    .context("build the control-plane binaries")?;
    Ok(DIR.get_or_init(|| PathBuf::from(out.trim())).clone())
}

/// Runs `cmd` to completion and returns its stdout (UTF-8, lossy).
///
/// Errors: it cannot start, or exits unsuccessfully (the error names the
/// command and carries its exit status and stderr).
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd.output().with_context(|| format!("run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Runs `kubectl --kubeconfig <kubeconfig> <args>` (kubectl from [`bin_dir`])
/// in the repository root, so relative paths such as `crds/` resolve there;
/// returns its stdout.
///
/// Errors: as [`bin_dir`] and [`run`].
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> Result<String> {
    run(Command::new(bin_dir()?.join("kubectl"))
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .current_dir(repo_root()))
}

/// `kubectl apply -f` of `yaml` (one or more YAML documents, written to a
/// temporary file first); returns kubectl's stdout.
///
/// Errors: the file cannot be written, or as [`kubectl`].
pub fn kubectl_apply(kubeconfig: &Path, yaml: &str) -> Result<String> {
    let file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .context("create a temporary manifest file")?;
    std::fs::write(file.path(), yaml).context("write the manifests")?;
    let path = file.path().to_str().context("a UTF-8 temporary path")?;
    kubectl(kubeconfig, &["apply", "-f", path])
}

/// A unique DNS-1123 name: `<prefix>-<pid>-<counter>` (the counter is
/// per process).
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Polls `f` every 100 ms until it returns `Some`, and returns that value; or
/// panics after `timeout` naming `what`. Needs a tokio runtime with time.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
