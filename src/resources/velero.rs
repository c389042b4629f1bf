//! Velero `velero.io/v1` resources, as documented in Velero's API types
//! (`pkg/apis/velero/v1`): Schedule, Backup, Restore, BackupStorageLocation.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::CustomResource;
use serde::{Deserialize, Serialize};

/// The label Velero puts on every Backup created by a Schedule, naming it.
pub const SCHEDULE_NAME_LABEL: &str = "velero.io/schedule-name";

/// The backup template shared by `Schedule.spec.template` and `Backup.spec`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupTemplate {
    /// Namespaces to include; empty or absent means all namespaces, `*` too.
    #[serde(default)]
    pub included_namespaces: Option<Vec<String>>,
    /// Namespaces to exclude (wins over inclusion).
    #[serde(default)]
    pub excluded_namespaces: Option<Vec<String>>,
    /// The BackupStorageLocation name; absent means the default location.
    #[serde(default)]
    pub storage_location: Option<String>,
    /// Only objects matching this selector are backed up; absent or empty
    /// (no `matchLabels`, no `matchExpressions`) means all objects.
    #[serde(default)]
    pub label_selector: Option<LabelSelector>,
    /// Only objects matching one of these selectors are backed up (cannot be
    /// combined with `labelSelector`); absent or empty means all objects.
    #[serde(default)]
    pub or_label_selectors: Option<Vec<LabelSelector>>,
    /// Resource types to include (`configmaps`, `deployments.apps`, …);
    /// absent, empty or `*` means all.
    #[serde(default)]
    pub included_resources: Option<Vec<String>>,
    /// Resource types left out of the backup.
    #[serde(default)]
    pub excluded_resources: Option<Vec<String>>,
    /// Namespace-scoped resource types to include (the newer filter);
    /// absent, empty or `*` means all.
    #[serde(default)]
    pub included_namespace_scoped_resources: Option<Vec<String>>,
    /// Namespace-scoped resource types left out (the newer filter); `*`
    /// leaves out all of them.
    #[serde(default)]
    pub excluded_namespace_scoped_resources: Option<Vec<String>>,
}

/// `Schedule.spec`: a cron schedule and a backup template.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    derive = "PartialEq",
    group = "velero.io",
    version = "v1",
    kind = "Schedule",
    namespaced,
    status = "ScheduleStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    /// The backup each run creates.
    #[serde(default)]
    pub template: BackupTemplate,
    /// Cron expression.
    #[serde(default)]
    pub schedule: Option<String>,
    /// A paused schedule creates no backups.
    #[serde(default)]
    pub paused: Option<bool>,
}

/// `Schedule.status`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleStatus {
    /// `New`, `Enabled` or `FailedValidation`.
    #[serde(default)]
    pub phase: Option<String>,
    /// When the last backup was *created* (not completed): never success evidence.
    #[serde(default)]
    pub last_backup: Option<String>,
}

/// `Backup.spec`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    derive = "PartialEq",
    group = "velero.io",
    version = "v1",
    kind = "Backup",
    namespaced,
    status = "BackupStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct BackupSpec {
    /// What the backup contains and where it is stored.
    #[serde(flatten)]
    pub template: BackupTemplate,
}

/// `Backup.status`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupStatus {
    /// `New`, `InProgress`, `Completed`, `PartiallyFailed`, `Failed`, … Only
    /// `Completed` is success.
    #[serde(default)]
    pub phase: Option<String>,
    /// When the backup finished (RFC 3339).
    #[serde(default)]
    pub completion_timestamp: Option<String>,
    /// When the backup started (RFC 3339): objects created later are not in it.
    #[serde(default)]
    pub start_timestamp: Option<String>,
    /// When the backup becomes eligible for garbage collection (RFC 3339,
    /// start plus `spec.ttl`): Velero's garbage collector deletes it and its
    /// data in object storage once this time is not in the future.
    #[serde(default)]
    pub expiration: Option<String>,
    /// How many items the backup found and wrote.
    #[serde(default)]
    pub progress: Option<BackupProgress>,
    /// Errors during the backup (a Completed backup has none).
    #[serde(default)]
    pub errors: Option<i64>,
    /// Native volume snapshots attempted.
    #[serde(default)]
    pub volume_snapshots_attempted: Option<i64>,
    /// Native volume snapshots that completed.
    #[serde(default)]
    pub volume_snapshots_completed: Option<i64>,
    /// CSI volume snapshots attempted.
    #[serde(default)]
    pub csi_volume_snapshots_attempted: Option<i64>,
    /// CSI volume snapshots that completed.
    #[serde(default)]
    pub csi_volume_snapshots_completed: Option<i64>,
    /// Asynchronous backup item operations (e.g. CSI snapshot data
    /// movement) that failed.
    #[serde(default)]
    pub backup_item_operations_failed: Option<i64>,
    /// Backup hooks run and failed.
    #[serde(default)]
    pub hook_status: Option<HookStatus>,
}

/// `Backup.status.progress`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupProgress {
    /// Items the backup expects to write.
    #[serde(default)]
    pub total_items: Option<i64>,
    /// Items written so far.
    #[serde(default)]
    pub items_backed_up: Option<i64>,
}

/// `Backup.status.hookStatus`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HookStatus {
    /// Hooks run.
    #[serde(default)]
    pub hooks_attempted: Option<i64>,
    /// Hooks that failed (with `onError: Continue` the backup still completes).
    #[serde(default)]
    pub hooks_failed: Option<i64>,
}

/// The label Velero puts on a PodVolumeBackup naming its Backup.
pub const BACKUP_NAME_LABEL: &str = "velero.io/backup-name";

/// `PodVolumeBackup.spec`: a file-system backup of one pod volume, part of a
/// Backup (label `velero.io/backup-name`).
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    derive = "PartialEq",
    group = "velero.io",
    version = "v1",
    kind = "PodVolumeBackup",
    namespaced,
    status = "PodVolumeBackupStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct PodVolumeBackupSpec {
    /// The volume's name in its pod.
    #[serde(default)]
    pub volume: Option<String>,
}

/// `PodVolumeBackup.status`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct PodVolumeBackupStatus {
    /// `New`, `Accepted`, `Prepared`, `InProgress`, `Canceling`, `Canceled`,
    /// `Completed` or `Failed`.
    #[serde(default)]
    pub phase: Option<String>,
    /// Why it failed.
    #[serde(default)]
    pub message: Option<String>,
}

/// `Restore.spec`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    derive = "PartialEq",
    group = "velero.io",
    version = "v1",
    kind = "Restore",
    namespaced,
    status = "RestoreStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct RestoreSpec {
    /// The Backup restored from.
    #[serde(default)]
    pub backup_name: Option<String>,
    /// Or the Schedule whose newest backup is restored.
    #[serde(default)]
    pub schedule_name: Option<String>,
}

/// `Restore.status`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStatus {
    /// `New`, `InProgress`, `Completed`, `PartiallyFailed`, `Failed`, …
    #[serde(default)]
    pub phase: Option<String>,
    /// When the restore finished (RFC 3339).
    #[serde(default)]
    pub completion_timestamp: Option<String>,
    /// How many items the restore found and wrote.
    #[serde(default)]
    pub progress: Option<RestoreProgress>,
}

/// `Restore.status.progress`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RestoreProgress {
    /// Items the restore expects to write.
    #[serde(default)]
    pub total_items: Option<i64>,
    /// Items restored so far.
    #[serde(default)]
    pub items_restored: Option<i64>,
}

/// `BackupStorageLocation.spec`.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    derive = "PartialEq",
    group = "velero.io",
    version = "v1",
    kind = "BackupStorageLocation",
    namespaced,
    status = "BackupStorageLocationStatus",
    schema = "disabled"
)]
#[serde(rename_all = "camelCase")]
pub struct BackupStorageLocationSpec {
    /// The object-storage provider (for example `aws`).
    #[serde(default)]
    pub provider: Option<String>,
    /// Whether this is the default location.
    #[serde(default)]
    pub default: Option<bool>,
}

/// `BackupStorageLocation.status`.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct BackupStorageLocationStatus {
    /// `Available` or `Unavailable`.
    #[serde(default)]
    pub phase: Option<String>,
}
