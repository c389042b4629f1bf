//! Test support: one real control plane (etcd, kube-apiserver,
//! kube-controller-manager) per test binary, started lazily on first use and
//! shared by every test in the binary; each test gets its own client and fresh
//! namespace(s). The rest comes from the `soc2-test-support` crate (shared
//! with the scale benchmark) and is re-exported here, wrapped where a test
//! wants a panic instead of an error.
//!
//! The control plane is started by `hack/control-plane/cluster.sh up` with
//! `--watch-pid <this process>`: a watchdog stops it when this process ends,
//! whether the tests passed, failed, panicked or the process was killed.
//!
//! `SOC2_E2E_KUBECONFIG=<path>` runs the tests against an already running
//! control plane instead (for example one from `make cluster-up`).

pub mod controls;

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use kube::{Client, Config};

pub use soc2_test_support::access::{
    client_from, config_from, service_account_token, token_for, write_token_kubeconfig,
};
pub use soc2_test_support::operator::Operator;
pub use soc2_test_support::{
    Cluster, ClusterOptions, TestNamespace, bin_dir, eventually, helm, kubectl_apply, repo_root,
    unique_name,
};

/// The shared control plane of this test binary.
pub struct ControlPlane {
    /// Path of an admin kubeconfig (client certificate in group system:masters).
    pub kubeconfig: PathBuf,
    /// The control plane this process started (`None` with
    /// `SOC2_E2E_KUBECONFIG`), held only: a static is never dropped, the
    /// watchdog stops it.
    _cluster: Option<Cluster>,
}

static CONTROL_PLANE: LazyLock<Result<ControlPlane, String>> = LazyLock::new(start_control_plane);

fn start_control_plane() -> Result<ControlPlane, String> {
    if let Ok(path) = std::env::var("SOC2_E2E_KUBECONFIG") {
        return Ok(ControlPlane {
            kubeconfig: PathBuf::from(path),
            _cluster: None,
        });
    }
    let state = std::env::temp_dir().join(format!("soc2-e2e-{}", std::process::id()));
    // cluster.sh removes what it started when start-up fails.
    let cluster = Cluster::up(&state, &ClusterOptions::default()).map_err(|e| format!("{e:#}"))?;
    Ok(ControlPlane {
        kubeconfig: cluster.kubeconfig.clone(),
        _cluster: Some(cluster),
    })
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
    config_from(&control_plane().kubeconfig)
        .await
        .expect("valid kubeconfig")
}

/// An admin client of the shared control plane. Create one per test: a client
/// belongs to the tokio runtime it was made in.
pub async fn client() -> Client {
    Client::try_from(admin_config().await).expect("client from kubeconfig")
}

/// A fresh namespace `<prefix>-<pid>-<n>` on the shared control plane
/// (`client` must be a client of it), deleted when dropped.
pub async fn namespace(client: &Client, prefix: &str) -> TestNamespace {
    TestNamespace::new(&control_plane().kubeconfig, client, prefix).await
}

/// Runs kubectl against `kubeconfig` (see [`soc2_test_support::kubectl`]);
/// panics with its stderr on failure.
pub fn kubectl(kubeconfig: &Path, args: &[&str]) -> String {
    soc2_test_support::kubectl(kubeconfig, args).unwrap_or_else(|e| panic!("{e:#}"))
}

/// A kubeconfig for the shared control plane that authenticates with `token`
/// (removed when dropped).
pub fn kubeconfig_with_token(token: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().unwrap();
    write_token_kubeconfig(&control_plane().kubeconfig, token, file.path())
        .expect("kubeconfig with a token");
    file
}
