//! Helpers for tests that drive the operator through Controls: each test's
//! Controls carry its own value of [`TEST_LABEL`], its operator manages only
//! those, and a [`TestControls`] guard deletes them when the test ends.
use std::path::{Path, PathBuf};
use std::time::Duration;

use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use soc2_operator::api::Control;
use soc2_operator::api::conditions::{COMPLIANT, find};

use super::{Operator, control_plane, eventually, unique_name};

/// The label that assigns Controls to one test (and its operator).
pub const TEST_LABEL: &str = "soc2-operator.dev/test";

/// One test's Controls: a fresh value of [`TEST_LABEL`]
/// (`<prefix>-<pid>-<n>`) for [`apply_control`] and [`start_operator`]; when
/// dropped — also on panic — every Control carrying it is deleted from the
/// cluster it was made for. Declare it before the test's operator, so that
/// the operator is stopped first.
pub struct TestControls {
    value: String,
    kubeconfig: PathBuf,
}

impl TestControls {
    /// A fresh label value for Controls on the shared control plane.
    pub fn new(prefix: &str) -> Self {
        Self::on(&control_plane().kubeconfig, prefix)
    }

    /// A fresh label value for Controls on the cluster of `kubeconfig`
    /// (drop it before that cluster is stopped).
    pub fn on(kubeconfig: &Path, prefix: &str) -> Self {
        TestControls {
            value: unique_name(prefix),
            kubeconfig: kubeconfig.to_path_buf(),
        }
    }

    /// The label value.
    pub fn value(&self) -> &str {
        &self.value
    }

    /// The label selector of these Controls: `soc2-operator.dev/test=<value>`.
    pub fn selector(&self) -> String {
        format!("{TEST_LABEL}={}", self.value)
    }
}

impl Drop for TestControls {
    fn drop(&mut self) {
        let selector = self.selector();
        soc2_test_support::with_fresh_client(&self.kubeconfig, move |client| async move {
            let api: Api<Control> = Api::all(client);
            let _ = api
                .delete_collection(
                    &DeleteParams::default(),
                    &ListParams::default().labels(&selector),
                )
                .await;
        });
    }
}

/// Starts this package's `soc2-operator` binary for `test`'s Controls on the
/// cluster of `kubeconfig`, without leader election unless `extra` sets
/// `--leader-election` (see [`Operator::start`]).
pub fn start_operator(kubeconfig: &Path, test: &TestControls, extra: &[&str]) -> Operator {
    Operator::start(
        Path::new(env!("CARGO_BIN_EXE_soc2-operator")),
        kubeconfig,
        &test.selector(),
        extra,
    )
}

/// Applies (server-side, field manager `soc2-e2e`) Control `name` with
/// `spec`, labelled for `test`.
pub async fn apply_control(
    client: &Client,
    name: &str,
    test: &TestControls,
    spec: Value,
) -> Control {
    let api: Api<Control> = Api::all(client.clone());
    api.patch(
        name,
        &PatchParams::apply("soc2-e2e").force(),
        &Patch::Apply(json!({
            "apiVersion": "soc2-operator.dev/v1alpha1",
            "kind": "Control",
            "metadata": {"name": name, "labels": {TEST_LABEL: test.value()}},
            "spec": spec,
        })),
    )
    .await
    .expect("apply Control")
}

/// `(status, reason)` of the condition `type_`, if set.
pub fn condition(c: &Control, type_: &str) -> Option<(String, String)> {
    c.status
        .as_ref()
        .and_then(|s| find(&s.conditions, type_))
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// Waits until the Control satisfies `pred`; returns it.
pub async fn wait_control(
    client: &Client,
    name: &str,
    what: &str,
    timeout: Duration,
    pred: impl Fn(&Control) -> bool,
) -> Control {
    let api: Api<Control> = Api::all(client.clone());
    eventually(what, timeout, || {
        let api = api.clone();
        let pred = &pred;
        async move { api.get(name).await.ok().filter(|c| pred(c)) }
    })
    .await
}

/// Whether the `Compliant` condition has status `value`.
pub fn is_compliant(c: &Control, value: &str) -> bool {
    condition(c, COMPLIANT).is_some_and(|(s, _)| s == value)
}

/// A scope selecting exactly the namespaces `ns`.
pub fn scope_to(ns: &[&str]) -> Value {
    json!({"namespaceSelector": {"matchExpressions": [
        {"key": "kubernetes.io/metadata.name", "operator": "In", "values": ns}
    ]}})
}

/// Creates NetworkPolicy `name` in `namespace` denying all ingress to every
/// pod (`podSelector: {}`, `policyTypes: [Ingress]`, no rules).
pub async fn create_deny_ingress(client: &Client, namespace: &str, name: &str) {
    let api: Api<k8s_openapi::api::networking::v1::NetworkPolicy> =
        Api::namespaced(client.clone(), namespace);
    let policy = json!({"metadata": {"name": name}, "spec": {"podSelector": {}, "policyTypes": ["Ingress"]}});
    api.create(
        &kube::api::PostParams::default(),
        &serde_json::from_value(policy).unwrap(),
    )
    .await
    .expect("create the default-deny NetworkPolicy");
}

/// Creates PersistentVolumeClaim `name` in `namespace` for a pre-provisioned
/// volume (`storageClassName: ""`): how it is encrypted cannot be told, so an
/// `encryption.atRest.storageClasses` Control over the namespace is Unknown.
pub async fn create_static_pvc(client: &Client, namespace: &str, name: &str) {
    let api: Api<k8s_openapi::api::core::v1::PersistentVolumeClaim> =
        Api::namespaced(client.clone(), namespace);
    let pvc = json!({
        "metadata": {"name": name},
        "spec": {"storageClassName": "", "accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}}
    });
    api.create(
        &kube::api::PostParams::default(),
        &serde_json::from_value(pvc).unwrap(),
    )
    .await
    .expect("create the PersistentVolumeClaim");
}

/// The `check` of a Control that is Unknown over a namespace holding a
/// [`create_static_pvc`] claim.
pub fn volumes_check() -> Value {
    json!({"encryption": {"atRest": {"storageClasses": {"allowedProvisioners": ["ebs.csi.aws.com"]}}}})
}
