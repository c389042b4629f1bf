//! The workloads several checks read: every kind that creates pods (a helper
//! of the workload families, not a family itself) — Deployments,
//! StatefulSets and DaemonSets (`apps/v1`), ReplicaSets without a Deployment
//! owner, ReplicationControllers (`v1`), CronJobs (their `jobTemplate`) and
//! Jobs without a CronJob owner (`batch/v1`), and bare Pods (`v1`) — each
//! with its pod spec.
//!
//! An object whose controller (`metadata.ownerReferences[]` with `controller:
//! true`) is of a kind read here is judged once, through that owner (a pod of
//! a ReplicaSet, a ReplicaSet of a Deployment, a Job of a CronJob), so a
//! violation names the object the user must fix (Kubernetes "Owners and
//! Dependents").
use crate::resources::compact::{
    Container, CronJob, DaemonSet, Deployment, Job, Pod, PodSpec, PodTemplateSpec, ReplicaSet,
    ReplicationController, StatefulSet,
};

use crate::api::Violation;
use crate::snapshot::trim::controller_kind;
use crate::snapshot::{Kind, KindSet};
use crate::vocabulary::{Context, Locality, violation};

/// The kinds [`in_namespace`] reads.
pub fn kinds() -> KindSet {
    KindSet::from(KINDS)
}

const KINDS: [Kind; 8] = [
    Kind::Deployment,
    Kind::StatefulSet,
    Kind::DaemonSet,
    Kind::ReplicaSet,
    Kind::ReplicationController,
    Kind::CronJob,
    Kind::Job,
    Kind::Pod,
];

/// Locality of the workload families: a workload (or a Namespace) only decides
/// findings about its own namespace.
pub fn locality(kind: Kind) -> Locality {
    if kind == Kind::Namespace || KINDS.contains(&kind) {
        Locality::Namespace
    } else {
        Locality::Global
    }
}

/// An object that creates pods, with the pod spec it gives them.
#[derive(Clone, Copy)]
pub enum Workload<'a> {
    /// An `apps/v1` Deployment.
    Deployment(&'a Deployment),
    /// An `apps/v1` StatefulSet.
    StatefulSet(&'a StatefulSet),
    /// An `apps/v1` DaemonSet (one pod per node).
    DaemonSet(&'a DaemonSet),
    /// An `apps/v1` ReplicaSet that no Deployment owns.
    ReplicaSet(&'a ReplicaSet),
    /// A `v1` ReplicationController.
    ReplicationController(&'a ReplicationController),
    /// A `batch/v1` CronJob (the pods of its `jobTemplate`).
    CronJob(&'a CronJob),
    /// A `batch/v1` Job that no CronJob owns.
    Job(&'a Job),
    /// A `v1` Pod that no controller read here owns.
    Pod(&'a Pod),
}

impl<'a> Workload<'a> {
    /// The pod template of a pod-creating controller (`None` for a bare Pod,
    /// or when the object has none).
    fn template(self) -> Option<&'a PodTemplateSpec> {
        match self {
            Workload::Deployment(d) => d.spec.as_ref().map(|s| &s.template),
            Workload::StatefulSet(s) => s.spec.as_ref().map(|s| &s.template),
            Workload::DaemonSet(d) => d.spec.as_ref().map(|s| &s.template),
            Workload::ReplicaSet(r) => r.spec.as_ref().and_then(|s| s.template.as_ref()),
            Workload::ReplicationController(r) => r.spec.as_ref().and_then(|s| s.template.as_ref()),
            Workload::CronJob(c) => c.spec.job_template.spec.as_ref().map(|j| &j.template),
            Workload::Job(j) => j.spec.as_ref().map(|s| &s.template),
            Workload::Pod(_) => None,
        }
    }

    /// The pod spec its pods get (`None` when the object has none).
    pub fn pod_spec(self) -> Option<&'a PodSpec> {
        match self {
            Workload::Pod(p) => p.spec.as_ref(),
            _ => self.template().and_then(|t| t.spec.as_ref()),
        }
    }

    /// The annotations its pods get (the pod template's, or a bare Pod's
    /// own), as far as the caches keep them (see `snapshot::trim`).
    pub fn pod_annotations(self) -> impl Iterator<Item = (&'a String, &'a String)> {
        let annotations = match self {
            Workload::Pod(p) => p.metadata.annotations.as_ref(),
            _ => self
                .template()
                .and_then(|t| t.metadata.as_ref())
                .and_then(|m| m.annotations.as_ref()),
        };
        annotations.into_iter().flatten()
    }

    /// Containers and init containers of the pod spec (ephemeral containers
    /// are added to running pods by `kubectl debug` and are not declared).
    pub fn all_containers(self) -> impl Iterator<Item = &'a Container> {
        self.pod_spec().into_iter().flat_map(|s| {
            s.init_containers
                .iter()
                .flatten()
                .chain(s.containers.iter())
        })
    }

    /// A violation of this workload.
    pub fn violation(self, reason: &str, message: String) -> Violation {
        match self {
            Workload::Deployment(o) => violation(o, reason, message),
            Workload::StatefulSet(o) => violation(o, reason, message),
            Workload::DaemonSet(o) => violation(o, reason, message),
            Workload::ReplicaSet(o) => violation(o, reason, message),
            Workload::ReplicationController(o) => violation(o, reason, message),
            Workload::CronJob(o) => violation(o, reason, message),
            Workload::Job(o) => violation(o, reason, message),
            Workload::Pod(o) => violation(o, reason, message),
        }
    }
}

/// Whether `meta`'s controller is of one of `kinds` (then the object is
/// judged through it).
fn owned_by(
    meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    kinds: &[&str],
) -> bool {
    controller_kind(meta).is_some_and(|k| kinds.contains(&k))
}

/// The workloads of `namespace`, in the order of the kinds above; owned
/// ReplicaSets, Jobs and Pods left out (see the module documentation).
pub fn in_namespace<'a>(cx: &'a Context, namespace: &str) -> impl Iterator<Item = Workload<'a>> {
    let d = cx.objects::<Deployment>().in_namespace(namespace);
    let s = cx.objects::<StatefulSet>().in_namespace(namespace);
    let ds = cx.objects::<DaemonSet>().in_namespace(namespace);
    let rs = cx.objects::<ReplicaSet>().in_namespace(namespace);
    let rc = cx
        .objects::<ReplicationController>()
        .in_namespace(namespace);
    let cj = cx.objects::<CronJob>().in_namespace(namespace);
    let j = cx.objects::<Job>().in_namespace(namespace);
    let p = cx.objects::<Pod>().in_namespace(namespace);
    d.iter()
        .map(|o| Workload::Deployment(o))
        .chain(s.iter().map(|o| Workload::StatefulSet(o)))
        .chain(ds.iter().map(|o| Workload::DaemonSet(o)))
        .chain(
            rs.iter()
                .filter(|o| !owned_by(&o.metadata, &["Deployment"]))
                .map(|o| Workload::ReplicaSet(o)),
        )
        .chain(rc.iter().map(|o| Workload::ReplicationController(o)))
        .chain(cj.iter().map(|o| Workload::CronJob(o)))
        .chain(
            j.iter()
                .filter(|o| !owned_by(&o.metadata, &["CronJob"]))
                .map(|o| Workload::Job(o)),
        )
        .chain(
            p.iter()
                .filter(|o| controller_kind(&o.metadata).is_none())
                .map(|o| Workload::Pod(o)),
        )
}
