//! Helpers for tests that drive the operator through Controls.
use std::time::Duration;

use kube::api::{Patch, PatchParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use soc2_operator::api::Control;
use soc2_operator::api::conditions::{COMPLIANT, find};

use super::eventually;
use super::operator::TEST_LABEL;

/// Applies a Control labelled for this test's operator.
pub async fn apply_control(client: &Client, name: &str, test: &str, spec: Value) -> Control {
    let api: Api<Control> = Api::all(client.clone());
    api.patch(
        name,
        &PatchParams::apply("soc2-e2e").force(),
        &Patch::Apply(json!({
            "apiVersion": "soc2-operator.dev/v1alpha1",
            "kind": "Control",
            "metadata": {"name": name, "labels": {TEST_LABEL: test}},
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
