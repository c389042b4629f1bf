//! Workload availability — TSC A1.1 (capacity to meet objectives) and A1.2
//! (recovery: the system keeps serving through disruptions).
//!
//! Rule: every Deployment and StatefulSet (`apps/v1`) in scope has at least
//! `minReplicas` replicas (an omitted `spec.replicas` is 1, per the API;
//! under a HorizontalPodAutoscaler (`autoscaling/v2`) whose
//! `spec.scaleTargetRef` names it, the autoscaler's `minReplicas`, default 1,
//! is the effective minimum, and `spec.replicas` is what the autoscaler last
//! set — Kubernetes "Horizontal Pod Autoscaling": "remove spec.replicas from
//! the manifest"), a
//! PodDisruptionBudget (`policy/v1`) in its namespace whose selector matches its
//! pod template labels (an empty selector `{}` matches every pod; a missing one
//! matches none), and a `readinessProbe` on every container (Kubernetes
//! "Configure Liveness, Readiness and Startup Probes"; init containers exempt).
use std::collections::BTreeMap;

use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::core::{Selector, SelectorExt};

use crate::api::{AvailabilityCheck, Verification};
use crate::resources::compact::{Deployment, PodTemplateSpec, StatefulSet};
use crate::snapshot::{Kind, KindSet, name_of};
use crate::vocabulary::{
    Context, EvidenceKind, Family, InvalidSpec, Locality, Outcome, member, violation,
};

/// The declared workloads and disruption budgets.
pub static WORKLOAD_SPECS: EvidenceKind = EvidenceKind {
    claim: "Workloads are declared to survive the loss of a pod",
    source: "WorkloadSpec",
    verification: Verification::Configured,
    proves: "the replicas (or their HorizontalPodAutoscaler's minReplicas), PodDisruptionBudgets and readiness probes the Deployments and StatefulSets in scope declare",
    does_not_prove: "that the replicas are running and ready now, or spread over several nodes",
};

/// The `availability` check family.
pub struct Availability;

impl Family for Availability {
    member!(availability: AvailabilityCheck = "availability");

    fn evidence_kinds(_spec: &AvailabilityCheck) -> Vec<&'static EvidenceKind> {
        vec![&WORKLOAD_SPECS]
    }

    /// Kinds read: Deployment, StatefulSet, PodDisruptionBudget,
    /// HorizontalPodAutoscaler.
    fn kinds(_spec: &AvailabilityCheck) -> KindSet {
        KindSet::from([
            Kind::Deployment,
            Kind::StatefulSet,
            Kind::PodDisruptionBudget,
            Kind::HorizontalPodAutoscaler,
        ])
    }

    /// How far a change reaches: a workload or PodDisruptionBudget (or a
    /// Namespace) only its own namespace's findings.
    fn locality(_spec: &AvailabilityCheck, kind: Kind) -> Locality {
        match kind {
            Kind::Namespace
            | Kind::Deployment
            | Kind::StatefulSet
            | Kind::PodDisruptionBudget
            | Kind::HorizontalPodAutoscaler => Locality::Namespace,
            _ => Locality::Global,
        }
    }

    fn evaluate(spec: &AvailabilityCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
        evaluate(spec, cx)
    }
}

/// The pods a PodDisruptionBudget protects, as a selector; `None` when it
/// protects nothing: no (or a malformed) selector, `minAvailable: 0` or `0%`,
/// or `maxUnavailable: 100%` — a budget every eviction satisfies
/// (Kubernetes "Specifying a Disruption Budget for your Application").
fn pdb_selector(pdb: &PodDisruptionBudget) -> Option<Selector> {
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    let spec = pdb.spec.as_ref()?;
    let permits_all = match (&spec.min_available, &spec.max_unavailable) {
        (Some(IntOrString::Int(0)), _) => true,
        (Some(IntOrString::String(p)), _) if p.trim() == "0%" => true,
        (_, Some(IntOrString::String(p))) if p.trim() == "100%" => true,
        _ => false,
    };
    if permits_all {
        return None;
    }
    // A malformed selector in cluster data selects nothing.
    Selector::try_from(spec.selector.clone()?).ok()
}

/// How many replicas a workload is held at: its own `spec.replicas`, or the
/// `minReplicas` (default 1) of the HorizontalPodAutoscaler that targets it.
enum Replicas<'a> {
    Declared(Option<i32>),
    Autoscaled(&'a str, i32),
}

/// The HorizontalPodAutoscaler of `namespace` whose `scaleTargetRef` names
/// the `kind` `name` (group `apps`), with its `minReplicas`.
fn autoscaler<'a>(
    hpas: &'a [std::sync::Arc<HorizontalPodAutoscaler>],
    kind: &str,
    name: &str,
) -> Option<Replicas<'a>> {
    hpas.iter().find_map(|h| {
        let s = &h.spec;
        let t = &s.scale_target_ref;
        let group = t
            .api_version
            .as_deref()
            .unwrap_or("")
            .split('/')
            .next()
            .unwrap_or("");
        (t.kind == kind && t.name == name && group == "apps")
            .then(|| Replicas::Autoscaled(name_of(h.as_ref()), s.min_replicas.unwrap_or(1)))
    })
}

/// Checks one workload (`obj`, with its replicas and pod template).
fn check_workload<K: kube::Resource<DynamicType = ()>>(
    spec: &AvailabilityCheck,
    obj: &K,
    replicas: Replicas,
    template: Option<&PodTemplateSpec>,
    pdbs: &[(String, Selector)],
    out: &mut Outcome,
) {
    let make = |reason: &str, message: String| violation(obj, reason, message);
    let default_template = PodTemplateSpec::default();
    let template = template.unwrap_or(&default_template);
    out.resources_checked += 1;
    let (replicas, by) = match replicas {
        Replicas::Autoscaled(hpa, min) => {
            (min, format!(" (HorizontalPodAutoscaler {hpa} minReplicas)"))
        }
        Replicas::Declared(r) => (r.unwrap_or(1), String::new()),
    };
    if replicas < spec.min_replicas {
        out.violations.push(make(
            "InsufficientReplicas",
            format!(
                "runs {replicas} replica(s){by}, fewer than minReplicas {}",
                spec.min_replicas
            ),
        ));
    }
    let empty = BTreeMap::new();
    let labels = template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.as_ref())
        .unwrap_or(&empty);
    if spec.require_pod_disruption_budget && !pdbs.iter().any(|(_, s)| s.matches(labels)) {
        out.violations.push(make(
            "MissingPodDisruptionBudget",
            "no PodDisruptionBudget in the namespace selects its pods".into(),
        ));
    }
    if spec.require_readiness_probes {
        let missing: Vec<&str> = template
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .filter(|c| c.readiness_probe.is_none())
            .map(|c| c.name.as_str())
            .collect();
        if !missing.is_empty() {
            out.violations.push(make(
                "MissingReadinessProbe",
                format!(
                    "container(s) without a readinessProbe: {}",
                    missing.join(", ")
                ),
            ));
        }
    }
}

/// Evaluates replicas, disruption budgets and readiness probes.
///
/// # Errors
/// [`InvalidSpec`] on `spec.check.availability.minReplicas` below 1.
fn evaluate(spec: &AvailabilityCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
    if spec.min_replicas < 1 {
        return Err(InvalidSpec::new(
            "spec.check.availability.minReplicas",
            format!("must be at least 1, got {}", spec.min_replicas),
        ));
    }
    let mut out = Outcome::default();
    out.evidence.push(WORKLOAD_SPECS.evidence(
        "Deployments, StatefulSets, their HorizontalPodAutoscalers and PodDisruptionBudgets of each namespace in scope".into(),
    ));
    cx.each_namespace(&mut out, |ns, out| {
        let pdbs: Vec<(String, Selector)> = cx
            .objects::<PodDisruptionBudget>()
            .in_namespace(ns)
            .iter()
            .filter_map(|p| Some((name_of(p.as_ref()).to_owned(), pdb_selector(p)?)))
            .collect();
        out.resources_checked += pdbs.len() as u64;
        let hpas = cx.objects::<HorizontalPodAutoscaler>().in_namespace(ns);
        let held = |kind: &str, name: &str, declared: Option<i32>| {
            autoscaler(hpas, kind, name).unwrap_or(Replicas::Declared(declared))
        };
        for d in cx.objects::<Deployment>().in_namespace(ns) {
            let s = d.spec.as_ref();
            let replicas = held(
                "Deployment",
                name_of(d.as_ref()),
                s.and_then(|s| s.replicas),
            );
            let template = s.map(|s| &s.template);
            check_workload(spec, d.as_ref(), replicas, template, &pdbs, out);
        }
        for st in cx.objects::<StatefulSet>().in_namespace(ns) {
            let s = st.spec.as_ref();
            let replicas = held(
                "StatefulSet",
                name_of(st.as_ref()),
                s.and_then(|s| s.replicas),
            );
            let template = s.map(|s| &s.template);
            check_workload(spec, st.as_ref(), replicas, template, &pdbs, out);
        }
    });
    Ok(out)
}
