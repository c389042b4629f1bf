//! A local control plane (etcd, kube-apiserver, kube-controller-manager) run
//! by `hack/control-plane/cluster.sh`.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::repo_root;

/// Options of `cluster.sh up` besides the state directory and the watchdog
/// (see the script's header).
#[derive(Clone, Debug, Default)]
pub struct ClusterOptions {
    /// `--encryption aescbc`: the API server encrypts Secrets at rest
    /// (AES-CBC, generated key) and says so in its storage-transformation
    /// metrics.
    pub encrypt_secrets: bool,
    /// `--audit-policy FILE`: the API server writes an audit log with this
    /// audit.k8s.io/v1 Policy to [`Cluster::audit_log`] (JSON lines). The file
    /// is read while `up` runs.
    pub audit_policy: Option<PathBuf>,
    /// `--controller-qps N`: kube-controller-manager's `--kube-api-qps`
    /// (requests per second; burst 2N). Unset: the component's default, 20.
    pub controller_qps: Option<u32>,
}

/// A control plane started for this process in its own state directory:
/// stopped (`cluster.sh down`, which also removes the state directory) when
/// dropped, and by cluster.sh's watchdog (`--watch-pid`) when this process
/// ends first — passed, failed, panicked or killed.
#[derive(Debug)]
pub struct Cluster {
    /// The state directory (pid files, logs, certificates, `kubeconfig`).
    pub state: PathBuf,
    /// An admin kubeconfig (client certificate in group `system:masters`).
    pub kubeconfig: PathBuf,
}

impl Cluster {
    /// `cluster.sh up --state-dir <state> --watch-pid <this process>` with
    /// `options`; returns once the API server is ready (free loopback ports).
    ///
    /// Errors: cluster.sh cannot run or fails (its stderr names the failing
    /// component and its log; it stops what it started).
    pub fn up(state: &Path, options: &ClusterOptions) -> Result<Cluster> {
        let mut cmd = Command::new(script());
        cmd.args(["up", "--state-dir"])
            .arg(state)
            .args(["--watch-pid", &std::process::id().to_string()]);
        if options.encrypt_secrets {
            cmd.args(["--encryption", "aescbc"]);
        }
        if let Some(policy) = &options.audit_policy {
            cmd.arg("--audit-policy").arg(policy);
        }
        if let Some(qps) = options.controller_qps {
            cmd.args(["--controller-qps", &qps.to_string()]);
        }
        let out = cmd
            .output()
            .with_context(|| format!("run {}", script().display()))?;
        if !out.status.success() {
            bail!(
                "{} up failed ({}):\n{}",
                script().display(),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(Cluster {
            state: state.to_path_buf(),
            kubeconfig: state.join("kubeconfig"),
        })
    }

    /// Stops it now (`cluster.sh down`), as dropping it does.
    pub fn down(self) {
        drop(self);
    }

    /// The API server's audit log (JSON lines; written only with
    /// [`ClusterOptions::audit_policy`]).
    pub fn audit_log(&self) -> PathBuf {
        self.state.join("audit.log")
    }

    /// The kube-apiserver's process id, if its pid file is readable.
    pub fn apiserver_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.state.join("kube-apiserver.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(script())
            .args(["down", "--state-dir"])
            .arg(&self.state)
            .output();
    }
}

fn script() -> PathBuf {
    repo_root().join("hack/control-plane/cluster.sh")
}
