//! Cases found by an adversarial review: each once gave a wrong verdict, an
//! unbounded status, or a misleading message.
use soc2_operator::api::Verification;
use soc2_operator::engine::Verdict;
use soc2_operator::snapshot::Snapshot;
use soc2_operator::vocabulary::parse_duration;

use crate::util::*;

#[test]
fn go_durations_accepted_by_go_are_accepted() {
    for (s, secs) in [
        ("1.5h30m", 7200),
        ("30m1h", 5400),
        ("1h1h", 7200),
        (".5h", 1800),
        ("1.h", 3600),
    ] {
        assert_eq!(parse_duration("f", s).unwrap().as_secs(), secs, "{s}");
    }
    assert_eq!(
        parse_duration("f", "1500\u{3bc}s").unwrap().as_micros(),
        1500,
        "Greek mu"
    );
    assert_eq!(
        parse_duration("f", "1500\u{b5}s").unwrap().as_micros(),
        1500,
        "micro sign"
    );
    for bad in [
        "1µ",
        "µs",
        "1d",
        "1.5",
        ".h",
        "1hh",
        "99999999999999999999h",
    ] {
        assert!(parse_duration("f", bad).is_err(), "{bad}");
    }
}

fn velero(s: &mut Snapshot) {
    for f in [
        "velero.io_schedules.yaml",
        "velero.io_backups.yaml",
        "velero.io_restores.yaml",
        "velero.io_backupstoragelocations.yaml",
    ] {
        s.insert_yaml(&fixture(&format!("real/velero/crds/{f}")), "default")
            .unwrap();
    }
}

fn schedule(name: &str, included: &str, excluded: &str) -> String {
    format!(
        "apiVersion: velero.io/v1\nkind: Schedule\nmetadata: {{name: {name}, namespace: velero}}\nspec: {{template: {{includedNamespaces: {included}, excludedNamespaces: {excluded}}}}}\nstatus: {{phase: Enabled}}\n"
    )
}

fn backup(name: &str, schedule: &str, included: &str, location: Option<&str>) -> String {
    let loc = location.map_or(String::new(), |l| format!(", storageLocation: {l}"));
    format!(
        "apiVersion: velero.io/v1\nkind: Backup\nmetadata: {{name: {name}, namespace: velero, labels: {{velero.io/schedule-name: {schedule}}}}}\nspec: {{includedNamespaces: {included}{loc}}}\nstatus: {{phase: Completed, completionTimestamp: \"2026-06-01T06:00:00Z\"}}\n"
    )
}

const BSL: &str = "apiVersion: velero.io/v1\nkind: BackupStorageLocation\nmetadata: {name: default, namespace: velero}\nstatus: {phase: Available}\n";

fn backup_snapshot(docs: &[String], namespaces: &[&str]) -> Snapshot {
    let mut s = Snapshot::default();
    velero(&mut s);
    for n in namespaces {
        s.insert_yaml(&ns(n), "default").unwrap();
    }
    for d in docs {
        s.insert_yaml(d, "default").unwrap();
    }
    s
}

#[test]
fn velero_namespace_globs_are_honoured() {
    let docs = vec![
        schedule("prod", "[\"prod-*\"]", "[\"prod-tmp?\"]"),
        backup("prod-1", "prod", "[\"prod-*\"]", None),
        BSL.into(),
    ];
    let s = backup_snapshot(&docs, &["prod-a", "prod-tmp1", "dev-a"]);
    let c = control_with(
        "backup: {maxAge: 26h}",
        "scope: {excludedNamespaces: [velero]}",
    );
    assert_eq!(
        sorted(&eval(&c, &s)),
        expect(&[
            ("NotCoveredBySchedule", "Namespace", "dev-a"),
            ("NotCoveredBySchedule", "Namespace", "prod-tmp1"),
        ])
    );
}

#[test]
fn a_namespace_added_to_a_schedule_needs_a_backup_that_includes_it() {
    let docs = vec![
        schedule("daily", "[a, b]", "[]"),
        backup("daily-1", "daily", "[a]", None),
        BSL.into(),
    ];
    let s = backup_snapshot(&docs, &["a", "b"]);
    let c = control_with(
        "backup: {maxAge: 26h}",
        "scope: {excludedNamespaces: [velero]}",
    );
    let e = eval(&c, &s);
    assert_eq!(
        sorted(&e),
        expect(&[("NoCompletedBackup", "Namespace", "b")])
    );
    assert!(
        e.violations[0]
            .message
            .contains("does not include this namespace")
    );
}

#[test]
fn the_default_location_is_the_one_marked_default() {
    let docs = vec![
        schedule("daily", "[a]", "[]"),
        backup("daily-1", "daily", "[a]", None),
        "apiVersion: velero.io/v1\nkind: BackupStorageLocation\nmetadata: {name: primary, namespace: velero}\nspec: {default: true}\nstatus: {phase: Available}\n".into(),
    ];
    let s = backup_snapshot(&docs, &["a"]);
    let c = control_with(
        "backup: {maxAge: 26h}",
        "scope: {excludedNamespaces: [velero]}",
    );
    let e = eval(&c, &s);
    assert_eq!(e.verdict, Verdict::Compliant, "{e:#?}");
    assert!(e.evidence[0].message.contains("location primary Available"));
}

#[test]
fn a_restore_in_the_future_is_reported_as_such() {
    let mut docs = vec![
        schedule("daily", "[a]", "[]"),
        backup("daily-1", "daily", "[a]", None),
        BSL.into(),
    ];
    docs.push("apiVersion: velero.io/v1\nkind: Restore\nmetadata: {name: drill, namespace: velero}\nstatus: {phase: Completed, completionTimestamp: \"2027-01-01T00:00:00Z\"}\n".into());
    let s = backup_snapshot(&docs, &["a"]);
    let c = control_with(
        "backup: {maxAge: 26h, restoreTestedWithin: 720h}",
        "scope: {excludedNamespaces: [velero]}",
    );
    let e = eval(&c, &s);
    assert_eq!(e.violations.len(), 1);
    assert!(
        e.violations[0].message.contains("in the future"),
        "{}",
        e.violations[0].message
    );
}

#[test]
fn status_stays_small_with_thousands_of_schedules() {
    // 3,000 namespaces, each with its own healthy schedule; and 500 disabled
    // schedules covering everything.
    let mut docs = vec![BSL.to_owned()];
    let names: Vec<String> = (0..3000).map(|i| format!("ns-{i}")).collect();
    for n in &names {
        docs.push(schedule(&format!("s-{n}"), &format!("[{n}]"), "[]"));
        docs.push(backup(
            &format!("b-{n}"),
            &format!("s-{n}"),
            &format!("[{n}]"),
            None,
        ));
    }
    for i in 0..500 {
        docs.push(
            schedule(&format!("broken-{i}"), "[\"*\"]", "[]")
                .replace("phase: Enabled", "phase: FailedValidation"),
        );
    }
    let mut refs: Vec<&str> = names.iter().map(String::as_str).collect();
    refs.push("velero");
    let s = backup_snapshot(&docs, &refs);
    let c = control("backup: {maxAge: 26h}");
    let e = eval(&c, &s);
    // Only `velero` itself is uncovered; its message names 3 of the 500 broken schedules.
    assert_eq!(
        sorted(&e),
        expect(&[("NotCoveredBySchedule", "Namespace", "velero")])
    );
    assert!(
        e.violations[0].message.ends_with("and 497 more)"),
        "{}",
        e.violations[0].message
    );
    assert_eq!(e.evidence.len(), 21, "20 entries plus a count");
    let status = e.to_status(&c, None);
    let bytes = serde_json::to_vec(&status).unwrap().len();
    assert!(bytes < 64 * 1024, "status is {bytes} bytes");
}

fn crb(name: &str, role: &str, subject: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: \"{name}\"}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}\nsubjects: [{subject}]\n"
    )
}

const CLUSTER_ADMIN: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: cluster-admin}\nrules: [{apiGroups: [\"*\"], resources: [\"*\"], verbs: [\"*\"]}, {nonResourceURLs: [\"*\"], verbs: [\"*\"]}]\n";

/// The Secret-reading rule of the built-in `system:node` ClusterRole.
const SYSTEM_NODE: &str = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: \"system:node\"}\nrules: [{apiGroups: [\"\"], resources: [secrets], verbs: [get, list, watch]}]\n";

/// `allowSystemSubjects` allows the control-plane identities their built-in
/// `system:` roles and nothing else: a look-alike name is not one of them,
/// and a real one bound to cluster-admin is reported like anyone.
#[test]
fn system_prefixed_names_do_not_smuggle_service_accounts_into_the_allow_list() {
    let impostors = [
        "{kind: User, name: \"system:serviceaccount:default:attacker\"}",
        "{kind: Group, name: \"system:serviceaccounts\"}",
        "{kind: Group, name: \"system:serviceaccounts:default\"}",
        "{kind: User, name: \"system:totally-legit\"}",
    ];
    let components = [
        "{kind: User, name: \"system:kube-controller-manager\"}",
        "{kind: User, name: \"system:node:worker-1\"}",
        "{kind: Group, name: \"system:nodes\"}",
        "{kind: User, name: \"system:serviceaccount:kube-system:ccm\"}",
    ];
    for subject in impostors.iter().chain(&components) {
        let s = snapshot(&[CLUSTER_ADMIN, &crb("x", "cluster-admin", subject)]);
        let e = eval(&control("rbac: {}"), &s);
        assert_eq!(
            sorted(&e),
            expect(&[("AdminBoundToSubject", "ClusterRoleBinding", "x")]),
            "{subject}"
        );
    }
    let secrets = "rbac: {clusterAdmin: false, riskyGrants: [SecretsRead]}";
    for subject in impostors {
        let s = snapshot(&[SYSTEM_NODE, &crb("x", "\"system:node\"", subject)]);
        assert_eq!(
            sorted(&eval(&control(secrets), &s)),
            expect(&[("SecretsReadClusterWide", "ClusterRoleBinding", "x")]),
            "{subject}"
        );
    }
    for subject in components {
        let s = snapshot(&[SYSTEM_NODE, &crb("x", "\"system:node\"", subject)]);
        assert_eq!(
            eval(&control(secrets), &s).verdict,
            Verdict::Compliant,
            "{subject}"
        );
    }
}

#[test]
fn names_and_annotations_do_not_exempt_anonymous_bindings_or_wildcards() {
    let reader = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: secret-reader}\nrules: [{apiGroups: [\"\"], resources: [secrets], verbs: [get]}]\n";
    let annotated = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: annotated\n  annotations: {rbac.authorization.kubernetes.io/autoupdate: \"true\"}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: secret-reader}\nsubjects: [{kind: Group, name: \"system:unauthenticated\"}]\n";
    let public_role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: \"system:public-info-viewer\"}\nrules: [{nonResourceURLs: [/healthz, /version], verbs: [get]}]\n";
    let s = snapshot(&[
        reader,
        &crb(
            "system:my-innocent-name",
            "secret-reader",
            "{kind: Group, name: \"system:unauthenticated\"}",
        ),
        annotated,
        public_role,
        &crb(
            "system:public-info-viewer",
            "\"system:public-info-viewer\"",
            "{kind: Group, name: \"system:unauthenticated\"}",
        ),
    ]);
    assert_eq!(
        sorted(&eval(&control("rbac: {anonymousBindings: true}"), &s)),
        expect(&[
            ("AnonymousBinding", "ClusterRoleBinding", "annotated"),
            (
                "AnonymousBinding",
                "ClusterRoleBinding",
                "system:my-innocent-name"
            ),
        ])
    );
    let wild = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: sneaky\n  annotations: {rbac.authorization.kubernetes.io/autoupdate: \"true\"}\nrules: [{apiGroups: [\"*\"], resources: [\"*\"], verbs: [\"*\"]}]\n";
    let s = snapshot(&[wild]);
    assert_eq!(
        sorted(&eval(&control("rbac: {wildcardRules: true}"), &s)),
        expect(&[("WildcardRule", "ClusterRole", "sneaky")])
    );
}

#[test]
fn wildcard_verbs_grant_escalation() {
    let cases = [
        (
            "impersonation by *",
            "[{apiGroups: [\"\"], resources: [users, groups, serviceaccounts], verbs: [\"*\"]}]",
        ),
        (
            "bind/escalate by *",
            "[{apiGroups: [rbac.authorization.k8s.io], resources: [\"*\"], verbs: [\"*\"]}]",
        ),
        (
            "explicit escalate on clusterroles",
            "[{apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [escalate]}]",
        ),
    ];
    for (what, rules) in cases {
        let role = format!(
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: r}}\nrules: {rules}\n"
        );
        let s = snapshot(&[&role, &crb("b", "r", "{kind: User, name: eve}")]);
        assert_eq!(
            sorted(&eval(
                &control("rbac: {clusterAdmin: false, escalationVerbs: true}"),
                &s
            )),
            expect(&[("EscalationVerbs", "ClusterRoleBinding", "b")]),
            "{what}"
        );
    }
    // `bind` on pods is not an escalation verb use.
    let role = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\nrules: [{apiGroups: [\"\"], resources: [pods], verbs: [\"*\"]}]\n";
    let s = snapshot(&[role, &crb("b", "r", "{kind: User, name: eve}")]);
    assert_eq!(
        eval(&control("rbac: {escalationVerbs: true}"), &s).verdict,
        Verdict::Compliant
    );
}

fn apiserver(name: &str, flag: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: kube-system, labels: {{component: kube-apiserver}}}}\nspec: {{containers: [{{name: kube-apiserver, command: [kube-apiserver, \"{flag}\"]}}]}}\n"
    )
}

#[test]
fn every_api_server_replica_must_encrypt() {
    let check = "encryption: {atRest: {secrets: {}}}";
    let s = snapshot(&[
        &apiserver(
            "kube-apiserver-cp1",
            "--encryption-provider-config=/etc/enc.yaml",
        ),
        &apiserver("kube-apiserver-cp2", "--v=2"),
        &apiserver("kube-apiserver-cp3", "--encryption-provider-config="),
    ]);
    assert_eq!(
        sorted(&eval(&control(check), &s)),
        expect(&[
            (
                "SecretsNotEncrypted",
                "Pod",
                "kube-system/kube-apiserver-cp2"
            ),
            (
                "SecretsNotEncrypted",
                "Pod",
                "kube-system/kube-apiserver-cp3"
            ),
        ])
    );
    let s = snapshot(&[
        &apiserver(
            "kube-apiserver-cp1",
            "--encryption-provider-config=/etc/enc.yaml",
        ),
        &apiserver(
            "kube-apiserver-cp2",
            "--encryption-provider-config=/etc/enc.yaml",
        ),
    ]);
    let e = eval(&control(check), &s);
    assert_eq!(e.evidence[0].verification, Verification::Configured);
    assert!(e.evidence[0].message.contains("cp1") && e.evidence[0].message.contains("cp2"));
}

#[test]
fn failed_encrypting_writes_are_not_evidence() {
    let mut s = Snapshot::default();
    s.set_apiserver_metrics_text("apiserver_storage_transformation_operations_total{resource=\"secrets\",status=\"Unavailable\",transformation_type=\"to_storage\",transformer_prefix=\"k8s:enc:kms:v2:\"} 4\n").unwrap();
    let e = eval(&control("encryption: {atRest: {secrets: {}}}"), &s);
    // Nothing was written: neither evidence nor a violation.
    assert_eq!(e.verdict, Verdict::Unknown);
    assert_eq!(e.reason, "NoEncryptionEvidence");
}

#[test]
fn pvc_class_from_the_beta_annotation_and_the_newest_default() {
    let classes = "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: plain}\nprovisioner: p\n---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: a-old-default, creationTimestamp: \"2025-01-01T00:00:00Z\", annotations: {storageclass.kubernetes.io/is-default-class: \"true\"}}\nprovisioner: p\n---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: z-new-default, creationTimestamp: \"2026-01-01T00:00:00Z\", annotations: {storageclass.kubernetes.io/is-default-class: \"true\"}}\nprovisioner: p\nparameters: {encrypted: \"true\"}\n";
    let pvc = |name: &str, extra: &str| {
        format!(
            "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}, namespace: data{extra}}}\nspec: {{accessModes: [ReadWriteOnce], resources: {{requests: {{storage: 1Gi}}}}}}\n"
        )
    };
    let s = snapshot(&[
        classes,
        &pvc("uses-default", ""),
        &pvc(
            "beta-annotated",
            ", annotations: {volume.beta.kubernetes.io/storage-class: plain}",
        ),
    ]);
    let e = eval(
        &control(
            "encryption: {atRest: {storageClasses: {requiredParameters: {encrypted: \"true\"}}}}",
        ),
        &s,
    );
    assert_eq!(
        sorted(&e),
        expect(&[(
            "UnencryptedStorageClass",
            "PersistentVolumeClaim",
            "data/beta-annotated"
        )]),
        "{e:#?}"
    );
}

#[test]
fn cluster_scoped_manifests_with_a_namespace_are_still_cluster_scoped() {
    let s = snapshot(&[
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, namespace: helm-release}\n",
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: enc, namespace: helm-release}\nprovisioner: p\nparameters: {encrypted: \"true\"}\n",
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: d, namespace: a}\nspec: {storageClassName: enc}\n",
    ]);
    assert!(
        s.objects::<k8s_openapi::api::core::v1::Namespace>()
            .get("", "a")
            .is_some()
    );
    let e = eval(
        &control(
            "encryption: {atRest: {storageClasses: {requiredParameters: {encrypted: \"true\"}}}}",
        ),
        &s,
    );
    assert_eq!(e.verdict, Verdict::Compliant, "{e:#?}");
    let e = eval(&control("networkPolicy: {}"), &s);
    assert!(e.violations.iter().any(|v| v.name == "a"));
}

#[test]
fn a_redirect_route_from_a_namespace_the_listener_does_not_allow_does_not_count() {
    let mut s = Snapshot::default();
    s.insert_yaml(
        &fixture("real/gateway-api/crds/gateway.networking.k8s.io_gateways.yaml"),
        "default",
    )
    .unwrap();
    s.insert_yaml("apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: gw, namespace: a}\nspec: {listeners: [{name: http, protocol: HTTP, port: 80}]}\n", "a").unwrap();
    s.insert_yaml("apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r, namespace: b}\nspec: {parentRefs: [{name: gw, namespace: a}], rules: [{filters: [{type: RequestRedirect, requestRedirect: {scheme: https}}]}]}\n", "b").unwrap();
    s.add_implicit_namespaces();
    let e = eval(
        &control("encryption: {inTransit: {allowHttpRedirect: true}}"),
        &s,
    );
    assert_eq!(
        sorted(&e),
        expect(&[("PlaintextListener", "Gateway", "a/gw")])
    );
    assert!(
        e.violations[0]
            .message
            .contains("no HTTPRoute attached to it redirects"),
        "{}",
        e.violations[0].message
    );
}

#[test]
fn an_empty_scope_is_said_not_silently_compliant() {
    let s = snapshot(&[&ns("a")]);
    let c = control_with(
        "networkPolicy: {}",
        "scope: {namespaceSelector: {matchLabels: {team: nobody}}}",
    );
    let e = eval(&c, &s);
    assert_eq!(e.verdict, Verdict::Compliant);
    assert!(
        e.notes
            .iter()
            .any(|n| n.contains("no namespace is in scope"))
    );
}

/// Offline input: Velero objects and VolumeSnapshots alone do not invent a
/// Namespace to check (they live in Velero's or an existing namespace);
/// workloads do.
#[test]
fn only_workload_kinds_imply_their_namespace_offline() {
    let s = snapshot(&[
        "apiVersion: velero.io/v1\nkind: Schedule\nmetadata: {name: daily, namespace: velero}\nspec: {schedule: '@daily', template: {}}\n",
        "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshot\nmetadata: {name: s, namespace: snaps}\nspec: {source: {persistentVolumeClaimName: p}}\n",
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: d, namespace: app}\nspec: {podSelector: {}}\n",
    ]);
    let ns = s.objects::<k8s_openapi::api::core::v1::Namespace>();
    assert!(ns.get("", "app").is_some());
    assert!(ns.get("", "velero").is_none() && ns.get("", "snaps").is_none());
}
