//! Default-deny network policies — TSC CC6.1 (logical access boundaries) and
//! CC6.6 (restricting access from outside the system boundary).
//!
//! Rule (Kubernetes NetworkPolicy API, `networking.k8s.io/v1`, and the
//! "Default policies" section of the Network Policies concept page): an
//! in-scope namespace passes when it has a NetworkPolicy with `podSelector: {}`
//! whose effective `policyTypes` include `Ingress` and which has no ingress
//! rules; with `egress: true`, likewise for `Egress`. Omitted `policyTypes` means
//! `Ingress`, plus `Egress` when the policy has egress rules. Policies are
//! additive: policies that select all pods and allow all traffic in a
//! direction — an empty rule (`ingress: [{}]`), or, on every port, every pod
//! and every IPv4 and IPv6 address, alone or together — undo default-deny and
//! are reported. A rule opens every port when it has no `ports`, or when for
//! each of TCP, UDP and SCTP (`protocol` defaults to TCP) its entries without
//! `port` (the whole protocol) and its numeric ranges (`port`..`endPort`)
//! together cover 1–65535; a named port is no numeric range. Every pod is
//! opened by a peer whose `namespaceSelector` selects every namespace — empty,
//! or only `Exists` requirements on `kubernetes.io/metadata.name`, the
//! immutable label the control plane sets on every Namespace (Namespaces
//! concept page, "Automatic labelling") — and whose `podSelector` is absent or
//! empty. Every address is opened by `ipBlock` CIDRs whose union covers the
//! whole IPv4 space and the whole IPv6 space (the API treats the families
//! separately, so both are needed; a malformed CIDR covers nothing), whatever
//! their `except` lists
//! carve out: opening the whole address space but a few ranges, such as the
//! cloud metadata address, is not a default deny.
use std::net::IpAddr;

use k8s_openapi::api::networking::v1::{NetworkPolicy, NetworkPolicyPeer, NetworkPolicyPort};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

use k8s_openapi::api::core::v1::Namespace;

use crate::api::{NetworkPolicyCheck, Verification};
use crate::snapshot::{Kind, KindSet, name_of};
use crate::vocabulary::{
    Context, EvidenceKind, Family, InvalidSpec, Locality, Outcome, member, selects_everything,
    violation,
};

/// The NetworkPolicies themselves: a setting the network plugin enforces.
pub static DEFAULT_DENY: EvidenceKind = EvidenceKind {
    claim: "Every namespace in scope denies traffic by default",
    source: "NetworkPolicy",
    verification: Verification::Configured,
    proves: "each namespace in scope has a NetworkPolicy that selects every pod and allows nothing in the direction checked, and no policy selecting every pod allows all traffic",
    does_not_prove: "that the cluster's network plugin enforces NetworkPolicies (one without NetworkPolicy support ignores them), nor that no policy opens all traffic in a form not recognised: a pod or namespace selector that matches everything only through its expressions (other than Exists on kubernetes.io/metadata.name), or rules that each open some ports but together every port",
};

/// The `networkPolicy` check family.
pub struct NetworkPolicies;

impl Family for NetworkPolicies {
    member!(network_policy: NetworkPolicyCheck = "networkPolicy");

    fn evidence_kinds(_spec: &NetworkPolicyCheck) -> Vec<&'static EvidenceKind> {
        vec![&DEFAULT_DENY]
    }

    /// Kinds read: NetworkPolicy.
    fn kinds(_spec: &NetworkPolicyCheck) -> KindSet {
        KindSet::from([Kind::NetworkPolicy])
    }

    /// How far a change reaches: a NetworkPolicy (or Namespace) only decides
    /// its own namespace's findings.
    fn locality(_spec: &NetworkPolicyCheck, kind: Kind) -> Locality {
        match kind {
            Kind::Namespace | Kind::NetworkPolicy => Locality::Namespace,
            _ => Locality::Global,
        }
    }

    fn evaluate(spec: &NetworkPolicyCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
        evaluate(spec, cx)
    }
}

/// The direction a policy governs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Direction {
    Ingress,
    Egress,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Ingress => "Ingress",
            Direction::Egress => "Egress",
        }
    }
}

/// The effective policyTypes of a policy, per the NetworkPolicySpec docs.
fn affects(policy: &NetworkPolicy, dir: Direction) -> bool {
    let Some(spec) = &policy.spec else {
        return false;
    };
    match &spec.policy_types {
        Some(types) if !types.is_empty() => types.iter().any(|t| t == dir.name()),
        _ => match dir {
            Direction::Ingress => true,
            Direction::Egress => spec.egress.as_ref().is_some_and(|e| !e.is_empty()),
        },
    }
}

/// The label the control plane sets, immutably, on every Namespace to its name.
const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// Whether a namespace selector selects every namespace: empty, or only
/// `Exists` requirements on `kubernetes.io/metadata.name` (every Namespace
/// has that label).
fn selects_all_namespaces(sel: &LabelSelector) -> bool {
    sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && sel.match_expressions.iter().flatten().all(|e| {
            e.key == NAMESPACE_NAME_LABEL
                && e.operator == "Exists"
                && e.values.as_ref().is_none_or(|v| v.is_empty())
        })
}

fn selects_all_pods(policy: &NetworkPolicy) -> bool {
    policy
        .spec
        .as_ref()
        .is_some_and(|s| s.pod_selector.as_ref().is_none_or(selects_everything))
}

fn rule_count(policy: &NetworkPolicy, dir: Direction) -> usize {
    let spec = policy.spec.as_ref();
    match dir {
        Direction::Ingress => spec.and_then(|s| s.ingress.as_ref()).map_or(0, Vec::len),
        Direction::Egress => spec.and_then(|s| s.egress.as_ref()).map_or(0, Vec::len),
    }
}

/// Whether the policy denies all traffic of `dir` to every pod of its namespace.
pub fn is_default_deny(policy: &NetworkPolicy, egress: bool) -> bool {
    let dir = if egress {
        Direction::Egress
    } else {
        Direction::Ingress
    };
    selects_all_pods(policy) && affects(policy, dir) && rule_count(policy, dir) == 0
}

/// Inclusive intervals of addresses (or ports).
type Ranges = Vec<(u128, u128)>;

/// Which sources (or destinations) a set of rules opens, for every port.
#[derive(Clone, Default, PartialEq, Eq)]
struct Reach {
    /// A rule without peers: everything.
    everything: bool,
    /// A namespace selector that selects every namespace, without a
    /// narrowing `podSelector`: every pod.
    all_pods: bool,
    /// The IPv4 addresses of `ipBlock` CIDRs (their `except` lists ignored).
    ipv4: Ranges,
    /// The IPv6 addresses of `ipBlock` CIDRs (their `except` lists ignored).
    ipv6: Ranges,
}

impl Reach {
    fn add(&mut self, other: Reach) {
        self.everything |= other.everything;
        self.all_pods |= other.all_pods;
        self.ipv4.extend(other.ipv4);
        self.ipv6.extend(other.ipv6);
    }

    /// Everything, or every pod and every IPv4 and IPv6 address: as open as
    /// an empty rule.
    fn is_all(&self) -> bool {
        self.everything
            || (self.all_pods
                && covers(&self.ipv4, 0, u32::MAX.into())
                && covers(&self.ipv6, 0, u128::MAX))
    }
}

/// Whether the union of `ranges` covers every value `min..=max`.
fn covers(ranges: &[(u128, u128)], min: u128, max: u128) -> bool {
    let mut sorted = ranges.to_vec();
    sorted.sort_unstable();
    // The first value not yet covered.
    let mut next = min;
    for (start, end) in sorted {
        if start > next {
            return false;
        }
        if end >= max {
            return true;
        }
        next = next.max(end + 1);
    }
    false
}

/// The addresses of a CIDR as an inclusive interval, and whether it is IPv4;
/// `None` when it is malformed.
fn cidr_range(cidr: &str) -> Option<(bool, (u128, u128))> {
    let (addr, len) = cidr.split_once('/')?;
    if len.is_empty() || !len.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let len: u32 = len.parse().ok()?;
    let (v4, bits, value) = match addr.parse::<IpAddr>().ok()? {
        IpAddr::V4(a) => (true, 32u32, u128::from(u32::from(a))),
        IpAddr::V6(a) => (false, 128, u128::from(a)),
    };
    let host_bits = bits.checked_sub(len)?;
    let host = u128::MAX.checked_shr(128 - host_bits).unwrap_or(0);
    let start = value & !host;
    Some((v4, (start, start | host)))
}

/// The port interval a port entry opens within its protocol: the whole
/// protocol without `port`, `port`..`endPort` (or `port` alone) for a number,
/// nothing for a named port or an inverted range.
fn port_range(p: &NetworkPolicyPort) -> Option<(u128, u128)> {
    match &p.port {
        None => Some((1, 65535)),
        Some(IntOrString::Int(n)) => {
            let start = u128::try_from(*n).ok()?;
            let end = u128::try_from(p.end_port.unwrap_or(*n)).ok()?;
            (start <= end).then_some((start, end))
        }
        Some(IntOrString::String(_)) => None,
    }
}

/// Whether `ports` open every port: no list, or for each of TCP, UDP and SCTP
/// entries (protocol TCP when omitted) whose ranges together cover 1–65535.
fn all_ports(ports: Option<&Vec<NetworkPolicyPort>>) -> bool {
    let Some(ports) = ports.filter(|p| !p.is_empty()) else {
        return true;
    };
    ["TCP", "UDP", "SCTP"].iter().all(|proto| {
        let ranges: Ranges = ports
            .iter()
            .filter(|p| p.protocol.as_deref().unwrap_or("TCP") == *proto)
            .filter_map(port_range)
            .collect();
        covers(&ranges, 1, 65535)
    })
}

/// What one rule's peers open (only when it opens every port).
fn reach(peers: Option<&Vec<NetworkPolicyPeer>>, ports: Option<&Vec<NetworkPolicyPort>>) -> Reach {
    let mut r = Reach::default();
    if !all_ports(ports) {
        return r;
    }
    let Some(peers) = peers.filter(|p| !p.is_empty()) else {
        r.everything = true;
        return r;
    };
    for p in peers {
        if p.namespace_selector
            .as_ref()
            .is_some_and(selects_all_namespaces)
            && p.pod_selector.as_ref().is_none_or(selects_everything)
        {
            r.all_pods = true;
        }
        match p.ip_block.as_ref().and_then(|b| cidr_range(&b.cidr)) {
            Some((true, range)) => r.ipv4.push(range),
            Some((false, range)) => r.ipv6.push(range),
            None => {}
        }
    }
    r
}

/// What a policy that selects every pod opens in direction `dir`.
fn policy_reach(policy: &NetworkPolicy, dir: Direction) -> Reach {
    let mut total = Reach::default();
    if !selects_all_pods(policy) || !affects(policy, dir) {
        return total;
    }
    let spec = policy.spec.as_ref();
    match dir {
        Direction::Ingress => {
            for r in spec.and_then(|s| s.ingress.as_ref()).into_iter().flatten() {
                total.add(reach(r.from.as_ref(), r.ports.as_ref()));
            }
        }
        Direction::Egress => {
            for r in spec.and_then(|s| s.egress.as_ref()).into_iter().flatten() {
                total.add(reach(r.to.as_ref(), r.ports.as_ref()));
            }
        }
    }
    total
}

/// Policies that select every pod and, alone or together (policies are
/// additive), allow all traffic of `dir`: each alone is reported on the
/// policy; a union on the namespace, naming the policies.
fn allow_all_findings(
    ns: &Namespace,
    policies: &[std::sync::Arc<NetworkPolicy>],
    dir: Direction,
    out: &mut Outcome,
) {
    let d = dir.name().to_lowercase();
    let reason = format!("AllowAll{}", dir.name());
    let mut union = Reach::default();
    let mut contributing = Vec::new();
    let mut alone = false;
    for p in policies {
        let r = policy_reach(p, dir);
        if r.is_all() {
            alone = true;
            out.violations.push(violation(
                p.as_ref(),
                &reason,
                format!(
                    "selects every pod and has {d} rules that allow all {d} traffic (an empty rule, or every pod and every IPv4 and IPv6 address on every port), which undoes default-deny"
                ),
            ));
        }
        if r != Reach::default() {
            union.add(r);
            contributing.push(name_of(p.as_ref()).to_owned());
        }
    }
    if !alone && union.is_all() {
        out.violations.push(violation(
            ns,
            &reason,
            format!(
                "the NetworkPolicies {} select every pod and together allow all {d} traffic (every pod and every IPv4 and IPv6 address), which undoes default-deny",
                contributing.join(", ")
            ),
        ));
    }
}

/// Evaluates default-deny network policies in every in-scope namespace.
///
/// # Errors
/// None: every spec this family accepts is valid.
fn evaluate(spec: &NetworkPolicyCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
    let mut out = Outcome::default();
    let mut dirs = vec![Direction::Ingress];
    if spec.egress {
        dirs.push(Direction::Egress);
    }
    out.evidence.push(DEFAULT_DENY.evidence(format!(
        "NetworkPolicies of each namespace in scope ({} checked)",
        dirs.iter().map(|d| d.name().to_lowercase()).collect::<Vec<_>>().join(" and ")
    )));
    cx.each_namespace(&mut out, |ns_name, out| {
        out.resources_checked += 1;
        let Some(ns) = cx.objects::<Namespace>().get("", ns_name) else {
            return;
        };
        let policies = cx.objects::<NetworkPolicy>().in_namespace(ns_name);
        out.resources_checked += policies.len() as u64;
        for &dir in &dirs {
            let deny: Vec<&str> = policies
                .iter()
                .filter(|p| is_default_deny(p, dir == Direction::Egress))
                .map(|p| name_of(p.as_ref()))
                .collect();
            if deny.is_empty() {
                out.violations.push(violation(
                    ns.as_ref(),
                    &format!("MissingDefaultDeny{}", dir.name()),
                    format!(
                        "no NetworkPolicy with podSelector {{}} denies all {} traffic",
                        dir.name().to_lowercase()
                    ),
                ));
            }
            allow_all_findings(ns, policies, dir, out);
        }
    });
    Ok(out)
}
