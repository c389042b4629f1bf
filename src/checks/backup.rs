//! Backups that actually succeed — TSC A1.2 (recovery infrastructure, data
//! backup) and A1.3 (recovery plan testing).
//!
//! Rule (Velero `velero.io/v1` API): every in-scope namespace is covered by a
//! Schedule that is enabled (`status.phase: Enabled`, `spec.paused` not true)
//! and includes it (`spec.template.includedNamespaces` lists it, is `*`, or is
//! empty — Velero's "all namespaces" — and `excludedNamespaces` does not); the
//! newest Backup of that Schedule (label `velero.io/schedule-name`) with phase
//! `Completed` finished (`status.completionTimestamp`) within `maxAge` and not in
//! the future; the BackupStorageLocation it writes to is `Available`.
//! `Schedule.status.lastBackup` is set when a backup is *created*, so it is
//! never taken as evidence; `PartiallyFailed` and `Failed` are not success.
//! Velero CRDs absent → NonCompliant, reason `BackupProviderNotInstalled`.
use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};

use crate::api::{BackupCheck, Evidence, Verification};
use crate::engine::{Context, InvalidSpec, Outcome, human, parse_duration, parse_time, violation};
use crate::resources::velero::{Backup, SCHEDULE_NAME_LABEL, Schedule};
use crate::snapshot::{Kind, labels_of, name_of, namespace_of};

/// The storage location a backup uses when its spec names none.
pub const DEFAULT_STORAGE_LOCATION: &str = "default";

/// Kinds read: Velero Schedule, Backup, Restore, BackupStorageLocation; PVC and
/// VolumeSnapshot with `volumeSnapshots`.
pub fn kinds(spec: &BackupCheck) -> Vec<Kind> {
    let mut k = vec![
        Kind::VeleroSchedule,
        Kind::VeleroBackup,
        Kind::VeleroBackupStorageLocation,
    ];
    if spec.restore_tested_within.is_some() {
        k.push(Kind::VeleroRestore);
    }
    if spec.volume_snapshots {
        k.extend([Kind::PersistentVolumeClaim, Kind::VolumeSnapshot]);
    }
    k
}

/// The namespaces a Schedule's template covers, indexed for lookups.
pub struct Coverage<'a> {
    all: bool,
    included: HashSet<&'a str>,
    excluded: HashSet<&'a str>,
}

impl<'a> Coverage<'a> {
    /// Reads `spec.template.includedNamespaces` / `excludedNamespaces`.
    pub fn of(schedule: &'a Schedule) -> Self {
        let t = &schedule.spec.template;
        let included: HashSet<&str> = t
            .included_namespaces
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        let excluded: HashSet<&str> = t
            .excluded_namespaces
            .iter()
            .flatten()
            .map(String::as_str)
            .collect();
        Coverage {
            all: (included.is_empty() || included.contains("*")) && !excluded.contains("*"),
            included,
            excluded,
        }
    }

    /// Whether `namespace` is backed up: included (listed, `*`, or nothing
    /// listed) and not excluded.
    pub fn includes(&self, namespace: &str) -> bool {
        (self.all || self.included.contains(namespace))
            && !self.excluded.contains(namespace)
            && !self.excluded.contains("*")
    }
}

/// Whether a Schedule's template includes `namespace` (see [`Coverage`]).
pub fn includes(schedule: &Schedule, namespace: &str) -> bool {
    Coverage::of(schedule).includes(namespace)
}

/// Why a Schedule is not enabled, or `None` when it is.
pub fn not_enabled(schedule: &Schedule) -> Option<String> {
    if schedule.spec.paused == Some(true) {
        return Some("paused".into());
    }
    match schedule.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Enabled") => None,
        Some(p) => Some(format!("phase {p}")),
        None => Some("no status.phase (not yet validated by Velero)".into()),
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
            "finished at {raw}, {} in the future (clock skew between Velero and this operator?): not counted as fresh",
            human(-age)
        ));
    }
    Ok(age)
}

/// The verdict for one schedule: `Ok(evidence)` when it has a fresh Completed
/// backup on an Available location; `Err((reason, message))` otherwise.
fn schedule_verdict(
    cx: &Context,
    schedule: &Schedule,
    max_age: SignedDuration,
) -> Result<Evidence, (&'static str, String)> {
    let sched_ns = namespace_of(schedule);
    let sched_name = name_of(schedule);
    let mut backups: Vec<&Backup> = cx
        .snapshot
        .velero_backups
        .in_namespace(sched_ns)
        .iter()
        .map(|b| b.as_ref())
        .filter(|b| labels_of(*b).get(SCHEDULE_NAME_LABEL).map(String::as_str) == Some(sched_name))
        .collect();
    // Newest first by completion time, then name (Velero names backups by timestamp).
    backups.sort_by(|a, b| {
        let key = |x: &Backup| {
            (
                x.status
                    .as_ref()
                    .and_then(|s| s.completion_timestamp.as_deref())
                    .and_then(parse_time),
                name_of(x).to_owned(),
            )
        };
        key(b).cmp(&key(a))
    });
    let phase = |b: &Backup| {
        b.status
            .as_ref()
            .and_then(|s| s.phase.clone())
            .unwrap_or_else(|| "New".into())
    };
    let Some(newest_ok) = backups.iter().find(|b| phase(b) == "Completed") else {
        let seen: Vec<String> = backups
            .iter()
            .take(3)
            .map(|b| format!("{} {}", name_of(*b), phase(b)))
            .collect();
        return Err((
            "NoCompletedBackup",
            if seen.is_empty() {
                format!("schedule {sched_ns}/{sched_name} has produced no backup")
            } else {
                format!(
                    "schedule {sched_ns}/{sched_name} has no Completed backup (newest: {})",
                    seen.join(", ")
                )
            },
        ));
    };
    let completed_at = newest_ok
        .status
        .as_ref()
        .and_then(|s| s.completion_timestamp.as_deref());
    match age(completed_at, cx.now) {
        Err(why) => {
            return Err((
                "BackupNotFresh",
                format!(
                    "newest Completed backup {} of schedule {sched_name} {why}",
                    name_of(*newest_ok)
                ),
            ));
        }
        Ok(a) if a > max_age => {
            return Err((
                "BackupNotFresh",
                format!(
                    "newest Completed backup {} of schedule {sched_name} finished {} ago, older than maxAge {}",
                    name_of(*newest_ok),
                    human(a),
                    human(max_age)
                ),
            ));
        }
        Ok(_) => {}
    }
    let location = newest_ok
        .spec
        .template
        .storage_location
        .clone()
        .or_else(|| schedule.spec.template.storage_location.clone())
        .unwrap_or_else(|| DEFAULT_STORAGE_LOCATION.into());
    let bsl_phase = cx
        .snapshot
        .velero_backup_storage_locations
        .get(sched_ns, &location)
        .map(|l| l.status.as_ref().and_then(|s| s.phase.clone()));
    match bsl_phase {
        None => Err((
            "BackupLocationUnavailable",
            format!(
                "BackupStorageLocation {sched_ns}/{location} used by schedule {sched_name} does not exist"
            ),
        )),
        Some(p) if p.as_deref() != Some("Available") => Err((
            "BackupLocationUnavailable",
            format!(
                "BackupStorageLocation {sched_ns}/{location} used by schedule {sched_name} is {}",
                p.unwrap_or_else(|| "not yet validated".into())
            ),
        )),
        Some(_) => Ok(Evidence {
            source: "VeleroBackup".into(),
            verification: Verification::Verified,
            message: format!(
                "schedule {sched_ns}/{sched_name}: backup {} Completed at {}, location {location} Available",
                name_of(*newest_ok),
                completed_at.unwrap_or_default()
            ),
        }),
    }
}

/// Evaluates Velero backup coverage, success and freshness.
///
/// # Errors
/// [`InvalidSpec`] naming `spec.check.backup.maxAge` or
/// `spec.check.backup.restoreTestedWithin` when not a positive Go duration.
pub fn evaluate(spec: &BackupCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
    let max_age = parse_duration("spec.check.backup.maxAge", &spec.max_age)?;
    let restore_window = spec
        .restore_tested_within
        .as_deref()
        .map(|d| parse_duration("spec.check.backup.restoreTestedWithin", d))
        .transpose()?;
    let mut out = Outcome::default();
    let missing: Vec<String> = kinds(spec)
        .into_iter()
        .filter(|k| k.crd_name().is_some() && !cx.snapshot.is_installed(*k))
        .map(|k| k.to_string())
        .collect();
    let velero_missing = missing.iter().any(|k| k.ends_with("velero.io/v1"));
    if velero_missing {
        out.blocking = Some((
            "BackupProviderNotInstalled".into(),
            format!(
                "Velero is not installed: the CRDs for {} are missing, so no namespace can be shown to be backed up",
                missing.join(", ")
            ),
        ));
        return Ok(out);
    }
    let schedules = &cx.snapshot.velero_schedules;
    out.resources_checked += schedules.len() as u64;
    // Verdict per schedule, computed once.
    type ScheduleVerdict<'s> = (
        &'s Schedule,
        Coverage<'s>,
        Option<String>,
        Result<Evidence, (&'static str, String)>,
    );
    let verdicts: Vec<ScheduleVerdict> = schedules
        .iter()
        .map(|s| {
            (
                s.as_ref(),
                Coverage::of(s),
                not_enabled(s),
                schedule_verdict(cx, s, max_age),
            )
        })
        .collect();
    for (_, _, disabled, v) in &verdicts {
        if let (None, Ok(ev)) = (disabled, v) {
            out.evidence.push(ev.clone());
        }
    }
    for ns_name in cx.namespaces {
        out.resources_checked += 1;
        let Some(ns) = cx.snapshot.namespaces.get("", ns_name) else {
            continue;
        };
        let covering: Vec<_> = verdicts
            .iter()
            .filter(|(_, cov, _, _)| cov.includes(ns_name))
            .collect();
        let enabled: Vec<_> = covering.iter().filter(|(_, _, d, _)| d.is_none()).collect();
        if enabled.is_empty() {
            let message = if covering.is_empty() {
                "no Velero Schedule includes this namespace".to_owned()
            } else {
                let why: Vec<String> = covering
                    .iter()
                    .map(|(s, _, d, _)| {
                        format!(
                            "{}/{} is {}",
                            namespace_of(*s),
                            name_of(*s),
                            d.clone().unwrap_or_default()
                        )
                    })
                    .collect();
                format!(
                    "no enabled Velero Schedule includes this namespace ({})",
                    why.join("; ")
                )
            };
            out.violations
                .push(violation(ns.as_ref(), "NotCoveredBySchedule", message));
            continue;
        }
        if enabled.iter().any(|(_, _, _, v)| v.is_ok()) {
            continue;
        }
        let (reason, message) = enabled
            .iter()
            .find_map(|(_, _, _, v)| v.as_ref().err())
            .cloned()
            .unwrap_or(("NoCompletedBackup", String::new()));
        out.violations.push(violation(ns.as_ref(), reason, message));
    }
    if let Some(window) = restore_window {
        restores(cx, window, &mut out);
    }
    if spec.volume_snapshots {
        volume_snapshots(cx, max_age, &mut out);
    }
    Ok(out)
}

fn restores(cx: &Context, window: SignedDuration, out: &mut Outcome) {
    let restores = &cx.snapshot.velero_restores;
    out.resources_checked += restores.len() as u64;
    let newest = restores
        .iter()
        .filter(|r| r.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Completed"))
        .filter_map(|r| {
            let t = r.status.as_ref()?.completion_timestamp.as_deref()?;
            Some((age(Some(t), cx.now).ok()?, r))
        })
        .min_by_key(|(a, _)| *a);
    match newest {
        Some((a, r)) if a <= window => out.evidence.push(Evidence {
            source: "VeleroRestore".into(),
            verification: Verification::Verified,
            message: format!(
                "restore {}/{} Completed {} ago (within {})",
                namespace_of(r.as_ref()),
                name_of(r.as_ref()),
                human(a),
                human(window)
            ),
        }),
        Some((a, r)) => out.violations.push(cx.control_violation(
            "NoRecentRestoreTest",
            format!(
                "the newest Completed restore, {}/{}, finished {} ago, longer than restoreTestedWithin {}",
                namespace_of(r.as_ref()),
                name_of(r.as_ref()),
                human(a),
                human(window)
            ),
        )),
        None => out.violations.push(cx.control_violation(
            "NoRecentRestoreTest",
            "no Velero Restore has phase Completed: restores have never been tested".into(),
        )),
    }
}

fn volume_snapshots(cx: &Context, max_age: SignedDuration, out: &mut Outcome) {
    if !cx.snapshot.is_installed(Kind::VolumeSnapshot) {
        out.violations.push(cx.control_violation(
            "VolumeSnapshotProviderNotInstalled",
            "volumeSnapshots is set but the snapshot.storage.k8s.io/v1 VolumeSnapshot CRD is not installed".into(),
        ));
        return;
    }
    for ns in cx.namespaces {
        let snaps = cx.snapshot.volume_snapshots.in_namespace(ns);
        for pvc in cx.snapshot.persistent_volume_claims.in_namespace(ns) {
            out.resources_checked += 1;
            let pvc_name = name_of(pvc.as_ref());
            let mut reasons = Vec::new();
            let fresh = snaps
                .iter()
                .filter(|s| s.spec.source.persistent_volume_claim_name.as_deref() == Some(pvc_name))
                .any(|s| {
                    let st = s.status.as_ref();
                    if st.and_then(|s| s.ready_to_use) != Some(true) {
                        reasons.push(format!("{} is not readyToUse", name_of(s.as_ref())));
                        return false;
                    }
                    match age(st.and_then(|s| s.creation_time.as_deref()), cx.now) {
                        Ok(a) if a <= max_age => true,
                        Ok(a) => {
                            reasons.push(format!("{} is {} old", name_of(s.as_ref()), human(a)));
                            false
                        }
                        Err(why) => {
                            reasons.push(format!("{} {why}", name_of(s.as_ref())));
                            false
                        }
                    }
                });
            if !fresh {
                out.violations.push(violation(
                    pvc.as_ref(),
                    "NoRecentVolumeSnapshot",
                    if reasons.is_empty() {
                        format!(
                            "no VolumeSnapshot of this PVC ready within maxAge {}",
                            human(max_age)
                        )
                    } else {
                        format!(
                            "no VolumeSnapshot of this PVC ready within maxAge {} ({})",
                            human(max_age),
                            reasons.join("; ")
                        )
                    },
                ));
            }
        }
    }
}
