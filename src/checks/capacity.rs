//! Capacity — TSC A1.1 (current processing capacity and use are managed to
//! meet the entity's objectives): workloads declare the resources they need,
//! so that the scheduler can place them and the nodes are not overcommitted
//! without anyone deciding so.
//!
//! Rule, per container and init container of every pod-creating object in
//! scope (see [`workloads`]; ephemeral containers cannot declare resources):
//! each resource of `requests` is requested — by the container, by the pod
//! (`spec.resources`, pod-level resources), by a limit of the same resource
//! (Kubernetes "Resource Management for Pods and Containers": a limit
//! without a request sets the request to the limit), or by a `Container`
//! item of a LimitRange of the namespace (`defaultRequest`, or `default`,
//! `max` or `min`, which the API server's LimitRange defaulting turns into
//! one: "Limit Ranges"; not for a bare Pod of a live cluster, which was
//! admitted already); each resource of `limits` is limited, by the
//! container, the pod, or a LimitRange's `default` (or `max`). With
//! `requireResourceQuota`, every namespace in scope has a ResourceQuota.
use k8s_openapi::api::core::v1::{LimitRange, Namespace, ResourceQuota};

use super::workloads::{self, Workload};
use crate::api::{CapacityCheck, Verification};
use crate::resources::compact::{Container, ResourceNames};
use crate::snapshot::{Kind, KindSet};
use crate::vocabulary::{
    Context, EvidenceKind, Family, InvalidSpec, Locality, Outcome, list_some, member, violation,
};

/// The resources the pod specs declare.
pub static CONTAINER_RESOURCES: EvidenceKind = EvidenceKind {
    claim: "Workloads declare the resources they need",
    source: "PodResources",
    verification: Verification::Configured,
    proves: "the resource requests and limits declared by the pod specs of every pod-creating object in scope, or supplied by the Container defaults of their namespace's LimitRanges",
    does_not_prove: "that the requests fit the nodes' capacity or the workloads' real use; that pods admitted before a LimitRange existed got its defaults (they apply at admission only); pods of controllers the operator does not read are judged as bare pods",
};

/// The namespaces' ResourceQuotas.
pub static QUOTAS: EvidenceKind = EvidenceKind {
    claim: "Each namespace's consumption is capped",
    source: "ResourceQuota",
    verification: Verification::Configured,
    proves: "each namespace in scope has at least one ResourceQuota",
    does_not_prove: "that its hard limits are sized right or cover cpu and memory, or that the ResourceQuota admission plugin is enabled",
};

/// The `capacity` check family.
pub struct Capacity;

impl Family for Capacity {
    member!(capacity: CapacityCheck = "capacity");

    fn evidence_kinds(spec: &CapacityCheck) -> Vec<&'static EvidenceKind> {
        let mut k = Vec::new();
        if asks_containers(spec) {
            k.push(&CONTAINER_RESOURCES);
        }
        if spec.require_resource_quota {
            k.push(&QUOTAS);
        }
        k
    }

    /// Kinds read: every pod-creating kind and LimitRanges when requests or
    /// limits are asked for; ResourceQuotas with `requireResourceQuota`.
    fn kinds(spec: &CapacityCheck) -> KindSet {
        let mut k = KindSet::default();
        if asks_containers(spec) {
            k = workloads::kinds();
            k.insert(Kind::LimitRange);
        }
        if spec.require_resource_quota {
            k.insert(Kind::ResourceQuota);
        }
        k
    }

    /// How far a change reaches: a workload, LimitRange or ResourceQuota
    /// (or a Namespace) only its own namespace's findings.
    fn locality(_spec: &CapacityCheck, kind: Kind) -> Locality {
        match kind {
            Kind::LimitRange | Kind::ResourceQuota => Locality::Namespace,
            k => workloads::locality(k),
        }
    }

    /// [`InvalidSpec`] when `requests` and `limits` are empty and
    /// `requireResourceQuota` is false: the check would check nothing.
    fn evaluate(spec: &CapacityCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
        if !asks_containers(spec) && !spec.require_resource_quota {
            return Err(InvalidSpec::new(
                "spec.check.capacity.requests",
                "set requests, limits or requireResourceQuota: this check would check nothing",
            ));
        }
        Ok(evaluate(spec, cx))
    }
}

/// Whether containers are judged at all.
fn asks_containers(spec: &CapacityCheck) -> bool {
    !spec.requests.is_empty() || !spec.limits.is_empty()
}

fn evaluate(spec: &CapacityCheck, cx: &Context) -> Outcome {
    let mut out = Outcome::default();
    if asks_containers(spec) {
        out.evidence.push(CONTAINER_RESOURCES.evidence(format!(
            "containers' requests ({}) and limits ({}) in the pod specs of every pod-creating object of each namespace in scope, or their namespace's LimitRange defaults",
            none_if_empty(&spec.requests),
            none_if_empty(&spec.limits)
        )));
    }
    if spec.require_resource_quota {
        out.evidence
            .push(QUOTAS.evidence("the ResourceQuotas of each namespace in scope".to_owned()));
    }
    cx.each_namespace(&mut out, |ns, out| {
        if spec.require_resource_quota {
            quota(cx, ns, out);
        }
        if !asks_containers(spec) {
            return;
        }
        let defaults = Defaults::of(cx, ns);
        let none = Defaults::default();
        for w in workloads::in_namespace(cx, ns) {
            out.resources_checked += 1;
            // A running bare Pod was admitted already: LimitRange defaults
            // are in its spec or were never applied (a LimitRange made
            // later does not change it). Offline, a Pod manifest is yet to
            // be admitted.
            let admitted = matches!(w, Workload::Pod(_)) && !cx.is_partial();
            containers(spec, if admitted { &none } else { &defaults }, w, out);
        }
    });
    out
}

fn none_if_empty(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// What the LimitRanges of a namespace supply to a container that declares
/// nothing: the resources they default a request and a limit for.
#[derive(Default)]
struct Defaults {
    requests: Vec<String>,
    limits: Vec<String>,
}

impl Defaults {
    /// The `Container` items of the LimitRanges of `ns`, with the API
    /// server's defaulting applied (`max` → `default` → `defaultRequest`,
    /// `min` → `defaultRequest`).
    fn of(cx: &Context, ns: &str) -> Defaults {
        let mut d = Defaults::default();
        let items = cx
            .objects::<LimitRange>()
            .in_namespace(ns)
            .iter()
            .filter_map(|lr| lr.spec.as_ref())
            .flat_map(|s| s.limits.iter())
            .filter(|i| i.type_ == "Container");
        for i in items {
            let keys = |m: &Option<std::collections::BTreeMap<String, _>>| {
                m.iter().flat_map(|m| m.keys().cloned()).collect::<Vec<_>>()
            };
            let limits = [keys(&i.default), keys(&i.max)].concat();
            d.requests.extend(limits.iter().cloned());
            d.requests.extend(keys(&i.default_request));
            d.requests.extend(keys(&i.min));
            d.limits.extend(limits);
        }
        d
    }
}

/// Whether `names` lists `r`.
fn has(names: Option<&ResourceNames>, r: &str) -> bool {
    names.is_some_and(|n| n.contains(r))
}

/// The resources of `wanted` that container `c` of `w` neither declares
/// nor gets from the pod's resources or the namespace's LimitRanges;
/// `request` selects requests (which a limit also satisfies) or limits.
fn missing<'s>(
    wanted: &'s [String],
    w: Workload,
    c: &Container,
    supplied: &[String],
    request: bool,
) -> Vec<&'s str> {
    let pod = w.pod_spec().and_then(|p| p.resources.as_ref());
    let own = c.resources.as_ref();
    wanted
        .iter()
        .map(String::as_str)
        .filter(|r| {
            let limited = has(own.and_then(|o| o.limits.as_ref()), r)
                || has(pod.and_then(|p| p.limits.as_ref()), r);
            let requested = has(own.and_then(|o| o.requests.as_ref()), r)
                || has(pod.and_then(|p| p.requests.as_ref()), r);
            let declared = if request {
                requested || limited
            } else {
                limited
            };
            !declared && !supplied.iter().any(|s| s == r)
        })
        .collect()
}

/// The violations of one pod-creating object: containers missing a request
/// or a limit.
fn containers(spec: &CapacityCheck, defaults: &Defaults, w: Workload, out: &mut Outcome) {
    let mut no_request = Vec::new();
    let mut no_limit = Vec::new();
    for c in w.all_containers() {
        let r = missing(&spec.requests, w, c, &defaults.requests, true);
        if !r.is_empty() {
            no_request.push(format!("{} ({})", c.name, r.join(", ")));
        }
        let l = missing(&spec.limits, w, c, &defaults.limits, false);
        if !l.is_empty() {
            no_limit.push(format!("{} ({})", c.name, l.join(", ")));
        }
    }
    for (reason, what, found) in [
        ("MissingResourceRequests", "request", no_request),
        ("MissingResourceLimits", "limit", no_limit),
    ] {
        if !found.is_empty() {
            out.violations.push(w.violation(
                reason,
                format!(
                    "container(s) without a {what}, and no LimitRange of the namespace supplies a default: {}",
                    list_some(&found, 5)
                ),
            ));
        }
    }
}

/// A namespace without a ResourceQuota.
fn quota(cx: &Context, ns: &str, out: &mut Outcome) {
    let Some(n) = cx.objects::<Namespace>().get("", ns) else {
        return;
    };
    out.resources_checked += 1;
    if cx.objects::<ResourceQuota>().in_namespace(ns).is_empty() {
        out.violations.push(violation(
            n.as_ref(),
            "NoResourceQuota",
            "the namespace has no ResourceQuota: nothing caps what its workloads may consume"
                .to_owned(),
        ));
    }
}
