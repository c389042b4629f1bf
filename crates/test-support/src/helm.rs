//! The Helm chart (`charts/soc2-operator`) rendered by the helm built by
//! `build.sh`, and the operator's RBAC as the chart renders it.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::{bin_dir, repo_root, run};

/// The release name the chart is rendered as (`helm template soc2 …`).
pub const RELEASE: &str = "soc2";
/// The chart's ServiceAccount (and the name of its RBAC objects) for
/// [`RELEASE`].
pub const SERVICE_ACCOUNT: &str = "soc2-soc2-operator";
/// The Kubernetes version the chart is rendered for (`--kube-version`), the
/// local control plane's.
pub const KUBE_VERSION: &str = "1.36.3";

/// The chart's directory.
pub fn chart_dir() -> PathBuf {
    repo_root().join("charts/soc2-operator")
}

/// A `helm` command (no arguments yet) whose cache and configuration live in
/// `home/helm-cache` and `home/helm-config`, never in the user's own.
///
/// Errors: as [`bin_dir`].
pub fn command(home: &Path) -> Result<Command> {
    let mut cmd = Command::new(bin_dir()?.join("helm"));
    cmd.env("HELM_CACHE_HOME", home.join("helm-cache"))
        .env("HELM_CONFIG_HOME", home.join("helm-config"));
    Ok(cmd)
}

/// `helm template` of the chart as release [`RELEASE`] in `namespace` for
/// Kubernetes [`KUBE_VERSION`], with `--set` for each of `sets`
/// (`key=value`); returns the rendered YAML documents.
///
/// Errors: as [`command`], or helm fails (e.g. a value the schema rejects;
/// the error carries helm's stderr).
pub fn template(namespace: &str, sets: &[&str], home: &Path) -> Result<String> {
    let mut cmd = command(home)?;
    cmd.args(["template", RELEASE]).arg(chart_dir()).args([
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
    ]);
    for set in sets {
        cmd.args(["--set", set]);
    }
    run(&mut cmd)
}

/// The RBAC documents of `rendered` (output of [`template`]): every document
/// with a line `kind: ServiceAccount`, `ClusterRole`, `ClusterRoleBinding`,
/// `Role` or `RoleBinding`, in order, as they are (join them with
/// `"\n---\n"` to apply them).
pub fn rbac_documents(rendered: &str) -> Vec<&str> {
    rendered
        .split("\n---")
        .filter(|d| {
            d.lines().any(|l| {
                matches!(
                    l,
                    "kind: ServiceAccount"
                        | "kind: ClusterRole"
                        | "kind: ClusterRoleBinding"
                        | "kind: Role"
                        | "kind: RoleBinding"
                )
            })
        })
        .collect()
}
