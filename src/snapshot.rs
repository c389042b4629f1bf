//! The read-only view of cluster state that the check engine sees.
//!
//! A [`Snapshot`] holds the objects of every [`Kind`] a check can need, indexed
//! by kind, then namespace (cluster-scoped objects under `""`). The operator
//! fills it from its watch caches; `check --manifests` and the tests fill it from
//! YAML with [`Snapshot::insert_manifest`]. Objects are shared (`Arc`) so the
//! caches and the snapshot do not copy them.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Namespace, PersistentVolumeClaim, Pod};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::api::storage::v1::StorageClass;
use serde::de::DeserializeOwned;

use crate::resources::gateway::{Gateway, HTTPRoute};
use crate::resources::velero::{Backup, BackupStorageLocation, Restore, Schedule};
use crate::resources::volume_snapshot::VolumeSnapshot;

/// Every kind of object a check can read. The operator watches exactly the kinds
/// the active Controls need (see [`crate::checks::kinds_for`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// `v1` Namespace.
    Namespace,
    /// `networking.k8s.io/v1` NetworkPolicy.
    NetworkPolicy,
    /// `networking.k8s.io/v1` Ingress.
    Ingress,
    /// `gateway.networking.k8s.io/v1` Gateway (optional CRD).
    Gateway,
    /// `gateway.networking.k8s.io/v1` HTTPRoute (optional CRD).
    HttpRoute,
    /// `v1` PersistentVolumeClaim.
    PersistentVolumeClaim,
    /// `storage.k8s.io/v1` StorageClass.
    StorageClass,
    /// `v1` Pod (only `kube-system` is needed: kube-apiserver mirror pods).
    Pod,
    /// `rbac.authorization.k8s.io/v1` ClusterRole.
    ClusterRole,
    /// `rbac.authorization.k8s.io/v1` ClusterRoleBinding.
    ClusterRoleBinding,
    /// `rbac.authorization.k8s.io/v1` Role.
    Role,
    /// `rbac.authorization.k8s.io/v1` RoleBinding.
    RoleBinding,
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
    /// `apps/v1` DaemonSet.
    DaemonSet,
    /// `policy/v1` PodDisruptionBudget.
    PodDisruptionBudget,
    /// `velero.io/v1` Schedule (optional CRD).
    VeleroSchedule,
    /// `velero.io/v1` Backup (optional CRD).
    VeleroBackup,
    /// `velero.io/v1` Restore (optional CRD).
    VeleroRestore,
    /// `velero.io/v1` BackupStorageLocation (optional CRD).
    VeleroBackupStorageLocation,
    /// `snapshot.storage.k8s.io/v1` VolumeSnapshot (optional CRD).
    VolumeSnapshot,
}

impl Kind {
    /// All kinds, in declaration order.
    pub const ALL: [Kind; 21] = [
        Kind::Namespace,
        Kind::NetworkPolicy,
        Kind::Ingress,
        Kind::Gateway,
        Kind::HttpRoute,
        Kind::PersistentVolumeClaim,
        Kind::StorageClass,
        Kind::Pod,
        Kind::ClusterRole,
        Kind::ClusterRoleBinding,
        Kind::Role,
        Kind::RoleBinding,
        Kind::Deployment,
        Kind::StatefulSet,
        Kind::DaemonSet,
        Kind::PodDisruptionBudget,
        Kind::VeleroSchedule,
        Kind::VeleroBackup,
        Kind::VeleroRestore,
        Kind::VeleroBackupStorageLocation,
        Kind::VolumeSnapshot,
    ];

    /// `(apiVersion, kind)` as in a manifest.
    pub fn type_meta(self) -> (&'static str, &'static str) {
        match self {
            Kind::Namespace => ("v1", "Namespace"),
            Kind::NetworkPolicy => ("networking.k8s.io/v1", "NetworkPolicy"),
            Kind::Ingress => ("networking.k8s.io/v1", "Ingress"),
            Kind::Gateway => ("gateway.networking.k8s.io/v1", "Gateway"),
            Kind::HttpRoute => ("gateway.networking.k8s.io/v1", "HTTPRoute"),
            Kind::PersistentVolumeClaim => ("v1", "PersistentVolumeClaim"),
            Kind::StorageClass => ("storage.k8s.io/v1", "StorageClass"),
            Kind::Pod => ("v1", "Pod"),
            Kind::ClusterRole => ("rbac.authorization.k8s.io/v1", "ClusterRole"),
            Kind::ClusterRoleBinding => ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
            Kind::Role => ("rbac.authorization.k8s.io/v1", "Role"),
            Kind::RoleBinding => ("rbac.authorization.k8s.io/v1", "RoleBinding"),
            Kind::Deployment => ("apps/v1", "Deployment"),
            Kind::StatefulSet => ("apps/v1", "StatefulSet"),
            Kind::DaemonSet => ("apps/v1", "DaemonSet"),
            Kind::PodDisruptionBudget => ("policy/v1", "PodDisruptionBudget"),
            Kind::VeleroSchedule => ("velero.io/v1", "Schedule"),
            Kind::VeleroBackup => ("velero.io/v1", "Backup"),
            Kind::VeleroRestore => ("velero.io/v1", "Restore"),
            Kind::VeleroBackupStorageLocation => ("velero.io/v1", "BackupStorageLocation"),
            Kind::VolumeSnapshot => ("snapshot.storage.k8s.io/v1", "VolumeSnapshot"),
        }
    }

    /// The API resource name (`plural.group`, as in RBAC rules and
    /// `kubectl auth can-i`), e.g. `networkpolicies.networking.k8s.io`.
    pub fn resource(self) -> String {
        let (api_version, kind) = self.type_meta();
        let plural = match kind {
            "NetworkPolicy" => "networkpolicies".to_owned(),
            "Ingress" => "ingresses".to_owned(),
            "StorageClass" => "storageclasses".to_owned(),
            "HTTPRoute" => "httproutes".to_owned(),
            k => format!("{}s", k.to_lowercase()),
        };
        match api_version.rsplit_once('/') {
            Some((group, _)) => format!("{plural}.{group}"),
            None => plural,
        }
    }

    /// The kind from a manifest's `apiVersion` and `kind`, if a check reads it.
    pub fn from_type_meta(api_version: &str, kind: &str) -> Option<Kind> {
        Kind::ALL
            .into_iter()
            .find(|k| k.type_meta() == (api_version, kind))
    }

    /// The name of the CustomResourceDefinition that provides this kind, for
    /// kinds that are not built into Kubernetes; `None` for built-in kinds.
    pub fn crd_name(self) -> Option<&'static str> {
        match self {
            Kind::Gateway => Some("gateways.gateway.networking.k8s.io"),
            Kind::HttpRoute => Some("httproutes.gateway.networking.k8s.io"),
            Kind::VeleroSchedule => Some("schedules.velero.io"),
            Kind::VeleroBackup => Some("backups.velero.io"),
            Kind::VeleroRestore => Some("restores.velero.io"),
            Kind::VeleroBackupStorageLocation => Some("backupstoragelocations.velero.io"),
            Kind::VolumeSnapshot => Some("volumesnapshots.snapshot.storage.k8s.io"),
            _ => None,
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn namespaced(self) -> bool {
        !matches!(
            self,
            Kind::Namespace | Kind::StorageClass | Kind::ClusterRole | Kind::ClusterRoleBinding
        )
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
        trim_metadata(self.meta_mut());
    }

    /// The API the operator watches this kind through: cluster-wide, except
    /// Pods, read only in `kube-system` (kube-apiserver mirror pods), so that
    /// the operator needs no cluster-wide Pod access.
    fn watch_api(client: kube::Client) -> kube::Api<kube::core::DeserializeGuard<Self>> {
        kube::Api::all(client)
    }
}

/// Drops `managedFields`, the last-applied annotation and `resourceVersion`
/// from `meta` (a write that changes only those is not a change to the checks).
pub fn trim_metadata(meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) {
    meta.managed_fields = None;
    meta.resource_version = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED_ANNOTATION);
        if a.is_empty() {
            meta.annotations = None;
        }
    }
}

/// The annotation `kubectl apply` stores a full copy of the object in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Calls a generic function for a [`Kind`] known only at run time (see
/// [`Kind::visit`]).
pub trait KindVisitor {
    /// What `visit` returns.
    type Output;
    /// Called with the Rust type of the kind.
    fn visit<K: Stored>(self) -> Self::Output;
}

macro_rules! stored {
    ($($ty:ty => $kind:ident, $field:ident $(, trim($obj:ident) $body:block)? $(, watch_in($ns:literal))?;)*) => {
        $(
            impl Stored for $ty {
                const KIND: Kind = Kind::$kind;
                fn objects(s: &Snapshot) -> &Objects<Self> { &s.$field }
                fn objects_mut(s: &mut Snapshot) -> &mut Objects<Self> { &mut s.$field }
                $(fn trim(&mut self) {
                    trim_metadata(kube::Resource::meta_mut(self));
                    let $obj = self;
                    $body
                })?
                $(fn watch_api(client: kube::Client) -> kube::Api<kube::core::DeserializeGuard<Self>> {
                    kube::Api::namespaced(client, $ns)
                })?
            }
        )*
        impl Snapshot {
            /// Applies [`Stored::trim`] to every object, as the operator's
            /// watch caches do before storing them (tests compare verdicts on
            /// trimmed and untrimmed snapshots).
            pub fn trim_all(&mut self) {
                $( self.$field.trim_all(); )*
            }
        }
        impl Kind {
            /// Calls `v.visit::<T>()` with the Rust type `T` of this kind.
            pub fn visit<V: KindVisitor>(self, v: V) -> V::Output {
                match self {
                    $(Kind::$kind => v.visit::<$ty>(),)*
                }
            }
        }
    };
}

/// Drops the metadata no check reads from the high-volume kinds: owner
/// references, finalizers, uid, generation, creation time, and labels and
/// annotations except the annotations named in `keep` (labels are read only on
/// Namespaces, ClusterRoles, Velero Backups and Pods, which keep theirs).
/// At 10,000 namespaces this is tens of MiB of label maps.
pub fn trim_unread_metadata(
    meta: &mut k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    keep: &[&str],
) {
    meta.labels = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.retain(|k, _| keep.contains(&k.as_str()));
    }
    if meta.annotations.as_ref().is_some_and(BTreeMap::is_empty) {
        meta.annotations = None;
    }
    meta.owner_references = None;
    meta.finalizers = None;
    meta.uid = None;
    meta.generation = None;
    meta.creation_timestamp = None;
    meta.generate_name = None;
}

/// Keeps of a pod template what the workload checks read: its labels (PDB
/// selection), `hostNetwork`/`hostPID`/`hostIPC`, the pod security context,
/// hostPath volumes, and per container and init container its name, image,
/// security context and whether it has a readiness probe.
pub fn trim_pod_template(t: &mut k8s_openapi::api::core::v1::PodTemplateSpec) {
    use k8s_openapi::api::core::v1::{Container, PodSpec, Probe, Volume};
    if let Some(m) = t.metadata.as_mut() {
        *m = k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
            labels: m.labels.take(),
            ..Default::default()
        };
    }
    let Some(spec) = t.spec.take() else {
        return;
    };
    let container = |c: Container| Container {
        name: c.name,
        image: c.image,
        security_context: c.security_context,
        readiness_probe: c.readiness_probe.map(|_| Probe::default()),
        ..Default::default()
    };
    t.spec = Some(PodSpec {
        containers: spec.containers.into_iter().map(container).collect(),
        init_containers: spec
            .init_containers
            .map(|cs| cs.into_iter().map(container).collect()),
        host_network: spec.host_network,
        host_pid: spec.host_pid,
        host_ipc: spec.host_ipc,
        security_context: spec.security_context,
        volumes: spec.volumes.map(|vs| {
            vs.into_iter()
                .filter(|v| v.host_path.is_some())
                .map(|v| Volume {
                    name: v.name,
                    host_path: v.host_path,
                    ..Default::default()
                })
                .collect()
        }),
        ..Default::default()
    });
}

/// Trims a workload (`Deployment`, `StatefulSet`, `DaemonSet`): no status, no
/// unread metadata, the pod template as [`trim_pod_template`] keeps it, and of
/// the spec only the template and the listed fields.
macro_rules! trim_workload {
    ($o:ident, $spec:ident { $($keep:ident),* }) => {{
        $o.status = None;
        trim_unread_metadata(&mut $o.metadata, &[]);
        if let Some(s) = $o.spec.as_mut() {
            trim_pod_template(&mut s.template);
            *s = k8s_openapi::api::apps::v1::$spec {
                $($keep: s.$keep,)*
                template: std::mem::take(&mut s.template),
                ..Default::default()
            };
        }
    }};
}

stored! {
    Namespace => Namespace, namespaces, trim(o) {
        o.status = None;
        o.spec = None;
        o.metadata.annotations = None;
        o.metadata.owner_references = None;
        o.metadata.finalizers = None;
    };
    NetworkPolicy => NetworkPolicy, network_policies, trim(o) { trim_unread_metadata(&mut o.metadata, &[]); };
    Ingress => Ingress, ingresses, trim(o) { o.status = None; trim_unread_metadata(&mut o.metadata, &[]); };
    Gateway => Gateway, gateways;
    HTTPRoute => HttpRoute, http_routes;
    PersistentVolumeClaim => PersistentVolumeClaim, persistent_volume_claims, trim(o) {
        o.status = None;
        trim_unread_metadata(&mut o.metadata, &[crate::checks::encryption::BETA_CLASS_ANNOTATION]);
        if let Some(s) = o.spec.as_mut() {
            *s = k8s_openapi::api::core::v1::PersistentVolumeClaimSpec {
                storage_class_name: s.storage_class_name.take(),
                ..Default::default()
            };
        }
    };
    StorageClass => StorageClass, storage_classes;
    Pod => Pod, pods, trim(o) { o.status = None; }, watch_in("kube-system");
    ClusterRole => ClusterRole, cluster_roles;
    ClusterRoleBinding => ClusterRoleBinding, cluster_role_bindings, trim(o) { trim_unread_metadata(&mut o.metadata, &[]); };
    Role => Role, roles, trim(o) { trim_unread_metadata(&mut o.metadata, &[]); };
    RoleBinding => RoleBinding, role_bindings, trim(o) { trim_unread_metadata(&mut o.metadata, &[]); };
    Deployment => Deployment, deployments, trim(o) { trim_workload!(o, DeploymentSpec { replicas }); };
    StatefulSet => StatefulSet, stateful_sets, trim(o) { trim_workload!(o, StatefulSetSpec { replicas }); };
    DaemonSet => DaemonSet, daemon_sets, trim(o) { trim_workload!(o, DaemonSetSpec {}); };
    PodDisruptionBudget => PodDisruptionBudget, pod_disruption_budgets, trim(o) {
        o.status = None;
        trim_unread_metadata(&mut o.metadata, &[]);
    };
    Schedule => VeleroSchedule, velero_schedules;
    Backup => VeleroBackup, velero_backups;
    Restore => VeleroRestore, velero_restores;
    BackupStorageLocation => VeleroBackupStorageLocation, velero_backup_storage_locations;
    VolumeSnapshot => VolumeSnapshot, volume_snapshots;
}

/// Objects of one kind, indexed by namespace (`""` for cluster-scoped objects),
/// each namespace's objects sorted by name (so lookups by name are binary
/// searches and iteration order is deterministic).
#[derive(Debug, Clone)]
pub struct Objects<K> {
    by_namespace: BTreeMap<String, Vec<Arc<K>>>,
    len: usize,
}

impl<K> Default for Objects<K> {
    fn default() -> Self {
        Objects {
            by_namespace: BTreeMap::new(),
            len: 0,
        }
    }
}

impl<K: kube::Resource> Objects<K> {
    /// Adds an object under its namespace (`""` when it has none), replacing an
    /// object of the same namespace and name.
    pub fn insert(&mut self, obj: Arc<K>) {
        let ns = obj.meta().namespace.clone().unwrap_or_default();
        let list = self.by_namespace.entry(ns).or_default();
        match list.binary_search_by(|o| name_of(o.as_ref()).cmp(name_of(obj.as_ref()))) {
            Ok(i) => list[i] = obj,
            Err(i) => {
                list.insert(i, obj);
                self.len += 1;
            }
        }
    }

    /// Applies [`Stored::trim`] to every object.
    pub fn trim_all(&mut self)
    where
        K: Stored,
    {
        for list in self.by_namespace.values_mut() {
            for o in list.iter_mut() {
                Arc::make_mut(o).trim();
            }
        }
    }

    /// Removes the object `namespace`/`name`; returns whether it was there.
    pub fn remove(&mut self, namespace: &str, name: &str) -> bool {
        let Some(list) = self.by_namespace.get_mut(namespace) else {
            return false;
        };
        let Ok(i) = list.binary_search_by(|o| name_of(o.as_ref()).cmp(name)) else {
            return false;
        };
        list.remove(i);
        self.len -= 1;
        if list.is_empty() {
            self.by_namespace.remove(namespace);
        }
        true
    }

    /// The objects in `namespace` (use `""` for cluster-scoped kinds), by name.
    pub fn in_namespace(&self, namespace: &str) -> &[Arc<K>] {
        self.by_namespace
            .get(namespace)
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// Every object, by namespace then name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<K>> {
        self.by_namespace.values().flatten()
    }

    /// The namespaces that hold at least one object.
    pub fn namespaces(&self) -> impl Iterator<Item = &str> {
        self.by_namespace.keys().map(String::as_str)
    }

    /// The object named `name` in `namespace`, if any (binary search).
    pub fn get(&self, namespace: &str, name: &str) -> Option<&Arc<K>> {
        let list = self.in_namespace(namespace);
        list.binary_search_by(|o| name_of(o.as_ref()).cmp(name))
            .ok()
            .map(|i| &list[i])
    }

    /// Number of objects.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when there are no objects.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// One sample of the API server metric
/// `apiserver_storage_transformation_operations_total`.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageTransformation {
    /// `to_storage` (encrypting writes) or `from_storage` (decrypting reads).
    pub transformation_type: String,
    /// The envelope prefix, e.g. `k8s:enc:aescbc:v1:key1:`; empty means identity.
    pub transformer_prefix: String,
    /// The `status` label (`OK` on success).
    pub status: String,
    /// Counter value.
    pub count: f64,
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

/// Everything the engine may read. Build with [`Default`] plus `insert_*`, or
/// [`Snapshot::insert_manifest`].
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Namespaces (cluster-scoped).
    pub namespaces: Objects<Namespace>,
    /// NetworkPolicies.
    pub network_policies: Objects<NetworkPolicy>,
    /// Ingresses.
    pub ingresses: Objects<Ingress>,
    /// Gateway API Gateways.
    pub gateways: Objects<Gateway>,
    /// Gateway API HTTPRoutes.
    pub http_routes: Objects<HTTPRoute>,
    /// PersistentVolumeClaims.
    pub persistent_volume_claims: Objects<PersistentVolumeClaim>,
    /// StorageClasses (cluster-scoped).
    pub storage_classes: Objects<StorageClass>,
    /// Pods (the operator caches only `kube-system`).
    pub pods: Objects<Pod>,
    /// ClusterRoles (cluster-scoped).
    pub cluster_roles: Objects<ClusterRole>,
    /// ClusterRoleBindings (cluster-scoped).
    pub cluster_role_bindings: Objects<ClusterRoleBinding>,
    /// Roles.
    pub roles: Objects<Role>,
    /// RoleBindings.
    pub role_bindings: Objects<RoleBinding>,
    /// Deployments.
    pub deployments: Objects<Deployment>,
    /// StatefulSets.
    pub stateful_sets: Objects<StatefulSet>,
    /// DaemonSets.
    pub daemon_sets: Objects<DaemonSet>,
    /// PodDisruptionBudgets.
    pub pod_disruption_budgets: Objects<PodDisruptionBudget>,
    /// Velero Schedules.
    pub velero_schedules: Objects<Schedule>,
    /// Velero Backups.
    pub velero_backups: Objects<Backup>,
    /// Velero Restores.
    pub velero_restores: Objects<Restore>,
    /// Velero BackupStorageLocations.
    pub velero_backup_storage_locations: Objects<BackupStorageLocation>,
    /// CSI VolumeSnapshots.
    pub volume_snapshots: Objects<VolumeSnapshot>,
    /// Optional kinds whose CRD is installed (see [`Kind::crd_name`]).
    installed: BTreeSet<Kind>,
    /// Samples of `apiserver_storage_transformation_operations_total`; `None`
    /// when the API server's `/metrics` was not read.
    pub storage_transformations: Option<Vec<StorageTransformation>>,
}

impl Snapshot {
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

    /// Adds one object from a manifest (JSON value of one YAML document).
    /// Namespaced objects without `metadata.namespace` go to `default_namespace`.
    /// A CustomResourceDefinition that provides an optional kind marks it
    /// installed. Returns the kind, or `None` for kinds no check reads.
    ///
    /// # Errors
    /// [`SnapshotError::NotAnObject`] without `apiVersion`/`kind`;
    /// [`SnapshotError::Invalid`] when a known kind does not deserialize.
    pub fn insert_manifest(
        &mut self,
        mut value: serde_json::Value,
        default_namespace: &str,
    ) -> Result<Option<Kind>, SnapshotError> {
        let (api_version, kind_name) = match (
            value.get("apiVersion").and_then(|v| v.as_str()),
            value.get("kind").and_then(|v| v.as_str()),
        ) {
            (Some(a), Some(k)) => (a.to_owned(), k.to_owned()),
            _ => {
                return Err(SnapshotError::NotAnObject(
                    "missing apiVersion or kind".into(),
                ));
            }
        };
        if kind_name == "CustomResourceDefinition" {
            if let Some(name) = value.pointer("/metadata/name").and_then(|v| v.as_str()) {
                for k in Kind::ALL {
                    if k.crd_name() == Some(name) {
                        self.installed.insert(k);
                    }
                }
            }
            return Ok(None);
        }
        let Some(kind) = Kind::from_type_meta(&api_version, &kind_name) else {
            return Ok(None);
        };
        if kind.crd_name().is_some() {
            // The typed custom resources require `spec`; an object without one
            // is read as having an empty spec rather than rejected.
            if let Some(o) = value.as_object_mut() {
                o.entry("spec").or_insert_with(|| serde_json::json!({}));
            }
        }
        if !kind.namespaced() {
            // A cluster-scoped object has no namespace, whatever the manifest says
            // (helm template output often sets one).
            if let Some(m) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                m.remove("namespace");
            }
        }
        if kind.namespaced() {
            let meta = value
                .as_object_mut()
                .and_then(|o| {
                    o.entry("metadata")
                        .or_insert_with(|| serde_json::json!({}))
                        .as_object_mut()
                })
                .ok_or_else(|| SnapshotError::NotAnObject("metadata is not an object".into()))?;
            if !meta.contains_key("namespace") {
                meta.insert("namespace".into(), default_namespace.into());
            }
        }
        let name = {
            let m = &value["metadata"];
            match (m["namespace"].as_str(), m["name"].as_str()) {
                (Some(ns), Some(n)) => format!("{ns}/{n}"),
                (None, Some(n)) => n.to_owned(),
                _ => "<unnamed>".to_owned(),
            }
        };
        struct Insert<'a> {
            snapshot: &'a mut Snapshot,
            value: serde_json::Value,
            name: String,
        }
        impl KindVisitor for Insert<'_> {
            type Output = Result<(), SnapshotError>;
            fn visit<K: Stored>(self) -> Self::Output {
                let mut obj: K = serde_json::from_value(self.value).map_err(|source| {
                    SnapshotError::Invalid {
                        kind: K::KIND.to_string(),
                        name: self.name,
                        source,
                    }
                })?;
                obj.trim();
                K::objects_mut(self.snapshot).insert(Arc::new(obj));
                Ok(())
            }
        }
        kind.visit(Insert {
            snapshot: self,
            value,
            name,
        })?;
        if kind.crd_name().is_some() {
            // An object of the kind proves its CRD exists.
            self.installed.insert(kind);
        }
        Ok(Some(kind))
    }

    /// Adds every document of a multi-document YAML string (see
    /// [`Snapshot::insert_manifest`]); empty documents are skipped. Returns how
    /// many objects of known kinds were added.
    ///
    /// # Errors
    /// The first document that is not valid YAML or not a valid object.
    pub fn insert_yaml(
        &mut self,
        yaml: &str,
        default_namespace: &str,
    ) -> Result<usize, SnapshotError> {
        use serde::Deserialize;
        let mut n = 0;
        for doc in serde_yaml::Deserializer::from_str(yaml) {
            let value = serde_json::Value::deserialize(doc)
                .map_err(|e| SnapshotError::NotAnObject(e.to_string()))?;
            if value.is_null() {
                continue;
            }
            n += self.insert_document(value, default_namespace)?;
        }
        Ok(n)
    }

    /// Adds one document: an object, or a `List` / `…List` kind whose `items`
    /// are added one by one. Returns how many objects of known kinds were added.
    ///
    /// # Errors
    /// As [`Snapshot::insert_manifest`], for the first failing item.
    pub fn insert_document(
        &mut self,
        value: serde_json::Value,
        default_namespace: &str,
    ) -> Result<usize, SnapshotError> {
        let is_list = value
            .get("kind")
            .and_then(|k| k.as_str())
            .is_some_and(|k| k.ends_with("List"))
            && value.get("items").is_some_and(|i| i.is_array());
        if is_list {
            let mut n = 0;
            if let Some(serde_json::Value::Array(items)) = value.get("items").cloned() {
                for item in items {
                    n += self.insert_document(item, default_namespace)?;
                }
            }
            return Ok(n);
        }
        Ok(usize::from(
            self.insert_manifest(value, default_namespace)?.is_some(),
        ))
    }

    /// Adds a Namespace object for every namespace that holds objects but has
    /// none of its own (offline manifests rarely include their Namespace).
    pub fn add_implicit_namespaces(&mut self) {
        let mut seen: BTreeSet<String> = BTreeSet::new();
        macro_rules! collect {
            ($($field:ident),*) => { $( seen.extend(self.$field.namespaces().filter(|n| !n.is_empty()).map(str::to_owned)); )* };
        }
        collect!(
            network_policies,
            ingresses,
            gateways,
            http_routes,
            persistent_volume_claims,
            pods,
            roles,
            role_bindings,
            deployments,
            stateful_sets,
            daemon_sets,
            pod_disruption_budgets
        );
        for ns in seen {
            if self.namespaces.get("", &ns).is_none() {
                let obj: Namespace = serde_json::from_value(serde_json::json!({
                    "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns}}
                }))
                .expect("static Namespace");
                self.namespaces.insert(Arc::new(obj));
            }
        }
    }

    /// Number of objects of all kinds.
    pub fn len(&self) -> usize {
        self.namespaces.len()
            + self.network_policies.len()
            + self.ingresses.len()
            + self.gateways.len()
            + self.http_routes.len()
            + self.persistent_volume_claims.len()
            + self.storage_classes.len()
            + self.pods.len()
            + self.cluster_roles.len()
            + self.cluster_role_bindings.len()
            + self.roles.len()
            + self.role_bindings.len()
            + self.deployments.len()
            + self.stateful_sets.len()
            + self.daemon_sets.len()
            + self.pod_disruption_budgets.len()
            + self.velero_schedules.len()
            + self.velero_backups.len()
            + self.velero_restores.len()
            + self.velero_backup_storage_locations.len()
            + self.volume_snapshots.len()
    }

    /// True when the snapshot holds no object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Parses the API server's `/metrics` text (Prometheus exposition format) and
    /// keeps the `apiserver_storage_transformation_operations_total` samples.
    ///
    /// # Errors
    /// [`SnapshotError::Metrics`] when the text cannot be parsed.
    pub fn set_apiserver_metrics(&mut self, text: &str) -> Result<(), SnapshotError> {
        self.storage_transformations = Some(parse_storage_transformations(text)?);
        Ok(())
    }
}

/// Extracts `apiserver_storage_transformation_operations_total` samples from
/// Prometheus text exposition format.
///
/// # Errors
/// [`SnapshotError::Metrics`] when the text cannot be parsed.
pub fn parse_storage_transformations(
    text: &str,
) -> Result<Vec<StorageTransformation>, SnapshotError> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines)
        .map_err(|e| SnapshotError::Metrics(e.to_string()))?;
    Ok(scrape
        .samples
        .into_iter()
        .filter(|s| s.metric == "apiserver_storage_transformation_operations_total")
        .map(|s| {
            let count = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            };
            let label = |k: &str| s.labels.get(k).unwrap_or_default().to_owned();
            StorageTransformation {
                transformation_type: label("transformation_type"),
                transformer_prefix: label("transformer_prefix"),
                status: label("status"),
                count,
            }
        })
        .collect())
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
