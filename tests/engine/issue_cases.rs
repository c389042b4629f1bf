//! The eight cases of issue 12 ("Verdicts an auditor can rely on"), each with
//! its input, judged by the catalog Control the issue names.
use soc2_operator::api::{Control, Verification};
use soc2_operator::commands::check::{BUILTIN_CONTROLS, controls_from, snapshot_from};
use soc2_operator::engine::{Evaluation, Verdict};
use soc2_operator::snapshot::Snapshot;

use crate::util::*;

/// The catalog Control `name` (controls/<name>.yaml).
fn catalog(name: &str) -> Control {
    let (path, text) = BUILTIN_CONTROLS
        .iter()
        .find(|(p, _)| p.ends_with(&format!("{name}.yaml")))
        .unwrap_or_else(|| panic!("no catalog Control {name}"));
    let (mut controls, errors) = controls_from(&[((*path).to_owned(), (*text).to_owned())]);
    assert!(errors.is_empty(), "{errors:?}");
    controls.remove(0)
}

/// Offline input, as `check --manifests` reads it.
fn offline(docs: &[&str]) -> Snapshot {
    let inputs: Vec<(String, String)> = docs
        .iter()
        .enumerate()
        .map(|(i, d)| (format!("doc-{i}.yaml"), (*d).to_owned()))
        .collect();
    let (s, errors) = snapshot_from(&inputs, "default");
    assert!(errors.is_empty(), "{errors:?}");
    s
}

fn reasons(e: &Evaluation) -> Vec<&str> {
    e.violations.iter().map(|v| v.reason.as_str()).collect()
}

const APISERVER_WITH_FLAG: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver-cp1\n  namespace: kube-system\n  labels: {component: kube-apiserver, tier: control-plane}\nspec:\n  containers:\n  - name: kube-apiserver\n    image: registry.k8s.io/kube-apiserver:v1.36.3\n    command: [kube-apiserver, --encryption-provider-config=/etc/kubernetes/enc.yaml]\n";

fn encryption_configuration(resources: &str, providers: &str) -> String {
    format!(
        "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: {resources}\n  providers: {providers}\n"
    )
}

const IDENTITY_FIRST: &str = "[{identity: {}}, {aescbc: {keys: [{name: key1, secret: c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/Cg==}]}}]";
const AESCBC_FIRST: &str = "[{aescbc: {keys: [{name: key1, secret: c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/Cg==}]}}, {identity: {}}]";

/// Case 1: `[identity, aescbc]` with the flag set: the first provider writes, so
/// Secrets are plain text; the flag alone is Configured, never Verified, and
/// does not stop the metrics from being read. Wildcards as the API defines
/// them (`*.*` every resource, `*.` every core resource, `*.<group>`), the
/// first entry naming Secrets deciding. No key material reaches the output.
#[test]
fn case_1_identity_first_is_plain_text_and_the_flag_is_only_configured() {
    let control = catalog("secrets-encrypted-at-rest");
    let config = encryption_configuration("[secrets]", IDENTITY_FIRST);
    let e = eval(&control, &offline(&[APISERVER_WITH_FLAG, &config]));
    assert_eq!(e.verdict, Verdict::NonCompliant, "{e:#?}");
    assert_eq!(reasons(&e), ["SecretsNotEncrypted"]);
    assert!(
        e.evidence
            .iter()
            .all(|ev| ev.verification != Verification::Verified)
    );
    let text = format!("{e:?}");
    assert!(!text.contains("c2VjcmV0"), "key material in the evaluation");

    // The flag alone: Configured, below the Critical Control's Verified.
    let e = eval(&control, &offline(&[APISERVER_WITH_FLAG]));
    assert_eq!(
        (e.verdict, e.reason.as_str()),
        (Verdict::Unknown, "InsufficientEvidence")
    );
    // The flag and identity writes in the metrics: the metrics are read.
    let mut s = offline(&[APISERVER_WITH_FLAG]);
    s.set_apiserver_metrics_text("apiserver_storage_transformation_operations_total{resource=\"secrets\",status=\"OK\",transformation_type=\"to_storage\",transformer_prefix=\"\"} 3\n").unwrap();
    let e = eval(&control, &s);
    assert_eq!(reasons(&e), ["SecretsWrittenUnencrypted"]);

    // (resources, providers, Secrets encrypted)
    let cases = [
        ("[\"*.*\"]", AESCBC_FIRST, true),
        ("[\"*.\"]", AESCBC_FIRST, true),
        ("[\"*.apps\"]", AESCBC_FIRST, false),
        ("[configmaps]", AESCBC_FIRST, false),
        ("[\"*.*\"]", IDENTITY_FIRST, false),
    ];
    let high = control_with("encryption: {atRest: {secrets: {}}}", "");
    for (resources, providers, encrypted) in cases {
        let e = eval(
            &high,
            &offline(&[&encryption_configuration(resources, providers)]),
        );
        let expected = if encrypted {
            Verdict::Compliant
        } else {
            Verdict::NonCompliant
        };
        assert_eq!(e.verdict, expected, "{resources} {providers}: {e:#?}");
    }
    // An explicit secrets entry before `*.*` decides.
    let two = "apiVersion: apiserver.config.k8s.io/v1\nkind: EncryptionConfiguration\nresources:\n- resources: [secrets]\n  providers: [{identity: {}}]\n- resources: [\"*.*\"]\n  providers: [{aesgcm: {keys: [{name: k, secret: c2VjcmV0IGlzIHNlY3VyZSwgb3IgaXMgaXQ/Cg==}]}}]\n";
    assert_eq!(eval(&high, &offline(&[two])).verdict, Verdict::NonCompliant);
}

const VELERO: [&str; 5] = [
    "velero.io_schedules.yaml",
    "velero.io_backups.yaml",
    "velero.io_restores.yaml",
    "velero.io_backupstoragelocations.yaml",
    "velero.io_podvolumebackups.yaml",
];

fn velero_cluster(docs: &[&str]) -> Snapshot {
    let mut s = Snapshot::default();
    for f in VELERO {
        s.insert_yaml(&fixture(&format!("real/velero/crds/{f}")), "default")
            .unwrap();
    }
    let base = "apiVersion: v1\nkind: Namespace\nmetadata: {name: shop, creationTimestamp: \"2026-01-01T00:00:00Z\"}\n---\napiVersion: velero.io/v1\nkind: BackupStorageLocation\nmetadata: {name: default, namespace: velero}\nspec: {provider: aws, default: true, objectStorage: {bucket: b}}\nstatus: {phase: Available}\n---\napiVersion: velero.io/v1\nkind: Schedule\nmetadata: {name: daily, namespace: velero}\nspec:\n  schedule: \"0 1 * * *\"\n  template: {includedNamespaces: [shop], storageLocation: default}\nstatus: {phase: Enabled}\n";
    s.insert_yaml(base, "default").unwrap();
    for d in docs {
        s.insert_yaml(d, "default").unwrap();
    }
    s.add_implicit_namespaces();
    s
}

fn backup(status: &str) -> String {
    format!(
        "apiVersion: velero.io/v1\nkind: Backup\nmetadata:\n  name: daily-1\n  namespace: velero\n  labels: {{velero.io/schedule-name: daily}}\nspec: {{includedNamespaces: [shop], storageLocation: default}}\nstatus:\n  phase: Completed\n  startTimestamp: \"2026-06-01T01:00:00Z\"\n  completionTimestamp: \"2026-06-01T01:10:00Z\"\n{status}"
    )
}

/// Case 2: A Completed Backup that backed up nothing, or whose PodVolumeBackups
/// failed (Velero issue 6212), or with failed snapshots, hooks, item
/// operations or errors, is no backup of the namespace.
#[test]
fn case_2_a_completed_backup_must_have_backed_something_up() {
    let control = catalog("backups-fresh");
    let ok = backup("  progress: {totalItems: 40, itemsBackedUp: 40}\n");
    assert_eq!(
        eval(&control, &velero_cluster(&[&ok])).verdict,
        Verdict::Compliant
    );
    let failed_pvb = "apiVersion: velero.io/v1\nkind: PodVolumeBackup\nmetadata:\n  name: daily-1-x7k2q\n  namespace: velero\n  labels: {velero.io/backup-name: daily-1}\nspec: {node: n1, pod: {kind: Pod, namespace: shop, name: db-0}, volume: data, backupStorageLocation: default, repoIdentifier: r}\nstatus: {phase: Failed, message: \"data path restore failed\"}\n";
    let cases: [(&str, Vec<&str>); 7] = [
        (
            "nothing backed up",
            vec!["  progress: {totalItems: 0, itemsBackedUp: 0}\n"],
        ),
        (
            "PodVolumeBackup failed",
            vec![
                "  progress: {totalItems: 40, itemsBackedUp: 40}\n",
                failed_pvb,
            ],
        ),
        (
            "errors",
            vec!["  progress: {totalItems: 40, itemsBackedUp: 40}\n  errors: 2\n"],
        ),
        (
            "a volume snapshot not completed",
            vec![
                "  progress: {totalItems: 40, itemsBackedUp: 40}\n  volumeSnapshotsAttempted: 2\n  volumeSnapshotsCompleted: 1\n",
            ],
        ),
        (
            "a CSI snapshot not completed",
            vec![
                "  progress: {totalItems: 40, itemsBackedUp: 40}\n  csiVolumeSnapshotsAttempted: 1\n  csiVolumeSnapshotsCompleted: 0\n",
            ],
        ),
        (
            "an item operation failed",
            vec![
                "  progress: {totalItems: 40, itemsBackedUp: 40}\n  backupItemOperationsAttempted: 1\n  backupItemOperationsFailed: 1\n",
            ],
        ),
        (
            "a hook failed",
            vec![
                "  progress: {totalItems: 40, itemsBackedUp: 40}\n  hookStatus: {hooksAttempted: 1, hooksFailed: 1}\n",
            ],
        ),
    ];
    for (name, parts) in cases {
        let b = backup(parts[0]);
        let mut docs = vec![b.as_str()];
        docs.extend(&parts[1..]);
        let e = eval(&control, &velero_cluster(&docs));
        assert_eq!(e.verdict, Verdict::NonCompliant, "{name}: {e:#?}");
        assert_eq!(reasons(&e), ["BackupIncomplete"], "{name}");
        assert!(
            e.evidence.iter().all(|ev| ev.source != "VeleroBackup"),
            "{name}"
        );
    }
    // A namespace created after the backup started is not in it.
    let late = "apiVersion: v1\nkind: Namespace\nmetadata: {name: late, creationTimestamp: \"2026-06-01T06:00:00Z\"}\n";
    let wide = "apiVersion: velero.io/v1\nkind: Schedule\nmetadata: {name: daily, namespace: velero}\nspec:\n  schedule: \"0 1 * * *\"\n  template: {includedNamespaces: [\"*\"], storageLocation: default}\nstatus: {phase: Enabled}\n";
    let everything = ok.replace("includedNamespaces: [shop]", "includedNamespaces: [\"*\"]");
    let e = eval(&control, &velero_cluster(&[&everything, late, wide]));
    assert!(
        e.violations
            .iter()
            .any(|v| v.name == "late" && v.reason == "NamespaceNotYetBackedUp"),
        "{e:#?}"
    );
}

fn cluster_role(name: &str, rules: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {{name: {name}}}\nrules: {rules}\n"
    )
}

fn binding(name: &str, role: &str, subject: &str) -> String {
    format!(
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {{name: {name}}}\nroleRef: {{apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: {role}}}\nsubjects: [{subject}]\n"
    )
}

/// Case 3: `get nodes/proxy` in any group, and `create pods` cluster-wide, bound to
/// a ServiceAccount: privilege-escalation grants.
#[test]
fn case_3_nodes_proxy_and_pod_creation_are_escalation_grants() {
    let control = catalog("no-privilege-escalation-grants");
    let sa = "{kind: ServiceAccount, name: metrics, namespace: monitoring}";
    for (rules, reason) in [
        (
            r#"[{apiGroups: ["*"], resources: [nodes/proxy], verbs: [get]}]"#,
            "NodeProxyAccess",
        ),
        (
            r#"[{apiGroups: [""], resources: [pods], verbs: [create]}]"#,
            "WorkloadCreationClusterWide",
        ),
    ] {
        let s = snapshot(&[&cluster_role("r", rules), &binding("b", "r", sa)]);
        let e = eval(&control, &s);
        assert_eq!(reasons(&e), [reason], "{rules}");
    }
}

/// Case 4: Offline, a binding to the built-in `edit` ClusterRole (not in the
/// manifests, as in every real repository) grants what `edit` grants in
/// Kubernetes v1.36: reading Secrets.
#[test]
fn case_4_built_in_roles_are_known_offline() {
    let control = catalog("secrets-read-restricted");
    let s = offline(&[&binding(
        "developers-edit",
        "edit",
        "{kind: Group, name: developers, apiGroup: rbac.authorization.k8s.io}",
    )]);
    let e = eval(&control, &s);
    assert_eq!(reasons(&e), ["SecretsReadClusterWide"], "{e:#?}");
    // `view` does not read Secrets.
    let s = offline(&[&binding(
        "developers-view",
        "view",
        "{kind: Group, name: developers}",
    )]);
    assert_eq!(eval(&control, &s).verdict, Verdict::Compliant);
    // A role neither in the input nor built in cannot be judged offline.
    let s = offline(&[&binding(
        "mystery",
        "team-role",
        "{kind: Group, name: developers}",
    )]);
    let e = eval(&control, &s);
    assert_eq!(e.verdict, Verdict::Unknown, "{e:#?}");
    assert_eq!(e.reason, "RoleNotFound");
}

/// Case 5: An admin binding has nothing to do with anonymous access: each RBAC
/// Control of the catalog reports what its title says.
#[test]
fn case_5_each_rbac_control_means_its_title() {
    // Argo CD's application controller holds every verb on everything.
    let s = offline(&[
        &cluster_role(
            "argocd-application-controller",
            r#"[{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}, {nonResourceURLs: ["*"], verbs: ["*"]}]"#,
        ),
        &binding(
            "argocd-application-controller",
            "argocd-application-controller",
            "{kind: ServiceAccount, name: argocd-application-controller, namespace: argocd}",
        ),
    ]);
    assert_eq!(
        eval(&catalog("no-anonymous-access"), &s).verdict,
        Verdict::Compliant
    );
    assert_eq!(
        eval(&catalog("no-grants-to-all-authenticated"), &s).verdict,
        Verdict::Compliant
    );
    assert_eq!(
        reasons(&eval(&catalog("no-unexpected-cluster-admins"), &s)),
        ["AdminBoundToSubject"]
    );
    // Every verb on everything reads Secrets and creates pods, so the
    // Controls about those say so too, each under its own reason.
    assert_eq!(
        reasons(&eval(&catalog("secrets-read-restricted"), &s)),
        ["SecretsReadClusterWide"]
    );
    let escalation = eval(&catalog("no-privilege-escalation-grants"), &s);
    assert!(
        escalation
            .violations
            .iter()
            .all(|v| v.reason != "AdminBoundToSubject")
    );
    // Anonymous access is reported by its own Control only.
    let anonymous = offline(&[&binding(
        "anon-view",
        "view",
        "{kind: Group, name: \"system:unauthenticated\"}",
    )]);
    assert_eq!(
        reasons(&eval(&catalog("no-anonymous-access"), &anonymous)),
        ["AnonymousBinding"]
    );
    assert_eq!(
        eval(&catalog("no-unexpected-cluster-admins"), &anonymous).verdict,
        Verdict::Compliant
    );
}

/// Case 6: `spec.tls` covers `a.ex`; a rule without host (every Host header) or a
/// default backend serves plain HTTP.
#[test]
fn case_6_host_less_rules_and_default_backends_are_plain_http() {
    let control = catalog("tls-on-ingress-strict");
    let backend = "{service: {name: web, port: {number: 80}}}";
    let with_host_less_rule = format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: web, namespace: shop}}\nspec:\n  tls: [{{hosts: [a.ex], secretName: a}}]\n  rules:\n  - host: a.ex\n    http: {{paths: [{{path: /, pathType: Prefix, backend: {backend}}}]}}\n  - http: {{paths: [{{path: /, pathType: Prefix, backend: {backend}}}]}}\n"
    );
    let with_default_backend = format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: web, namespace: shop}}\nspec:\n  tls: [{{hosts: [a.ex], secretName: a}}]\n  defaultBackend: {backend}\n  rules:\n  - host: a.ex\n    http: {{paths: [{{path: /, pathType: Prefix, backend: {backend}}}]}}\n"
    );
    let e = eval(&control, &snapshot(&[&with_host_less_rule]));
    assert_eq!(reasons(&e), ["RuleWithoutHost"], "{e:#?}");
    let e = eval(&control, &snapshot(&[&with_default_backend]));
    assert_eq!(reasons(&e), ["DefaultBackendWithoutTLS"], "{e:#?}");
}

/// Case 7: A select-all policy allowing every address and every namespace undoes
/// default-deny as fully as an empty rule.
#[test]
fn case_7_allow_everything_by_addresses_and_namespaces_is_allow_all() {
    let control = catalog("network-default-deny-ingress");
    let deny = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny, namespace: shop}\nspec: {podSelector: {}, policyTypes: [Ingress]}\n";
    let allow = "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: allow-everyone, namespace: shop}\nspec:\n  podSelector: {}\n  policyTypes: [Ingress]\n  ingress:\n  - from:\n    - ipBlock: {cidr: 0.0.0.0/0}\n    - ipBlock: {cidr: \"::/0\"}\n    - namespaceSelector: {}\n";
    assert_eq!(
        eval(&control, &snapshot(&[deny])).verdict,
        Verdict::Compliant
    );
    let e = eval(&control, &snapshot(&[deny, allow]));
    assert_eq!(reasons(&e), ["AllowAllIngress"], "{e:#?}");
    // Without ::/0, IPv6 sources outside the cluster are still denied.
    let v4_only = allow.replace("    - ipBlock: {cidr: \"::/0\"}\n", "");
    assert_eq!(
        eval(&control, &snapshot(&[deny, &v4_only])).verdict,
        Verdict::Compliant
    );
}

/// Case 8: What cannot be seen is Unknown, not NonCompliant: Secret encryption on
/// a managed control plane, a PVC bound to a static PersistentVolume.
#[test]
fn case_8_what_cannot_be_seen_is_unknown() {
    let s = snapshot(&[&ns("shop")]);
    let e = eval(&catalog("secrets-encrypted-at-rest"), &s);
    assert_eq!(
        (e.verdict, e.reason.as_str()),
        (Verdict::Unknown, "NoEncryptionEvidence")
    );
    assert!(e.violations.is_empty());
    let status = e.to_status(&catalog("secrets-encrypted-at-rest"), None);
    let compliant = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Compliant")
        .unwrap();
    assert_eq!(
        (compliant.status.as_str(), compliant.reason.as_str()),
        ("Unknown", "NoEncryptionEvidence")
    );

    let static_pvc = "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: legacy, namespace: shop}\nspec:\n  storageClassName: \"\"\n  volumeName: nfs-01\n  accessModes: [ReadWriteMany]\n  resources: {requests: {storage: 10Gi}}\n";
    let e = eval(
        &catalog("volumes-encrypted-at-rest"),
        &snapshot(&[static_pvc]),
    );
    assert_eq!(
        (e.verdict, e.reason.as_str()),
        (Verdict::Unknown, "StaticVolume"),
        "{e:#?}"
    );
    assert_eq!(e.undetermined.len(), 1);
    assert!(
        e.undetermined[0].message.contains("nfs-01")
            || e.undetermined[0].message.contains("storageClassName")
    );
}
