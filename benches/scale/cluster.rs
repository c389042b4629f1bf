//! The benchmark's own control plane (with an audit log of the operator's
//! requests), the operator's identity (the Helm chart's RBAC, a TokenRequest
//! token) and small process helpers.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Release namespace of the operator (as `helm install -n soc2-system soc2`).
pub const RELEASE_NAMESPACE: &str = "soc2-system";
/// The chart's ServiceAccount for release `soc2`.
pub const OPERATOR_SA: &str = "soc2-soc2-operator";

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Where build.sh put kubectl and helm.
pub fn bin_dir() -> Result<PathBuf> {
    let out = Command::new(repo_root().join("hack/control-plane/build.sh"))
        .output()
        .context("run hack/control-plane/build.sh")?;
    if !out.status.success() {
        bail!(
            "build.sh failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// A control plane started for one run; stopped when dropped (and by the
/// watchdog of cluster.sh if this process dies).
pub struct Cluster {
    /// Its state directory.
    pub state: PathBuf,
    /// Admin kubeconfig.
    pub kubeconfig: PathBuf,
}

impl Cluster {
    /// Starts etcd, kube-apiserver (audit log of the operator's requests only)
    /// and kube-controller-manager (`--kube-api-qps` raised so that 10,000
    /// namespaces of Deployments settle in minutes).
    pub fn up(state: &Path) -> Result<Cluster> {
        let policy = state.with_extension("audit-policy.yaml");
        std::fs::write(
            &policy,
            format!(
                "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n\
                 - level: Metadata\n  users: [\"system:serviceaccount:{RELEASE_NAMESPACE}:{OPERATOR_SA}\"]\n\
                 - level: None\n"
            ),
        )?;
        let out = Command::new(repo_root().join("hack/control-plane/cluster.sh"))
            .args(["up", "--state-dir"])
            .arg(state)
            .args(["--watch-pid", &std::process::id().to_string()])
            .arg("--audit-policy")
            .arg(&policy)
            .args(["--controller-qps", "300"])
            .output()
            .context("run cluster.sh up")?;
        let _ = std::fs::remove_file(&policy);
        if !out.status.success() {
            bail!(
                "cluster.sh up failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(Cluster {
            state: state.to_path_buf(),
            kubeconfig: state.join("kubeconfig"),
        })
    }

    /// The API server's audit log (JSON lines).
    pub fn audit_log(&self) -> PathBuf {
        self.state.join("audit.log")
    }

    /// The kube-apiserver's process id.
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
        let _ = Command::new(repo_root().join("hack/control-plane/cluster.sh"))
            .args(["down", "--state-dir"])
            .arg(&self.state)
            .output();
    }
}

/// A client from a kubeconfig file.
pub async fn client_from(path: &Path) -> Result<Client> {
    let kc = Kubeconfig::read_from(path)?;
    let cfg = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default()).await?;
    Ok(Client::try_from(cfg)?)
}

/// Runs a command to completion; an error carries its stderr.
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

/// Installs the operator's RBAC exactly as the chart renders it (release
/// `soc2` in [`RELEASE_NAMESPACE`]) and returns a kubeconfig file that
/// authenticates as its ServiceAccount (TokenRequest, 2 h).
pub async fn operator_identity(cluster: &Cluster, admin: &Client, bin: &Path) -> Result<PathBuf> {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    let rendered = run(Command::new(bin.join("helm"))
        .args(["template", "soc2"])
        .arg(repo_root().join("charts/soc2-operator"))
        .args(["--namespace", RELEASE_NAMESPACE, "--kube-version", "1.36.3"])
        .env("HELM_CACHE_HOME", cluster.state.join("helm-cache"))
        .env("HELM_CONFIG_HOME", cluster.state.join("helm-config")))?;
    let rbac: Vec<&str> = rendered
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
        .collect();
    let file = cluster.state.join("operator-rbac.yaml");
    std::fs::write(&file, rbac.join("\n---\n"))?;
    run(Command::new(bin.join("kubectl"))
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .args(["apply", "-f"])
        .arg(&file))?;
    let sa: kube::Api<ServiceAccount> = kube::Api::namespaced(admin.clone(), RELEASE_NAMESPACE);
    let tr: TokenRequest = serde_json::from_value(
        serde_json::json!({"spec": {"audiences": [], "expirationSeconds": 7200}}),
    )?;
    let token = sa
        .create_token_request(OPERATOR_SA, &Default::default(), &tr)
        .await
        .context("TokenRequest for the operator's ServiceAccount")?
        .status
        .and_then(|s| s.token)
        .context("TokenRequest without a token")?;
    let admin_kc = std::fs::read_to_string(&cluster.kubeconfig)?;
    let mut kc: serde_json::Value = serde_yaml::from_str(&admin_kc)?;
    kc["users"] = serde_json::json!([{"name": "operator", "user": {"token": token}}]);
    kc["contexts"][0]["context"]["user"] = serde_json::json!("operator");
    let path = cluster.state.join("operator.kubeconfig");
    std::fs::write(&path, serde_yaml::to_string(&kc)?)?;
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
