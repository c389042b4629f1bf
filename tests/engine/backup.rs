use soc2_operator::engine::Verdict;
use soc2_operator::snapshot::Snapshot;

use crate::util::*;

/// NOW is 2026-06-01T12:00:00Z.
fn schedule(name: &str, included: &str, excluded: &str, phase: &str, paused: bool) -> String {
    format!(
        "apiVersion: velero.io/v1\nkind: Schedule\nmetadata: {{name: {name}, namespace: velero}}\nspec:\n  schedule: \"0 1 * * *\"\n  paused: {paused}\n  template:\n    includedNamespaces: {included}\n    excludedNamespaces: {excluded}\n    storageLocation: default\nstatus:\n  phase: {phase}\n  lastBackup: \"2026-06-01T11:00:00Z\"\n"
    )
}

fn backup(name: &str, schedule: &str, phase: &str, completed: Option<&str>) -> String {
    let completed = completed.map_or(String::new(), |c| {
        format!("  completionTimestamp: \"{c}\"\n")
    });
    format!(
        "apiVersion: velero.io/v1\nkind: Backup\nmetadata:\n  name: {name}\n  namespace: velero\n  labels: {{velero.io/schedule-name: {schedule}}}\nspec: {{storageLocation: default}}\nstatus:\n  phase: {phase}\n{completed}"
    )
}

fn bsl(phase: &str) -> String {
    format!(
        "apiVersion: velero.io/v1\nkind: BackupStorageLocation\nmetadata: {{name: default, namespace: velero}}\nspec: {{provider: aws, objectStorage: {{bucket: b}}}}\nstatus: {{phase: {phase}}}\n"
    )
}

fn velero_crds(s: &mut Snapshot) {
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

fn snap(docs: &[String]) -> Snapshot {
    let mut s = Snapshot::default();
    velero_crds(&mut s);
    for n in ["app", "db", "scratch", "velero"] {
        s.insert_yaml(&ns(n), "default").unwrap();
    }
    for d in docs {
        s.insert_yaml(d, "default").unwrap();
    }
    s
}

const CHECK: &str = "backup: {maxAge: 26h}";

#[test]
fn velero_not_installed_is_a_clear_non_compliance() {
    let s = snapshot(&[&ns("app")]);
    let e = eval(&control(CHECK), &s);
    assert_eq!(e.verdict, Verdict::NonCompliant);
    assert_eq!(e.reason, "BackupProviderNotInstalled");
    assert!(
        e.message.contains("Velero is not installed"),
        "{}",
        e.message
    );
}

#[test]
fn backup_freshness_table() {
    let all = schedule("daily", "[\"*\"]", "[scratch]", "Enabled", false);
    // (case, documents, expected violations)
    let cases: Vec<(&str, Vec<String>, Vec<(&str, &str, &str)>)> = vec![
        (
            "fresh Completed backup; * covers all but the excluded namespace",
            vec![
                all.clone(),
                bsl("Available"),
                backup(
                    "daily-1",
                    "daily",
                    "Completed",
                    Some("2026-06-01T01:10:00Z"),
                ),
            ],
            vec![("NotCoveredBySchedule", "Namespace", "scratch")],
        ),
        (
            "newest is PartiallyFailed but an older Completed is fresh",
            vec![
                all.clone(),
                bsl("Available"),
                backup(
                    "daily-2",
                    "daily",
                    "PartiallyFailed",
                    Some("2026-06-01T01:10:00Z"),
                ),
                backup(
                    "daily-1",
                    "daily",
                    "Completed",
                    Some("2026-05-31T13:00:00Z"),
                ),
            ],
            vec![("NotCoveredBySchedule", "Namespace", "scratch")],
        ),
        (
            "only Failed and PartiallyFailed backups: no success, whatever lastBackup says",
            vec![
                all.clone(),
                bsl("Available"),
                backup(
                    "daily-2",
                    "daily",
                    "PartiallyFailed",
                    Some("2026-06-01T01:10:00Z"),
                ),
                backup("daily-1", "daily", "Failed", Some("2026-05-31T01:10:00Z")),
            ],
            vec![
                ("NoCompletedBackup", "Namespace", "app"),
                ("NoCompletedBackup", "Namespace", "db"),
                ("NotCoveredBySchedule", "Namespace", "scratch"),
                ("NoCompletedBackup", "Namespace", "velero"),
            ],
        ),
        (
            "stale Completed backup",
            vec![
                all.clone(),
                bsl("Available"),
                backup(
                    "daily-1",
                    "daily",
                    "Completed",
                    Some("2026-05-30T01:00:00Z"),
                ),
            ],
            vec![
                ("BackupNotFresh", "Namespace", "app"),
                ("BackupNotFresh", "Namespace", "db"),
                ("NotCoveredBySchedule", "Namespace", "scratch"),
                ("BackupNotFresh", "Namespace", "velero"),
            ],
        ),
        (
            "completionTimestamp in the future (clock skew) is not fresh",
            vec![
                all.clone(),
                bsl("Available"),
                backup(
                    "daily-1",
                    "daily",
                    "Completed",
                    Some("2026-06-01T13:00:00Z"),
                ),
            ],
            vec![
                ("BackupNotFresh", "Namespace", "app"),
                ("BackupNotFresh", "Namespace", "db"),
                ("NotCoveredBySchedule", "Namespace", "scratch"),
                ("BackupNotFresh", "Namespace", "velero"),
            ],
        ),
        (
            "storage location Unavailable",
            vec![
                all.clone(),
                bsl("Unavailable"),
                backup(
                    "daily-1",
                    "daily",
                    "Completed",
                    Some("2026-06-01T01:10:00Z"),
                ),
            ],
            vec![
                ("BackupLocationUnavailable", "Namespace", "app"),
                ("BackupLocationUnavailable", "Namespace", "db"),
                ("NotCoveredBySchedule", "Namespace", "scratch"),
                ("BackupLocationUnavailable", "Namespace", "velero"),
            ],
        ),
        (
            "paused schedule covers nothing",
            vec![
                schedule("daily", "[app]", "[]", "Enabled", true),
                bsl("Available"),
                backup(
                    "daily-1",
                    "daily",
                    "Completed",
                    Some("2026-06-01T01:10:00Z"),
                ),
            ],
            vec![
                ("NotCoveredBySchedule", "Namespace", "app"),
                ("NotCoveredBySchedule", "Namespace", "db"),
                ("NotCoveredBySchedule", "Namespace", "scratch"),
                ("NotCoveredBySchedule", "Namespace", "velero"),
            ],
        ),
        (
            "schedule not yet Enabled (FailedValidation)",
            vec![
                schedule(
                    "daily",
                    "[app, db, scratch, velero]",
                    "[]",
                    "FailedValidation",
                    false,
                ),
                bsl("Available"),
            ],
            vec![
                ("NotCoveredBySchedule", "Namespace", "app"),
                ("NotCoveredBySchedule", "Namespace", "db"),
                ("NotCoveredBySchedule", "Namespace", "scratch"),
                ("NotCoveredBySchedule", "Namespace", "velero"),
            ],
        ),
        (
            "empty includedNamespaces means all namespaces (Velero's default)",
            vec![
                schedule("daily", "[]", "[]", "Enabled", false),
                bsl("Available"),
                backup(
                    "daily-1",
                    "daily",
                    "Completed",
                    Some("2026-06-01T01:10:00Z"),
                ),
            ],
            vec![],
        ),
        (
            "a backup of another schedule does not count",
            vec![
                all.clone(),
                bsl("Available"),
                backup(
                    "weekly-1",
                    "weekly",
                    "Completed",
                    Some("2026-06-01T01:10:00Z"),
                ),
            ],
            vec![
                ("NoCompletedBackup", "Namespace", "app"),
                ("NoCompletedBackup", "Namespace", "db"),
                ("NotCoveredBySchedule", "Namespace", "scratch"),
                ("NoCompletedBackup", "Namespace", "velero"),
            ],
        ),
    ];
    for (name, docs, expected) in cases {
        let e = eval(&control(CHECK), &snap(&docs));
        assert_eq!(sorted(&e), expect(&expected), "case: {name}");
    }
}

#[test]
fn messages_explain_why_a_backup_is_not_fresh() {
    let docs = vec![
        schedule("daily", "[app]", "[]", "Enabled", false),
        bsl("Available"),
        backup(
            "daily-1",
            "daily",
            "Completed",
            Some("2026-06-01T13:00:00Z"),
        ),
    ];
    let c = control_with(
        CHECK,
        "scope:\n  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: app}}",
    );
    let e = eval(&c, &snap(&docs));
    assert_eq!(e.violations.len(), 1);
    let m = &e.violations[0].message;
    assert!(
        m.contains("in the future") && m.contains("clock skew"),
        "{m}"
    );

    let docs = vec![
        schedule("daily", "[app]", "[]", "Enabled", false),
        bsl("Available"),
        backup(
            "daily-1",
            "daily",
            "Completed",
            Some("2026-05-30T12:00:00Z"),
        ),
    ];
    let e = eval(&c, &snap(&docs));
    let m = &e.violations[0].message;
    assert!(
        m.contains("finished at 2026-05-30T12:00:00Z") && m.contains("older than maxAge 26h"),
        "{m}"
    );
}

#[test]
fn evidence_names_the_newest_successful_backup() {
    let docs = vec![
        schedule("daily", "[\"*\"]", "[]", "Enabled", false),
        bsl("Available"),
        backup(
            "daily-1",
            "daily",
            "Completed",
            Some("2026-06-01T01:10:00Z"),
        ),
    ];
    let e = eval(&control(CHECK), &snap(&docs));
    assert_eq!(e.verdict, Verdict::Compliant);
    assert_eq!(e.evidence.len(), 1);
    assert!(
        e.evidence[0]
            .message
            .contains("daily-1 Completed at 2026-06-01T01:10:00Z"),
        "{:?}",
        e.evidence
    );
}

fn restore(name: &str, phase: &str, completed: &str) -> String {
    format!(
        "apiVersion: velero.io/v1\nkind: Restore\nmetadata: {{name: {name}, namespace: velero}}\nspec: {{backupName: daily-1}}\nstatus: {{phase: {phase}, completionTimestamp: \"{completed}\"}}\n"
    )
}

#[test]
fn restore_testing_a1_3() {
    let base = vec![
        schedule("daily", "[\"*\"]", "[]", "Enabled", false),
        bsl("Available"),
        backup(
            "daily-1",
            "daily",
            "Completed",
            Some("2026-06-01T01:10:00Z"),
        ),
    ];
    let check = "backup: {maxAge: 26h, restoreTestedWithin: 720h}";
    let e = eval(&control(check), &snap(&base));
    assert_eq!(
        sorted(&e),
        expect(&[("NoRecentRestoreTest", "Control", "test")])
    );

    let mut docs = base.clone();
    docs.push(restore("drill-may", "Completed", "2026-05-15T10:00:00Z"));
    docs.push(restore("drill-failed", "Failed", "2026-05-31T10:00:00Z"));
    let e = eval(&control(check), &snap(&docs));
    assert_eq!(e.verdict, Verdict::Compliant, "{e:#?}");
    assert!(
        e.evidence
            .iter()
            .any(|ev| ev.source == "VeleroRestore" && ev.message.contains("drill-may"))
    );

    let mut docs = base;
    docs.push(restore("drill-old", "Completed", "2026-01-15T10:00:00Z"));
    let e = eval(&control(check), &snap(&docs));
    assert_eq!(
        sorted(&e),
        expect(&[("NoRecentRestoreTest", "Control", "test")])
    );
}

#[test]
fn volume_snapshots_are_required_per_pvc() {
    let mut s = snap(&[
        schedule("daily", "[\"*\"]", "[]", "Enabled", false),
        bsl("Available"),
        backup("daily-1", "daily", "Completed", Some("2026-06-01T01:10:00Z")),
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data, namespace: db}\nspec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n".into(),
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: logs, namespace: db}\nspec: {accessModes: [ReadWriteOnce], resources: {requests: {storage: 1Gi}}}\n".into(),
    ]);
    let check = "backup: {maxAge: 26h, volumeSnapshots: true}";
    let e = eval(&control(check), &s);
    assert_eq!(
        sorted(&e),
        expect(&[("VolumeSnapshotProviderNotInstalled", "Control", "test")])
    );

    s.insert_yaml(
        &fixture("real/external-snapshotter/crds/snapshot.storage.k8s.io_volumesnapshots.yaml"),
        "default",
    )
    .unwrap();
    s.insert_yaml("apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshot\nmetadata: {name: data-snap, namespace: db}\nspec: {source: {persistentVolumeClaimName: data}}\nstatus: {readyToUse: true, creationTime: \"2026-06-01T02:00:00Z\"}\n", "db").unwrap();
    s.insert_yaml("apiVersion: snapshot.storage.k8s.io/v1\nkind: VolumeSnapshot\nmetadata: {name: logs-snap, namespace: db}\nspec: {source: {persistentVolumeClaimName: logs}}\nstatus: {readyToUse: false, creationTime: \"2026-06-01T02:00:00Z\"}\n", "db").unwrap();
    let e = eval(&control(check), &s);
    assert_eq!(
        sorted(&e),
        expect(&[("NoRecentVolumeSnapshot", "PersistentVolumeClaim", "db/logs")])
    );
    assert!(
        e.violations[0]
            .message
            .contains("logs-snap is not readyToUse")
    );
}

#[test]
fn velero_examples_load() {
    // The real BackupStorageLocation example deserializes; without status it is
    // not yet validated, hence unavailable.
    let mut s = snap(&[
        schedule("daily", "[\"*\"]", "[]", "Enabled", false),
        backup(
            "daily-1",
            "daily",
            "Completed",
            Some("2026-06-01T01:10:00Z"),
        ),
    ]);
    s.insert_yaml(
        &fixture("real/velero/examples/backupstoragelocation.yaml"),
        "velero",
    )
    .unwrap();
    s.insert_yaml(
        &fixture("real/velero/examples/nginx-app-base.yaml"),
        "default",
    )
    .unwrap();
    assert_eq!(
        s.objects::<soc2_operator::resources::velero::BackupStorageLocation>()
            .len(),
        1
    );
    let e = eval(&control(CHECK), &s);
    assert!(
        e.violations
            .iter()
            .all(|v| v.reason == "BackupLocationUnavailable"),
        "{e:#?}"
    );
    assert!(
        e.violations.iter().any(|v| v.name == "nginx-example"),
        "the example's namespace is in scope"
    );
}
