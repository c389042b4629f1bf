//! The Control CRD on the real API server: it becomes Established from the
//! committed YAML, accepts a valid Control with defaults, and rejects malformed
//! Controls at admission (schema, enums, patterns, CEL rules) with a message
//! naming the field.

use std::time::Duration;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Api, Client, Resource};
use serde_json::{Value, json};
use soc2_operator::api::Control;

use crate::support;
use crate::support::controls::{TEST_LABEL, TestControls};

/// Applies `crds/controls.soc2-operator.dev.yaml` (the committed file, as a
/// user would) and waits until it is Established.
pub async fn install_control_crd(client: &Client) {
    let path = support::repo_root().join("crds/controls.soc2-operator.dev.yaml");
    let crd: CustomResourceDefinition =
        serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let name = crd.metadata.name.clone().unwrap();
    api.patch(
        &name,
        &PatchParams::apply("soc2-e2e").force(),
        &Patch::Apply(&crd),
    )
    .await
    .expect("apply the Control CRD");
    tokio::time::timeout(
        Duration::from_secs(30),
        await_condition(api, &name, conditions::is_crd_established()),
    )
    .await
    .expect("Control CRD Established within 30 s")
    .unwrap();
}

fn controls(client: &Client) -> Api<DynamicObject> {
    Api::all_with(client.clone(), &ApiResource::erase::<Control>(&()))
}

fn valid_spec() -> Value {
    json!({
        "criteria": ["CC6.1", "CC6.6"],
        "category": "Security",
        "title": "Default-deny network policies",
        "severity": "High",
        "check": {"networkPolicy": {"egress": true}}
    })
}

/// Sets `path` (dot-separated, under spec) to `value`, or removes it for `None`.
fn with(path: &str, value: Option<Value>) -> Value {
    let mut spec = valid_spec();
    let parts: Vec<&str> = path.split('.').collect();
    let mut cur = &mut spec;
    for p in &parts[..parts.len() - 1] {
        cur = cur
            .as_object_mut()
            .unwrap()
            .entry(*p)
            .or_insert_with(|| json!({}));
    }
    let last = parts[parts.len() - 1];
    match value {
        Some(v) => {
            cur.as_object_mut().unwrap().insert(last.into(), v);
        }
        None => {
            cur.as_object_mut().unwrap().remove(last);
        }
    }
    spec
}

fn check(check: Value) -> Value {
    with("check", Some(check))
}

/// Control `name` with `spec`, labelled for `test` (whose guard deletes it).
fn object(name: &str, test: &TestControls, spec: Value) -> DynamicObject {
    serde_json::from_value(json!({
        "apiVersion": "soc2-operator.dev/v1alpha1",
        "kind": "Control",
        "metadata": {"name": name, "labels": {TEST_LABEL: test.value()}},
        "spec": spec
    }))
    .unwrap()
}

#[tokio::test]
async fn a_valid_control_is_accepted_with_defaults() {
    let client = support::client().await;
    install_control_crd(&client).await;
    let api = controls(&client);
    let test = TestControls::new("valid");
    let name = support::unique_name("valid");
    let created = api
        .create(&PostParams::default(), &object(&name, &test, valid_spec()))
        .await
        .expect("a valid Control is accepted");
    assert_eq!(
        created.data["spec"]["mode"], "Audit",
        "mode defaults to Audit"
    );
    let typed: Control = serde_json::from_value(serde_json::to_value(&created).unwrap()).unwrap();
    assert_eq!(typed.spec.criteria, ["CC6.1", "CC6.6"]);
    assert!(typed.spec.check.network_policy.unwrap().egress);
}

#[tokio::test]
async fn malformed_controls_are_rejected_naming_the_field() {
    let client = support::client().await;
    install_control_crd(&client).await;
    let api = controls(&client);
    // Removes any that is wrongly accepted.
    let test = TestControls::new("malformed");
    // (what, spec, text the error must contain: the field path)
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "criteria missing",
            with("criteria", None),
            "spec.criteria: Required value",
        ),
        (
            "criteria empty",
            with("criteria", Some(json!([]))),
            "spec.criteria",
        ),
        (
            "criterion out of range",
            with("criteria", Some(json!(["CC10.1"]))),
            "spec.criteria[0]",
        ),
        (
            "criterion lower case",
            with("criteria", Some(json!(["cc6.1"]))),
            "spec.criteria[0]",
        ),
        (
            "criterion that TSC does not define",
            with("criteria", Some(json!(["CC6.9"]))),
            "spec.criteria[0]",
        ),
        (
            "duplicate criterion",
            with("criteria", Some(json!(["CC6.1", "CC6.1"]))),
            "spec.criteria[1]: Duplicate value",
        ),
        (
            "too many criteria",
            with(
                "criteria",
                Some(json!([
                    "CC6.1", "CC6.2", "CC6.3", "CC6.4", "CC6.5", "CC6.6", "CC6.7", "CC6.8",
                    "CC7.1", "CC7.2", "CC7.3", "CC7.4", "CC7.5", "CC8.1", "CC9.1", "CC9.2", "A1.1",
                    "A1.2", "A1.3", "C1.1", "C1.2"
                ])),
            ),
            "spec.criteria",
        ),
        (
            "unknown category",
            with("category", Some(json!("Securty"))),
            "spec.category: Unsupported value",
        ),
        (
            "unknown severity",
            with("severity", Some(json!("Urgent"))),
            "spec.severity: Unsupported value",
        ),
        (
            "unknown mode",
            with("mode", Some(json!("Block"))),
            "spec.mode: Unsupported value",
        ),
        ("empty title", with("title", Some(json!(""))), "spec.title"),
        (
            "title missing",
            with("title", None),
            "spec.title: Required value",
        ),
        (
            "check missing",
            with("check", None),
            "spec.check: Required value",
        ),
        (
            "no check family",
            check(json!({})),
            "spec.check: Invalid value",
        ),
        (
            "two check families",
            check(json!({"networkPolicy": {}, "rbac": {}})),
            "exactly one of networkPolicy",
        ),
        (
            "backup maxAge in days",
            check(json!({"backup": {"maxAge": "3d"}})),
            "spec.check.backup.maxAge",
        ),
        (
            "backup maxAge missing",
            check(json!({"backup": {}})),
            "spec.check.backup.maxAge: Required value",
        ),
        (
            "restoreTestedWithin not a duration",
            check(json!({"backup": {"maxAge": "26h", "restoreTestedWithin": "monthly"}})),
            "spec.check.backup.restoreTestedWithin",
        ),
        (
            "minReplicas zero",
            check(json!({"availability": {"minReplicas": 0}})),
            "spec.check.availability.minReplicas",
        ),
        (
            "encryption with nothing to check",
            check(json!({"encryption": {}})),
            "spec.check.encryption",
        ),
        (
            "atRest with nothing to check",
            check(json!({"encryption": {"atRest": {}}})),
            "spec.check.encryption.atRest",
        ),
        (
            "storageClasses without requirements",
            check(json!({"encryption": {"atRest": {"storageClasses": {}}}})),
            "spec.check.encryption.atRest.storageClasses",
        ),
        (
            "empty attestation",
            check(json!({"encryption": {"atRest": {"secrets": {"attestation": ""}}}})),
            "spec.check.encryption.atRest.secrets.attestation",
        ),
        (
            "unknown subject kind",
            check(json!({"rbac": {"allowedSubjects": [{"kind": "Robot", "name": "r2"}]}})),
            "spec.check.rbac.allowedSubjects[0].kind",
        ),
        (
            "egress not a boolean",
            check(json!({"networkPolicy": {"egress": "yes"}})),
            "spec.check.networkPolicy.egress",
        ),
        (
            "empty excluded namespace",
            with("scope", Some(json!({"excludedNamespaces": [""]}))),
            "spec.scope.excludedNamespaces[0]",
        ),
    ];
    assert!(cases.len() >= 20);
    let mut failures = Vec::new();
    for (i, (what, spec, must_contain)) in cases.iter().enumerate() {
        let name = format!("bad-{i}-{}", std::process::id());
        match api
            .create(&PostParams::default(), &object(&name, &test, spec.clone()))
            .await
        {
            Ok(_) => failures.push(format!("{what}: accepted")),
            Err(kube::Error::Api(status)) => {
                if status.code != 422 || !status.message.contains(must_contain) {
                    failures.push(format!(
                        "{what}: {} {:?} does not contain {must_contain:?}",
                        status.code, status.message
                    ));
                }
            }
            Err(e) => failures.push(format!("{what}: unexpected error {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // None of them was stored.
    let left = api.list(&Default::default()).await.unwrap();
    assert!(!left.items.iter().any(|o| {
        o.meta()
            .name
            .as_deref()
            .is_some_and(|n| n.starts_with("bad-"))
    }));
}

/// `kubectl explain` — the documentation most users read first — shows the
/// doc comments of the Rust types, served by the real API server's OpenAPI.
#[tokio::test]
async fn kubectl_explain_shows_the_field_docs() {
    let client = support::client().await;
    install_control_crd(&client).await;
    let kubectl = support::bin_dir().expect("kubectl").join("kubectl");
    let kubeconfig = support::control_plane().kubeconfig.clone();
    // The API server publishes a new CRD's OpenAPI a moment after Established.
    let text = support::eventually(
        "kubectl explain to know Control",
        Duration::from_secs(30),
        || {
            let (kubectl, kubeconfig) = (kubectl.clone(), kubeconfig.clone());
            async move {
                let out = tokio::process::Command::new(&kubectl)
                    .args(["explain", "controls.spec.check.backup"])
                    .env("KUBECONFIG", &kubeconfig)
                    .output()
                    .await
                    .ok()?;
                out.status
                    .success()
                    .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
            }
        },
    )
    .await;
    assert!(text.contains("GROUP:      soc2-operator.dev"), "{text}");
    assert!(
        text.contains("maxAge") && text.contains("Go duration"),
        "{text}"
    );
    assert!(
        text.contains("restoreTestedWithin") && text.contains("A1.3"),
        "{text}"
    );
    assert!(
        text.contains("velero.io/schedule-name"),
        "the rule is explained: {text}"
    );
}
