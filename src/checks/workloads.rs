//! The workloads several checks read: Deployments, StatefulSets and
//! DaemonSets (`apps/v1`) of a namespace, with their pod templates (a helper
//! of the workload families, not a family itself).
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Container, PodTemplateSpec};

use crate::api::Violation;
use crate::snapshot::{Kind, KindSet};
use crate::vocabulary::{Context, Locality, violation};

/// The kinds [`in_namespace`] reads.
pub fn kinds() -> KindSet {
    KindSet::from([Kind::Deployment, Kind::StatefulSet, Kind::DaemonSet])
}

/// Locality of the workload families: a workload (or a Namespace) only decides
/// findings about its own namespace.
pub fn locality(kind: Kind) -> Locality {
    match kind {
        Kind::Namespace | Kind::Deployment | Kind::StatefulSet | Kind::DaemonSet => {
            Locality::Namespace
        }
        _ => Locality::Global,
    }
}

/// A Deployment, a StatefulSet or a DaemonSet.
#[derive(Clone, Copy)]
pub enum Workload<'a> {
    /// An `apps/v1` Deployment.
    Deployment(&'a Deployment),
    /// An `apps/v1` StatefulSet.
    StatefulSet(&'a StatefulSet),
    /// An `apps/v1` DaemonSet (one pod per node).
    DaemonSet(&'a DaemonSet),
}

static EMPTY_TEMPLATE: std::sync::LazyLock<PodTemplateSpec> =
    std::sync::LazyLock::new(PodTemplateSpec::default);

impl<'a> Workload<'a> {
    /// `spec.replicas` (an omitted value is 1, per the API).
    pub fn replicas(self) -> i32 {
        match self {
            Workload::Deployment(d) => d.spec.as_ref().and_then(|s| s.replicas),
            Workload::StatefulSet(s) => s.spec.as_ref().and_then(|s| s.replicas),
            Workload::DaemonSet(_) => None,
        }
        .unwrap_or(1)
    }

    /// The pod template (empty when the object has no spec).
    pub fn template(self) -> &'a PodTemplateSpec {
        match self {
            Workload::Deployment(d) => d.spec.as_ref().map(|s| &s.template),
            Workload::StatefulSet(s) => s.spec.as_ref().map(|s| &s.template),
            Workload::DaemonSet(d) => d.spec.as_ref().map(|s| &s.template),
        }
        .unwrap_or(&EMPTY_TEMPLATE)
    }

    /// Containers and init containers of the pod template.
    pub fn all_containers(self) -> impl Iterator<Item = &'a Container> {
        self.template().spec.iter().flat_map(|s| {
            s.init_containers
                .iter()
                .flatten()
                .chain(s.containers.iter())
        })
    }

    /// A violation of this workload.
    pub fn violation(self, reason: &str, message: String) -> Violation {
        match self {
            Workload::Deployment(d) => violation(d, reason, message),
            Workload::StatefulSet(s) => violation(s, reason, message),
            Workload::DaemonSet(d) => violation(d, reason, message),
        }
    }
}

/// The Deployments, then the StatefulSets, then the DaemonSets of `namespace`.
pub fn in_namespace<'a>(cx: &'a Context, namespace: &str) -> impl Iterator<Item = Workload<'a>> {
    let d = cx
        .objects::<Deployment>()
        .in_namespace(namespace)
        .iter()
        .map(|d| Workload::Deployment(d.as_ref()));
    let s = cx
        .objects::<StatefulSet>()
        .in_namespace(namespace)
        .iter()
        .map(|s| Workload::StatefulSet(s.as_ref()));
    let ds = cx
        .objects::<DaemonSet>()
        .in_namespace(namespace)
        .iter()
        .map(|d| Workload::DaemonSet(d.as_ref()));
    d.chain(s).chain(ds)
}
