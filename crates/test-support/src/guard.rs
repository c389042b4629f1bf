//! Guards that remove what a test created, also when it panics.
use std::future::Future;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};

use crate::access::client_from;
use crate::unique_name;

/// A namespace created for one test and deleted (in the background) when
/// dropped, also on panic.
pub struct TestNamespace {
    /// The namespace name, `<prefix>-<pid>-<n>`.
    pub name: String,
    kubeconfig: PathBuf,
}

impl TestNamespace {
    /// Creates a fresh namespace named `<prefix>-<pid>-<n>` through `client`,
    /// a client of the cluster of `kubeconfig` (which the deletion on drop
    /// uses). Panics if it cannot be created.
    pub async fn new(kubeconfig: &Path, client: &Client, prefix: &str) -> Self {
        let name = unique_name(prefix);
        let api: Api<Namespace> = Api::all(client.clone());
        let ns: Namespace =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
        api.create(&PostParams::default(), &ns)
            .await
            .expect("create test namespace");
        TestNamespace {
            name,
            kubeconfig: kubeconfig.to_path_buf(),
        }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        let name = self.name.clone();
        with_fresh_client(&self.kubeconfig, move |client| async move {
            let api: Api<Namespace> = Api::all(client);
            let _ = api.delete(&name, &DeleteParams::background()).await;
        });
    }
}

/// Runs `task` with a new client of `kubeconfig` on a short-lived tokio
/// runtime on its own thread, and waits until it is done: for a guard's
/// `Drop`, which cannot await, and whose test runtime (the one its clients
/// belong to) is blocked while it runs. Best effort: a runtime or client that
/// cannot be made, or a panic in `task`, is ignored.
pub fn with_fresh_client<F, Fut>(kubeconfig: &Path, task: F)
where
    F: FnOnce(Client) -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let kubeconfig = kubeconfig.to_path_buf();
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let client = client_from(&kubeconfig).await.expect("client");
            task(client).await;
        });
    })
    .join();
}
