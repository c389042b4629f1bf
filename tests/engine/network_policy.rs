use soc2_operator::engine::Verdict;

use crate::util::*;

const DENY_INGRESS: &str = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-in, namespace: app}\nspec: {podSelector: {}, policyTypes: [Ingress]}\n";

fn boutique() -> String {
    fixture("real/microservices-demo/kubernetes-manifests.yaml")
}

fn boutique_policies() -> String {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real/microservices-demo/network-policies");
    let mut out = String::new();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for f in files {
        out.push_str(&std::fs::read_to_string(f).unwrap());
        out.push_str("\n---\n");
    }
    out
}

#[test]
fn online_boutique_without_policies_fails_its_namespace() {
    let mut s = soc2_operator::snapshot::Snapshot::default();
    s.insert_yaml(&boutique(), "boutique").unwrap();
    s.add_implicit_namespaces();
    let e = eval(&control("networkPolicy: {egress: true}"), &s);
    assert_eq!(e.verdict, Verdict::NonCompliant);
    assert_eq!(
        sorted(&e),
        expect(&[
            ("MissingDefaultDenyEgress", "Namespace", "boutique"),
            ("MissingDefaultDenyIngress", "Namespace", "boutique"),
        ])
    );
}

#[test]
fn online_boutique_with_its_network_policies_passes_ingress_and_egress() {
    let mut s = soc2_operator::snapshot::Snapshot::default();
    s.insert_yaml(&boutique(), "boutique").unwrap();
    let added = s.insert_yaml(&boutique_policies(), "boutique").unwrap();
    assert_eq!(added, 13, "13 NetworkPolicies in the component");
    s.add_implicit_namespaces();
    let e = eval(&control("networkPolicy: {egress: true}"), &s);
    assert_eq!(found(&e), vec![], "{e:#?}");
    assert_eq!(e.verdict, Verdict::Compliant);
    // 1 namespace + 13 policies.
    assert_eq!(e.resources_checked, 14);
}

/// kube-prometheus ships one NetworkPolicy per component, each selecting only
/// that component's pods (prometheus, alertmanager, grafana, …) with specific
/// ingress rules and `egress: [{}]`. None selects every pod, so `monitoring` has
/// no default-deny in either direction, and the allow-all egress rules do not
/// count as undoing default-deny (they apply to their own pods only).
/// Expected: exactly MissingDefaultDenyIngress (+Egress when asked) on monitoring.
#[test]
fn kube_prometheus_monitoring_has_no_default_deny() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real/kube-prometheus");
    let mut s = soc2_operator::snapshot::Snapshot::default();
    let mut policies = 0;
    for f in std::fs::read_dir(dir).unwrap() {
        let p = f.unwrap().path();
        if p.to_string_lossy().ends_with("networkPolicy.yaml") {
            policies += s
                .insert_yaml(&std::fs::read_to_string(&p).unwrap(), "monitoring")
                .unwrap();
        }
    }
    assert!(
        policies >= 8,
        "kube-prometheus has a policy per component, found {policies}"
    );
    s.add_implicit_namespaces();
    let e = eval(&control("networkPolicy: {}"), &s);
    assert_eq!(
        sorted(&e),
        expect(&[("MissingDefaultDenyIngress", "Namespace", "monitoring")])
    );
    let e = eval(&control("networkPolicy: {egress: true}"), &s);
    assert_eq!(
        sorted(&e),
        expect(&[
            ("MissingDefaultDenyEgress", "Namespace", "monitoring"),
            ("MissingDefaultDenyIngress", "Namespace", "monitoring"),
        ])
    );
}

#[test]
fn table_of_policy_shapes() {
    // (name, policies in namespace `app`, egress?, expected violations)
    let cases: Vec<(&str, Vec<String>, bool, Vec<(&str, &str, &str)>)> = vec![
        ("explicit ingress deny passes ingress", vec![DENY_INGRESS.into()], false, vec![]),
        (
            "ingress-only deny fails egress",
            vec![DENY_INGRESS.into()],
            true,
            vec![("MissingDefaultDenyEgress", "Namespace", "app")],
        ),
        (
            "omitted policyTypes with no rules means Ingress only",
            vec!["apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: app}\nspec: {podSelector: {}}\n".into()],
            true,
            vec![("MissingDefaultDenyEgress", "Namespace", "app")],
        ),
        (
            "omitted policyTypes with egress rules affects Egress: allow-all egress undoes it",
            vec![
                DENY_INGRESS.into(),
                "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: open-egress, namespace: app}\nspec: {podSelector: {}, egress: [{}]}\n".into(),
                "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny-out, namespace: app}\nspec: {podSelector: {}, policyTypes: [Egress]}\n".into(),
            ],
            true,
            vec![
                // open-egress has no ingress rules and (omitted types) affects ingress: it is
                // itself a default-deny ingress policy, and it allows all egress.
                ("AllowAllEgress", "NetworkPolicy", "app/open-egress"),
            ],
        ),
        (
            "a policy selecting all pods with ingress [{}] undoes default-deny",
            vec![
                DENY_INGRESS.into(),
                "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: allow-all, namespace: app}\nspec: {podSelector: {}, policyTypes: [Ingress], ingress: [{}]}\n".into(),
            ],
            false,
            vec![("AllowAllIngress", "NetworkPolicy", "app/allow-all")],
        ),
        (
            "a rule with ports only is not allow-all",
            vec![
                DENY_INGRESS.into(),
                "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: https, namespace: app}\nspec: {podSelector: {}, policyTypes: [Ingress], ingress: [{ports: [{port: 443}]}]}\n".into(),
            ],
            false,
            vec![],
        ),
        (
            "a deny policy selecting some pods is not default-deny",
            vec!["apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: app}\nspec: {podSelector: {matchLabels: {app: web}}, policyTypes: [Ingress]}\n".into()],
            false,
            vec![("MissingDefaultDenyIngress", "Namespace", "app")],
        ),
        (
            "a policy with an empty selector but ingress rules is not default-deny",
            vec!["apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: app}\nspec: {podSelector: {}, ingress: [{from: [{podSelector: {}}]}]}\n".into()],
            false,
            vec![("MissingDefaultDenyIngress", "Namespace", "app")],
        ),
        (
            "a policy without spec is ignored, not a crash",
            vec!["apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: p, namespace: app}\n".into()],
            false,
            vec![("MissingDefaultDenyIngress", "Namespace", "app")],
        ),
    ];
    for (name, policies, egress, expected) in cases {
        let mut docs = vec![ns("app")];
        docs.extend(policies);
        let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
        let s = snapshot(&refs);
        let e = eval(
            &control(&format!("networkPolicy: {{egress: {egress}}}")),
            &s,
        );
        assert_eq!(sorted(&e), expect(&expected), "case: {name}");
    }
}

#[test]
fn system_namespaces_are_out_of_scope_unless_named_explicitly() {
    let s = snapshot(&[
        &ns("kube-system"),
        &ns("kube-public"),
        &ns("kube-node-lease"),
        &ns("team-a"),
    ]);
    let e = eval(&control("networkPolicy: {}"), &s);
    assert_eq!(
        sorted(&e),
        expect(&[("MissingDefaultDenyIngress", "Namespace", "team-a")])
    );

    let explicit = control_with(
        "networkPolicy: {}",
        "scope:\n  namespaceSelector:\n    matchExpressions:\n    - {key: kubernetes.io/metadata.name, operator: In, values: [kube-system, team-a]}",
    );
    let e = eval(&explicit, &s);
    assert_eq!(
        sorted(&e),
        expect(&[
            ("MissingDefaultDenyIngress", "Namespace", "kube-system"),
            ("MissingDefaultDenyIngress", "Namespace", "team-a"),
        ])
    );
}

#[test]
fn excluded_namespaces_and_label_selectors_narrow_the_scope() {
    let s = snapshot(&[
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod-a, labels: {env: prod}}\n",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: prod-b, labels: {env: prod}}\n",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: dev, labels: {env: dev}}\n",
    ]);
    let c = control_with(
        "networkPolicy: {}",
        "scope:\n  namespaceSelector: {matchLabels: {env: prod}}\n  excludedNamespaces: [prod-b]",
    );
    assert_eq!(
        sorted(&eval(&c, &s)),
        expect(&[("MissingDefaultDenyIngress", "Namespace", "prod-a")])
    );
}
