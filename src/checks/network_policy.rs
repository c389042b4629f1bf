//! Default-deny network policies — TSC CC6.1 (logical access boundaries) and
//! CC6.6 (restricting access from outside the system boundary).
//!
//! Rule (Kubernetes NetworkPolicy API, `networking.k8s.io/v1`, and the
//! "Default policies" section of the Network Policies concept page): an
//! in-scope namespace passes when it has a NetworkPolicy with `podSelector: {}`
//! whose effective `policyTypes` include `Ingress` and which has no ingress
//! rules; with `egress: true`, likewise for `Egress`. Omitted `policyTypes` means
//! `Ingress`, plus `Egress` when the policy has egress rules. A policy that
//! selects all pods and has an empty rule (`ingress: [{}]`) allows all traffic in
//! that direction and undoes default-deny: it is reported as a violation.
use k8s_openapi::api::networking::v1::{
    NetworkPolicy, NetworkPolicyEgressRule, NetworkPolicyIngressRule,
};

use k8s_openapi::api::core::v1::Namespace;

use crate::api::NetworkPolicyCheck;
use crate::snapshot::{Kind, KindSet, name_of};
use crate::vocabulary::{Context, Family, InvalidSpec, Locality, Outcome, member, violation};

/// The `networkPolicy` check family.
pub struct NetworkPolicies;

impl Family for NetworkPolicies {
    member!(network_policy: NetworkPolicyCheck = "networkPolicy");

    fn evidence(_spec: &NetworkPolicyCheck) -> &'static str {
        "NetworkPolicies of each namespace in scope"
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

fn selects_all_pods(policy: &NetworkPolicy) -> bool {
    policy.spec.as_ref().is_some_and(|s| {
        s.pod_selector.as_ref().is_none_or(|sel| {
            sel.match_labels.as_ref().is_none_or(|m| m.is_empty())
                && sel.match_expressions.as_ref().is_none_or(|e| e.is_empty())
        })
    })
}

fn ingress_allows_all(rule: &NetworkPolicyIngressRule) -> bool {
    rule.from.as_ref().is_none_or(|f| f.is_empty())
        && rule.ports.as_ref().is_none_or(|p| p.is_empty())
}

fn egress_allows_all(rule: &NetworkPolicyEgressRule) -> bool {
    rule.to.as_ref().is_none_or(|t| t.is_empty())
        && rule.ports.as_ref().is_none_or(|p| p.is_empty())
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

/// Whether the policy selects every pod and allows all traffic of the direction.
fn allows_all(policy: &NetworkPolicy, dir: Direction) -> bool {
    if !selects_all_pods(policy) || !affects(policy, dir) {
        return false;
    }
    let spec = policy.spec.as_ref();
    match dir {
        Direction::Ingress => spec
            .and_then(|s| s.ingress.as_ref())
            .is_some_and(|r| r.iter().any(ingress_allows_all)),
        Direction::Egress => spec
            .and_then(|s| s.egress.as_ref())
            .is_some_and(|r| r.iter().any(egress_allows_all)),
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
            for p in policies.iter().filter(|p| allows_all(p, dir)) {
                out.violations.push(violation(
                    p.as_ref(),
                    &format!("AllowAll{}", dir.name()),
                    format!(
                        "selects every pod and has an empty {} rule, which allows all {} traffic and undoes default-deny",
                        dir.name().to_lowercase(),
                        dir.name().to_lowercase()
                    ),
                ));
            }
        }
    });
    Ok(out)
}
