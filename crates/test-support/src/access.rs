//! Clients and identities: a kube config or client from a kubeconfig file,
//! ServiceAccount tokens (TokenRequest) and kubeconfigs that authenticate
//! with them.
use std::fmt::Debug;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::ServiceAccount;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::serde::Serialize;
use k8s_openapi::serde::de::DeserializeOwned;
use kube::api::PostParams;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, Resource};
use serde_json::json;

/// A kube config read from the kubeconfig file `path` (its current context).
///
/// Errors: the file is unreadable or not a valid kubeconfig.
pub async fn config_from(path: &Path) -> Result<Config> {
    let kc = Kubeconfig::read_from(path)
        .with_context(|| format!("read kubeconfig {}", path.display()))?;
    Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .with_context(|| format!("kubeconfig {}", path.display()))
}

/// A client from the kubeconfig file `path`. A client belongs to the tokio
/// runtime it was made in: make one per test.
///
/// Errors: as [`config_from`], or the client cannot be built from it.
pub async fn client_from(path: &Path) -> Result<Client> {
    Client::try_from(config_from(path).await?).context("client from kubeconfig")
}

/// A token for the existing ServiceAccount `namespace/name` (TokenRequest, no
/// audiences, valid for `lifetime`, whole seconds).
///
/// Errors: the TokenRequest fails (e.g. no such ServiceAccount) or its status
/// has no token.
pub async fn token_for(
    client: &Client,
    namespace: &str,
    name: &str,
    lifetime: Duration,
) -> Result<String> {
    let sa: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let tr: TokenRequest = serde_json::from_value(
        json!({"spec": {"audiences": [], "expirationSeconds": lifetime.as_secs()}}),
    )?;
    sa.create_token_request(name, &PostParams::default(), &tr)
        .await
        .with_context(|| format!("TokenRequest for ServiceAccount {namespace}/{name}"))?
        .status
        .and_then(|s| s.token)
        .with_context(|| format!("TokenRequest for {namespace}/{name} without a token"))
}

/// Creates ServiceAccount `name` in `namespace`, a ClusterRole `name` with
/// `rules` (a JSON array of PolicyRules) and a ClusterRoleBinding `name`
/// binding it to the ServiceAccount; returns a token for it (TokenRequest,
/// 1 h). The cluster-scoped objects outlive the namespace.
///
/// Errors: any of the objects cannot be created (e.g. it exists), or as
/// [`token_for`].
pub async fn service_account_token(
    client: &Client,
    namespace: &str,
    name: &str,
    rules: serde_json::Value,
) -> Result<String> {
    create(
        Api::<ServiceAccount>::namespaced(client.clone(), namespace),
        json!({"metadata": {"name": name}}),
    )
    .await?;
    create(
        Api::<ClusterRole>::all(client.clone()),
        json!({"metadata": {"name": name}, "rules": rules}),
    )
    .await?;
    create(
        Api::<ClusterRoleBinding>::all(client.clone()),
        json!({
            "metadata": {"name": name},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": namespace}]
        }),
    )
    .await?;
    token_for(client, namespace, name, Duration::from_secs(3600)).await
}

/// Creates `object` (its JSON) through `api`.
async fn create<K>(api: Api<K>, object: serde_json::Value) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Serialize,
{
    api.create(&PostParams::default(), &serde_json::from_value(object)?)
        .await
        .with_context(|| format!("create {}", K::kind(&())))?;
    Ok(())
}

/// Writes to `out` a copy of the kubeconfig `admin` (same cluster and CA)
/// whose only user authenticates with the bearer `token`.
///
/// Errors: `admin` is unreadable or not YAML, or `out` cannot be written.
pub fn write_token_kubeconfig(admin: &Path, token: &str, out: &Path) -> Result<()> {
    let text = std::fs::read_to_string(admin)
        .with_context(|| format!("read kubeconfig {}", admin.display()))?;
    let mut kc: serde_json::Value = serde_yaml::from_str(&text)
        .with_context(|| format!("kubeconfig {} is not YAML", admin.display()))?;
    kc["users"] = json!([{"name": "token", "user": {"token": token}}]);
    kc["contexts"][0]["context"]["user"] = json!("token");
    std::fs::write(out, serde_yaml::to_string(&kc)?)
        .with_context(|| format!("write {}", out.display()))
}
