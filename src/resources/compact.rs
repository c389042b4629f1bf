//! Compact views of the kinds that carry a pod spec — `v1` Pod and
//! ReplicationController, `apps/v1` Deployment, StatefulSet, DaemonSet and
//! ReplicaSet, `batch/v1` Job and CronJob — holding only what the checks
//! read, decoded straight from the API server's JSON (every other field,
//! `status` among them, is skipped by the decoder and never allocated).
//!
//! The types mirror the k8s-openapi ones field for field (same names, same
//! optionality), so a check reads `d.spec.as_ref().map(|s| &s.template)` on
//! either. What they do not keep, and why it does not matter:
//!
//! | kept | left out |
//! |---|---|
//! | pod spec: containers, init and ephemeral containers, `hostNetwork`/`hostPID`/`hostIPC`, `hostUsers`, `os`, the pod security context, volumes (name and source kind; `hostPath` whole), `automountServiceAccountToken`, `serviceAccountName`, the names of pod-level requested and limited resources | scheduling (affinity, tolerations, node selectors), DNS, restart policy, priority, overhead, resource claims |
//! | container: name, image, command and args, security context (the fields the Pod Security Standards read), host ports, whether each probe exists and the `host` it names, lifecycle handlers' `host`, the names of requested and limited resources | environment, mounts, container ports without a host port, probe timings, resource quantities |
//! | template metadata: labels, annotations | everything else of the template's metadata |
//!
//! Sizes in memory (Rust's layout, before any heap data): k8s-openapi's
//! `Deployment` is 2,448 bytes and `Container` 2,144 even when empty; the
//! views are a small fraction of that (figures per kind in BENCHMARKS.md,
//! "Bytes per cached object"). Source of the shapes: the Kubernetes API
//! reference for v1.36 (`PodSpec`, `Container`, `Volume`, `Probe`,
//! `LifecycleHandler`, `ResourceRequirements`).
use std::borrow::Cow;
use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    AppArmorProfile, Capabilities, HostPathVolumeSource, PodOS, SELinuxOptions, SeccompProfile,
    Sysctl, WindowsSecurityContextOptions,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A required field given as `null` (k8s-openapi reads it as the default,
/// and so does the view, so that what validates offline also loads).
fn null_default<'de, D: Deserializer<'de>, T: Deserialize<'de> + Default>(
    d: D,
) -> Result<T, D::Error> {
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Implements k8s-openapi's `Resource`, `ListableResource` and `Metadata`
/// (and so kube's `Resource`) for a view of a namespaced kind.
macro_rules! namespaced_resource {
    ($ty:ident, $group:literal, $version:literal, $api_version:literal, $kind:literal, $plural:literal) => {
        impl k8s_openapi::Resource for $ty {
            const API_VERSION: &'static str = $api_version;
            const GROUP: &'static str = $group;
            const KIND: &'static str = $kind;
            const VERSION: &'static str = $version;
            const URL_PATH_SEGMENT: &'static str = $plural;
            type Scope = k8s_openapi::NamespaceResourceScope;
        }
        impl k8s_openapi::ListableResource for $ty {
            const LIST_KIND: &'static str = concat!($kind, "List");
        }
        impl k8s_openapi::Metadata for $ty {
            type Ty = ObjectMeta;
            fn metadata(&self) -> &ObjectMeta {
                &self.metadata
            }
            fn metadata_mut(&mut self) -> &mut ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

/// A `v1` Pod: metadata and spec (`status` is not read).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Pod {
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// The pod spec.
    pub spec: Option<PodSpec>,
}
namespaced_resource!(Pod, "", "v1", "v1", "Pod", "pods");

/// An `apps/v1` Deployment.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Deployment {
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// `spec`: replicas and the pod template.
    pub spec: Option<ReplicatedSpec>,
}
namespaced_resource!(
    Deployment,
    "apps",
    "v1",
    "apps/v1",
    "Deployment",
    "deployments"
);

/// An `apps/v1` StatefulSet.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct StatefulSet {
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// `spec`: replicas and the pod template.
    pub spec: Option<ReplicatedSpec>,
}
namespaced_resource!(
    StatefulSet,
    "apps",
    "v1",
    "apps/v1",
    "StatefulSet",
    "statefulsets"
);

/// An `apps/v1` DaemonSet (one pod per eligible node).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct DaemonSet {
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// `spec`: the pod template.
    pub spec: Option<TemplateSpec>,
}
namespaced_resource!(
    DaemonSet,
    "apps",
    "v1",
    "apps/v1",
    "DaemonSet",
    "daemonsets"
);

/// An `apps/v1` ReplicaSet.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ReplicaSet {
    /// Standard object metadata (its controller reference tells whether a
    /// Deployment owns it).
    pub metadata: ObjectMeta,
    /// `spec`: replicas and the (optional) pod template.
    pub spec: Option<OptionalTemplateSpec>,
}
namespaced_resource!(
    ReplicaSet,
    "apps",
    "v1",
    "apps/v1",
    "ReplicaSet",
    "replicasets"
);

/// A `v1` ReplicationController.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ReplicationController {
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// `spec`: replicas and the (optional) pod template.
    pub spec: Option<OptionalTemplateSpec>,
}
namespaced_resource!(
    ReplicationController,
    "",
    "v1",
    "v1",
    "ReplicationController",
    "replicationcontrollers"
);

/// A `batch/v1` Job.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Job {
    /// Standard object metadata (its controller reference tells whether a
    /// CronJob owns it).
    pub metadata: ObjectMeta,
    /// `spec`: the pod template.
    pub spec: Option<TemplateSpec>,
}
namespaced_resource!(Job, "batch", "v1", "batch/v1", "Job", "jobs");

/// A `batch/v1` CronJob.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CronJob {
    /// Standard object metadata.
    pub metadata: ObjectMeta,
    /// `spec`: the schedule and the Job template.
    #[serde(deserialize_with = "null_default")]
    pub spec: CronJobSpec,
}
namespaced_resource!(CronJob, "batch", "v1", "batch/v1", "CronJob", "cronjobs");

/// `CronJob.spec`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CronJobSpec {
    /// The cron schedule (`0 3 * * *`).
    #[serde(deserialize_with = "null_default")]
    pub schedule: String,
    /// `jobTemplate`: the Job each run creates.
    #[serde(deserialize_with = "null_default")]
    pub job_template: JobTemplateSpec,
}

/// `CronJob.spec.jobTemplate`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct JobTemplateSpec {
    /// The Job's spec: its pod template.
    pub spec: Option<TemplateSpec>,
}

/// The spec of a Deployment or StatefulSet: `replicas` and `template`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ReplicatedSpec {
    /// Desired replicas; absent means 1 (the API server defaults it).
    pub replicas: Option<i32>,
    /// The pod template.
    #[serde(deserialize_with = "null_default")]
    pub template: PodTemplateSpec,
}

/// The spec of a DaemonSet or Job: `template`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TemplateSpec {
    /// The pod template.
    #[serde(deserialize_with = "null_default")]
    pub template: PodTemplateSpec,
}

/// The spec of a ReplicaSet or ReplicationController: `replicas` and an
/// optional `template`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct OptionalTemplateSpec {
    /// Desired replicas; absent means 1.
    pub replicas: Option<i32>,
    /// The pod template.
    pub template: Option<PodTemplateSpec>,
}

/// A pod template: the labels and annotations its pods get, and their spec.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodTemplateSpec {
    /// The template's metadata (labels and annotations only).
    pub metadata: Option<TemplateMeta>,
    /// The pod spec.
    pub spec: Option<PodSpec>,
}

/// The metadata of a pod template, as far as the checks read it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct TemplateMeta {
    /// Labels (PodDisruptionBudget and NetworkPolicy selection).
    pub labels: Option<BTreeMap<String, String>>,
    /// Annotations (the caches keep only AppArmor's).
    pub annotations: Option<BTreeMap<String, String>>,
}

/// A pod spec, as far as the checks read it (see the module documentation).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSpec {
    /// `containers`.
    #[serde(deserialize_with = "null_default")]
    pub containers: Vec<Container>,
    /// `initContainers` (sidecars among them).
    pub init_containers: Option<Vec<Container>>,
    /// `ephemeralContainers` (added to running pods by `kubectl debug`).
    pub ephemeral_containers: Option<Vec<Container>>,
    /// `hostNetwork`.
    pub host_network: Option<bool>,
    /// `hostPID`.
    #[serde(rename = "hostPID")]
    pub host_pid: Option<bool>,
    /// `hostIPC`.
    #[serde(rename = "hostIPC")]
    pub host_ipc: Option<bool>,
    /// `hostUsers` (`false`: a user namespace).
    pub host_users: Option<bool>,
    /// `os` (`windows` exempts some Pod Security Standards rules).
    pub os: Option<PodOS>,
    /// The pod-level security context.
    pub security_context: Option<Box<PodSecurityContext>>,
    /// `volumes`.
    pub volumes: Option<Vec<Volume>>,
    /// `automountServiceAccountToken`: absent means the ServiceAccount
    /// decides (and absent there means mounted).
    pub automount_service_account_token: Option<bool>,
    /// `serviceAccountName`: absent means `default`.
    pub service_account_name: Option<String>,
    /// `serviceAccount`: the deprecated alias of `serviceAccountName`, read
    /// when that is absent (the API server copies it over; offline
    /// manifests may still use it).
    #[serde(rename = "serviceAccount")]
    pub service_account: Option<String>,
    /// Pod-level `resources` (cpu and memory for the whole pod): which
    /// resources are requested and limited.
    pub resources: Option<ResourceRequirements>,
}

/// A container (also an init or ephemeral container), as far as the checks
/// read it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Container {
    /// `name`.
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    /// `image`.
    pub image: Option<String>,
    /// `command` (the caches keep it for `kube-system` pods only: the API
    /// server's flags).
    pub command: Option<Vec<String>>,
    /// `args` (as `command`).
    pub args: Option<Vec<String>>,
    /// The container's security context.
    pub security_context: Option<Box<SecurityContext>>,
    /// `ports` (the caches keep those with a `hostPort` only).
    pub ports: Option<Vec<ContainerPort>>,
    /// `readinessProbe`.
    pub readiness_probe: Option<Probe>,
    /// `livenessProbe`.
    pub liveness_probe: Option<Probe>,
    /// `startupProbe`.
    pub startup_probe: Option<Probe>,
    /// `lifecycle`.
    pub lifecycle: Option<Lifecycle>,
    /// `resources`: which resources are requested and limited.
    pub resources: Option<ResourceRequirements>,
}

/// A container's `securityContext`, as far as the Pod Security Standards
/// and the workload checks read it (not `readOnlyRootFilesystem`,
/// `runAsGroup`); the rarely set option structs are boxed.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct SecurityContext {
    /// `allowPrivilegeEscalation`.
    pub allow_privilege_escalation: Option<bool>,
    /// `appArmorProfile`.
    pub app_armor_profile: Option<Box<AppArmorProfile>>,
    /// `capabilities`.
    pub capabilities: Option<Capabilities>,
    /// `privileged`.
    pub privileged: Option<bool>,
    /// `procMount`.
    pub proc_mount: Option<String>,
    /// `runAsNonRoot`.
    pub run_as_non_root: Option<bool>,
    /// `runAsUser`.
    pub run_as_user: Option<i64>,
    /// `seLinuxOptions`.
    pub se_linux_options: Option<Box<SELinuxOptions>>,
    /// `seccompProfile`.
    pub seccomp_profile: Option<SeccompProfile>,
    /// `windowsOptions`.
    pub windows_options: Option<Box<WindowsSecurityContextOptions>>,
}

/// A pod's `securityContext`, as far as the Pod Security Standards read it
/// (not `fsGroup`, `runAsGroup`, `supplementalGroups`); the rarely set
/// option structs are boxed.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PodSecurityContext {
    /// `appArmorProfile`.
    pub app_armor_profile: Option<Box<AppArmorProfile>>,
    /// `runAsNonRoot`.
    pub run_as_non_root: Option<bool>,
    /// `runAsUser`.
    pub run_as_user: Option<i64>,
    /// `seLinuxOptions`.
    pub se_linux_options: Option<Box<SELinuxOptions>>,
    /// `seccompProfile`.
    pub seccomp_profile: Option<SeccompProfile>,
    /// `sysctls`.
    pub sysctls: Option<Vec<Sysctl>>,
    /// `windowsOptions`.
    pub windows_options: Option<Box<WindowsSecurityContextOptions>>,
}

/// A container port.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ContainerPort {
    /// `containerPort`.
    #[serde(deserialize_with = "null_default")]
    pub container_port: i32,
    /// `hostPort` (0 or absent: none).
    pub host_port: Option<i32>,
}

/// A probe, as far as the Pod Security Standards read it: the `host` of its
/// `httpGet` or `tcpSocket` action.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Probe {
    /// `httpGet`.
    pub http_get: Option<HostAction>,
    /// `tcpSocket`.
    pub tcp_socket: Option<HostAction>,
}

/// A container's `lifecycle`.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct Lifecycle {
    /// `postStart`.
    pub post_start: Option<Probe>,
    /// `preStop`.
    pub pre_stop: Option<Probe>,
}

/// An `httpGet` or `tcpSocket` action: the `host` it names, if any.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default)]
pub struct HostAction {
    /// `host` (absent or empty: the pod's own IP).
    pub host: Option<String>,
}

/// A container's `resources`: the names of what it requests and limits
/// (`cpu`, `memory`, `ephemeral-storage`, extended resources), without the
/// quantities.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ResourceRequirements {
    /// `requests`.
    pub requests: Option<ResourceNames>,
    /// `limits`.
    pub limits: Option<ResourceNames>,
}

/// The keys of a `ResourceList` (a map from resource name to quantity),
/// sorted; decoded from the map without keeping the quantities.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResourceNames(pub Vec<String>);

impl ResourceNames {
    /// Whether `name` is listed.
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|n| n == name)
    }
}

impl<'de> Deserialize<'de> for ResourceNames {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Names;
        impl<'de> Visitor<'de> for Names {
            type Value = ResourceNames;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map of resource names to quantities")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ResourceNames, A::Error> {
                let mut names = Vec::new();
                while let Some(k) = map.next_key::<String>()? {
                    map.next_value::<IgnoredAny>()?;
                    names.push(k);
                }
                names.sort();
                Ok(ResourceNames(names))
            }
        }
        d.deserialize_map(Names)
    }
}

impl Serialize for ResourceNames {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|n| (n, "")))
    }
}

/// The volume sources of `v1` `Volume` (API reference v1.36), as their JSON
/// field names. A source not listed here (added by a later Kubernetes) is
/// kept under its own name and is of no kind the checks allow.
pub const VOLUME_SOURCES: [&str; 30] = [
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "gitRepo",
    "glusterfs",
    "hostPath",
    "image",
    "iscsi",
    "nfs",
    "persistentVolumeClaim",
    "photonPersistentDisk",
    "portworxVolume",
    "projected",
    "quobyte",
    "rbd",
    "scaleIO",
    "secret",
    "storageos",
    "vsphereVolume",
];

/// A pod volume: its name, which source it is (the JSON field name, e.g.
/// `configMap`; `None` when it names none), and a `hostPath` source whole.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Volume {
    /// `name`.
    pub name: String,
    /// The source's field name, from [`VOLUME_SOURCES`] (or as given).
    pub source: Option<Cow<'static, str>>,
    /// The `hostPath` source, when it is one.
    pub host_path: Option<HostPathVolumeSource>,
}

impl Volume {
    /// Whether the volume's source is `source` (a JSON field name).
    pub fn is(&self, source: &str) -> bool {
        self.source.as_deref() == Some(source)
    }
}

impl<'de> Deserialize<'de> for Volume {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Volume;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a volume: its name and one source")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Volume, A::Error> {
                let mut v = Volume::default();
                while let Some(k) = map.next_key::<Cow<'de, str>>()? {
                    match k.as_ref() {
                        "name" => v.name = map.next_value::<Option<String>>()?.unwrap_or_default(),
                        "hostPath" => {
                            v.host_path = map.next_value()?;
                            v.source = Some(Cow::Borrowed("hostPath"));
                        }
                        other => {
                            map.next_value::<IgnoredAny>()?;
                            v.source = Some(match VOLUME_SOURCES.iter().find(|s| **s == other) {
                                Some(s) => Cow::Borrowed(*s),
                                None => Cow::Owned(other.to_owned()),
                            });
                        }
                    }
                }
                Ok(v)
            }
        }
        d.deserialize_map(V)
    }
}

impl Serialize for Volume {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("name", &self.name)?;
        match (&self.host_path, self.source.as_deref()) {
            (Some(h), _) => m.serialize_entry("hostPath", h)?,
            (None, Some(src)) => m.serialize_entry(src, &serde_json::json!({}))?,
            (None, None) => {}
        }
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_volume_is_its_name_and_the_kind_of_its_source() {
        let vs: Vec<Volume> = serde_json::from_value(serde_json::json!([
            {"name": "cfg", "configMap": {"name": "x", "items": [{"key": "a", "path": "a"}]}},
            {"name": "host", "hostPath": {"path": "/var/run", "type": "Directory"}},
            {"name": "future", "someNewSource": {"x": 1}},
            {"name": "none"}
        ]))
        .unwrap();
        assert!(vs[0].is("configMap") && vs[0].host_path.is_none());
        assert_eq!(vs[1].host_path.as_ref().unwrap().path, "/var/run");
        assert!(vs[1].is("hostPath"));
        assert_eq!(vs[2].source.as_deref(), Some("someNewSource"));
        assert_eq!(vs[3].source, None);
        // Known names are borrowed, not allocated per volume.
        assert!(matches!(vs[0].source, Some(Cow::Borrowed(_))));
    }

    #[test]
    fn resource_lists_keep_their_names_only() {
        let r: ResourceRequirements = serde_json::from_value(serde_json::json!(
            {"requests": {"memory": "1Gi", "cpu": "100m"}, "limits": {"nvidia.com/gpu": 1}}
        ))
        .unwrap();
        assert_eq!(r.requests.unwrap().0, ["cpu", "memory"]);
        assert!(r.limits.unwrap().contains("nvidia.com/gpu"));
    }

    #[test]
    fn a_pod_is_decoded_without_its_status() {
        let p: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"hostPID": true, "hostIPC": false, "containers": [{"name": "c", "env": [{"name": "X", "value": "y"}]}]},
            "status": {"phase": "Running", "containerStatuses": [{"name": "c"}]}
        }))
        .unwrap();
        let spec = p.spec.unwrap();
        assert_eq!((spec.host_pid, spec.host_ipc), (Some(true), Some(false)));
        assert_eq!(spec.containers[0].name, "c");
    }
}
