//! What the caches drop from an object before storing it: fields no check
//! reads. At 10,000 namespaces the untrimmed objects would cost tens of MiB
//! more (measured figures in BENCHMARKS.md); a test compares verdicts on
//! trimmed and untrimmed snapshots.
use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{
    Container, Lifecycle, Namespace, PersistentVolume, PersistentVolumeClaim, Pod, PodSpec,
    PodTemplateSpec, Probe, ReplicationController, Volume,
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

/// The kinds whose pods (or Jobs, ReplicaSets) are judged through them: a
/// pod whose controller (`ownerReferences[].controller: true`) is of one of
/// these kinds is not judged itself.
pub const POD_OWNER_KINDS: [&str; 7] = [
    "ReplicaSet",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "ReplicationController",
    "Deployment",
    "CronJob",
];

/// The kind of `meta`'s controller (`ownerReferences[]` with `controller:
/// true`), if any.
pub fn controller_kind(meta: &ObjectMeta) -> Option<&str> {
    meta.owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.kind.as_str())
}

/// Keeps of `meta`'s owner references only the controller, which decides
/// whether the object is judged itself or through its owner.
fn keep_controller_only(meta: &mut ObjectMeta) {
    if let Some(refs) = meta.owner_references.as_mut() {
        refs.retain(|o| o.controller == Some(true));
        for o in refs.iter_mut() {
            o.uid = String::new();
            o.api_version = String::new();
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

/// A Pod. In `kube-system` without status only (kube-apiserver mirror pods:
/// flags, labels, the mirror annotation). Elsewhere, a pod whose controller
/// is of a kind in [`POD_OWNER_KINDS`] keeps only its name and controller
/// reference (it is judged through its owner: at 10,000 namespaces these are
/// most of the cached pods); a bare pod keeps its controller reference, its
/// AppArmor annotations and the spec as [`trim_pod_template`] keeps a
/// template's.
pub fn pod(o: &mut Pod) {
    o.status = None;
    if o.metadata.namespace.as_deref() == Some("kube-system") {
        trim_metadata(&mut o.metadata);
        return;
    }
    let apparmor = apparmor_only(o.metadata.annotations.take());
    trim_owned_metadata(&mut o.metadata);
    o.metadata.annotations = apparmor;
    if controller_kind(&o.metadata).is_some_and(|k| POD_OWNER_KINDS.contains(&k)) {
        o.spec = None;
        return;
    }
    let mut t = PodTemplateSpec {
        metadata: None,
        spec: o.spec.take(),
    };
    trim_pod_template(&mut t);
    o.spec = t.spec;
}

/// A PodDisruptionBudget without status or unread metadata.
pub fn pod_disruption_budget(o: &mut PodDisruptionBudget) {
    o.status = None;
    trim_unread_metadata(&mut o.metadata, &[]);
}

/// Keeps of a pod template what the workload checks read: its labels (PDB
/// selection) and AppArmor annotations, `hostNetwork`/`hostPID`/`hostIPC`,
/// `os`, `hostUsers`, `automountServiceAccountToken`, the pod security
/// context, each volume's name and kind (hostPath whole), ephemeral
/// containers, and per container and init container its name, image,
/// security context, host ports, whether it has a readiness probe, and
/// probes or lifecycle handlers that name a host.
pub fn trim_pod_template(t: &mut PodTemplateSpec) {
    if let Some(m) = t.metadata.as_mut() {
        *m = ObjectMeta {
            labels: m.labels.take(),
            annotations: apparmor_only(m.annotations.take()),
            ..Default::default()
        };
    }
    let Some(spec) = t.spec.take() else {
        return;
    };
    // Probes and lifecycle handlers are kept whole only when they name a host
    // (Pod Security Standards); otherwise a readiness probe is kept as a mark.
    let container = |c: Container| Container {
        name: c.name,
        image: c.image,
        security_context: c.security_context,
        readiness_probe: c.readiness_probe.map(|p| {
            if probe_names_host(&p) {
                p
            } else {
                Probe::default()
            }
        }),
        liveness_probe: c.liveness_probe.filter(probe_names_host),
        startup_probe: c.startup_probe.filter(probe_names_host),
        lifecycle: c.lifecycle.filter(lifecycle_names_host),
        ports: c
            .ports
            .map(|ps| {
                ps.into_iter()
                    .filter(|p| p.host_port.is_some_and(|h| h != 0))
                    .collect::<Vec<_>>()
            })
            .filter(|ps| !ps.is_empty()),
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
        volumes: spec
            .volumes
            .map(|vs| vs.into_iter().map(volume_kind).collect()),
        os: spec.os,
        host_users: spec.host_users,
        automount_service_account_token: spec.automount_service_account_token,
        ephemeral_containers: spec.ephemeral_containers,
        ..Default::default()
    });
}

/// A volume reduced to its name and which source it is (an empty source of
/// that kind; `hostPath` kept whole). Every field of `Volume` is listed, so a
/// source added to the API is a compile error here, not a volume of no kind.
fn volume_kind(v: Volume) -> Volume {
    fn mark<T: Default>(o: Option<T>) -> Option<T> {
        o.map(|_| T::default())
    }
    Volume {
        name: v.name,
        host_path: v.host_path,
        aws_elastic_block_store: mark(v.aws_elastic_block_store),
        azure_disk: mark(v.azure_disk),
        azure_file: mark(v.azure_file),
        cephfs: mark(v.cephfs),
        cinder: mark(v.cinder),
        config_map: mark(v.config_map),
        csi: mark(v.csi),
        downward_api: mark(v.downward_api),
        empty_dir: mark(v.empty_dir),
        ephemeral: mark(v.ephemeral),
        fc: mark(v.fc),
        flex_volume: mark(v.flex_volume),
        flocker: mark(v.flocker),
        gce_persistent_disk: mark(v.gce_persistent_disk),
        git_repo: mark(v.git_repo),
        glusterfs: mark(v.glusterfs),
        image: mark(v.image),
        iscsi: mark(v.iscsi),
        nfs: mark(v.nfs),
        persistent_volume_claim: mark(v.persistent_volume_claim),
        photon_persistent_disk: mark(v.photon_persistent_disk),
        portworx_volume: mark(v.portworx_volume),
        projected: mark(v.projected),
        quobyte: mark(v.quobyte),
        rbd: mark(v.rbd),
        scale_io: mark(v.scale_io),
        secret: mark(v.secret),
        storageos: mark(v.storageos),
        vsphere_volume: mark(v.vsphere_volume),
    }
}

/// Whether an `httpGet` or `tcpSocket` action names a `host` (the Pod
/// Security Standards forbid it in probes and lifecycle handlers).
fn action_names_host(
    http: Option<&k8s_openapi::api::core::v1::HTTPGetAction>,
    tcp: Option<&k8s_openapi::api::core::v1::TCPSocketAction>,
) -> bool {
    let set = |h: Option<&String>| h.is_some_and(|h| !h.is_empty());
    set(http.and_then(|g| g.host.as_ref())) || set(tcp.and_then(|t| t.host.as_ref()))
}

/// Whether a probe names a `host`.
pub fn probe_names_host(p: &Probe) -> bool {
    action_names_host(p.http_get.as_ref(), p.tcp_socket.as_ref())
}

/// Whether a `postStart` or `preStop` handler names a `host`.
pub fn lifecycle_names_host(l: &Lifecycle) -> bool {
    [l.post_start.as_ref(), l.pre_stop.as_ref()]
        .into_iter()
        .flatten()
        .any(|h| action_names_host(h.http_get.as_ref(), h.tcp_socket.as_ref()))
}

/// Of `annotations`, only the AppArmor ones (`None` when none are left).
fn apparmor_only(
    annotations: Option<BTreeMap<String, String>>,
) -> Option<BTreeMap<String, String>> {
    let mut a = annotations?;
    a.retain(|k, _| k.starts_with(APPARMOR_ANNOTATION_PREFIX));
    (!a.is_empty()).then_some(a)
}

/// The prefix of the deprecated per-container AppArmor annotations of a pod
/// template, kept by [`trim_pod_template`] (the Pod Security Standards read
/// them).
pub const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";

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

/// Trims a controller whose pod template is optional (`ReplicaSet`,
/// `ReplicationController`): no status, unread metadata dropped but the
/// controller reference kept, and of the spec only replicas and the template
/// as [`trim_pod_template`] keeps it.
macro_rules! trim_replicated {
    ($o:ident, $($spec:ident)::+) => {{
        $o.status = None;
        trim_owned_metadata(&mut $o.metadata);
        if let Some(s) = $o.spec.as_mut() {
            if let Some(t) = s.template.as_mut() {
                trim_pod_template(t);
            }
            *s = $($spec)::+ {
                replicas: s.replicas,
                template: s.template.take(),
                ..Default::default()
            };
        }
    }};
}

/// A ReplicaSet: replicas, its controller reference (a Deployment's is judged
/// through the Deployment) and the trimmed pod template.
pub fn replica_set(o: &mut ReplicaSet) {
    trim_replicated!(o, k8s_openapi::api::apps::v1::ReplicaSetSpec);
}

/// A ReplicationController: replicas and the trimmed pod template.
pub fn replication_controller(o: &mut ReplicationController) {
    trim_replicated!(o, k8s_openapi::api::core::v1::ReplicationControllerSpec);
}

/// A Job: its controller reference (a CronJob's is judged through the
/// CronJob) and the trimmed pod template.
pub fn job(o: &mut Job) {
    o.status = None;
    trim_owned_metadata(&mut o.metadata);
    if let Some(s) = o.spec.as_mut() {
        trim_pod_template(&mut s.template);
        *s = k8s_openapi::api::batch::v1::JobSpec {
            template: std::mem::take(&mut s.template),
            ..Default::default()
        };
    }
}

/// A CronJob: the trimmed pod template of its `jobTemplate`.
pub fn cron_job(o: &mut CronJob) {
    o.status = None;
    trim_unread_metadata(&mut o.metadata, &[]);
    {
        let s = &mut o.spec;
        let template = s
            .job_template
            .spec
            .as_mut()
            .map(|j| std::mem::take(&mut j.template));
        let template = template.map(|mut t| {
            trim_pod_template(&mut t);
            t
        });
        *s = k8s_openapi::api::batch::v1::CronJobSpec {
            schedule: std::mem::take(&mut s.schedule),
            job_template: k8s_openapi::api::batch::v1::JobTemplateSpec {
                metadata: None,
                spec: template.map(|template| k8s_openapi::api::batch::v1::JobSpec {
                    template,
                    ..Default::default()
                }),
            },
            ..Default::default()
        };
    }
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
