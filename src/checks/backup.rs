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
//! `PartiallyFailed` and `Failed` are not success. Velero CRDs absent →
//! NonCompliant, reason `BackupProviderNotInstalled`.
use std::collections::{BTreeMap, HashMap};

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim};

use crate::api::{BackupCheck, Evidence, Verification};
use crate::resources::velero::{
    Backup, BackupStorageLocation, BackupTemplate, Restore, SCHEDULE_NAME_LABEL, Schedule,
};
use crate::resources::volume_snapshot::VolumeSnapshot;
use crate::snapshot::{Kind, KindSet, labels_of, name_of, namespace_of};
use crate::vocabulary::{
    Context, Family, InvalidSpec, Locality, Outcome, human, list_some, member, parse_duration,
    parse_time, violation,
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

/// The `backup` check family.
pub struct Backups;

impl Family for Backups {
    member!(backup: BackupCheck = "backup");

    fn evidence(spec: &BackupCheck) -> &'static str {
        match (spec.restore_tested_within.is_some(), spec.volume_snapshots) {
            (true, _) => {
                "Velero Schedules, Completed Backups, BackupStorageLocations, Completed Restores"
            }
            (_, true) => {
                "Velero Schedules, Completed Backups, BackupStorageLocations; CSI VolumeSnapshots of each PVC"
            }
            _ => "Velero Schedules, Completed Backups, BackupStorageLocations",
        }
    }

    /// Kinds read: Velero Schedule, Backup, Restore, BackupStorageLocation;
    /// PVC and VolumeSnapshot with `volumeSnapshots`.
    fn kinds(spec: &BackupCheck) -> KindSet {
        let mut k = KindSet::from(VELERO_KINDS);
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

/// One Schedule, judged once per evaluation.
struct ScheduleView<'a> {
    schedule: &'a Schedule,
    coverage: Coverage,
    disabled: Option<String>,
    /// The newest Completed backup and its coverage, or why there is none.
    newest: Result<(&'a Backup, Coverage), String>,
    /// Freshness and location of `newest`: evidence, or why it does not count.
    verdict: Result<Evidence, (&'static str, String)>,
}

fn phase(b: &Backup) -> String {
    b.status
        .as_ref()
        .and_then(|s| s.phase.clone())
        .unwrap_or_else(|| "New".into())
}

fn judge<'a>(
    cx: &Context<'a>,
    schedule: &'a Schedule,
    backups: &[&'a Backup],
    max_age: SignedDuration,
) -> ScheduleView<'a> {
    let sched_ns = namespace_of(schedule);
    let sched_name = name_of(schedule);
    let newest = match backups.iter().find(|b| phase(b) == "Completed") {
        Some(b) => Ok((*b, Coverage::of(&b.spec.template))),
        None => {
            let seen: Vec<String> = backups
                .iter()
                .take(3)
                .map(|b| format!("{} {}", name_of(*b), phase(b)))
                .collect();
            Err(if seen.is_empty() {
                format!("schedule {sched_ns}/{sched_name} has produced no backup")
            } else {
                format!(
                    "schedule {sched_ns}/{sched_name} has no Completed backup (newest: {})",
                    seen.join(", ")
                )
            })
        }
    };
    let verdict = match &newest {
        Err(why) => Err(("NoCompletedBackup", why.clone())),
        Ok((b, _)) => backup_verdict(cx, schedule, b, max_age),
    };
    ScheduleView {
        coverage: Coverage::of(&schedule.spec.template),
        disabled: not_enabled(schedule),
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
        Some("Available") => Ok(Evidence {
            source: "VeleroBackup".into(),
            verification: Verification::Verified,
            message: format!(
                "schedule {sched_ns}/{sched_name}: backup {} Completed at {}, location {location_name} Available",
                name_of(backup),
                completed_at.unwrap_or_default()
            ),
        }),
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
    if let Some(blocking) = provider_missing(cx) {
        out.blocking = Some(blocking);
        return Ok(out);
    }
    let by_schedule = backups_by_schedule(cx);
    let views: Vec<ScheduleView> = cx
        .objects::<Schedule>()
        .iter()
        .map(|s| {
            let key = (namespace_of(s.as_ref()), name_of(s.as_ref()));
            let backups = by_schedule.get(&key).map(Vec::as_slice).unwrap_or(&[]);
            judge(cx, s, backups, max_age)
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
        if let Err((reason, message)) = namespace_verdict(&views, &covering, ns_name, &mut used) {
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
    ns: &str,
    used: &mut [bool],
) -> Result<(), (&'static str, String)> {
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
        out.evidence.push(Evidence {
            source: "VeleroBackup".into(),
            verification: Verification::Verified,
            message: format!(
                "and {} more schedules with a fresh Completed backup",
                total - MAX_EVIDENCE
            ),
        });
    }
}

fn restores(cx: &Context, window: SignedDuration, out: &mut Outcome) {
    let restores = cx.objects::<Restore>();
    out.resources_checked += restores.len() as u64;
    let completed: Vec<_> = restores
        .iter()
        .filter(|r| r.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Completed"))
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
        Some((a, ns, name, at)) if a <= window => out.evidence.push(Evidence {
            source: "VeleroRestore".into(),
            verification: Verification::Verified,
            message: format!(
                "restore {ns}/{name} Completed at {at}, within restoreTestedWithin {}",
                human(window)
            ),
        }),
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
            "no Velero Restore has phase Completed: restores have never been tested".into(),
        )),
    }
}

fn volume_snapshots(cx: &Context, max_age: SignedDuration, out: &mut Outcome) {
    if !cx.is_installed(Kind::VolumeSnapshot) {
        out.violations.push(cx.control_violation(
            "VolumeSnapshotProviderNotInstalled",
            "volumeSnapshots is set but the snapshot.storage.k8s.io/v1 VolumeSnapshot CRD is not installed".into(),
        ));
        return;
    }
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
            let mut reasons = Vec::new();
            let fresh = by_pvc.get(pvc_name).into_iter().flatten().any(|s| {
                let st = s.status.as_ref();
                if st.and_then(|s| s.ready_to_use) != Some(true) {
                    reasons.push(format!("{} is not readyToUse", name_of(s.as_ref())));
                    return false;
                }
                let created = st.and_then(|s| s.creation_time.as_deref());
                match age(created, cx.now) {
                    Ok(a) if a <= max_age => true,
                    Ok(_) => {
                        reasons.push(format!(
                            "{} was created at {}",
                            name_of(s.as_ref()),
                            created.unwrap_or_default()
                        ));
                        false
                    }
                    Err(why) => {
                        reasons.push(format!("{} {why}", name_of(s.as_ref())));
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
