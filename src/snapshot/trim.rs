//! What the caches drop from an object before storing it: fields no check
//! reads. At 10,000 namespaces the untrimmed objects would cost tens of MiB
//! more (measured figures in BENCHMARKS.md); a test compares verdicts on
//! trimmed and untrimmed snapshots.
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{
    Container, Namespace, PersistentVolume, PersistentVolumeClaim, Pod, PodSpec, PodTemplateSpec,
    Probe, Volume,
};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The annotation `kubectl apply` stores a full copy of the object in.
pub const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The deprecated PVC annotation that Kubernetes still prefers over
/// `spec.storageClassName` (kept by the PVC trim; read by the encryption check).
pub const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// Drops `managedFields`, the last-applied annotation and `resourceVersion`
/// from `meta` (a write that changes only those is not a change to the checks).
pub fn trim_metadata(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    meta.resource_version = None;
    if let Some(a) = meta.annotations.as_mut() {
        a.remove(LAST_APPLIED_ANNOTATION);
        if a.is_empty() {
            meta.annotations = None;
        }
    }
}

/// The default trim of every kind: [`trim_metadata`].
pub fn metadata<K: kube::Resource>(obj: &mut K) {
    trim_metadata(obj.meta_mut());
}

/// Drops the metadata no check reads from the high-volume kinds: owner
/// references, finalizers, uid, generation, creation time, and labels and
/// annotations except the annotations named in `keep` (labels are read only on
/// Namespaces, ClusterRoles, Velero Backups and Pods, which keep theirs).
/// At 10,000 namespaces this is tens of MiB of label maps.
pub fn trim_unread_metadata(meta: &mut ObjectMeta, keep: &[&str]) {
    trim_metadata(meta);
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

/// Metadata and spec only as far as read: [`trim_unread_metadata`].
pub fn unread_metadata<K: kube::Resource>(obj: &mut K) {
    trim_unread_metadata(obj.meta_mut(), &[]);
}

/// A Namespace keeps its name, uid and labels (scope selectors read them).
pub fn namespace(o: &mut Namespace) {
    trim_metadata(&mut o.metadata);
    o.status = None;
    o.spec = None;
    o.metadata.annotations = None;
    o.metadata.owner_references = None;
    o.metadata.finalizers = None;
}

/// The Ingress annotations that turn plain HTTP on or off (ingress-nginx's
/// `ssl-redirect` and `force-ssl-redirect`, GCE's `allow-http`), kept by the
/// Ingress trim and read by the in-transit check.
pub const INGRESS_HTTP_ANNOTATIONS: [&str; 3] = [
    "nginx.ingress.kubernetes.io/ssl-redirect",
    "nginx.ingress.kubernetes.io/force-ssl-redirect",
    "kubernetes.io/ingress.allow-http",
];

/// An Ingress without status or unread metadata (it keeps
/// [`INGRESS_HTTP_ANNOTATIONS`]).
pub fn ingress(o: &mut Ingress) {
    o.status = None;
    trim_unread_metadata(&mut o.metadata, &INGRESS_HTTP_ANNOTATIONS);
}

/// A PVC keeps its StorageClass (field and beta annotation), the volume it
/// is bound to, and its creation time.
pub fn persistent_volume_claim(o: &mut PersistentVolumeClaim) {
    o.status = None;
    // The backup check compares snapshot times with the claim's creation.
    let created = o.metadata.creation_timestamp.take();
    trim_unread_metadata(&mut o.metadata, &[BETA_CLASS_ANNOTATION]);
    o.metadata.creation_timestamp = created;
    if let Some(s) = o.spec.as_mut() {
        *s = k8s_openapi::api::core::v1::PersistentVolumeClaimSpec {
            storage_class_name: s.storage_class_name.take(),
            volume_name: s.volume_name.take(),
            ..Default::default()
        };
    }
}

/// The annotation the PV controller sets on a dynamically provisioned volume,
/// naming its provisioner.
pub const PROVISIONED_BY_ANNOTATION: &str = "pv.kubernetes.io/provisioned-by";

/// A PersistentVolume keeps its StorageClass and whether (and by whom) it was
/// dynamically provisioned.
pub fn persistent_volume(o: &mut PersistentVolume) {
    o.status = None;
    trim_unread_metadata(&mut o.metadata, &[PROVISIONED_BY_ANNOTATION]);
    if let Some(s) = o.spec.as_mut() {
        *s = k8s_openapi::api::core::v1::PersistentVolumeSpec {
            storage_class_name: s.storage_class_name.take(),
            ..Default::default()
        };
    }
}

/// A Pod without status (kube-apiserver mirror pods: flags and labels).
pub fn pod(o: &mut Pod) {
    trim_metadata(&mut o.metadata);
    o.status = None;
}

/// A PodDisruptionBudget without status or unread metadata.
pub fn pod_disruption_budget(o: &mut PodDisruptionBudget) {
    o.status = None;
    trim_unread_metadata(&mut o.metadata, &[]);
}

/// Keeps of a pod template what the workload checks read: its labels (PDB
/// selection), `hostNetwork`/`hostPID`/`hostIPC`, the pod security context,
/// hostPath volumes, and per container and init container its name, image,
/// security context and whether it has a readiness probe.
pub fn trim_pod_template(t: &mut PodTemplateSpec) {
    if let Some(m) = t.metadata.as_mut() {
        *m = ObjectMeta {
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

/// A Deployment: replicas and the trimmed pod template.
pub fn deployment(o: &mut Deployment) {
    trim_workload!(o, DeploymentSpec { replicas });
}

/// A StatefulSet: replicas and the trimmed pod template.
pub fn stateful_set(o: &mut StatefulSet) {
    trim_workload!(o, StatefulSetSpec { replicas });
}

/// A DaemonSet: the trimmed pod template.
pub fn daemon_set(o: &mut DaemonSet) {
    trim_workload!(o, DaemonSetSpec {});
}
