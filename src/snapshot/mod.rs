//! The read-only view of cluster state that the check engine sees (the ground
//! floor: it imports nothing of the engine or the checks).
//!
//! A [`Snapshot`] holds the objects of every [`Kind`] a check can need, indexed
//! by kind, then namespace (cluster-scoped objects under `""`), then name. The
//! operator fills it from its watch caches; `check --manifests` and the tests
//! fill it from YAML with [`Snapshot::insert_manifest`]. Objects are shared
//! (`Arc`) so the caches and the snapshot do not copy them.
//!
//! Every kind is one row of the table below (see [`table`] for the row
//! syntax): adding a kind a check reads is one row here, plus its watch RBAC in
//! the chart (a test checks the chart grants list and watch on every kind).
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    LimitRange, Namespace, PersistentVolume, PersistentVolumeClaim, ResourceQuota, ServiceAccount,
};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use serde::de::DeserializeOwned;

use crate::resources::compact::{
    CronJob, DaemonSet, Deployment, Job, Pod, ReplicaSet, ReplicationController, StatefulSet,
};
use crate::resources::encryption_config::EncryptionConfiguration;
use crate::resources::gateway::{GRPCRoute, Gateway, HTTPRoute};
use crate::resources::velero::{Backup, BackupStorageLocation, PodVolumeBackup, Restore, Schedule};
use crate::resources::volume_snapshot::VolumeSnapshot;

mod apiserver_metrics;
mod kind_set;
mod manifest;
mod objects;
pub mod table;
pub mod trim;

pub use apiserver_metrics::{ApiServerMetrics, StorageTransformation, parse_apiserver_metrics};
pub use kind_set::KindSet;
pub use objects::Objects;
pub use trim::{BETA_CLASS_ANNOTATION, LAST_APPLIED_ANNOTATION, PROVISIONED_BY_ANNOTATION};

table::kinds! {
    /// `v1` Namespace.
    Namespace => Namespace, namespaces, "v1", "Namespace", "namespaces", Cluster, trim trim::namespace;
    /// `networking.k8s.io/v1` NetworkPolicy.
    NetworkPolicy => NetworkPolicy, network_policies, "networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", Namespaced, trim trim::unread_metadata;
    /// `networking.k8s.io/v1` Ingress.
    Ingress => Ingress, ingresses, "networking.k8s.io/v1", "Ingress", "ingresses", Namespaced, trim trim::ingress;
    /// `gateway.networking.k8s.io/v1` Gateway (optional CRD).
    Gateway => Gateway, gateways, "gateway.networking.k8s.io/v1", "Gateway", "gateways", Namespaced, crd "gateways.gateway.networking.k8s.io";
    /// `gateway.networking.k8s.io/v1` HTTPRoute (optional CRD).
    HttpRoute => HTTPRoute, http_routes, "gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes", Namespaced, crd "httproutes.gateway.networking.k8s.io";
    /// `gateway.networking.k8s.io/v1` GRPCRoute (optional CRD).
    GrpcRoute => GRPCRoute, grpc_routes, "gateway.networking.k8s.io/v1", "GRPCRoute", "grpcroutes", Namespaced, crd "grpcroutes.gateway.networking.k8s.io";
    /// `v1` PersistentVolumeClaim.
    PersistentVolumeClaim => PersistentVolumeClaim, persistent_volume_claims, "v1", "PersistentVolumeClaim", "persistentvolumeclaims", Namespaced, trim trim::persistent_volume_claim;
    /// `v1` PersistentVolume.
    PersistentVolume => PersistentVolume, persistent_volumes, "v1", "PersistentVolume", "persistentvolumes", Cluster, trim trim::persistent_volume;
    /// `storage.k8s.io/v1` StorageClass.
    StorageClass => StorageClass, storage_classes, "storage.k8s.io/v1", "StorageClass", "storageclasses", Cluster;
    /// `v1` Pod: kube-apiserver mirror pods in `kube-system` (their flags),
    /// and bare pods everywhere (a pod owned by a controller the checks read
    /// is judged through its owner, and cached as little more than its name).
    Pod => Pod, pods, "v1", "Pod", "pods", Namespaced, trim trim::pod, cached trim::pod_cached, full k8s_openapi::api::core::v1::Pod;
    /// `rbac.authorization.k8s.io/v1` ClusterRole.
    ClusterRole => ClusterRole, cluster_roles, "rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", Cluster;
    /// `rbac.authorization.k8s.io/v1` ClusterRoleBinding.
    ClusterRoleBinding => ClusterRoleBinding, cluster_role_bindings, "rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", Cluster, trim trim::unread_metadata;
    /// `rbac.authorization.k8s.io/v1` Role.
    Role => Role, roles, "rbac.authorization.k8s.io/v1", "Role", "roles", Namespaced, trim trim::unread_metadata;
    /// `rbac.authorization.k8s.io/v1` RoleBinding.
    RoleBinding => RoleBinding, role_bindings, "rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings", Namespaced, trim trim::unread_metadata;
    /// `apps/v1` Deployment.
    Deployment => Deployment, deployments, "apps/v1", "Deployment", "deployments", Namespaced, trim trim::deployment, full k8s_openapi::api::apps::v1::Deployment;
    /// `apps/v1` StatefulSet.
    StatefulSet => StatefulSet, stateful_sets, "apps/v1", "StatefulSet", "statefulsets", Namespaced, trim trim::stateful_set, full k8s_openapi::api::apps::v1::StatefulSet;
    /// `apps/v1` DaemonSet.
    DaemonSet => DaemonSet, daemon_sets, "apps/v1", "DaemonSet", "daemonsets", Namespaced, trim trim::daemon_set, full k8s_openapi::api::apps::v1::DaemonSet;
    /// `apps/v1` ReplicaSet (one a Deployment owns is judged through it).
    ReplicaSet => ReplicaSet, replica_sets, "apps/v1", "ReplicaSet", "replicasets", Namespaced, trim trim::replica_set, cached trim::replica_set_cached, full k8s_openapi::api::apps::v1::ReplicaSet;
    /// `v1` ReplicationController.
    ReplicationController => ReplicationController, replication_controllers, "v1", "ReplicationController", "replicationcontrollers", Namespaced, trim trim::replication_controller, full k8s_openapi::api::core::v1::ReplicationController;
    /// `batch/v1` Job (one a CronJob owns is judged through it).
    Job => Job, jobs, "batch/v1", "Job", "jobs", Namespaced, trim trim::job, cached trim::job_cached, full k8s_openapi::api::batch::v1::Job;
    /// `batch/v1` CronJob.
    CronJob => CronJob, cron_jobs, "batch/v1", "CronJob", "cronjobs", Namespaced, trim trim::cron_job, full k8s_openapi::api::batch::v1::CronJob;
    /// `autoscaling/v2` HorizontalPodAutoscaler.
    HorizontalPodAutoscaler => HorizontalPodAutoscaler, horizontal_pod_autoscalers, "autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers", Namespaced, trim trim::horizontal_pod_autoscaler;
    /// `policy/v1` PodDisruptionBudget.
    PodDisruptionBudget => PodDisruptionBudget, pod_disruption_budgets, "policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", Namespaced, trim trim::pod_disruption_budget;
    /// `v1` ServiceAccount (whether it opts out of token automounting).
    ServiceAccount => ServiceAccount, service_accounts, "v1", "ServiceAccount", "serviceaccounts", Namespaced, trim trim::service_account;
    /// `v1` LimitRange (container defaults for requests and limits).
    LimitRange => LimitRange, limit_ranges, "v1", "LimitRange", "limitranges", Namespaced, trim trim::unread_metadata;
    /// `v1` ResourceQuota.
    ResourceQuota => ResourceQuota, resource_quotas, "v1", "ResourceQuota", "resourcequotas", Namespaced, trim trim::resource_quota;
    /// `velero.io/v1` Schedule (optional CRD).
    VeleroSchedule => Schedule, velero_schedules, "velero.io/v1", "Schedule", "schedules", Namespaced, crd "schedules.velero.io", implicit_namespace = false;
    /// `velero.io/v1` Backup (optional CRD).
    VeleroBackup => Backup, velero_backups, "velero.io/v1", "Backup", "backups", Namespaced, crd "backups.velero.io", implicit_namespace = false;
    /// `velero.io/v1` Restore (optional CRD).
    VeleroRestore => Restore, velero_restores, "velero.io/v1", "Restore", "restores", Namespaced, crd "restores.velero.io", implicit_namespace = false;
    /// `velero.io/v1` BackupStorageLocation (optional CRD).
    VeleroBackupStorageLocation => BackupStorageLocation, velero_backup_storage_locations, "velero.io/v1", "BackupStorageLocation", "backupstoragelocations", Namespaced, crd "backupstoragelocations.velero.io", implicit_namespace = false;
    /// `apiserver.config.k8s.io/v1` EncryptionConfiguration: the API
    /// server's encryption file, offline input only (never watched).
    EncryptionConfiguration => EncryptionConfiguration, encryption_configurations, "apiserver.config.k8s.io/v1", "EncryptionConfiguration", "encryptionconfigurations", Cluster, offline = true;
    /// `velero.io/v1` PodVolumeBackup (optional CRD): a file-system backup
    /// of one pod volume, part of a Backup.
    VeleroPodVolumeBackup => PodVolumeBackup, velero_pod_volume_backups, "velero.io/v1", "PodVolumeBackup", "podvolumebackups", Namespaced, crd "podvolumebackups.velero.io", implicit_namespace = false;
    /// `snapshot.storage.k8s.io/v1` VolumeSnapshot (optional CRD).
    VolumeSnapshot => VolumeSnapshot, volume_snapshots, "snapshot.storage.k8s.io/v1", "VolumeSnapshot", "volumesnapshots", Namespaced, crd "volumesnapshots.snapshot.storage.k8s.io", implicit_namespace = false;
}

impl Kind {
    /// The API resource name (`plural.group`, as in RBAC rules and
    /// `kubectl auth can-i`), e.g. `networkpolicies.networking.k8s.io`.
    pub fn resource(self) -> String {
        match self.type_meta().0.rsplit_once('/') {
            Some((group, _)) => format!("{}.{group}", self.plural()),
            None => self.plural().to_owned(),
        }
    }

    /// The kind from a manifest's `apiVersion` and `kind`, if a check reads it.
    pub fn from_type_meta(api_version: &str, kind: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.type_meta() == (api_version, kind))
    }

    /// The optional kinds: those provided by a CustomResourceDefinition.
    pub fn optional() -> impl Iterator<Item = Kind> {
        Kind::ALL.into_iter().filter(|k| k.crd_name().is_some())
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (api_version, kind) = self.type_meta();
        write!(f, "{kind}.{api_version}")
    }
}

/// A kind the snapshot stores: its [`Kind`], where its objects live, and what
/// can be dropped from an object before it is cached (fields no check reads).
/// Implemented by the kinds table.
pub trait Stored:
    kube::Resource<DynamicType = ()>
    + Clone
    + PartialEq
    + DeserializeOwned
    + std::fmt::Debug
    + Send
    + Sync
    + 'static
{
    /// The kind.
    const KIND: Kind;
    /// The objects of this kind in `snapshot`.
    fn objects(snapshot: &Snapshot) -> &Objects<Self>;
    /// The objects of this kind in `snapshot`, mutable.
    fn objects_mut(snapshot: &mut Snapshot) -> &mut Objects<Self>;
    /// Drops what no check reads: `metadata.managedFields` and the
    /// `kubectl.kubernetes.io/last-applied-configuration` annotation always, plus
    /// kind-specific fields (for example a Pod's or a Deployment's `status`).
    fn trim(&mut self) {
        trim::metadata(self);
    }

    /// Whether the object is kept in the snapshot at all (asked before
    /// [`Stored::trim`], and reading only what trimming keeps):
    /// false for an object that is judged through its owner and read by no
    /// check itself (a pod, ReplicaSet or Job whose controller is a kind the
    /// checks read; see [`trim::POD_OWNER_KINDS`]). The caches drop such
    /// objects (and a copy kept from before it was adopted), so at 10,000
    /// namespaces the pods of Deployments cost nothing.
    fn cached(&self) -> bool {
        true
    }

    /// Checks an offline manifest against the kind's complete API type when
    /// the cached type is a compact view (the table's `full`); `Ok` for the
    /// other kinds, whose cached type is the API type.
    ///
    /// # Errors
    /// The deserialization error, naming the field.
    fn validate(value: &serde_json::Value) -> Result<(), serde_json::Error> {
        let _ = value;
        Ok(())
    }

    /// The API the operator watches this kind through: cluster-wide unless
    /// the table restricts it to one namespace.
    fn watch_api(client: kube::Client) -> kube::Api<kube::core::DeserializeGuard<Self>> {
        kube::Api::all(client)
    }
}

/// Calls a generic function for a [`Kind`] known only at run time (see
/// [`Kind::visit`]).
pub trait KindVisitor {
    /// What `visit` returns.
    type Output;
    /// Called with the Rust type of the kind.
    fn visit<K: Stored>(self) -> Self::Output;
}

/// Errors building a snapshot from manifests.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// The document is not an object with `apiVersion` and `kind`.
    #[error("not a Kubernetes object: {0}")]
    NotAnObject(String),
    /// The object has a kind the checks read but does not deserialize as one.
    #[error("{kind} {name}: {source}")]
    Invalid {
        /// `Kind.apiVersion`.
        kind: String,
        /// `namespace/name` or `name`.
        name: String,
        /// The deserialization error, naming the field.
        source: serde_json::Error,
    },
    /// The Prometheus text could not be parsed.
    #[error("cannot parse API server metrics: {0}")]
    Metrics(String),
}

impl Snapshot {
    /// The objects of kind `K`.
    pub fn objects<K: Stored>(&self) -> &Objects<K> {
        K::objects(self)
    }

    /// The objects of kind `K`, mutable.
    pub fn objects_mut<K: Stored>(&mut self) -> &mut Objects<K> {
        K::objects_mut(self)
    }

    /// Records that the CRD providing `kind` is installed. Built-in kinds are
    /// always installed.
    pub fn mark_installed(&mut self, kind: Kind) {
        self.installed.insert(kind);
    }

    /// Records that the CRD providing `kind` was removed, and drops its objects.
    pub fn mark_uninstalled(&mut self, kind: Kind) {
        self.installed.remove(&kind);
        self.clear(kind);
    }

    /// Drops every object of `kind`.
    pub fn clear(&mut self, kind: Kind) {
        struct Clear<'a>(&'a mut Snapshot);
        impl KindVisitor for Clear<'_> {
            type Output = ();
            fn visit<K: Stored>(self) {
                *K::objects_mut(self.0) = Objects::default();
            }
        }
        kind.visit(Clear(self));
    }

    /// Whether objects of `kind` can exist: built-in, or its CRD is installed.
    pub fn is_installed(&self, kind: Kind) -> bool {
        kind.crd_name().is_none() || self.installed.contains(&kind)
    }

    /// True when the snapshot holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// What the API server's `/metrics` said, or `None` when it was not read.
    pub fn apiserver_metrics(&self) -> Option<&ApiServerMetrics> {
        self.apiserver_metrics.as_ref()
    }

    /// Replaces the reading of the API server's `/metrics`.
    pub fn set_apiserver_metrics(&mut self, metrics: Option<ApiServerMetrics>) {
        self.apiserver_metrics = metrics;
    }

    /// Parses the API server's `/metrics` text (Prometheus exposition format)
    /// and keeps what the checks read.
    ///
    /// # Errors
    /// [`SnapshotError::Metrics`] when the text cannot be parsed.
    pub fn set_apiserver_metrics_text(&mut self, text: &str) -> Result<(), SnapshotError> {
        self.apiserver_metrics = Some(parse_apiserver_metrics(text)?);
        Ok(())
    }

    /// Whether this snapshot holds only what offline input gave it (manifests,
    /// not a live cluster): objects a check refers to may simply not be in the
    /// input, which makes some findings undetermined rather than absent.
    pub fn is_partial(&self) -> bool {
        self.partial
    }

    /// Marks this snapshot as offline input ([`Snapshot::is_partial`]).
    pub fn mark_partial(&mut self) {
        self.partial = true;
    }
}

/// The name of an object, or `""` (objects from the API always have one).
pub fn name_of<K: kube::Resource>(obj: &K) -> &str {
    obj.meta().name.as_deref().unwrap_or("")
}

/// The namespace of an object, or `""`.
pub fn namespace_of<K: kube::Resource>(obj: &K) -> &str {
    obj.meta().namespace.as_deref().unwrap_or("")
}

/// The labels of an object (empty when it has none).
pub fn labels_of<K: kube::Resource>(obj: &K) -> &BTreeMap<String, String> {
    static EMPTY: BTreeMap<String, String> = BTreeMap::new();
    obj.meta().labels.as_ref().unwrap_or(&EMPTY)
}
