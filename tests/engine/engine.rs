//! Engine-level behaviour: spec errors, modes, status shaping, ordering, and
//! no panic on odd cluster data.
use soc2_operator::api::conditions::{COMPLIANT, READY, find};
use soc2_operator::api::{Control, MAX_STATUS_VIOLATIONS};
use soc2_operator::checks::kinds_for;
use soc2_operator::engine::{Verdict, evaluate};
use soc2_operator::snapshot::{Kind, Snapshot};
use soc2_operator::vocabulary::parse_duration;

use crate::util::*;

#[test]
fn go_durations_parse_and_bad_ones_name_the_field() {
    assert_eq!(parse_duration("f", "26h").unwrap().as_secs(), 26 * 3600);
    assert_eq!(parse_duration("f", "90m").unwrap().as_secs(), 5400);
    assert_eq!(parse_duration("f", "1h30m").unwrap().as_secs(), 5400);
    assert_eq!(parse_duration("f", "1.5h").unwrap().as_secs(), 5400);
    for bad in ["", "3d", "26 hours", "P1D", "-1h", "h"] {
        let err = parse_duration("spec.check.backup.maxAge", bad).unwrap_err();
        assert_eq!(err.field, "spec.check.backup.maxAge", "{bad}");
    }
    let zero = parse_duration("f", "0s").unwrap_err();
    assert!(zero.message.contains("greater than zero"));
}

#[test]
fn engine_only_spec_errors_give_invalid_spec_naming_the_field() {
    let s = snapshot(&[&ns("app")]);
    let cases = [
        (control("backup: {maxAge: 0s}"), "spec.check.backup.maxAge"),
        (
            control("backup: {maxAge: 26h, restoreTestedWithin: 0h}"),
            "spec.check.backup.restoreTestedWithin",
        ),
        (
            control_with(
                "networkPolicy: {}",
                "scope:\n  namespaceSelector:\n    matchExpressions: [{key: team, operator: In, values: []}]",
            ),
            "spec.scope.namespaceSelector.matchExpressions[0]",
        ),
        (
            control_with(
                "networkPolicy: {}",
                "scope:\n  namespaceSelector:\n    matchExpressions: [{key: team, operator: Exists, values: [a]}]",
            ),
            "spec.scope.namespaceSelector.matchExpressions[0]",
        ),
        (control("networkPolicy: null"), "spec.check"),
        (
            control("availability: {minReplicas: 0}"),
            "spec.check.availability.minReplicas",
        ),
        (control("encryption: {}"), "spec.check.encryption"),
        (
            control("encryption: {atRest: {}}"),
            "spec.check.encryption.atRest",
        ),
        (
            control("encryption: {atRest: {storageClasses: {}}}"),
            "spec.check.encryption.atRest.storageClasses",
        ),
    ];
    for (c, field) in cases {
        let e = evaluate(&c, &s, now());
        assert_eq!(e.verdict, Verdict::InvalidSpec, "{field}");
        assert_eq!(e.invalid.as_ref().unwrap().field, field);
        let status = e.to_status(&c, None);
        let ready = find(&status.conditions, READY).unwrap();
        assert_eq!(
            (ready.status.as_str(), ready.reason.as_str()),
            ("False", "InvalidSpec")
        );
        assert!(ready.message.starts_with(field), "{}", ready.message);
        assert_eq!(
            find(&status.conditions, COMPLIANT).unwrap().status,
            "Unknown"
        );
    }
}

#[test]
fn enforce_mode_is_accepted_and_reported_as_not_supported() {
    let c = control_with("networkPolicy: {}", "mode: Enforce");
    let e = eval(&c, &snapshot(&[&ns("app")]));
    let status = e.to_status(&c, None);
    let ready = find(&status.conditions, READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("True", "EnforceNotSupported")
    );
    assert!(ready.message.contains("not implemented"));
    // It is still audited.
    assert_eq!(e.verdict, Verdict::NonCompliant);
}

#[test]
fn status_is_capped_at_100_violations_with_the_true_count() {
    let docs: Vec<String> = (0..250).map(|i| ns(&format!("ns-{i:03}"))).collect();
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let c = control("networkPolicy: {egress: true}");
    let e = eval(&c, &snapshot(&refs));
    assert_eq!(e.violations.len(), 500);
    let status = e.to_status(&c, None);
    assert_eq!(status.violations.len(), MAX_STATUS_VIOLATIONS);
    assert!(status.violations_truncated);
    assert_eq!(status.summary.as_ref().unwrap().violations, 500);
    assert_eq!(status.observed_generation, Some(1));
    // Sorted deterministically: namespace, kind, name, reason.
    assert_eq!(status.violations[0].name, "ns-000");
    assert_eq!(status.violations[0].reason, "MissingDefaultDenyEgress");
    assert_eq!(status.violations[1].reason, "MissingDefaultDenyIngress");
    let json = serde_json::to_string(&status).unwrap();
    assert!(
        json.len() < 64 * 1024,
        "status stays small: {} bytes",
        json.len()
    );
}

#[test]
fn findings_do_not_depend_on_input_order() {
    let a = snapshot(&[&ns("b"), &ns("a"), &ns("c")]);
    let b = snapshot(&[&ns("c"), &ns("a"), &ns("b")]);
    let c = control("networkPolicy: {}");
    assert_eq!(eval(&c, &a).violations, eval(&c, &b).violations);
}

#[test]
fn transition_time_is_kept_while_the_verdict_holds() {
    let c = control("networkPolicy: {}");
    let s = snapshot(&[&ns("app")]);
    let first = evaluate(&c, &s, "2026-06-01T00:00:00Z".parse().unwrap()).to_status(&c, None);
    let second =
        evaluate(&c, &s, "2026-06-01T01:00:00Z".parse().unwrap()).to_status(&c, Some(&first));
    let t = |st: &soc2_operator::api::ControlStatus| {
        find(&st.conditions, COMPLIANT)
            .unwrap()
            .last_transition_time
            .clone()
    };
    assert_eq!(t(&first), t(&second));
    let fixed = snapshot(&[
        &ns("app"),
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: d, namespace: app}\nspec: {podSelector: {}}\n",
    ]);
    let third =
        evaluate(&c, &fixed, "2026-06-01T02:00:00Z".parse().unwrap()).to_status(&c, Some(&second));
    assert_eq!(find(&third.conditions, COMPLIANT).unwrap().status, "True");
    assert_ne!(t(&third), t(&second));
}

#[test]
fn each_family_declares_the_kinds_it_reads() {
    let k = kinds_for(
        &control("backup: {maxAge: 26h, volumeSnapshots: true}")
            .spec
            .check,
    );
    for want in [
        Kind::Namespace,
        Kind::VeleroSchedule,
        Kind::VeleroBackup,
        Kind::VeleroBackupStorageLocation,
        Kind::VolumeSnapshot,
        Kind::PersistentVolumeClaim,
    ] {
        assert!(k.contains(&want), "{want:?}");
    }
    assert!(
        !k.contains(&Kind::VeleroRestore),
        "restores only with restoreTestedWithin"
    );
    let k = kinds_for(&control("networkPolicy: {}").spec.check);
    assert_eq!(
        k.into_iter().collect::<Vec<_>>(),
        vec![Kind::Namespace, Kind::NetworkPolicy]
    );
}

/// Objects with missing or odd fields must never panic any family.
#[test]
fn odd_cluster_data_never_panics() {
    let odd = [
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: a, namespace: x}\nspec: {podSelector: {matchExpressions: []}, policyTypes: []}\n",
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: a, namespace: x}\nspec: {tls: [{}], rules: [{}]}\n",
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {name: b, namespace: x}\n",
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: a, namespace: x}\n",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: loop-a, labels: {l: a}}\naggregationRule: {clusterRoleSelectors: [{matchLabels: {l: b}}, {matchExpressions: [{key: k, operator: Bogus}]}]}\n",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: loop-b, labels: {l: b}}\naggregationRule: {clusterRoleSelectors: [{matchLabels: {l: a}}]}\nrules: [{verbs: [\"*\"]}]\n",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: a}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: loop-a}\n",
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: a, namespace: x}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Weird, name: z}\nsubjects: [{kind: User, name: u}]\n",
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, namespace: x}\n",
        "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: a, namespace: x}\nspec: {replicas: -3, serviceName: s, selector: {}, template: {}}\n",
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: a, namespace: x}\nspec: {selector: {matchExpressions: [{key: k, operator: Bogus}]}}\n",
        "apiVersion: velero.io/v1\nkind: Schedule\nmetadata: {name: a, namespace: x}\nstatus: {phase: Enabled}\n",
        "apiVersion: velero.io/v1\nkind: Backup\nmetadata: {name: a, namespace: x, labels: {velero.io/schedule-name: a}}\nstatus: {phase: Completed, completionTimestamp: not-a-time}\n",
        "apiVersion: velero.io/v1\nkind: Restore\nmetadata: {name: a, namespace: x}\nstatus: {phase: Completed}\n",
        "apiVersion: velero.io/v1\nkind: BackupStorageLocation\nmetadata: {name: default, namespace: x}\n",
        "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshot\nmetadata: {name: a, namespace: x}\nstatus: {readyToUse: true, creationTime: yesterday}\n",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: Gateway\nmetadata: {name: a, namespace: x}\nspec: {listeners: [{}]}\n",
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: a, namespace: x}\nspec: {parentRefs: [{name: a}], rules: [{filters: [{type: RequestRedirect}]}]}\n",
        "apiVersion: v1\nkind: Pod\nmetadata: {name: kube-apiserver-x, namespace: kube-system}\n",
    ];
    let mut s = Snapshot::default();
    for d in odd {
        s.insert_yaml(d, "x").unwrap_or_else(|e| panic!("{e}: {d}"));
    }
    s.add_implicit_namespaces();
    let checks = [
        "networkPolicy: {egress: true}",
        "encryption: {inTransit: {allowHttpRedirect: true}, atRest: {storageClasses: {allowedProvisioners: [p]}, secrets: {}}}",
        "rbac: {secretsReadClusterWide: true, anonymousBindings: true, wildcardRules: true, escalationVerbs: true}",
        "backup: {maxAge: 26h, restoreTestedWithin: 720h, volumeSnapshots: true}",
        "availability: {}",
    ];
    for check in checks {
        let e = eval(&control(check), &s);
        assert_ne!(e.verdict, Verdict::InvalidSpec, "{check}: {e:#?}");
        assert!(
            !e.violations.is_empty(),
            "{check}: odd data yields findings, not silence"
        );
    }
    // The unparsable timestamp is named in the finding.
    let e = eval(&control("backup: {maxAge: 26h}"), &s);
    assert!(
        e.violations.iter().any(|v| v
            .message
            .contains("unparsable completionTimestamp \"not-a-time\"")),
        "{e:#?}"
    );
}

#[test]
fn a_control_manifest_round_trips_through_the_types() {
    let c: Control = control_with(
        "rbac: {escalationVerbs: true}",
        "description: d\nscope: {excludedNamespaces: [a]}",
    );
    let json = serde_json::to_value(&c).unwrap();
    let back: Control = serde_json::from_value(json).unwrap();
    assert_eq!(back.spec, c.spec);
}

/// Messages and evidence use absolute times, so re-evaluating an unchanged
/// cluster later gives the same status content (no status write).
#[test]
fn status_content_does_not_change_with_the_evaluation_time() {
    let docs = [
        fixture("real/velero/crds/velero.io_schedules.yaml"),
        fixture("real/velero/crds/velero.io_backups.yaml"),
        fixture("real/velero/crds/velero.io_restores.yaml"),
        fixture("real/velero/crds/velero.io_backupstoragelocations.yaml"),
        fixture("real/external-snapshotter/crds/snapshot.storage.k8s.io_volumesnapshots.yaml"),
        ns("app"),
        "apiVersion: velero.io/v1\nkind: Schedule\nmetadata: {name: d, namespace: velero}\nspec: {template: {includedNamespaces: [app]}}\nstatus: {phase: Enabled}\n".into(),
        "apiVersion: velero.io/v1\nkind: Backup\nmetadata: {name: d-1, namespace: velero, labels: {velero.io/schedule-name: d}}\nspec: {includedNamespaces: [app]}\nstatus: {phase: Completed, completionTimestamp: \"2026-05-01T00:00:00Z\"}\n".into(),
        "apiVersion: velero.io/v1\nkind: BackupStorageLocation\nmetadata: {name: default, namespace: velero}\nstatus: {phase: Available}\n".into(),
        "apiVersion: velero.io/v1\nkind: Restore\nmetadata: {name: r, namespace: velero}\nstatus: {phase: Completed, completionTimestamp: \"2026-05-31T00:00:00Z\"}\n".into(),
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: p, namespace: app}\n".into(),
        "apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshot\nmetadata: {name: s, namespace: app}\nspec: {source: {persistentVolumeClaimName: p}}\nstatus: {readyToUse: true, creationTime: \"2026-05-01T00:00:00Z\"}\n".into(),
    ];
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let s = snapshot(&refs);
    let c = control_with(
        "backup: {maxAge: 26h, restoreTestedWithin: 720h, volumeSnapshots: true}",
        "scope: {excludedNamespaces: [velero]}",
    );
    let first = evaluate(&c, &s, "2026-06-01T12:00:00Z".parse().unwrap());
    let later = evaluate(&c, &s, "2026-06-01T12:07:31.123456789Z".parse().unwrap());
    assert!(!first.violations.is_empty() && !first.evidence.is_empty());
    let a = first.to_status(&c, None);
    let b = later.to_status(&c, Some(&a));
    assert!(
        soc2_operator::engine::same_content(&a, &b),
        "{a:#?}\n{b:#?}"
    );
}
