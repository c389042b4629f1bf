//! The benchmark's own control plane (with an audit log of the operator's
//! requests), the operator's identity (the Helm chart's RBAC, a TokenRequest
//! token) and a `/proc` reader; the rest comes from `soc2-test-support`.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, Result};
use kube::Client;
use soc2_test_support::access::{token_for, write_token_kubeconfig};
use soc2_test_support::{Cluster, ClusterOptions, helm, kubectl_apply};

/// Release namespace of the operator (as `helm install -n soc2-system soc2`).
pub const RELEASE_NAMESPACE: &str = "soc2-system";

/// Starts etcd, kube-apiserver (audit log of the operator's requests only)
/// and kube-controller-manager (`--kube-api-qps` raised so that 10,000
/// namespaces of Deployments settle in minutes) in `state`; stopped when the
/// [`Cluster`] is dropped.
pub fn up(state: &Path) -> Result<Cluster> {
    let policy = state.with_extension("audit-policy.yaml");
    std::fs::write(
        &policy,
        format!(
            "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n\
             - level: Metadata\n  users: [\"system:serviceaccount:{RELEASE_NAMESPACE}:{}\"]\n\
             - level: None\n",
            helm::SERVICE_ACCOUNT
        ),
    )?;
    let options = ClusterOptions {
        audit_policy: Some(policy.clone()),
        controller_qps: Some(300),
        ..Default::default()
    };
    let cluster = Cluster::up(state, &options);
    let _ = std::fs::remove_file(&policy);
    cluster
}

/// Installs the operator's RBAC exactly as the chart renders it (release
/// `soc2` in [`RELEASE_NAMESPACE`]) and returns a kubeconfig file that
/// authenticates as its ServiceAccount (TokenRequest, 2 h).
pub async fn operator_identity(cluster: &Cluster, admin: &Client) -> Result<PathBuf> {
    let rendered = helm::template(RELEASE_NAMESPACE, &[], &cluster.state)?;
    kubectl_apply(
        &cluster.kubeconfig,
        &helm::rbac_documents(&rendered).join("\n---\n"),
    )?;
    let token = token_for(
        admin,
        RELEASE_NAMESPACE,
        helm::SERVICE_ACCOUNT,
        Duration::from_secs(7200),
    )
    .await
    .context("a token for the operator's ServiceAccount")?;
    let path = cluster.state.join("operator.kubeconfig");
    write_token_kubeconfig(&cluster.kubeconfig, &token, &path)?;
    Ok(path)
}

/// Peak resident set size (`VmHWM`) and CPU time (user + system) of a live
/// process, from `/proc/<pid>/status` and `/proc/<pid>/stat`.
pub fn proc_usage(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let hwm_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some((hwm_kib / 1024.0, ticks / clock_ticks()))
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}
