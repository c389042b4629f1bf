//! Proves the local control plane is the real thing: CRDs become Established,
//! server-side apply records field managers, watches deliver updates, the status
//! subresource is separate from the main resource, RBAC denies outside a Role,
//! and kube-controller-manager garbage-collects orphans.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Secret, ServiceAccount};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{
    ApiResource, DeleteParams, DynamicObject, GroupVersionKind, Patch, PatchParams, PostParams,
};
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client};
use serde_json::json;

use crate::support::{self, eventually};

const WIDGET_CRD: &str = "widgets.smoke.soc2-operator.dev";

/// Applies a small namespaced CRD with a status subresource and waits until the
/// API server reports it Established.
async fn ensure_widget_crd(client: &Client) -> ApiResource {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": WIDGET_CRD},
        "spec": {
            "group": "smoke.soc2-operator.dev",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {"type": "object", "properties": {"size": {"type": "integer", "minimum": 1}}},
                        "status": {"type": "object", "properties": {"phase": {"type": "string"}}}
                    }
                }}
            }]
        }
    });
    crds.patch(
        WIDGET_CRD,
        &PatchParams::apply("soc2-smoke").force(),
        &Patch::Apply(crd),
    )
    .await
    .expect("apply CRD");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(crds, WIDGET_CRD, conditions::is_crd_established()),
    )
    .await
    .expect("CRD Established within 30 s")
    .expect("watch CRD");
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("smoke.soc2-operator.dev", "v1", "Widget"),
        "widgets",
    )
}

#[tokio::test]
async fn api_server_reports_the_pinned_kubernetes_version() {
    let client = support::client().await;
    let info = client.apiserver_version().await.expect("GET /version");
    // The version pinned in hack/control-plane/versions.env, e.g. v1.36.3.
    let env = std::fs::read_to_string(support::repo_root().join("hack/control-plane/versions.env"))
        .unwrap();
    let pinned = env
        .lines()
        .find_map(|l| l.strip_prefix("K8S_VERSION="))
        .expect("K8S_VERSION in versions.env");
    assert!(
        pinned.starts_with("v1.36."),
        "the project targets Kubernetes 1.36 (k8s-openapi feature v1_36)"
    );
    assert_eq!(info.git_version, pinned);
    assert_eq!((info.major.as_str(), info.minor.as_str()), ("1", "36"));
}

#[tokio::test]
async fn crd_becomes_established_and_rejects_schema_violations() {
    let client = support::client().await;
    let ar = ensure_widget_crd(&client).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds.get(WIDGET_CRD).await.unwrap();
    let established = crd
        .status
        .and_then(|s| s.conditions)
        .unwrap_or_default()
        .into_iter()
        .any(|c| c.type_ == "Established" && c.status == "True");
    assert!(established, "CRD has no Established=True condition");

    // The structural schema is enforced by the real API server.
    let ns = support::namespace(&client, "smoke-crd").await;
    let widgets: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &ar);
    let bad: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "smoke.soc2-operator.dev/v1", "kind": "Widget",
        "metadata": {"name": "too-small"}, "spec": {"size": 0}
    }))
    .unwrap();
    let err = widgets
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("size 0 violates minimum 1");
    let msg = err.to_string();
    assert!(
        msg.contains("spec.size"),
        "error does not name the field: {msg}"
    );
}

#[tokio::test]
async fn server_side_apply_records_the_field_manager() {
    let client = support::client().await;
    let ns = support::namespace(&client, "smoke-ssa").await;
    let api: Api<NetworkPolicy> = Api::namespaced(client.clone(), &ns.name);
    let policy = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    });
    let applied = api
        .patch(
            "default-deny",
            &PatchParams::apply("soc2-smoke"),
            &Patch::Apply(&policy),
        )
        .await
        .expect("server-side apply");
    let managers = applied.metadata.managed_fields.unwrap_or_default();
    assert!(
        managers
            .iter()
            .any(|m| m.manager.as_deref() == Some("soc2-smoke")
                && m.operation.as_deref() == Some("Apply")),
        "no Apply entry for manager soc2-smoke: {managers:?}"
    );
    // A second manager applying a conflicting value is refused without force.
    let conflicting = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny"},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}
    });
    let err = api
        .patch(
            "default-deny",
            &PatchParams::apply("someone-else"),
            &Patch::Apply(&conflicting),
        )
        .await
        .expect_err("conflict without force");
    assert!(
        matches!(&err, kube::Error::Api(s) if s.code == 409),
        "expected 409 Conflict, got {err}"
    );
}

#[tokio::test]
async fn watch_sees_an_update() {
    let client = support::client().await;
    let ns = support::namespace(&client, "smoke-watch").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "watched"}, "data": {"value": "one"}
    }))
    .unwrap();
    api.create(&PostParams::default(), &cm).await.unwrap();

    // kube-controller-manager also puts kube-root-ca.crt in every namespace.
    let config = watcher::Config::default().fields("metadata.name=watched");
    let mut stream = watcher(api.clone(), config).applied_objects().boxed();
    // The initial list delivers the current state first.
    let first = tokio::time::timeout(Duration::from_secs(10), stream.try_next())
        .await
        .expect("initial event")
        .unwrap()
        .unwrap();
    assert_eq!(first.data.unwrap()["value"], "one");

    api.patch(
        "watched",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"value": "two"}})),
    )
    .await
    .unwrap();
    let seen = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(cm) = stream.try_next().await.unwrap() {
            if cm
                .data
                .as_ref()
                .and_then(|d| d.get("value"))
                .map(String::as_str)
                == Some("two")
            {
                return cm;
            }
        }
        panic!("watch stream ended");
    })
    .await
    .expect("the watch delivers the update within 10 s");
    assert_eq!(seen.metadata.name.as_deref(), Some("watched"));
}

#[tokio::test]
async fn status_subresource_is_patched_separately() {
    let client = support::client().await;
    let ar = ensure_widget_crd(&client).await;
    let ns = support::namespace(&client, "smoke-status").await;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &ar);
    let w: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "smoke.soc2-operator.dev/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"size": 3},
        "status": {"phase": "ignored-on-create"}
    }))
    .unwrap();
    let created = api.create(&PostParams::default(), &w).await.unwrap();
    assert!(
        created.data.get("status").is_none(),
        "status must be dropped on create when the status subresource is enabled"
    );
    let generation = created.metadata.generation;

    let patched = api
        .patch_status(
            "w",
            &PatchParams::apply("soc2-smoke").force(),
            &Patch::Apply(json!({
                "apiVersion": "smoke.soc2-operator.dev/v1", "kind": "Widget",
                "status": {"phase": "Ready"}
            })),
        )
        .await
        .expect("patch status subresource");
    assert_eq!(patched.data["status"]["phase"], "Ready");
    assert_eq!(
        patched.metadata.generation, generation,
        "a status write must not bump metadata.generation"
    );
    // A write to the main resource cannot change status.
    let main = api
        .patch(
            "w",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Hacked"}, "spec": {"size": 4}})),
        )
        .await
        .unwrap();
    assert_eq!(main.data["status"]["phase"], "Ready");
    assert_eq!(main.data["spec"]["size"], 4);
}

#[tokio::test]
async fn service_account_token_is_forbidden_outside_its_role() {
    let admin = support::client().await;
    let ns = support::namespace(&admin, "smoke-rbac").await;
    let other = support::namespace(&admin, "smoke-rbac-other").await;
    let sa_api: Api<ServiceAccount> = Api::namespaced(admin.clone(), &ns.name);
    sa_api
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "reader"}})).unwrap(),
        )
        .await
        .unwrap();
    let pp = PatchParams::apply("soc2-smoke");
    let roles: Api<DynamicObject> = Api::namespaced_with(
        admin.clone(),
        &ns.name,
        &ApiResource::from_gvk(&GroupVersionKind::gvk(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
        )),
    );
    roles
        .patch(
            "configmap-reader",
            &pp,
            &Patch::Apply(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                "metadata": {"name": "configmap-reader"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list"]}]
            })),
        )
        .await
        .unwrap();
    let bindings: Api<DynamicObject> = Api::namespaced_with(
        admin.clone(),
        &ns.name,
        &ApiResource::from_gvk(&GroupVersionKind::gvk(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
        )),
    );
    bindings
        .patch(
            "reader",
            &pp,
            &Patch::Apply(json!({
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                "metadata": {"name": "reader"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "configmap-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": ns.name}]
            })),
        )
        .await
        .unwrap();

    let token = support::token_for(&admin, &ns.name, "reader", Duration::from_secs(600))
        .await
        .expect("a token in the TokenRequest status");

    let mut config = support::admin_config().await;
    config.auth_info = kube::config::AuthInfo {
        token: Some(token.into()),
        ..Default::default()
    };
    let sa_client = Client::try_from(config).unwrap();

    let allowed: Api<ConfigMap> = Api::namespaced(sa_client.clone(), &ns.name);
    // RBAC changes reach the authorizer's cache asynchronously; allow a moment.
    eventually(
        "the Role to allow listing configmaps",
        Duration::from_secs(10),
        || {
            let allowed = allowed.clone();
            async move { allowed.list(&Default::default()).await.ok() }
        },
    )
    .await;

    let secrets: Api<Secret> = Api::namespaced(sa_client.clone(), &ns.name);
    let other_cms: Api<ConfigMap> = Api::namespaced(sa_client.clone(), &other.name);
    let write: Api<ConfigMap> = Api::namespaced(sa_client, &ns.name);
    let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "nope"}})).unwrap();
    for (what, result) in [
        (
            "list secrets in its namespace",
            secrets.list(&Default::default()).await.map(|_| ()),
        ),
        (
            "list configmaps in another namespace",
            other_cms.list(&Default::default()).await.map(|_| ()),
        ),
        (
            "create a configmap (verb not granted)",
            write.create(&PostParams::default(), &cm).await.map(|_| ()),
        ),
    ] {
        match result {
            Err(kube::Error::Api(s)) => assert_eq!(s.code, 403, "{what}: {s:?}"),
            other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn garbage_collector_deletes_objects_of_a_deleted_owner() {
    let client = support::client().await;
    let ns = support::namespace(&client, "smoke-gc").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    let owner = api
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let uid = owner.metadata.uid.unwrap();
    api.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {
            "name": "child",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]
        }}))
        .unwrap(),
    )
    .await
    .unwrap();
    api.delete("owner", &DeleteParams::background())
        .await
        .unwrap();
    eventually(
        "kube-controller-manager to collect the orphaned child",
        Duration::from_secs(60),
        || {
            let api = api.clone();
            async move { matches!(api.get_opt("child").await, Ok(None)).then_some(()) }
        },
    )
    .await;
    assert!(api.get_opt("child").await.unwrap().is_none());
}
