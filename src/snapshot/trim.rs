//! What the caches drop from an object before storing it: fields no check
//! reads. At 10,000 namespaces the untrimmed objects would cost tens of MiB
//! more (measured figures in BENCHMARKS.md); a test compares verdicts on
//! trimmed and untrimmed snapshots.
use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{
    Namespace, PersistentVolume, PersistentVolumeClaim, ResourceQuota, ServiceAccount,
};

use crate::resources::compact::{
    CronJob, DaemonSet, Deployment, HostAction, Job, Lifecycle, Pod, PodSpec, PodTemplateSpec,
    Probe, ReplicaSet, ReplicationController, StatefulSet,
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

/// The kinds whose pods (or Jobs, ReplicaSets) are judged through them, as
/// (API group, kind): a pod whose controller (`ownerReferences[].controller:
/// true`) is one of these is not judged itself. The group matters: an
/// OpenKruise `apps.kruise.io` StatefulSet or a Volcano `batch.volcano.sh`
/// Job is not read here, so its pods are judged as bare pods.
pub const POD_OWNER_KINDS: [(&str, &str); 7] = [
    ("apps", "ReplicaSet"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("batch", "Job"),
    ("", "ReplicationController"),
    ("apps", "Deployment"),
    ("batch", "CronJob"),
];

/// The kind of `meta`'s controller (`ownerReferences[]` with `controller:
/// true`) when it is one of [`POD_OWNER_KINDS`] (kind and API group), else
/// `None`: the object is then judged through that owner.
pub fn controller_kind(meta: &ObjectMeta) -> Option<&'static str> {
    let c = meta
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))?;
    let group = c.api_version.rsplit_once('/').map_or("", |(g, _)| g);
    POD_OWNER_KINDS
        .iter()
        .find(|(g, k)| *g == group && *k == c.kind)
        .map(|(_, k)| *k)
}

/// Keeps of `meta`'s owner references only the controller's kind and API
/// version, which decide whether the object is judged itself or through its
/// owner.
fn keep_controller_only(meta: &mut ObjectMeta) {
    if let Some(refs) = meta.owner_references.as_mut() {
        refs.retain(|o| o.controller == Some(true));
        for o in refs.iter_mut() {
            o.uid = String::new();
            o.name = String::new();
            o.block_owner_deletion = None;
        }
    }
    if meta.owner_references.as_ref().is_some_and(Vec::is_empty) {
        meta.owner_references = None;
    }
}

/// Unread metadata dropped ([`trim_unread_metadata`]) but the controller
/// owner reference kept.
fn trim_owned_metadata(meta: &mut ObjectMeta) {
    let owners = meta.owner_references.take();
    trim_unread_metadata(meta, &[]);
    meta.owner_references = owners;
    keep_controller_only(meta);
}

/// A Pod (its view decodes no `status`). In `kube-system` with its metadata
/// (kube-apiserver mirror pods: flags, labels, the mirror annotation).
/// Elsewhere (a pod judged through its owner is not cached at all, see
/// [`pod_cached`]) it keeps its controller reference, its AppArmor and
/// mirror annotations and the spec as [`trim_pod_spec`] keeps a template's.
pub fn pod(o: &mut Pod) {
    if o.metadata.namespace.as_deref() == Some("kube-system") {
        return;
    }
    let mut annotations = o.metadata.annotations.take();
    let mirror = annotations
        .as_mut()
        .and_then(|a| a.remove_entry(MIRROR_ANNOTATION));
    let mut kept = apparmor_only(annotations);
    if let Some((k, v)) = mirror {
        kept.get_or_insert_with(BTreeMap::new).insert(k, v);
    }
    trim_owned_metadata(&mut o.metadata);
    o.metadata.annotations = kept;
    if let Some(s) = o.spec.as_mut() {
        trim_pod_spec(s);
    }
}

/// Whether a pod is cached: in `kube-system` always (the API server's
/// pods), elsewhere unless its controller is of a kind in
/// [`POD_OWNER_KINDS`] (it is judged through its owner).
pub fn pod_cached(o: &Pod) -> bool {
    o.metadata.namespace.as_deref() == Some("kube-system") || controller_kind(&o.metadata).is_none()
}

/// Whether a ReplicaSet is cached: unless a Deployment controls it.
pub fn replica_set_cached(o: &ReplicaSet) -> bool {
    !controlled_by(&o.metadata, "Deployment")
}

/// Whether a Job is cached: unless a CronJob controls it.
pub fn job_cached(o: &Job) -> bool {
    !controlled_by(&o.metadata, "CronJob")
}

/// A PodDisruptionBudget without status or unread metadata.
pub fn pod_disruption_budget(o: &mut PodDisruptionBudget) {
    o.status = None;
    trim_unread_metadata(&mut o.metadata, &[]);
}

/// Keeps of a pod template what the workload checks read (the view already
/// holds little more, see [`crate::resources::compact`]): its labels (PDB
/// selection) and AppArmor annotations, and the spec as [`trim_pod_spec`]
/// keeps it.
pub fn trim_pod_template(t: &mut PodTemplateSpec) {
    if let Some(m) = t.metadata.as_mut() {
        m.annotations = apparmor_only(m.annotations.take());
    }
    if let Some(s) = t.spec.as_mut() {
        trim_pod_spec(s);
    }
}

/// Keeps of a pod spec (outside `kube-system`) what the checks read beyond
/// the view: of each container's ports only those with a host port; a
/// container's `command` and `args` are dropped (only the API server's
/// flags are read, on `kube-system` pods).
pub fn trim_pod_spec(spec: &mut PodSpec) {
    let containers = spec
        .containers
        .iter_mut()
        .chain(spec.init_containers.iter_mut().flatten())
        .chain(spec.ephemeral_containers.iter_mut().flatten());
    for c in containers {
        c.command = None;
        c.args = None;
        if let Some(ps) = c.ports.as_mut() {
            ps.retain(|p| p.host_port.is_some_and(|h| h != 0));
        }
        if c.ports.as_ref().is_some_and(Vec::is_empty) {
            c.ports = None;
        }
    }
}

/// Whether an `httpGet` or `tcpSocket` action names a `host` (the Pod
/// Security Standards forbid it in probes and lifecycle handlers).
pub fn probe_names_host(p: &Probe) -> bool {
    let set = |h: Option<&HostAction>| {
        h.and_then(|a| a.host.as_deref())
            .is_some_and(|h| !h.is_empty())
    };
    set(p.http_get.as_ref()) || set(p.tcp_socket.as_ref())
}

/// Whether a `postStart` or `preStop` handler names a `host`.
pub fn lifecycle_names_host(l: &Lifecycle) -> bool {
    [l.post_start.as_ref(), l.pre_stop.as_ref()]
        .into_iter()
        .flatten()
        .any(probe_names_host)
}

/// Of `annotations`, only the AppArmor ones (`None` when none are left).
fn apparmor_only(
    annotations: Option<BTreeMap<String, String>>,
) -> Option<BTreeMap<String, String>> {
    let mut a = annotations?;
    a.retain(|k, _| k.starts_with(APPARMOR_ANNOTATION_PREFIX));
    (!a.is_empty()).then_some(a)
}

/// The annotation the kubelet sets on the API object of a static pod (a
/// mirror pod): kept on bare pods, whose ServiceAccount admission does not
/// apply (a mirror pod gets no ServiceAccount token).
pub const MIRROR_ANNOTATION: &str = "kubernetes.io/config.mirror";

/// The prefix of the deprecated per-container AppArmor annotations of a pod
/// template, kept by [`trim_pod_template`] (the Pod Security Standards read
/// them).
pub const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

/// A Deployment: unread metadata dropped, the trimmed pod template.
pub fn deployment(o: &mut Deployment) {
    trim_unread_metadata(&mut o.metadata, &[]);
    if let Some(s) = o.spec.as_mut() {
        trim_pod_template(&mut s.template);
    }
}

/// A StatefulSet: unread metadata dropped, the trimmed pod template.
pub fn stateful_set(o: &mut StatefulSet) {
    trim_unread_metadata(&mut o.metadata, &[]);
    if let Some(s) = o.spec.as_mut() {
        trim_pod_template(&mut s.template);
    }
}

/// A DaemonSet: unread metadata dropped, the trimmed pod template.
pub fn daemon_set(o: &mut DaemonSet) {
    trim_unread_metadata(&mut o.metadata, &[]);
    if let Some(s) = o.spec.as_mut() {
        trim_pod_template(&mut s.template);
    }
}

/// Whether `meta`'s controller is of kind `kind`.
fn controlled_by(meta: &ObjectMeta, kind: &str) -> bool {
    controller_kind(meta) == Some(kind)
}

/// A ReplicaSet: its controller reference, replicas and trimmed pod
/// template (one a Deployment owns is not cached, see
/// [`replica_set_cached`]: at 10,000 namespaces there is one per Deployment
/// revision).
pub fn replica_set(o: &mut ReplicaSet) {
    trim_owned_metadata(&mut o.metadata);
    if let Some(t) = o.spec.as_mut().and_then(|s| s.template.as_mut()) {
        trim_pod_template(t);
    }
}

/// A ReplicationController: replicas and the trimmed pod template.
pub fn replication_controller(o: &mut ReplicationController) {
    trim_owned_metadata(&mut o.metadata);
    if let Some(t) = o.spec.as_mut().and_then(|s| s.template.as_mut()) {
        trim_pod_template(t);
    }
}

/// A Job: its controller reference and trimmed pod template (one a CronJob
/// owns is not cached, see [`job_cached`]).
pub fn job(o: &mut Job) {
    trim_owned_metadata(&mut o.metadata);
    if let Some(s) = o.spec.as_mut() {
        trim_pod_template(&mut s.template);
    }
}

/// A CronJob: the trimmed pod template of its `jobTemplate`.
pub fn cron_job(o: &mut CronJob) {
    trim_unread_metadata(&mut o.metadata, &[]);
    if let Some(j) = o.spec.job_template.spec.as_mut() {
        trim_pod_template(&mut j.template);
    }
}

/// A ServiceAccount keeps its name and `automountServiceAccountToken`.
pub fn service_account(o: &mut ServiceAccount) {
    trim_unread_metadata(&mut o.metadata, &[]);
    o.secrets = None;
    o.image_pull_secrets = None;
}

/// A ResourceQuota keeps its spec (`hard` and scopes), not its status.
pub fn resource_quota(o: &mut ResourceQuota) {
    trim_unread_metadata(&mut o.metadata, &[]);
    o.status = None;
}

/// A HorizontalPodAutoscaler: its target and `minReplicas` (the effective
/// minimum of the workload it scales).
pub fn horizontal_pod_autoscaler(o: &mut HorizontalPodAutoscaler) {
    o.status = None;
    trim_unread_metadata(&mut o.metadata, &[]);
    {
        let s = &mut o.spec;
        *s = k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerSpec {
            scale_target_ref: std::mem::take(&mut s.scale_target_ref),
            min_replicas: s.min_replicas,
            max_replicas: s.max_replicas,
            ..Default::default()
        };
    }
}
