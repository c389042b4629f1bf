//! Backups that actually succeed — TSC A1.2 (recovery infrastructure, data
//! backup) and A1.3 (recovery plan testing).
//!
//! Rule (Velero `velero.io/v1` API): every in-scope namespace is covered by a
//! Schedule that is enabled (`status.phase: Enabled`, `spec.paused` not true)
//! and includes it (`spec.template.includedNamespaces` lists it or a glob that
//! matches it — `*`, `prod-*`, `ns?`, `[a-c]*` — or is empty, Velero's "all
//! namespaces"; `excludedNamespaces` does not match it); the newest Backup of that
//! Schedule (label `velero.io/schedule-name`) with phase `Completed` also
//! includes the namespace, finished (`status.completionTimestamp`) within
//! `maxAge` and not in the future, and its BackupStorageLocation (by name, or the
//! one with `spec.default: true`) is `Available`. `Schedule.status.lastBackup`
//! is set when a backup is *created*, so it is never taken as evidence;
//! `PartiallyFailed` and `Failed` are not success. A Backup whose
//! `status.expiration` is not in the future is no evidence (Velero's garbage
//! collector deletes it then; reason `BackupExpired`).
//!
//! Whole namespaces: a Schedule's `spec.template` or a Backup's `spec` that
//! narrows what is taken within each included namespace — a non-empty
//! `labelSelector` or `orLabelSelectors` (only matching objects are backed
//! up), an `includedResources` or `includedNamespaceScopedResources` list
//! that is neither empty nor `*`, or any `excludedResources` or
//! `excludedNamespaceScopedResources` — backs up part of the namespace, which
//! is not shown to be backed up: a violation with reason `PartialBackup`
//! naming the field, as for a backup that wrote nothing (`BackupIncomplete`).
//! No resource type is deemed safe to leave out. Velero CRDs absent →
//! NonCompliant, reason `BackupProviderNotInstalled` (from offline manifests,
//! which need not hold Velero, Unknown: `BackupProviderNotInManifests`).
use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

use crate::api::{BackupCheck, Evidence, Verification};
use crate::resources::velero::{
    BACKUP_NAME_LABEL, Backup, BackupStorageLocation, BackupTemplate, PodVolumeBackup, Restore,
    SCHEDULE_NAME_LABEL, Schedule,
};
use crate::resources::volume_snapshot::VolumeSnapshot;
use crate::snapshot::{Kind, KindSet, labels_of, name_of, namespace_of};
use crate::vocabulary::{
    Context, EvidenceKind, Family, InvalidSpec, Locality, Outcome, human, list_some, member,
    parse_duration, parse_time, selects_everything, violation,
};

/// The storage location name a backup uses when neither it nor the default
/// location names one.
pub const DEFAULT_STORAGE_LOCATION: &str = "default";

/// Most `VeleroBackup` evidence entries kept (one per healthy Schedule); the
/// last entry says how many more there are.
pub const MAX_EVIDENCE: usize = 20;

/// The Velero kinds whose CRDs must exist.
const VELERO_KINDS: [Kind; 3] = [
    Kind::VeleroSchedule,
    Kind::VeleroBackup,
    Kind::VeleroBackupStorageLocation,
];

/// A fresh, complete Velero Backup of each namespace.
pub static VELERO_BACKUP: EvidenceKind = EvidenceKind {
    claim: "Every namespace in scope has a fresh successful backup",
    source: "VeleroBackup",
    verification: Verification::Verified,
    proves: "an enabled Schedule (spec.paused not true) includes the namespace (spec.template.includedNamespaces/excludedNamespaces, globs as Velero reads them); its newest complete Backup (label velero.io/schedule-name) includes it and finished (status.completionTimestamp) within maxAge, after the namespace was created, on a BackupStorageLocation with status.phase Available, and has not expired (status.expiration, when set, in the future). Both the Schedule's spec.template and the Backup's spec take whole namespaces: spec.labelSelector absent or empty (no matchLabels, no matchExpressions), orLabelSelectors absent, empty or holding an empty selector, includedResources and includedNamespaceScopedResources empty or *, no excludedResources or excludedNamespaceScopedResources. Complete means: status.phase Completed; status.progress.itemsBackedUp above 0 when Velero reports it; status.errors 0; status.volumeSnapshotsCompleted = volumeSnapshotsAttempted and csiVolumeSnapshotsCompleted = csiVolumeSnapshotsAttempted; status.backupItemOperationsFailed 0; status.hookStatus.hooksFailed 0; and no PodVolumeBackup labelled velero.io/backup-name with the backup's name in phase Failed or Canceled",
    does_not_prove: "that the backup can be restored (restoreTestedWithin checks that restores are tested), how many of the namespace's items it holds (objects labelled velero.io/exclude-from-backup are left out whatever the spec says), or that it holds volume data (spec.snapshotVolumes, spec.defaultVolumesToFsBackup, spec.resourcePolicy and spec.includeClusterResources are not read)",
};

/// A recent Completed Velero Restore.
pub static VELERO_RESTORE: EvidenceKind = EvidenceKind {
    claim: "Restores are tested",
    source: "VeleroRestore",
    verification: Verification::Verified,
    proves: "a Velero Restore reached status.phase Completed, restored items (status.progress.itemsRestored above 0 when Velero reports it), and finished (status.completionTimestamp) within restoreTestedWithin",
    does_not_prove: "which namespaces it restored, or that the restored workloads worked",
};

/// A recent ready VolumeSnapshot of each PVC.
pub static VOLUME_SNAPSHOT: EvidenceKind = EvidenceKind {
    claim: "Persistent volumes have recent snapshots",
    source: "VolumeSnapshot",
    verification: Verification::Verified,
    proves: "each PVC in scope has a VolumeSnapshot (spec.source.persistentVolumeClaimName) with status.readyToUse true, created (status.creationTime) within maxAge and after the PVC itself",
    does_not_prove: "that the snapshot can be restored, or that it is stored outside the volume's failure domain",
};

/// The `backup` check family.
pub struct Backups;

impl Family for Backups {
    member!(backup: BackupCheck = "backup");

    fn evidence_kinds(spec: &BackupCheck) -> Vec<&'static EvidenceKind> {
        let mut kinds = vec![&VELERO_BACKUP];
        if spec.restore_tested_within.is_some() {
            kinds.push(&VELERO_RESTORE);
        }
        if spec.volume_snapshots {
            kinds.push(&VOLUME_SNAPSHOT);
        }
        kinds
    }

    /// Kinds read: Velero Schedule, Backup, Restore, BackupStorageLocation;
    /// PVC and VolumeSnapshot with `volumeSnapshots`.
    fn kinds(spec: &BackupCheck) -> KindSet {
        let mut k = KindSet::from(VELERO_KINDS);
        k.insert(Kind::VeleroPodVolumeBackup);
        if spec.restore_tested_within.is_some() {
            k.insert(Kind::VeleroRestore);
        }
        if spec.volume_snapshots {
            k.extend([Kind::PersistentVolumeClaim, Kind::VolumeSnapshot]);
        }
        k
    }

    /// How far a change reaches: everything. A Schedule covers namespaces
    /// anywhere, and the evidence lists the schedules that back up in-scope
    /// namespaces, so even a Namespace change re-evaluates the whole Control.
    fn locality(_spec: &BackupCheck, _kind: Kind) -> Locality {
        Locality::Global
    }

    fn evaluate(spec: &BackupCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
        evaluate(spec, cx)
    }
}

/// The namespaces a backup template covers, per Velero's namespace filter:
/// names and globs (`*`, `?`, `[...]`), empty includes meaning all.
pub struct Coverage {
    all: bool,
    included: Vec<glob::Pattern>,
    excluded: Vec<glob::Pattern>,
}

fn patterns(list: Option<&Vec<String>>) -> Vec<glob::Pattern> {
    list.into_iter()
        .flatten()
        .map(|p| {
            glob::Pattern::new(p).unwrap_or_else(|_| {
                glob::Pattern::new(&glob::Pattern::escape(p)).expect("escaped pattern")
            })
        })
        .collect()
}

impl Coverage {
    /// Reads `includedNamespaces` / `excludedNamespaces` of a template.
    pub fn of(t: &BackupTemplate) -> Self {
        let included = patterns(t.included_namespaces.as_ref());
        Coverage {
            all: included.is_empty() || included.iter().any(|p| p.as_str() == "*"),
            included,
            excluded: patterns(t.excluded_namespaces.as_ref()),
        }
    }

    /// Whether `namespace` is backed up: included and not excluded.
    pub fn includes(&self, namespace: &str) -> bool {
        (self.all || self.included.iter().any(|p| p.matches(namespace)))
            && !self.excluded.iter().any(|p| p.matches(namespace))
    }
}

/// Whether a Schedule's template includes `namespace` (see [`Coverage`]).
pub fn includes(schedule: &Schedule, namespace: &str) -> bool {
    Coverage::of(&schedule.spec.template).includes(namespace)
}

/// Why a Schedule is not enabled, or `None` when it is.
pub fn not_enabled(schedule: &Schedule) -> Option<String> {
    if schedule.spec.paused == Some(true) {
        return Some("paused".into());
    }
    match schedule.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Enabled") => None,
        Some(p) => Some(format!("phase {p}")),
        None => Some("not yet validated by Velero (no status.phase)".into()),
    }
}

/// How old a completion time is at `now`; `Err` with the reason when it is
/// missing, unparsable or in the future.
pub fn age(completion: Option<&str>, now: Timestamp) -> Result<SignedDuration, String> {
    let Some(raw) = completion else {
        return Err("has no status.completionTimestamp".into());
    };
    let Some(t) = parse_time(raw) else {
        return Err(format!("has an unparsable completionTimestamp {raw:?}"));
    };
    let age = now.duration_since(t);
    if age.is_negative() {
        return Err(format!(
            "finished at {raw}, in the future of this operator's clock (clock skew between Velero and this operator?): not counted as fresh"
        ));
    }
    Ok(age)
}

/// A label selector in short form: `k=v, key In (a, b)`.
fn selector_text(s: &LabelSelector) -> String {
    let labels = s
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"));
    let exprs = s.match_expressions.iter().flatten().map(|e| {
        let values = e.values.as_deref().unwrap_or_default().join(", ");
        format!("{} {} ({values})", e.key, e.operator)
    });
    labels.chain(exprs).collect::<Vec<_>>().join(", ")
}

/// What a backup template leaves out of each namespace it includes: one
/// entry per narrowing field, named under `prefix` (`spec.` for a Backup,
/// `spec.template.` for a Schedule); empty when it takes whole namespaces.
/// Narrowing: a `labelSelector` that selects (Velero backs up only matching
/// objects), `orLabelSelectors` none of which is empty, `includedResources`
/// or `includedNamespaceScopedResources` neither empty nor holding `*`, any
/// `excludedResources` or `excludedNamespaceScopedResources`. No resource
/// type is deemed safe to leave out. Cluster-scoped filters
/// (`includeClusterResources`, `…ClusterScopedResources`) are not read.
pub fn narrowed(t: &BackupTemplate, prefix: &str) -> Vec<String> {
    let mut why = Vec::new();
    if let Some(s) = t.label_selector.as_ref().filter(|s| !selects_everything(s)) {
        why.push(format!("{prefix}labelSelector {{{}}}", selector_text(s)));
    }
    let or = t.or_label_selectors.as_deref().unwrap_or_default();
    if !or.is_empty() && !or.iter().any(selects_everything) {
        let each: Vec<String> = or
            .iter()
            .map(|s| format!("{{{}}}", selector_text(s)))
            .collect();
        why.push(format!(
            "{prefix}orLabelSelectors [{}]",
            list_some(&each, 3)
        ));
    }
    let lists = [
        ("includedResources", &t.included_resources, true),
        (
            "includedNamespaceScopedResources",
            &t.included_namespace_scoped_resources,
            true,
        ),
        ("excludedResources", &t.excluded_resources, false),
        (
            "excludedNamespaceScopedResources",
            &t.excluded_namespace_scoped_resources,
            false,
        ),
    ];
    for (field, list, include) in lists {
        let list = list.as_deref().unwrap_or_default();
        // An include list holding `*` takes every type; any exclusion narrows.
        let all = include && list.iter().any(|r| r == "*");
        if !list.is_empty() && !all {
            why.push(format!("{prefix}{field} [{}]", list_some(list, 5)));
        }
    }
    why
}

/// Why backup `b` is gone at `now`, if it is: its `status.expiration` is
/// not in the future (Velero's garbage collector deletes it then), or is
/// unparsable.
pub fn expired(b: &Backup, now: Timestamp) -> Option<String> {
    let raw = b.status.as_ref()?.expiration.as_deref()?;
    match parse_time(raw) {
        Some(t) if t > now => None,
        Some(_) => Some(format!(
            "expired at {raw} (status.expiration): Velero's garbage collector deletes a backup and its data then"
        )),
        None => Some(format!(
            "has an unparsable status.expiration {raw:?}: whether it still exists cannot be told"
        )),
    }
}

/// One Schedule, judged once per evaluation.
struct ScheduleView<'a> {
    schedule: &'a Schedule,
    coverage: Coverage,
    disabled: Option<String>,
    /// The fields of `spec.template` that narrow what each backup takes
    /// within a namespace (see [`narrowed`]), joined; `None` when none do.
    partial: Option<String>,
    /// The newest usable Completed backup (see [`unusable`]) and its
    /// coverage, or the reason and message why there is none.
    newest: Result<(&'a Backup, Coverage), (&'static str, String)>,
    /// Freshness and location of `newest`: evidence, or why it does not count.
    verdict: Result<Evidence, (&'static str, String)>,
}

fn phase(b: &Backup) -> String {
    b.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "New".into())
}

/// Why a Completed Backup is not evidence of a backup, if it is not: it
/// wrote no items (`status.progress.itemsBackedUp`), reports errors, or some
/// of its volume snapshots, CSI snapshots, asynchronous item operations
/// (e.g. snapshot data movement), hooks or PodVolumeBackups did not complete
/// (Velero `pkg/apis/velero/v1/backup_types.go`; a file-system backup can
/// fail while its Backup completes, Velero issue 6212).
pub fn incomplete(b: &Backup, failed_volumes: &[&str]) -> Option<String> {
    let st = b.status.clone().unwrap_or_default();
    let n = |v: Option<i64>| v.unwrap_or(0);
    let mut why = Vec::new();
    if let Some(items @ ..=0) = items_backed_up(b) {
        why.push(format!(
            "wrote no items (status.progress.itemsBackedUp {items})"
        ));
    }
    if n(st.errors) > 0 {
        why.push(format!("reports {} errors", n(st.errors)));
    }
    for (what, attempted, completed) in [
        (
            "volume snapshots",
            st.volume_snapshots_attempted,
            st.volume_snapshots_completed,
        ),
        (
            "CSI volume snapshots",
            st.csi_volume_snapshots_attempted,
            st.csi_volume_snapshots_completed,
        ),
    ] {
        if n(completed) < n(attempted) {
            why.push(format!(
                "completed {} of {} {what}",
                n(completed),
                n(attempted)
            ));
        }
    }
    if n(st.backup_item_operations_failed) > 0 {
        why.push(format!(
            "{} backup item operations failed (e.g. snapshot data movement)",
            n(st.backup_item_operations_failed)
        ));
    }
    let hooks_failed = st.hook_status.and_then(|h| h.hooks_failed);
    if n(hooks_failed) > 0 {
        why.push(format!("{} backup hooks failed", n(hooks_failed)));
    }
    if !failed_volumes.is_empty() {
        let names: Vec<String> = failed_volumes.iter().map(|v| (*v).to_owned()).collect();
        why.push(format!("PodVolumeBackups failed: {}", list_some(&names, 3)));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// `status.progress.itemsBackedUp`, `None` when Velero did not report it
/// (Velero writes it for every backup it runs; an absent count leaves the
/// phase `Completed` as the only word, and the evidence says so).
fn items_backed_up(b: &Backup) -> Option<i64> {
    b.status
        .as_ref()
        .and_then(|s| s.progress.as_ref())
        .and_then(|p| p.items_backed_up)
}

/// The PodVolumeBackups that failed or were canceled, by (namespace, backup).
fn failed_pod_volume_backups<'a>(cx: &Context<'a>) -> HashMap<(&'a str, &'a str), Vec<&'a str>> {
    let mut failed: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
    if !cx.is_installed(Kind::VeleroPodVolumeBackup) {
        return failed;
    }
    for p in cx.objects::<PodVolumeBackup>().iter() {
        let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
        if !matches!(phase, Some("Failed" | "Canceled")) {
            continue;
        }
        if let Some(b) = labels_of(p.as_ref()).get(BACKUP_NAME_LABEL) {
            failed
                .entry((namespace_of(p.as_ref()), b.as_str()))
                .or_default()
                .push(name_of(p.as_ref()));
        }
    }
    failed
}

/// Why a Completed Backup is no evidence of its namespaces' backup at
/// `now`, if it is not, as a reason and an explanation: `BackupExpired`
/// (see [`expired`]), `BackupIncomplete` (see [`incomplete`]) or
/// `PartialBackup` (its `spec` narrows what it takes, see [`narrowed`]).
fn unusable(b: &Backup, failed: &[&str], now: Timestamp) -> Option<(&'static str, String)> {
    if let Some(why) = expired(b, now) {
        return Some(("BackupExpired", why));
    }
    if let Some(why) = incomplete(b, failed) {
        return Some(("BackupIncomplete", why));
    }
    let fields = narrowed(&b.spec.template, "spec.");
    (!fields.is_empty()).then(|| {
        (
            "PartialBackup",
            format!(
                "takes only part of each namespace it includes ({}): a backup of part of the namespace",
                fields.join("; ")
            ),
        )
    })
}

/// The newest usable Completed backup of a schedule (see [`unusable`]), or
/// the reason and message why there is none (the newest unusable one's).
fn newest_complete<'a>(
    schedule: &Schedule,
    backups: &[&'a Backup],
    failed_volumes: &HashMap<(&str, &str), Vec<&str>>,
    now: Timestamp,
) -> Result<&'a Backup, (&'static str, String)> {
    let (sched_ns, sched_name) = (namespace_of(schedule), name_of(schedule));
    let mut first_unusable: Option<(&'static str, String)> = None;
    for b in backups.iter().filter(|b| phase(b) == "Completed") {
        let failed = failed_volumes
            .get(&(namespace_of(*b), name_of(*b)))
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        match unusable(b, failed, now) {
            None => return Ok(b),
            Some((reason, why)) => {
                first_unusable.get_or_insert((reason, format!("{} {why}", name_of(*b))));
            }
        }
    }
    if let Some((reason, why)) = first_unusable {
        let what = match reason {
            "BackupExpired" => "unexpired backup",
            "PartialBackup" => "backup of whole namespaces",
            _ => "complete backup",
        };
        return Err((
            reason,
            format!(
                "schedule {sched_ns}/{sched_name} has no {what}: its newest Completed backup {why}"
            ),
        ));
    }
    let seen: Vec<String> = backups
        .iter()
        .take(3)
        .map(|b| format!("{} {}", name_of(*b), phase(b)))
        .collect();
    Err((
        "NoCompletedBackup",
        if seen.is_empty() {
            format!("schedule {sched_ns}/{sched_name} has produced no backup")
        } else {
            format!(
                "schedule {sched_ns}/{sched_name} has no Completed backup (newest: {})",
                seen.join(", ")
            )
        },
    ))
}

fn judge<'a>(
    cx: &Context<'a>,
    schedule: &'a Schedule,
    backups: &[&'a Backup],
    failed_volumes: &HashMap<(&str, &str), Vec<&str>>,
    max_age: SignedDuration,
) -> ScheduleView<'a> {
    let newest = newest_complete(schedule, backups, failed_volumes, cx.now)
        .map(|b| (b, Coverage::of(&b.spec.template)));
    let partial = narrowed(&schedule.spec.template, "spec.template.");
    let verdict = match &newest {
        Err(why) => Err(why.clone()),
        Ok((b, _)) => backup_verdict(cx, schedule, b, max_age),
    };
    ScheduleView {
        coverage: Coverage::of(&schedule.spec.template),
        disabled: not_enabled(schedule),
        partial: (!partial.is_empty()).then(|| partial.join("; ")),
        schedule,
        newest,
        verdict,
    }
}

/// The BackupStorageLocation a backup was written to (by name, else the one
/// with `spec.default: true`, else the one named `default`), with its name
/// (the name asked for when it does not exist).
fn storage_location<'a>(
    cx: &Context<'a>,
    schedule: &Schedule,
    backup: &Backup,
) -> (String, Option<&'a BackupStorageLocation>) {
    let named = backup
        .spec
        .template
        .storage_location
        .clone()
        .or_else(|| schedule.spec.template.storage_location.clone());
    let locations = cx
        .objects::<BackupStorageLocation>()
        .in_namespace(namespace_of(schedule));
    let location = match &named {
        Some(n) => locations.iter().find(|l| name_of(l.as_ref()) == n),
        None => locations
            .iter()
            .find(|l| l.spec.default == Some(true))
            .or_else(|| {
                locations
                    .iter()
                    .find(|l| name_of(l.as_ref()) == DEFAULT_STORAGE_LOCATION)
            }),
    };
    let name = named.unwrap_or_else(|| {
        location.map_or(DEFAULT_STORAGE_LOCATION.to_owned(), |l| {
            name_of(l.as_ref()).to_owned()
        })
    });
    (name, location.map(|l| l.as_ref()))
}

/// Whether the newest Completed `backup` of `schedule` is fresh and on an
/// Available location: its evidence, or the reason and message why not.
fn backup_verdict(
    cx: &Context,
    schedule: &Schedule,
    backup: &Backup,
    max_age: SignedDuration,
) -> Result<Evidence, (&'static str, String)> {
    let sched_ns = namespace_of(schedule);
    let sched_name = name_of(schedule);
    let completed_at = backup
        .status
        .as_ref()
        .and_then(|s| s.completion_timestamp.as_deref());
    match age(completed_at, cx.now) {
        Err(why) => {
            return Err((
                "BackupNotFresh",
                format!(
                    "newest Completed backup {} of schedule {sched_name} {why}",
                    name_of(backup)
                ),
            ));
        }
        Ok(age) if age > max_age => {
            return Err((
                "BackupNotFresh",
                format!(
                    "newest Completed backup {} of schedule {sched_name} finished at {}, older than maxAge {}",
                    name_of(backup),
                    completed_at.unwrap_or_default(),
                    human(max_age)
                ),
            ));
        }
        Ok(_) => {}
    }
    let (location_name, location) = storage_location(cx, schedule, backup);
    let Some(location) = location else {
        return Err((
            "BackupLocationUnavailable",
            format!(
                "BackupStorageLocation {sched_ns}/{location_name} used by schedule {sched_name} does not exist"
            ),
        ));
    };
    match location.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Available") => Ok(VELERO_BACKUP.evidence(format!(
            "schedule {sched_ns}/{sched_name}: backup {} Completed at {} ({}), location {location_name} Available",
            name_of(backup),
            completed_at.unwrap_or_default(),
            items_backed_up(backup).map_or_else(
                || "item count not reported".to_owned(),
                |n| format!("{n} items")
            )
        ))),
        p => Err((
            "BackupLocationUnavailable",
            format!(
                "BackupStorageLocation {sched_ns}/{location_name} used by schedule {sched_name} is {}",
                p.unwrap_or("not yet validated")
            ),
        )),
    }
}

/// Evaluates Velero backup coverage, success and freshness.
///
/// # Errors
/// [`InvalidSpec`] naming `spec.check.backup.maxAge` or
/// `spec.check.backup.restoreTestedWithin` when not a positive Go duration.
fn evaluate(spec: &BackupCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
    let max_age = parse_duration("spec.check.backup.maxAge", &spec.max_age)?;
    let restore_window = spec
        .restore_tested_within
        .as_deref()
        .map(|d| parse_duration("spec.check.backup.restoreTestedWithin", d))
        .transpose()?;
    let mut out = Outcome::default();
    if let Some((reason, message)) = provider_missing(cx) {
        if cx.is_partial() {
            // Offline manifests without Velero say nothing of the cluster.
            out.undetermined.push(cx.control_violation(
                "BackupProviderNotInManifests",
                "the manifests hold no Velero CRDs: whether namespaces are backed up cannot be told from them (run against the cluster, or include Velero's CRDs, Schedules and Backups)".into(),
            ));
        } else {
            out.blocking = Some((reason, message));
        }
        return Ok(out);
    }
    let by_schedule = backups_by_schedule(cx);
    let failed_volumes = failed_pod_volume_backups(cx);
    let views: Vec<ScheduleView> = cx
        .objects::<Schedule>()
        .iter()
        .map(|s| {
            let key = (namespace_of(s.as_ref()), name_of(s.as_ref()));
            let backups = by_schedule.get(&key).map(Vec::as_slice).unwrap_or(&[]);
            judge(cx, s, backups, &failed_volumes, max_age)
        })
        .collect();
    out.resources_checked += views.len() as u64;
    let index = ScheduleIndex::of(&views);
    let mut used: Vec<bool> = vec![false; views.len()];
    for ns_name in cx.namespaces {
        out.resources_checked += 1;
        let Some(ns) = cx.objects::<Namespace>().get("", ns_name) else {
            continue;
        };
        let covering: Vec<usize> = index.covering(&views, ns_name).collect();
        if let Err((reason, message)) = namespace_verdict(&views, &covering, ns, &mut used) {
            out.violations.push(violation(ns.as_ref(), reason, message));
        }
    }
    schedule_evidence(&views, &used, &mut out);
    if let Some(window) = restore_window {
        restores(cx, window, &mut out);
    }
    if spec.volume_snapshots {
        volume_snapshots(cx, max_age, &mut out);
    }
    Ok(out)
}

/// `BackupProviderNotInstalled` when a Velero CRD is missing.
fn provider_missing(cx: &Context) -> Option<(String, String)> {
    let missing: Vec<String> = VELERO_KINDS
        .into_iter()
        .filter(|k| !cx.is_installed(*k))
        .map(|k| k.to_string())
        .collect();
    (!missing.is_empty()).then(|| {
        (
            "BackupProviderNotInstalled".into(),
            format!(
                "Velero is not installed: the CRDs for {} are missing, so no namespace can be shown to be backed up",
                missing.join(", ")
            ),
        )
    })
}

/// Backups grouped once by (namespace, schedule), newest completion first.
fn backups_by_schedule<'a>(cx: &Context<'a>) -> HashMap<(&'a str, &'a str), Vec<&'a Backup>> {
    let mut by_schedule: HashMap<(&str, &str), Vec<&Backup>> = HashMap::new();
    for b in cx.objects::<Backup>().iter() {
        if let Some(s) = labels_of(b.as_ref()).get(SCHEDULE_NAME_LABEL) {
            by_schedule
                .entry((namespace_of(b.as_ref()), s.as_str()))
                .or_default()
                .push(b.as_ref());
        }
    }
    for list in by_schedule.values_mut() {
        list.sort_by_cached_key(|b| {
            std::cmp::Reverse((
                b.status
                    .as_ref()
                    .and_then(|s| s.completion_timestamp.as_deref())
                    .and_then(parse_time),
                name_of(*b).to_owned(),
            ))
        });
    }
    by_schedule
}

/// Schedules that name namespaces explicitly, indexed by name; only the "all
/// namespaces" and glob ones are tried against every namespace.
struct ScheduleIndex<'a> {
    named: BTreeMap<&'a str, Vec<usize>>,
    broad: Vec<usize>,
}

impl<'a> ScheduleIndex<'a> {
    fn of(views: &[ScheduleView<'a>]) -> Self {
        let mut named: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
        let mut broad: Vec<usize> = Vec::new();
        for (i, v) in views.iter().enumerate() {
            let t = &v.schedule.spec.template;
            let literal = |p: &str| !p.contains(['*', '?', '['].as_ref());
            match t.included_namespaces.as_deref() {
                Some(list) if !list.is_empty() && list.iter().all(|p| literal(p)) => {
                    for n in list {
                        named.entry(n.as_str()).or_default().push(i);
                    }
                }
                _ => broad.push(i),
            }
        }
        ScheduleIndex { named, broad }
    }

    /// Indices of the schedules whose template includes `ns`.
    fn covering<'v>(
        &'v self,
        views: &'v [ScheduleView<'a>],
        ns: &'v str,
    ) -> impl Iterator<Item = usize> + 'v {
        self.named
            .get(ns)
            .into_iter()
            .flatten()
            .chain(self.broad.iter())
            .copied()
            .filter(move |&i| views[i].coverage.includes(ns))
    }
}

/// Whether namespace `ns` has a fresh backup through one of the `covering`
/// schedules (marking those that count as `used`), or the reason and message
/// of its violation.
fn namespace_verdict(
    views: &[ScheduleView],
    covering: &[usize],
    ns: &Namespace,
    used: &mut [bool],
) -> Result<(), (&'static str, String)> {
    let created = ns.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let ns = name_of(ns);
    let enabled: Vec<usize> = covering
        .iter()
        .copied()
        .filter(|&i| views[i].disabled.is_none())
        .collect();
    if enabled.is_empty() {
        return Err(("NotCoveredBySchedule", not_covered(views, covering)));
    }
    let mut failure: Option<(&str, String)> = None;
    let mut ok = false;
    for i in enabled {
        let v = &views[i];
        if let Some(fields) = &v.partial {
            failure.get_or_insert((
                "PartialBackup",
                format!(
                    "schedule {}/{} takes only part of each namespace it includes ({fields}): its backups are of part of this namespace",
                    namespace_of(v.schedule),
                    name_of(v.schedule)
                ),
            ));
            continue;
        }
        match (&v.newest, &v.verdict) {
            (Ok((b, cov)), _) if !cov.includes(ns) => {
                failure.get_or_insert((
                    "NoCompletedBackup",
                    format!(
                        "the newest Completed backup {} of schedule {} does not include this namespace (the schedule changed since)",
                        name_of(*b),
                        name_of(v.schedule)
                    ),
                ));
            }
            (Ok((b, _)), _) if started_before(b, created) => {
                failure.get_or_insert((
                    "NamespaceNotYetBackedUp",
                    format!(
                        "the namespace was created after the newest complete backup {} of schedule {} started: it is not in it",
                        name_of(*b),
                        name_of(v.schedule)
                    ),
                ));
            }
            (_, Ok(_)) => {
                ok = true;
                used[i] = true;
            }
            (_, Err((reason, message))) => {
                failure.get_or_insert((reason, message.clone()));
            }
        }
    }
    if ok {
        return Ok(());
    }
    Err(failure.unwrap_or(("NoCompletedBackup", String::new())))
}

/// Whether backup `b` started (or, without a start time, finished) before
/// `created`: then what was created at `created` is not in it.
fn started_before(b: &Backup, created: Option<Timestamp>) -> bool {
    let st = b.status.as_ref();
    let began = st
        .and_then(|s| s.start_timestamp.as_deref())
        .or_else(|| st.and_then(|s| s.completion_timestamp.as_deref()))
        .and_then(parse_time);
    matches!((began, created), (Some(b), Some(c)) if b < c)
}

/// The message of a namespace no enabled schedule includes.
fn not_covered(views: &[ScheduleView], covering: &[usize]) -> String {
    if covering.is_empty() {
        return "no Velero Schedule includes this namespace".to_owned();
    }
    let why: Vec<String> = covering
        .iter()
        .map(|&i| {
            let v = &views[i];
            format!(
                "{}/{} is {}",
                namespace_of(v.schedule),
                name_of(v.schedule),
                v.disabled.clone().unwrap_or_default()
            )
        })
        .collect();
    format!(
        "no enabled Velero Schedule includes this namespace ({})",
        list_some(&why, 3)
    )
}

/// Evidence: the healthy schedules that back up in-scope namespaces, at most
/// [`MAX_EVIDENCE`] and a count of the rest.
fn schedule_evidence(views: &[ScheduleView], used: &[bool], out: &mut Outcome) {
    let evidence: Vec<Evidence> = views
        .iter()
        .zip(used)
        .filter(|(_, u)| **u)
        .filter_map(|(v, _)| v.verdict.as_ref().ok().cloned())
        .collect();
    let total = evidence.len();
    out.evidence.extend(evidence.into_iter().take(MAX_EVIDENCE));
    if total > MAX_EVIDENCE {
        out.evidence.push(VELERO_BACKUP.evidence(format!(
            "and {} more schedules with a fresh Completed backup",
            total - MAX_EVIDENCE
        )));
    }
}

fn restores(cx: &Context, window: SignedDuration, out: &mut Outcome) {
    let restores = cx.objects::<Restore>();
    out.resources_checked += restores.len() as u64;
    // A restore that reports it wrote nothing (an empty backup, or every
    // item already there) tested nothing; one without a count (Velero
    // writes `status.progress` for every restore it runs) is taken at its
    // phase.
    let restored = |r: &Restore| {
        r.status
            .as_ref()
            .and_then(|s| s.progress.as_ref())
            .and_then(|p| p.items_restored)
            .is_none_or(|n| n > 0)
    };
    let completed: Vec<_> = restores
        .iter()
        .filter(|r| r.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Completed"))
        .filter(|r| restored(r))
        .collect();
    let mut newest: Option<(SignedDuration, &str, &str, &str)> = None;
    let mut unusable: Vec<String> = Vec::new();
    for r in &completed {
        let t = r
            .status
            .as_ref()
            .and_then(|s| s.completion_timestamp.as_deref());
        match age(t, cx.now) {
            Ok(a) => {
                if newest.is_none_or(|(n, ..)| a < n) {
                    let at = t.unwrap_or_default();
                    newest = Some((a, namespace_of(r.as_ref()), name_of(r.as_ref()), at));
                }
            }
            Err(why) => unusable.push(format!("{} {why}", name_of(r.as_ref()))),
        }
    }
    match newest {
        Some((a, ns, name, at)) if a <= window => out.evidence.push(VELERO_RESTORE.evidence(format!(
            "restore {ns}/{name} Completed at {at}, within restoreTestedWithin {}",
            human(window)
        ))),
        Some((_, ns, name, at)) => out.violations.push(cx.control_violation(
            "NoRecentRestoreTest",
            format!(
                "the newest Completed restore, {ns}/{name}, finished at {at}, longer ago than restoreTestedWithin {}",
                human(window)
            ),
        )),
        None if !unusable.is_empty() => out.violations.push(cx.control_violation(
            "NoRecentRestoreTest",
            format!(
                "no Completed Velero Restore has a usable completion time: {}",
                list_some(&unusable, 3)
            ),
        )),
        None => out.violations.push(cx.control_violation(
            "NoRecentRestoreTest",
            "no Velero Restore has phase Completed and restored items: restores have never been tested".into(),
        )),
    }
}

/// Why VolumeSnapshot `s` is no recent snapshot of a PVC created at
/// `pvc_created`, if it is not: not ready, older than `max_age`, without a
/// usable time, or taken before the PVC existed (of an earlier claim of the
/// same name).
fn snapshot_unusable(
    s: &VolumeSnapshot,
    pvc_created: Option<Timestamp>,
    max_age: SignedDuration,
    now: Timestamp,
) -> Option<String> {
    let st = s.status.as_ref();
    let name = name_of(s);
    if st.and_then(|s| s.ready_to_use) != Some(true) {
        return Some(format!("{name} is not readyToUse"));
    }
    let created = st.and_then(|s| s.creation_time.as_deref());
    let before_claim = created
        .and_then(parse_time)
        .zip(pvc_created)
        .is_some_and(|(s, c)| s < c);
    if before_claim {
        return Some(format!(
            "{name} was taken before this PVC was created (of an earlier claim of the same name)"
        ));
    }
    match age(created, now) {
        Ok(a) if a <= max_age => None,
        Ok(_) => Some(format!(
            "{name} was created at {}",
            created.unwrap_or_default()
        )),
        Err(why) => Some(format!("{name} {why}")),
    }
}

fn volume_snapshots(cx: &Context, max_age: SignedDuration, out: &mut Outcome) {
    if !cx.is_installed(Kind::VolumeSnapshot) {
        if cx.is_partial() {
            out.undetermined.push(cx.control_violation(
                "VolumeSnapshotProviderNotInManifests",
                "the manifests hold no VolumeSnapshot CRD: whether volumes are snapshotted cannot be told from them".into(),
            ));
            return;
        }
        out.violations.push(cx.control_violation(
            "VolumeSnapshotProviderNotInstalled",
            "volumeSnapshots is set but the snapshot.storage.k8s.io/v1 VolumeSnapshot CRD is not installed".into(),
        ));
        return;
    }
    out.evidence.push(VOLUME_SNAPSHOT.evidence(format!(
        "VolumeSnapshots of each PVC in scope: readyToUse and created within maxAge {}",
        human(max_age)
    )));
    for ns in cx.namespaces {
        let mut by_pvc: HashMap<&str, Vec<_>> = HashMap::new();
        for s in cx.objects::<VolumeSnapshot>().in_namespace(ns) {
            if let Some(p) = s.spec.source.persistent_volume_claim_name.as_deref() {
                by_pvc.entry(p).or_default().push(s);
            }
        }
        for pvc in cx.objects::<PersistentVolumeClaim>().in_namespace(ns) {
            out.resources_checked += 1;
            let pvc_name = name_of(pvc.as_ref());
            let pvc_created = pvc.metadata.creation_timestamp.as_ref().map(|t| t.0);
            let mut reasons = Vec::new();
            let fresh =
                by_pvc.get(pvc_name).into_iter().flatten().any(|s| {
                    match snapshot_unusable(s, pvc_created, max_age, cx.now) {
                        None => true,
                        Some(why) => {
                            reasons.push(why);
                            false
                        }
                    }
                });
            if !fresh {
                let detail = if reasons.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", list_some(&reasons, 3))
                };
                out.violations.push(violation(
                    pvc.as_ref(),
                    "NoRecentVolumeSnapshot",
                    format!(
                        "no VolumeSnapshot of this PVC ready within maxAge {}{detail}",
                        human(max_age)
                    ),
                ));
            }
        }
    }
}
