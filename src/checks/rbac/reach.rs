//! What a grant reaches through another identity (Kubernetes "Role Based
//! Access Control Good Practices", "Privilege escalation risks"): creating
//! workloads or ServiceAccount tokens in a namespace "implicitly grants the
//! API access levels of any service account in that namespace", and
//! impersonating a named identity grants what that identity holds ("care
//! should be taken … to ensure that excessive permissions cannot be gained
//! via one of the impersonated accounts").
//!
//! [`Powers`] indexes every subject bound, by any ClusterRoleBinding or
//! RoleBinding of the cluster (in scope or not: the privilege is real either
//! way; offline, the built-in bindings the input lacks too), to an
//! admin-equivalent role or to one of the [`RiskyGrant`]s, with the words of
//! the strongest such privilege.
use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, PolicyRule, RoleBinding, Subject};

use super::{RoleFacts, RoleFactsMemo, bound_facts, rules, subjects};
use crate::api::RiskyGrant;
use crate::snapshot::{name_of, namespace_of};
use crate::vocabulary::Context;

/// Subject (kind, namespace — `""` but for ServiceAccounts —, name) → the
/// strongest privilege it holds, in words with the binding that grants it.
pub(super) type Powers = BTreeMap<(String, String, String), String>;

fn key(s: &Subject) -> (String, String, String) {
    let ns = match s.kind.as_str() {
        "ServiceAccount" => s.namespace.clone().unwrap_or_default(),
        _ => String::new(),
    };
    (s.kind.clone(), ns, s.name.clone())
}

/// The strongest privilege of `f` held through a binding that is
/// cluster-wide or not.
fn strongest(f: &RoleFacts, cluster_wide: bool) -> Option<&'static str> {
    if f.admin {
        return Some("admin rights");
    }
    f.risks
        .iter()
        .find(|r| cluster_wide || !rules::cluster_wide_only(**r))
        .map(|r| rules::describe(*r).1)
}

/// Every privileged subject of the cluster (see the module documentation).
pub(super) fn powers(
    cx: &Context,
    cluster: &BTreeMap<&str, RoleFacts>,
    memo: &RoleFactsMemo,
) -> Powers {
    let mut out = Powers::new();
    let mut add = |subjects: &[Subject], ns: &str, what: &str, via: String| {
        for s in subjects {
            let s = subjects::normalize(s, ns);
            out.entry(key(&s))
                .or_insert_with(|| format!("{what} through {via}"));
        }
    };
    let present: Vec<&ClusterRoleBinding> = cx
        .objects::<ClusterRoleBinding>()
        .iter()
        .map(|b| b.as_ref())
        .collect();
    let builtin = super::builtin::table()
        .cluster_role_bindings
        .iter()
        .filter(|b| cx.is_partial() && !present.iter().any(|p| name_of(*p) == name_of(*b)));
    for crb in present.iter().copied().chain(builtin) {
        let f = (crb.role_ref.kind == "ClusterRole")
            .then(|| cluster.get(crb.role_ref.name.as_str()))
            .flatten();
        if let Some(what) = f.and_then(|f| strongest(f, true)) {
            let via = format!("ClusterRoleBinding {}", name_of(crb));
            add(crb.subjects.as_deref().unwrap_or(&[]), "", what, via);
        }
    }
    for rb in cx.objects::<RoleBinding>().iter() {
        let ns = namespace_of(rb.as_ref());
        let f = bound_facts(cx, cluster, memo, &rb.role_ref, ns);
        if let Some(what) = f.as_ref().and_then(|f| strongest(f, false)) {
            let via = format!("RoleBinding {ns}/{}", name_of(rb.as_ref()));
            add(rb.subjects.as_deref().unwrap_or(&[]), ns, what, via);
        }
    }
    out
}

/// The privileged ServiceAccounts of `namespace`, described.
pub(super) fn service_accounts_of(powers: &Powers, namespace: &str) -> Vec<String> {
    powers
        .iter()
        .filter(|((kind, ns, _), _)| kind == "ServiceAccount" && ns == namespace)
        .map(|((_, ns, name), what)| format!("ServiceAccount {ns}/{name} holds {what}"))
        .collect()
}

/// The identities `rules` impersonate by name (`resourceNames` on `users`,
/// `groups` or `serviceaccounts` of the core group), as (resource, name).
pub(super) fn impersonated_by_name(rules_: &[&PolicyRule]) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for resource in ["users", "groups", "serviceaccounts"] {
        for r in rules_ {
            let names = r.resource_names.as_deref().unwrap_or(&[]);
            if !names.is_empty() && rules::reaches(&[r], "", resource, "impersonate") {
                out.extend(names.iter().map(|n| (resource, n.clone())));
            }
        }
    }
    out
}

/// What the identity named `name` of `resource` (impersonated through a
/// binding in `namespace`, `""` for a ClusterRoleBinding, which reaches a
/// ServiceAccount of that name in every namespace) holds, if privileged.
pub(super) fn impersonated_power(
    powers: &Powers,
    resource: &str,
    name: &str,
    namespace: &str,
) -> Option<String> {
    let subject = |kind: &str, ns: Option<&str>| Subject {
        kind: kind.into(),
        name: name.into(),
        namespace: ns.map(str::to_owned),
        api_group: None,
    };
    let found = |s: &Subject| {
        let s = subjects::normalize(s, "");
        powers
            .get(&key(&s))
            .map(|w| format!("{} (which holds {w})", subjects::describe_subject(&s)))
    };
    match resource {
        "users" => found(&subject("User", None)),
        "groups" => found(&subject("Group", None)),
        _ if !namespace.is_empty() => found(&subject("ServiceAccount", Some(namespace))),
        _ => powers
            .iter()
            .find(|((k, _, n), _)| k == "ServiceAccount" && n == name)
            .map(|((_, ns, n), w)| format!("ServiceAccount {ns}/{n} (which holds {w})")),
    }
}

/// The risks a namespaced grant of which reaches the namespace's
/// ServiceAccounts: workloads (they run as any ServiceAccount of the
/// namespace) and tokens.
pub(super) const REACHING: [RiskyGrant; 2] =
    [RiskyGrant::WorkloadCreation, RiskyGrant::TokenRequest];
