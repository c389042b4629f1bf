//! Test support: one real control plane (etcd, kube-apiserver,
//! kube-controller-manager) per test binary, started lazily on first use and
//! shared by every test in the binary; each test gets its own client and fresh
//! namespace(s).
//!
//! The control plane is started by `hack/control-plane/cluster.sh up` with
//! `--watch-pid <this process>`: a watchdog stops it when this process ends,
//! whether the tests passed, failed, panicked or the process was killed.
//!
//! `SOC2_E2E_KUBECONFIG=<path>` runs the tests against an already running
//! control plane instead (for example one from `make cluster-up`).
#![allow(dead_code)]

pub mod controls;
pub mod operator;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// The shared control plane of this test binary.
pub struct ControlPlane {
    /// Path of an admin kubeconfig (client certificate in group system:masters).
    pub kubeconfig: PathBuf,
    /// The state directory of `cluster.sh` (pid files, logs, certificates).
    pub state_dir: Option<PathBuf>,
}

/// Root of the repository (where `Cargo.toml` is).
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

static CONTROL_PLANE: LazyLock<Result<ControlPlane, String>> = LazyLock::new(start_control_plane);

fn start_control_plane() -> Result<ControlPlane, String> {
    if let Ok(path) = std::env::var("SOC2_E2E_KUBECONFIG") {
        return Ok(ControlPlane {
            kubeconfig: PathBuf::from(path),
            state_dir: None,
        });
    }
    let state = std::env::temp_dir().join(format!("soc2-e2e-{}", std::process::id()));
    // cluster.sh removes what it started when start-up fails.
    start_cluster(&state, &[])
}

/// Starts a separate control plane in `state` (stopped when this process ends,
/// or earlier with [`stop_cluster`]). `extra` is passed to `cluster.sh up`.
pub fn start_cluster(state: &Path, extra: &[&str]) -> Result<ControlPlane, String> {
    let script = repo_root().join("hack/control-plane/cluster.sh");
    let pid = std::process::id().to_string();
    let out = Command::new(&script)
        .args(["up", "--state-dir"])
        .arg(state)
        .args(["--watch-pid", &pid])
        .args(extra)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} up failed ({}):\n{}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(ControlPlane {
        kubeconfig: state.join("kubeconfig"),
        state_dir: Some(state.to_path_buf()),
    })
}

/// Stops a control plane started by [`start_cluster`].
pub fn stop_cluster(state: &Path) {
    let _ = Command::new(repo_root().join("hack/control-plane/cluster.sh"))
        .args(["down", "--state-dir"])
        .arg(state)
        .output();
}

/// The shared control plane, started on first call. Panics with the start-up
/// error (which names the failing component and its log) if it cannot start.
pub fn control_plane() -> &'static ControlPlane {
    match &*CONTROL_PLANE {
        Ok(cp) => cp,
        Err(e) => panic!("the local control plane did not start:\n{e}"),
    }
}

/// A kube config for the admin identity of the shared control plane.
pub async fn admin_config() -> Config {
    config_from(&control_plane().kubeconfig).await
}

/// A kube config read from a kubeconfig file.
pub async fn config_from(path: &Path) -> Config {
    let kc = Kubeconfig::read_from(path).expect("readable kubeconfig");
    Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .expect("valid kubeconfig")
}

/// An admin client of the shared control plane. Create one per test: a client
/// belongs to the tokio runtime it was made in.
pub async fn client() -> Client {
    Client::try_from(admin_config().await).expect("client from kubeconfig")
}

/// A unique DNS-1123 name: `<prefix>-<pid>-<counter>`.
pub fn unique_name(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A namespace created for one test and deleted when dropped.
pub struct TestNamespace {
    /// The namespace name.
    pub name: String,
    kubeconfig: PathBuf,
}

impl TestNamespace {
    /// Creates a fresh namespace named `<prefix>-<pid>-<n>` on the shared
    /// control plane (`client` must be a client of it).
    pub async fn new(client: &Client, prefix: &str) -> Self {
        Self::on(control_plane(), client, prefix).await
    }

    /// Creates a fresh namespace on `cp`, through `client` (a client of `cp`).
    pub async fn on(cp: &ControlPlane, client: &Client, prefix: &str) -> Self {
        let name = unique_name(prefix);
        let api: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
        api.create(&PostParams::default(), &ns)
            .await
            .expect("create test namespace");
        TestNamespace {
            name,
            kubeconfig: cp.kubeconfig.clone(),
        }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Drop cannot await; delete from a short-lived runtime on its own thread.
        let name = self.name.clone();
        let kubeconfig = self.kubeconfig.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let client = Client::try_from(config_from(&kubeconfig).await).expect("client");
                let api: Api<Namespace> = Api::all(client);
                let _ = api.delete(&name, &DeleteParams::background()).await;
            });
        })
        .join();
    }
}

/// Polls `f` every 100 ms until it returns `Some`, or panics after `timeout`
/// naming `what`.
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

/// The directory of the control-plane binaries (kubectl, helm, …).
pub fn bin_dir() -> PathBuf {
    let out = Command::new(repo_root().join("hack/control-plane/build.sh"))
        .output()
        .expect("run build.sh");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
}

/// Runs kubectl against `kubeconfig`; panics with its output on failure.
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    let out = Command::new(bin_dir().join("kubectl"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Creates ServiceAccount `name` in `namespace`, a ClusterRole with `rules`
/// bound to it, and returns a token for it (TokenRequest, 1 h).
pub async fn service_account_token(
    client: &Client,
    namespace: &str,
    name: &str,
    rules: serde_json::Value,
) -> String {
    use k8s_openapi::api::core::v1::ServiceAccount;
    use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
    let pp = PostParams::default();
    let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    sa.create(
        &pp,
        &serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap(),
    )
    .await
    .expect("create ServiceAccount");
    let roles: Api<ClusterRole> = Api::all(client.clone());
    roles
        .create(
            &pp,
            &serde_json::from_value(
                serde_json::json!({"metadata": {"name": name}, "rules": rules}),
            )
            .unwrap(),
        )
        .await
        .expect("create ClusterRole");
    let bindings: Api<ClusterRoleBinding> = Api::all(client.clone());
    bindings
        .create(
            &pp,
            &serde_json::from_value(serde_json::json!({
                "metadata": {"name": name},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
                "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
            }))
            .unwrap(),
        )
        .await
        .expect("create ClusterRoleBinding");
    token_for(client, namespace, name).await
}

/// A token (TokenRequest, 1 h) for an existing ServiceAccount.
pub async fn token_for(client: &Client, namespace: &str, name: &str) -> String {
    use k8s_openapi::api::authentication::v1::TokenRequest;
    use k8s_openapi::api::core::v1::ServiceAccount;
    let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let tr: TokenRequest = serde_json::from_value(
        serde_json::json!({"spec": {"audiences": [], "expirationSeconds": 3600}}),
    )
    .unwrap();
    sa.create_token_request(name, &PostParams::default(), &tr)
        .await
        .expect("TokenRequest")
        .status
        .and_then(|s| s.token)
        .expect("a token")
}

/// A kubeconfig for the shared control plane that authenticates with `token`.
pub fn kubeconfig_with_token(token: &str) -> tempfile::NamedTempFile {
    let admin = std::fs::read_to_string(&control_plane().kubeconfig).unwrap();
    let mut kc: serde_json::Value = serde_yaml::from_str(&admin).unwrap();
    kc["users"] = serde_json::json!([{"name": "token", "user": {"token": token}}]);
    kc["contexts"][0]["context"]["user"] = serde_json::json!("token");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_yaml::to_string(&kc).unwrap()).unwrap();
    file
}
