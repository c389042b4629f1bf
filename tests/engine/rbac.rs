use soc2_operator::engine::Verdict;
use soc2_operator::snapshot::Snapshot;

use crate::util::*;

const CLUSTER_ADMIN: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: cluster-admin\n  annotations: {rbac.authorization.kubernetes.io/autoupdate: \"true\"}\nrules:\n- apiGroups: [\"*\"]\n  resources: [\"*\"]\n  verbs: [\"*\"]\n- nonResourceURLs: [\"*\"]\n  verbs: [\"*\"]\n";

/// The Secret-reading rule of the built-in `system:kube-controller-manager`.
const KCM_ROLE: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: \"system:kube-controller-manager\"}\nrules:\n- apiGroups: [\"\"]\n  resources: [secrets]\n  verbs: [get]\n";

fn crb(name: &str, role: &str, subjects: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: {name}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}\nsubjects: {subjects}\n"
    )
}

fn rb(ns: &str, name: &str, kind: &str, role: &str, subjects: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {{name: {name}, namespace: {ns}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: {kind}, name: {role}}}\nsubjects: {subjects}\n"
    )
}

#[test]
fn admin_binding_table() {
    let cases: Vec<(&str, Vec<String>, &str, Vec<(&str, &str, &str)>)> = vec![
        (
            "cluster-admin to a user",
            vec![crb("alice-admin", "cluster-admin", "[{kind: User, name: alice, apiGroup: rbac.authorization.k8s.io}]")],
            "rbac: {}",
            vec![("AdminBoundToSubject", "ClusterRoleBinding", "alice-admin")],
        ),
        (
            "cluster-admin to system:masters is allowed",
            vec![crb("cluster-admin", "cluster-admin", "[{kind: Group, name: \"system:masters\"}]")],
            "rbac: {}",
            vec![],
        ),
        (
            "a kube-system ServiceAccount bound to a built-in system: role is a system component",
            vec![crb("ccm", "system:controller:clusterrole-aggregation-controller", "[{kind: ServiceAccount, name: clusterrole-aggregation-controller, namespace: kube-system}]")],
            "rbac: {}",
            vec![],
        ),
        (
            "a kube-system ServiceAccount bound to cluster-admin is reported (Helm 2's Tiller)",
            vec![crb("tiller", "cluster-admin", "[{kind: ServiceAccount, name: tiller, namespace: kube-system}]")],
            "rbac: {}",
            vec![("AdminBoundToSubject", "ClusterRoleBinding", "tiller")],
        ),
        (
            "the controller manager reads Secrets through its built-in role",
            vec![KCM_ROLE.into(), crb("kcm", "system:kube-controller-manager", "[{kind: User, name: \"system:kube-controller-manager\"}]")],
            "rbac: {clusterAdmin: false, riskyGrants: [SecretsRead]}",
            vec![],
        ),
        (
            "system components are not allowed when allowSystemSubjects is false",
            vec![KCM_ROLE.into(), crb("kcm", "system:kube-controller-manager", "[{kind: User, name: \"system:kube-controller-manager\"}]")],
            "rbac: {allowSystemSubjects: false, clusterAdmin: false, riskyGrants: [SecretsRead]}",
            vec![("SecretsReadClusterWide", "ClusterRoleBinding", "kcm")],
        ),
        (
            "a system: user bound to a role of its own making is not a system component",
            vec![
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: kcm-extra}\nrules:\n- apiGroups: [\"\"]\n  resources: [secrets]\n  verbs: [list]\n".into(),
                crb("kcm-extra", "kcm-extra", "[{kind: User, name: \"system:kube-controller-manager\"}]"),
            ],
            "rbac: {clusterAdmin: false, riskyGrants: [SecretsRead]}",
            vec![("SecretsReadClusterWide", "ClusterRoleBinding", "kcm-extra")],
        ),
        (
            "system:anonymous is never allowed",
            vec![crb("oops", "cluster-admin", "[{kind: User, name: \"system:anonymous\"}]")],
            "rbac: {}",
            vec![("AdminBoundToSubject", "ClusterRoleBinding", "oops")],
        ),
        (
            "ServiceAccount outside kube-system",
            vec![crb("ci", "cluster-admin", "[{kind: ServiceAccount, name: deployer, namespace: ci}]")],
            "rbac: {}",
            vec![("AdminBoundToSubject", "ClusterRoleBinding", "ci")],
        ),
        (
            "ServiceAccount on the allow-list with namespace",
            vec![crb("ci", "cluster-admin", "[{kind: ServiceAccount, name: deployer, namespace: ci}]")],
            "rbac:\n  allowedSubjects:\n  - {kind: ServiceAccount, name: deployer, namespace: ci}",
            vec![],
        ),
        (
            "allow-list namespace must match",
            vec![crb("ci", "cluster-admin", "[{kind: ServiceAccount, name: deployer, namespace: other}]")],
            "rbac:\n  allowedSubjects:\n  - {kind: ServiceAccount, name: deployer, namespace: ci}",
            vec![("AdminBoundToSubject", "ClusterRoleBinding", "ci")],
        ),
        (
            "allow-list prefix match",
            vec![crb("ops", "cluster-admin", "[{kind: Group, name: ops-oncall}]")],
            "rbac:\n  allowedSubjects:\n  - {kind: Group, name: \"ops-*\"}",
            vec![],
        ),
        (
            "RoleBinding to the cluster-admin ClusterRole in a namespace",
            vec![rb("team", "team-admin", "ClusterRole", "cluster-admin", "[{kind: User, name: bob}]")],
            "rbac: {}",
            vec![("AdminBoundToSubject", "RoleBinding", "team/team-admin")],
        ),
        (
            "RoleBinding to a Role with * on *",
            vec![
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata: {name: god, namespace: team}\nrules:\n- apiGroups: [\"\"]\n  resources: [\"*\"]\n  verbs: [\"*\"]\n".into(),
                rb("team", "god-binding", "Role", "god", "[{kind: User, name: bob}]"),
            ],
            "rbac: {}",
            vec![("AdminBoundToSubject", "RoleBinding", "team/god-binding")],
        ),
        (
            "* on * in one non-core group is not admin",
            vec![
                "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: metrics-all}\nrules:\n- apiGroups: [metrics.k8s.io]\n  resources: [\"*\"]\n  verbs: [\"*\"]\n".into(),
                crb("m", "metrics-all", "[{kind: User, name: bob}]"),
            ],
            "rbac: {}",
            vec![],
        ),
        (
            "a binding to a role that does not exist grants nothing",
            vec![crb("dangling", "gone", "[{kind: User, name: bob}]")],
            "rbac: {}",
            vec![],
        ),
    ];
    for (name, docs, check, expected) in cases {
        let mut all = vec![CLUSTER_ADMIN.to_owned(), ns("team"), ns("ci")];
        all.extend(docs);
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let e = eval(&control(check), &snapshot(&refs));
        assert_eq!(sorted(&e), expect(&expected), "case: {name}");
    }
}

#[test]
fn aggregated_cluster_role_is_judged_by_its_aggregated_rules() {
    let docs = [
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: platform-admin}\naggregationRule:\n  clusterRoleSelectors:\n  - matchLabels: {example.com/aggregate-to-platform-admin: \"true\"}\nrules: []\n",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: everything\n  labels: {example.com/aggregate-to-platform-admin: \"true\"}\nrules:\n- apiGroups: [\"*\"]\n  resources: [\"*\"]\n  verbs: [\"*\"]\n",
        &crb(
            "platform",
            "platform-admin",
            "[{kind: Group, name: platform-team}]",
        ),
    ];
    let e = eval(&control("rbac: {}"), &snapshot(&docs));
    assert_eq!(
        sorted(&e),
        expect(&[("AdminBoundToSubject", "ClusterRoleBinding", "platform")])
    );
    // Without the labelled role the aggregate is empty: nothing to report.
    let e = eval(&control("rbac: {}"), &snapshot(&[docs[0], docs[2]]));
    assert_eq!(e.verdict, Verdict::Compliant);
}

#[test]
fn optional_checks_each_add_their_finding() {
    let docs = [
        CLUSTER_ADMIN,
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: secret-reader}\nrules:\n- apiGroups: [\"\"]\n  resources: [secrets]\n  verbs: [get, list]\n",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: impersonator}\nrules:\n- apiGroups: [\"\"]\n  resources: [users, groups]\n  verbs: [impersonate]\n",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: crd-wild}\nrules:\n- apiGroups: [example.com]\n  resources: [widgets]\n  verbs: [\"*\"]\n",
        &crb(
            "readers",
            "secret-reader",
            "[{kind: Group, name: auditors}]",
        ),
        &crb("imp", "impersonator", "[{kind: User, name: carol}]"),
        &crb(
            "public",
            "secret-reader",
            "[{kind: Group, name: \"system:unauthenticated\"}]",
        ),
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: system:public-info-viewer\n  annotations: {rbac.authorization.kubernetes.io/autoupdate: \"true\"}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: \"system:public-info-viewer\"}\nsubjects: [{kind: Group, name: \"system:unauthenticated\"}]\n",
    ];
    let s = snapshot(&docs);
    // Impersonating every group includes system:masters: cluster-admin in all
    // but name, reported by the default cluster-admin check.
    assert_eq!(
        sorted(&eval(&control("rbac: {}"), &s)),
        expect(&[("AdminBoundToSubject", "ClusterRoleBinding", "imp")])
    );
    // With every option off the check would check nothing.
    let e = eval(&control("rbac: {clusterAdmin: false}"), &s);
    assert_eq!(e.verdict, Verdict::InvalidSpec);
    assert!(
        e.message.contains("spec.check.rbac.clusterAdmin"),
        "{}",
        e.message
    );
    let cases = [
        (
            "rbac: {clusterAdmin: false, secretsReadClusterWide: true}",
            vec![
                ("SecretsReadClusterWide", "ClusterRoleBinding", "public"),
                ("SecretsReadClusterWide", "ClusterRoleBinding", "readers"),
            ],
        ),
        (
            "rbac: {clusterAdmin: false, riskyGrants: [SecretsRead]}",
            vec![
                ("SecretsReadClusterWide", "ClusterRoleBinding", "public"),
                ("SecretsReadClusterWide", "ClusterRoleBinding", "readers"),
            ],
        ),
        // The bootstrap binding system:public-info-viewer is exempt.
        (
            "rbac: {clusterAdmin: false, anonymousBindings: true}",
            vec![("AnonymousBinding", "ClusterRoleBinding", "public")],
        ),
        (
            "rbac: {clusterAdmin: false, allAuthenticatedBindings: true}",
            vec![],
        ),
        (
            "rbac: {clusterAdmin: false, escalationVerbs: true}",
            vec![("EscalationVerbs", "ClusterRoleBinding", "imp")],
        ),
        (
            "rbac: {clusterAdmin: false, riskyGrants: [Impersonate]}",
            vec![("ImpersonateVerb", "ClusterRoleBinding", "imp")],
        ),
        // cluster-admin is bootstrap policy and exempt; crd-wild is not.
        (
            "rbac: {clusterAdmin: false, wildcardRules: true}",
            vec![("WildcardRule", "ClusterRole", "crd-wild")],
        ),
    ];
    for (check, expected) in cases {
        assert_eq!(
            sorted(&eval(&control(check), &s)),
            expect(&expected),
            "check: {check}"
        );
    }
}

fn role(name: &str, rules: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: {name}}}\nrules: {rules}\n"
    )
}

/// Each privilege-escalation risk of the Kubernetes "Role Based Access
/// Control Good Practices" page, granted to a ServiceAccount by a
/// ClusterRoleBinding (and, for the cluster-wide risks, the same grant in one
/// namespace, which is not reported), each reported under its own reason.
#[test]
fn risky_grants_table() {
    let sa = "[{kind: ServiceAccount, name: agent, namespace: tools}]";
    // (risk, rules, reason; reported in a RoleBinding too)
    let cases = [
        // Issue case 3: nodes/proxy get reaches the kubelet API.
        (
            "NodeProxy",
            r#"[{apiGroups: ["*"], resources: [nodes/proxy], verbs: [get]}]"#,
            "NodeProxyAccess",
            false,
        ),
        (
            "WorkloadCreation",
            r#"[{apiGroups: [""], resources: [pods], verbs: [create]}]"#,
            "WorkloadCreationClusterWide",
            false,
        ),
        (
            "WorkloadCreation",
            r#"[{apiGroups: [apps], resources: [deployments], verbs: ["*"]}]"#,
            "WorkloadCreationClusterWide",
            false,
        ),
        (
            "WorkloadCreation",
            r#"[{apiGroups: [""], resources: [pods/exec], verbs: [create]}]"#,
            "WorkloadCreationClusterWide",
            false,
        ),
        (
            "WorkloadCreation",
            r#"[{apiGroups: [""], resources: [pods/ephemeralcontainers], verbs: [patch]}]"#,
            "WorkloadCreationClusterWide",
            false,
        ),
        (
            "SecretsRead",
            r#"[{apiGroups: [""], resources: [secrets], verbs: [list]}]"#,
            "SecretsReadClusterWide",
            false,
        ),
        (
            "PersistentVolumeCreation",
            r#"[{apiGroups: [""], resources: [persistentvolumes], verbs: [create]}]"#,
            "PersistentVolumeCreation",
            false,
        ),
        (
            "Escalate",
            r#"[{apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [escalate]}]"#,
            "EscalateVerb",
            true,
        ),
        (
            "Bind",
            r#"[{apiGroups: ["*"], resources: [roles], verbs: [bind]}]"#,
            "BindVerb",
            true,
        ),
        (
            "Impersonate",
            r#"[{apiGroups: [""], resources: [serviceaccounts], verbs: [impersonate]}]"#,
            "ImpersonateVerb",
            true,
        ),
        (
            "CertificateSigning",
            r#"[{apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests], verbs: [create]}, {apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests/approval], verbs: [update]}, {apiGroups: [certificates.k8s.io], resources: [signers], verbs: [approve]}]"#,
            "CertificateSigning",
            false,
        ),
        (
            "TokenRequest",
            r#"[{apiGroups: [""], resources: [serviceaccounts/token], verbs: [create]}]"#,
            "TokenRequestClusterWide",
            false,
        ),
        (
            "AdmissionWebhooks",
            r#"[{apiGroups: [admissionregistration.k8s.io], resources: [validatingwebhookconfigurations], verbs: [delete]}]"#,
            "AdmissionControl",
            false,
        ),
        (
            "NamespaceModification",
            r#"[{apiGroups: [""], resources: [namespaces], verbs: [patch]}]"#,
            "NamespaceModification",
            // A RoleBinding lets its subject patch that namespace itself.
            true,
        ),
    ];
    for (risk, rules, reason, namespaced_too) in cases {
        let check = format!("rbac: {{clusterAdmin: false, riskyGrants: [{risk}]}}");
        let docs = [role("risky", rules), crb("grant", "risky", sa), ns("tools")];
        let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
        let e = eval(&control(&check), &snapshot(&refs));
        assert_eq!(
            sorted(&e),
            expect(&[(reason, "ClusterRoleBinding", "grant")]),
            "{risk}: {rules}"
        );
        // The same rules granted in one namespace.
        let docs = [
            role("risky", rules),
            rb("tools", "grant", "ClusterRole", "risky", sa),
            ns("tools"),
        ];
        let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
        let e = eval(&control(&check), &snapshot(&refs));
        let expected: &[(&str, &str, &str)] = if namespaced_too {
            &[(reason, "RoleBinding", "tools/grant")]
        } else {
            &[]
        };
        assert_eq!(
            sorted(&e),
            expect(expected),
            "{risk} in a namespace: {rules}"
        );
        // Other risks do not report it.
        let e = eval(
            &control("rbac: {clusterAdmin: false, riskyGrants: [Bind]}"),
            &snapshot(&refs),
        );
        if risk != "Bind" {
            assert!(e.violations.is_empty(), "{risk} reported as Bind: {e:#?}");
        }
    }
    // What does not grant a risk: a CSR creator that cannot approve; reading
    // nodes (not nodes/proxy); Secrets limited by resourceNames.
    for (risk, rules) in [
        (
            "CertificateSigning",
            r#"[{apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests], verbs: [create]}]"#,
        ),
        (
            "NodeProxy",
            r#"[{apiGroups: [""], resources: [nodes, nodes/status], verbs: [get]}]"#,
        ),
        (
            "SecretsRead",
            r#"[{apiGroups: [""], resources: [secrets], resourceNames: [tls-cert], verbs: [get]}]"#,
        ),
    ] {
        let check = format!("rbac: {{clusterAdmin: false, riskyGrants: [{risk}]}}");
        let docs = [
            role("narrow", rules),
            crb("grant", "narrow", sa),
            ns("tools"),
        ];
        let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
        let e = eval(&control(&check), &snapshot(&refs));
        assert!(e.violations.is_empty(), "{risk}: {rules}: {e:#?}");
    }
}

fn kube_prometheus_rbac() -> Snapshot {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/real/kube-prometheus");
    let mut s = Snapshot::default();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    for p in files {
        let name = p.file_name().unwrap().to_string_lossy().to_string();
        if name.contains("clusterRole") || name.contains("roleBinding") || name.contains("role") {
            s.insert_yaml(&std::fs::read_to_string(&p).unwrap(), "monitoring")
                .unwrap();
        }
    }
    for n in ["default", "kube-system", "monitoring"] {
        s.insert_yaml(&ns(n), "default").unwrap();
    }
    s
}

/// Expectations for kube-prometheus' RBAC, written before running:
/// - Admin: no ClusterRole grants `*` verbs on `*` resources in `*` or the core
///   group (resource-metrics-server-resources does so only in metrics.k8s.io, and
///   nothing binds it): compliant.
/// - secretsReadClusterWide: kube-state-metrics (list/watch secrets) and
///   prometheus-operator (`*` on configmaps and secrets) are bound cluster-wide
///   to their ServiceAccounts in `monitoring`: two findings.
/// - wildcardRules: prometheus-operator (`*` verbs) and
///   resource-metrics-server-resources (`*` on `*`) are not system roles.
/// - escalationVerbs: no kube-prometheus role grants bind, escalate or impersonate.
#[test]
fn kube_prometheus_rbac_findings() {
    let s = kube_prometheus_rbac();
    assert!(
        s.objects::<k8s_openapi::api::rbac::v1::ClusterRole>().len() >= 6
            && s.objects::<k8s_openapi::api::rbac::v1::RoleBinding>().len() >= 3,
        "fixtures loaded, incl. RoleBindingList items"
    );
    assert_eq!(found(&eval(&control("rbac: {}"), &s)), vec![]);
    assert_eq!(
        sorted(&eval(&control("rbac: {secretsReadClusterWide: true}"), &s)),
        expect(&[
            (
                "SecretsReadClusterWide",
                "ClusterRoleBinding",
                "kube-state-metrics"
            ),
            (
                "SecretsReadClusterWide",
                "ClusterRoleBinding",
                "prometheus-operator"
            ),
        ])
    );
    assert_eq!(
        sorted(&eval(&control("rbac: {wildcardRules: true}"), &s)),
        expect(&[
            ("WildcardRule", "ClusterRole", "prometheus-operator"),
            (
                "WildcardRule",
                "ClusterRole",
                "resource-metrics-server-resources"
            ),
        ])
    );
    assert_eq!(
        found(&eval(&control("rbac: {escalationVerbs: true}"), &s)),
        vec![]
    );
}

/// Bindings to every authenticated identity and to unauthenticated requests
/// are separate options with their own reasons, so a Control about anonymous
/// access does not report the other (issue 12, case 5); the bootstrap
/// bindings that grant discovery to everyone are exempt while they are as
/// built in.
#[test]
fn anonymous_and_all_authenticated_bindings_are_separate_options() {
    let reader = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: secret-reader}\nrules: [{apiGroups: [\"\"], resources: [secrets], verbs: [get]}]\n";
    let basic_user = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: \"system:basic-user\"}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: \"system:basic-user\"}\nsubjects: [{apiGroup: rbac.authorization.k8s.io, kind: Group, name: \"system:authenticated\"}]\n";
    let s = snapshot(&[
        reader,
        basic_user,
        &crb(
            "everyone",
            "secret-reader",
            "[{kind: Group, name: \"system:authenticated\"}]",
        ),
        &crb(
            "all-sas",
            "secret-reader",
            "[{kind: Group, name: \"system:serviceaccounts\"}]",
        ),
        &crb(
            "anon",
            "secret-reader",
            "[{kind: User, name: \"system:anonymous\"}]",
        ),
    ]);
    assert_eq!(
        sorted(&eval(
            &control("rbac: {clusterAdmin: false, anonymousBindings: true}"),
            &s
        )),
        expect(&[("AnonymousBinding", "ClusterRoleBinding", "anon")])
    );
    assert_eq!(
        sorted(&eval(
            &control("rbac: {clusterAdmin: false, allAuthenticatedBindings: true}"),
            &s
        )),
        expect(&[
            ("AllAuthenticatedBinding", "ClusterRoleBinding", "all-sas"),
            ("AllAuthenticatedBinding", "ClusterRoleBinding", "everyone"),
        ])
    );
}
