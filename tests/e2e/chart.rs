//! The Helm chart on real components: helm lint/template, a server-side dry
//! run of every rendered object (monitoring.coreos.com CRDs installed from the
//! pinned kube-prometheus copy), the values schema, and least privilege: the
//! operator running with the chart's own ServiceAccount and RBAC does its job
//! and is refused what it does not need.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::json;
use soc2_operator::api::Control;

use crate::admission::install_control_crd;
use crate::support::controls::{
    TestControls, apply_control, create_deny_ingress, is_compliant, scope_to, start_operator,
    wait_control,
};
use crate::support::{self, helm, kubectl, unique_name};

/// Where helm keeps its cache and configuration in these tests.
fn helm_home() -> PathBuf {
    std::env::temp_dir().join("soc2-helm")
}

fn run_helm(args: &[&str]) -> std::process::Output {
    helm::command(&helm_home())
        .expect("helm")
        .args(args)
        .output()
        .expect("run helm")
}

/// `helm template` with `--kube-version` of the test control plane.
fn template(namespace: &str, sets: &[&str]) -> String {
    helm::template(namespace, sets, &helm_home())
        .unwrap_or_else(|e| panic!("helm template {sets:?}: {e:#}"))
}

const ALL_ON: [&str; 4] = [
    "metrics.serviceMonitor.enabled=true",
    "metrics.prometheusRule.enabled=true",
    "controls.enabled=true",
    "dashboard.enabled=true",
];

#[test]
fn helm_lint_passes_strict() {
    let out = run_helm(&["lint", "--strict", helm::chart_dir().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_values_fail_with_a_message_naming_the_value() {
    for (set, names) in [
        ("replicaCount=0", "/replicaCount"),
        (
            "operator.resyncInterval=10minutes",
            "/operator/resyncInterval",
        ),
        ("operator.logFormat=xml", "/operator/logFormat"),
        ("metrics.port=80", "/metrics/port"),
        ("unknownKey=1", "unknownKey"),
        ("operator.debounce=0s", "/operator/debounce"),
        (
            "metrics.prometheusRule.nonCompliantFor=1.5h",
            "/metrics/prometheusRule/nonCompliantFor",
        ),
    ] {
        let out = run_helm(&[
            "template",
            "soc2",
            helm::chart_dir().to_str().unwrap(),
            "--kube-version",
            "1.36.3",
            "--set",
            set,
        ]);
        assert!(!out.status.success(), "{set} accepted");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(names), "{set}: {err}");
    }
}

#[test]
fn default_render_is_restricted_and_least_privilege() {
    let rendered = template("soc2-system", &[]);
    let docs: Vec<serde_json::Value> = serde_yaml::Deserializer::from_str(&rendered)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .filter(|v: &serde_json::Value| !v.is_null())
        .collect();
    let deploy = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("a Deployment");
    assert_eq!(deploy["spec"]["replicas"], 2);
    let pod = &deploy["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let c = &pod["containers"][0];
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["securityContext"]["capabilities"]["drop"], json!(["ALL"]));
    assert!(c["livenessProbe"].is_object() && c["readinessProbe"].is_object());
    assert!(pod["topologySpreadConstraints"].is_array());
    // No rule anywhere grants Secrets, writes to anything but controls/status,
    // Events and Leases, or wildcards.
    for d in docs
        .iter()
        .filter(|d| d["kind"] == "ClusterRole" || d["kind"] == "Role")
    {
        for r in d["rules"].as_array().unwrap() {
            let resources: Vec<&str> = r["resources"]
                .as_array()
                .map(|a| a.iter().map(|x| x.as_str().unwrap()).collect())
                .unwrap_or_default();
            let verbs: Vec<&str> = r["verbs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap())
                .collect();
            assert!(
                !resources.contains(&"secrets")
                    && !resources.contains(&"*")
                    && !verbs.contains(&"*"),
                "{r}"
            );
            let writes = verbs.iter().any(|v| !["get", "list", "watch"].contains(v));
            if writes {
                assert!(
                    resources
                        .iter()
                        .all(|x| ["controls/status", "events", "leases"].contains(x)),
                    "write verbs only on controls/status, events, leases: {r}"
                );
            }
        }
    }
    // Off by default: ServiceMonitor, PrometheusRule, Controls.
    for kind in ["ServiceMonitor", "PrometheusRule", "Control"] {
        assert!(
            !docs.iter().any(|d| d["kind"] == kind),
            "{kind} rendered by default"
        );
    }
    assert!(
        docs.iter().any(
            |d| d["kind"] == "ConfigMap" && d["metadata"]["labels"]["grafana_dashboard"] == "1"
        )
    );
}

#[tokio::test]
async fn every_rendered_object_passes_a_server_side_dry_run() {
    let client = support::client().await;
    install_control_crd(&client).await;
    let kc = support::control_plane().kubeconfig.clone();
    for crd in [
        "0servicemonitorCustomResourceDefinition.yaml",
        "0prometheusruleCustomResourceDefinition.yaml",
    ] {
        let path = support::repo_root()
            .join("tests/fixtures/real/kube-prometheus/crds")
            .join(crd);
        kubectl(
            &kc,
            &["apply", "--server-side", "-f", path.to_str().unwrap()],
        );
    }
    kubectl(
        &kc,
        &[
            "wait",
            "--for=condition=Established",
            "crd/servicemonitors.monitoring.coreos.com",
            "crd/prometheusrules.monitoring.coreos.com",
        ],
    );
    let ns = support::namespace(&client, "chart").await;
    for sets in [&[][..], &ALL_ON[..]] {
        let rendered = template(&ns.name, sets);
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &rendered).unwrap();
        let out = kubectl(
            &kc,
            &[
                "apply",
                "--dry-run=server",
                "-f",
                file.path().to_str().unwrap(),
            ],
        );
        assert!(
            out.contains("deployment.apps/soc2-soc2-operator created (server dry run)"),
            "{out}"
        );
        if !sets.is_empty() {
            for kind in [
                "servicemonitor.monitoring.coreos.com",
                "prometheusrule.monitoring.coreos.com",
                "control.soc2-operator.dev/network-default-deny",
            ] {
                assert!(out.contains(kind), "{kind} missing: {out}");
            }
        }
    }
}

/// The chart's ServiceAccount and RBAC, applied to the real API server: the
/// operator runs with that identity, evaluates and writes status and Events,
/// and everything it does not need is refused (403).
#[tokio::test]
async fn the_operator_works_with_the_charts_rbac_and_nothing_more() {
    let client = support::client().await;
    install_control_crd(&client).await;
    let kc = support::control_plane().kubeconfig.clone();
    let release_ns = support::namespace(&client, "soc2-system").await;
    let app = support::namespace(&client, "lp-app").await;
    let rendered = template(&release_ns.name, &[]);
    let rbac = helm::rbac_documents(&rendered);
    assert_eq!(rbac.len(), 7, "ServiceAccount + 3 roles + 3 bindings");
    // Cluster-scoped names from the render are shared by all tests: make them unique.
    let suffix = unique_name("lp");
    let sa = format!("{}-{suffix}", helm::SERVICE_ACCOUNT);
    let rbac = rbac.join("\n---\n").replace(
        &format!("name: {}", helm::SERVICE_ACCOUNT),
        &format!("name: {sa}"),
    );
    support::kubectl_apply(&kc, &rbac).expect("the chart's RBAC applied");
    let token = support::token_for(&client, &release_ns.name, &sa, Duration::from_secs(3600))
        .await
        .expect("a token for the chart's ServiceAccount");
    let kubeconfig = support::kubeconfig_with_token(&token);

    let test = TestControls::new("lp");
    let name = unique_name("lp-np");
    apply_control(
        &client,
        &name,
        &test,
        json!({
            "criteria": ["CC6.6"], "category": "Security", "severity": "High", "title": "lp",
            "scope": scope_to(&[&app.name]), "check": {"networkPolicy": {}}
        }),
    )
    .await;
    let _op = start_operator(
        kubeconfig.path(),
        &test,
        &[
            "--leader-election=true",
            "--lease-name",
            &sa,
            "--lease-namespace",
            &release_ns.name,
            "--lease-duration",
            "6s",
        ],
    );
    wait_control(
        &client,
        &name,
        "NonCompliant written with the chart's identity",
        Duration::from_secs(30),
        |c| is_compliant(c, "False"),
    )
    .await;
    create_deny_ingress(&client, &app.name, "deny").await;
    wait_control(
        &client,
        &name,
        "Compliant written with the chart's identity",
        Duration::from_secs(15),
        |c| is_compliant(c, "True"),
    )
    .await;

    // It may list and watch every kind a check reads in every namespace (as
    // its watches do), asked with SelfSubjectAccessReviews (no discovery
    // needed for absent CRDs).
    let sa_client = support::client_from(kubeconfig.path()).await.unwrap();
    let reviews: Api<k8s_openapi::api::authorization::v1::SelfSubjectAccessReview> =
        Api::all(sa_client.clone());
    for kind in soc2_operator::snapshot::Kind::ALL
        .into_iter()
        .filter(|k| k.watchable())
    {
        let ns = "";
        let resource = kind.resource();
        let (plural, group) = resource.split_once('.').unwrap_or((resource.as_str(), ""));
        for verb in ["list", "watch"] {
            let review = serde_json::from_value(json!({"spec": {"resourceAttributes": {
                "namespace": ns, "verb": verb, "group": group, "resource": plural
            }}}))
            .unwrap();
            let r = reviews
                .create(&PostParams::default(), &review)
                .await
                .unwrap();
            assert!(
                r.status.is_some_and(|s| s.allowed),
                "{verb} {resource} not allowed"
            );
        }
    }

    // What the operator does not need is refused.
    let forbidden = |r: Result<(), kube::Error>, what: &str| match r {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => panic!("{what}: expected 403, got {other:?}"),
    };
    let secrets: Api<Secret> = Api::namespaced(sa_client.clone(), &app.name);
    forbidden(
        secrets.list(&Default::default()).await.map(|_| ()),
        "list Secrets",
    );
    forbidden(secrets.get("any").await.map(|_| ()), "get a Secret");
    let controls: Api<Control> = Api::all(sa_client.clone());
    forbidden(
        controls
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"severity": "Low"}})),
            )
            .await
            .map(|_| ()),
        "change a Control's spec",
    );
    forbidden(
        controls
            .delete(&name, &DeleteParams::default())
            .await
            .map(|_| ()),
        "delete a Control",
    );
    let nps: Api<k8s_openapi::api::networking::v1::NetworkPolicy> =
        Api::namespaced(sa_client.clone(), &app.name);
    forbidden(
        nps.delete("deny", &DeleteParams::default())
            .await
            .map(|_| ()),
        "delete a NetworkPolicy",
    );
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(sa_client, &app.name);
    // Pods are read everywhere (bare pods are workloads), never changed.
    forbidden(
        pods.delete("any", &Default::default()).await.map(|_| ()),
        "delete a Pod",
    );
}

/// The chart's NetworkPolicies make the operator's namespace pass the
/// default-deny network-policy Control (ingress and egress) — evaluated by the
/// engine on the rendered manifests.
#[test]
fn the_operator_passes_its_own_network_policy_control() {
    let rendered = template("soc2-system", &[]);
    let mut snapshot = soc2_operator::snapshot::Snapshot::default();
    snapshot.insert_yaml(&rendered, "soc2-system").unwrap();
    snapshot.add_implicit_namespaces();
    let text =
        std::fs::read_to_string(support::repo_root().join("controls/network-default-deny.yaml"))
            .unwrap();
    let mut control: Control = serde_yaml::from_str(&text).unwrap();
    // The release namespace (the chart also renders Roles in default and kube-system).
    control.spec.scope = Some(
        serde_json::from_value(json!({
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "soc2-system"}}
        }))
        .unwrap(),
    );
    let e = soc2_operator::engine::evaluate(&control, &snapshot, jiff::Timestamp::now());
    assert!(e.is_compliant(), "{e:#?}");
    assert!(
        e.resources_checked >= 3,
        "namespace and policies were checked"
    );
}

/// The PrometheusRule carries the configured `nonCompliantFor` and its rules
/// pass `promtool check rules` as rendered.
#[test]
fn the_rendered_prometheus_rule_uses_the_values_and_is_valid() {
    let rendered = template(
        "soc2-system",
        &[
            "metrics.prometheusRule.enabled=true",
            "metrics.prometheusRule.nonCompliantFor=42m",
        ],
    );
    let rule: serde_json::Value = serde_yaml::Deserializer::from_str(&rendered)
        .map(|d| serde::Deserialize::deserialize(d).unwrap())
        .find(|v: &serde_json::Value| v["kind"] == "PrometheusRule")
        .expect("a PrometheusRule");
    let rules = &rule["spec"]["groups"][0]["rules"];
    let fors: Vec<&str> = rules
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["for"].as_str())
        .collect();
    assert_eq!(fors.iter().filter(|f| **f == "42m").count(), 4, "{fors:?}");
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_yaml::to_string(&rule["spec"]).unwrap()).unwrap();
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(file.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
