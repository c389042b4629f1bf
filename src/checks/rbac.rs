//! Over-privileged RBAC — TSC CC6.1 (logical access), CC6.2 (authorising
//! users) and CC6.3 (least privilege, role-based access).
//!
//! Rule (Kubernetes "Using RBAC Authorization" and "Role Based Access Control
//! Good Practices"): no subject outside the allow-list is bound, by a
//! ClusterRoleBinding or an in-scope RoleBinding, to `cluster-admin` or to a role
//! with a rule granting `*` verbs on `*` resources (in the `*` or core API group). Aggregated ClusterRoles
//! (`aggregationRule.clusterRoleSelectors`) are judged by the union of their own
//! rules and those of the ClusterRoles they select. The optional checks each
//! report one more risky grant (see [`RbacCheck`]).
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use kube::core::SelectorExt;

use crate::api::{RbacCheck, SubjectKind, SubjectMatcher};
use crate::snapshot::{Kind, KindSet, labels_of, name_of};
use crate::vocabulary::{
    Context, Family, InvalidSpec, Locality, Outcome, member, parse_selector, violation,
};

/// Subjects that are never allowed to hold admin rights, even with
/// `allowSystemSubjects`: anonymous, unauthenticated and all-authenticated
/// requests, and every ServiceAccount of the cluster as a group.
pub const ANONYMOUS_SUBJECTS: [&str; 4] = [
    "system:anonymous",
    "system:unauthenticated",
    "system:authenticated",
    "system:serviceaccounts",
];

/// Users of the built-in control-plane components (Kubernetes "Core component
/// roles"), allowed with `allowSystemSubjects`.
pub const SYSTEM_COMPONENT_USERS: [&str; 5] = [
    "system:kube-controller-manager",
    "system:kube-scheduler",
    "system:kube-proxy",
    "system:apiserver",
    "system:volume-scheduler",
];

/// The `rbac` check family.
pub struct Rbac;

impl Family for Rbac {
    member!(rbac: RbacCheck = "rbac");

    fn evidence(_spec: &RbacCheck) -> &'static str {
        "ClusterRoles, ClusterRoleBindings, Roles, RoleBindings (aggregation resolved)"
    }

    /// Kinds read: ClusterRole, ClusterRoleBinding, Role, RoleBinding.
    fn kinds(_spec: &RbacCheck) -> KindSet {
        KindSet::from([
            Kind::ClusterRole,
            Kind::ClusterRoleBinding,
            Kind::Role,
            Kind::RoleBinding,
        ])
    }

    /// How far a change reaches: a Role or RoleBinding (or a Namespace) only
    /// its own namespace's findings; a ClusterRoleBinding only the
    /// cluster-scoped findings; a ClusterRole every binding that references it.
    fn locality(_spec: &RbacCheck, kind: Kind) -> Locality {
        match kind {
            Kind::Namespace | Kind::Role | Kind::RoleBinding => Locality::Namespace,
            Kind::ClusterRoleBinding => Locality::Cluster,
            _ => Locality::Global,
        }
    }

    fn evaluate(spec: &RbacCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
        evaluate(spec, cx)
    }
}

fn has(list: &[String], value: &str) -> bool {
    list.iter().any(|v| v == "*" || v == value)
}

/// A rule with `*` verbs on `*` resources in the `*` or the core (`""`) API
/// group: cluster-admin in all but name. (`*`/`*` limited to one non-core group,
/// e.g. `metrics.k8s.io`, is not admin; `wildcardRules` reports it.)
pub fn is_wildcard_admin(rule: &PolicyRule) -> bool {
    let groups = rule.api_groups.as_deref().unwrap_or(&[]);
    let resources = rule.resources.as_deref().unwrap_or(&[]);
    rule.verbs.iter().any(|v| v == "*")
        && resources.iter().any(|r| r == "*")
        && groups.iter().any(|g| g == "*" || g.is_empty())
}

fn reads_secrets(rule: &PolicyRule) -> bool {
    let groups = rule.api_groups.as_deref().unwrap_or(&[]);
    let resources = rule.resources.as_deref().unwrap_or(&[]);
    (groups.iter().any(|g| g.is_empty() || g == "*"))
        && has(resources, "secrets")
        && rule.resource_names.as_ref().is_none_or(|n| n.is_empty())
        && ["get", "list", "watch"].iter().any(|v| has(&rule.verbs, v))
}

/// The escalation verbs a rule grants (RBAC good practices: "Escalation
/// verbs"): `bind`/`escalate` on roles or clusterroles of
/// `rbac.authorization.k8s.io`, `impersonate` on users, groups, serviceaccounts,
/// uids or userextras — named, or through `*` verbs, resources or API groups.
fn escalation_verbs(rule: &PolicyRule) -> Vec<&'static str> {
    let groups = rule.api_groups.as_deref().unwrap_or(&[]);
    let resources = rule.resources.as_deref().unwrap_or(&[]);
    let any_resource = |names: &[&str]| {
        resources.iter().any(|r| {
            let base = r.split('/').next().unwrap_or(r);
            base == "*" || names.contains(&base)
        })
    };
    let mut out = Vec::new();
    if has(groups, "rbac.authorization.k8s.io") && any_resource(&["roles", "clusterroles"]) {
        out.extend(
            ["bind", "escalate"]
                .into_iter()
                .filter(|v| has(&rule.verbs, v)),
        );
    }
    let impersonation_group = groups
        .iter()
        .any(|g| g == "*" || g.is_empty() || g == "authentication.k8s.io");
    if impersonation_group
        && any_resource(&["users", "groups", "serviceaccounts", "uids", "userextras"])
        && has(&rule.verbs, "impersonate")
    {
        out.push("impersonate");
    }
    out
}

/// Whether a subject matches an allow-list entry (`name` exact or `prefix*`).
pub fn subject_matches(m: &SubjectMatcher, s: &Subject) -> bool {
    let kind_ok = matches!(
        (m.kind, s.kind.as_str()),
        (SubjectKind::User, "User")
            | (SubjectKind::Group, "Group")
            | (SubjectKind::ServiceAccount, "ServiceAccount")
    );
    let name_ok = match m.name.strip_suffix('*') {
        Some(prefix) => s.name.starts_with(prefix),
        None => s.name == m.name,
    };
    let ns_ok = m
        .namespace
        .as_deref()
        .is_none_or(|ns| s.namespace.as_deref() == Some(ns));
    kind_ok && name_ok && ns_ok
}

/// Whether `s` may hold admin rights under `spec`'s allow-list: group
/// `system:masters`; with `allowSystemSubjects`, the built-in components —
/// users in [`SYSTEM_COMPONENT_USERS`], nodes (`system:node:…`, group
/// `system:nodes`) and ServiceAccounts of `kube-system` (as a subject, as user
/// `system:serviceaccount:kube-system:…` or group
/// `system:serviceaccounts:kube-system`) — never [`ANONYMOUS_SUBJECTS`] nor
/// ServiceAccounts of other namespaces; and every `allowedSubjects` entry.
pub fn allowed(spec: &RbacCheck, s: &Subject) -> bool {
    if s.kind == "Group" && s.name == "system:masters" {
        return true;
    }
    if spec.allow_system_subjects && !ANONYMOUS_SUBJECTS.contains(&s.name.as_str()) {
        let builtin = match s.kind.as_str() {
            "ServiceAccount" => s.namespace.as_deref() == Some("kube-system"),
            "User" => {
                SYSTEM_COMPONENT_USERS.contains(&s.name.as_str())
                    || s.name.starts_with("system:node:")
                    || s.name.starts_with("system:serviceaccount:kube-system:")
            }
            "Group" => s.name == "system:nodes" || s.name == "system:serviceaccounts:kube-system",
            _ => false,
        };
        if builtin {
            return true;
        }
    }
    spec.allowed_subjects.iter().any(|m| subject_matches(m, s))
}

fn describe_subject(s: &Subject) -> String {
    match (&s.kind[..], &s.namespace) {
        ("ServiceAccount", Some(ns)) => format!("ServiceAccount {ns}/{}", s.name),
        _ => format!("{} {}", s.kind, s.name),
    }
}

/// The effective rules of a ClusterRole: its own plus, when aggregated, those of
/// every ClusterRole its selectors match (recursively, each role once).
pub fn effective_cluster_role_rules<'a>(
    cx: &'a Context,
    role: &'a ClusterRole,
) -> Result<Vec<&'a PolicyRule>, InvalidSpec> {
    let mut rules: Vec<&PolicyRule> = Vec::new();
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut stack = vec![role];
    while let Some(r) = stack.pop() {
        if !seen.insert(name_of(r)) {
            continue;
        }
        rules.extend(r.rules.iter().flatten());
        let selectors = r
            .aggregation_rule
            .as_ref()
            .and_then(|a| a.cluster_role_selectors.as_ref());
        for sel in selectors.into_iter().flatten() {
            // A malformed selector in cluster data selects nothing.
            let Ok(sel) = parse_selector("aggregationRule", sel) else {
                continue;
            };
            stack.extend(
                cx.objects::<ClusterRole>()
                    .iter()
                    .map(|c| c.as_ref())
                    .filter(|c| sel.matches(labels_of(*c))),
            );
        }
    }
    Ok(rules)
}

/// What a role grants, as far as this check cares.
#[derive(Clone)]
struct RoleFacts {
    admin: bool,
    secrets: bool,
    escalation: BTreeSet<&'static str>,
    /// Every rule is a nonResourceURLs rule.
    non_resource_only: bool,
}

impl Default for RoleFacts {
    fn default() -> Self {
        RoleFacts {
            admin: false,
            secrets: false,
            escalation: BTreeSet::new(),
            non_resource_only: true,
        }
    }
}

fn facts<'a>(rules: impl IntoIterator<Item = &'a PolicyRule>) -> RoleFacts {
    let mut f = RoleFacts::default();
    for r in rules {
        f.admin |= is_wildcard_admin(r);
        f.secrets |= reads_secrets(r);
        f.escalation.extend(escalation_verbs(r));
        f.non_resource_only &= r.resources.as_ref().is_none_or(|x| x.is_empty());
    }
    f
}

/// Facts of every ClusterRole, computed once per evaluation (aggregation
/// resolved), keyed by name.
fn cluster_role_facts<'a>(cx: &'a Context) -> Result<BTreeMap<&'a str, RoleFacts>, InvalidSpec> {
    let mut out = BTreeMap::new();
    for cr in cx.objects::<ClusterRole>().iter() {
        let mut f = facts(effective_cluster_role_rules(cx, cr)?);
        f.admin |= name_of(cr.as_ref()) == "cluster-admin";
        out.insert(name_of(cr.as_ref()), f);
    }
    Ok(out)
}

/// What a binding's `roleRef` grants; `None` when the role does not exist.
fn bound_facts(
    cx: &Context,
    cluster: &BTreeMap<&str, RoleFacts>,
    role_ref: &RoleRef,
    namespace: &str,
) -> Option<RoleFacts> {
    match role_ref.kind.as_str() {
        "ClusterRole" => match cluster.get(role_ref.name.as_str()) {
            Some(f) => Some(f.clone()),
            // cluster-admin is bootstrap policy; judge a binding to it even
            // when the role itself is not in the snapshot (offline manifests).
            None if role_ref.name == "cluster-admin" => Some(RoleFacts {
                admin: true,
                ..Default::default()
            }),
            None => None,
        },
        "Role" => cx
            .objects::<Role>()
            .get(namespace, &role_ref.name)
            .map(|r| facts(r.rules.iter().flatten())),
        _ => None,
    }
}

/// Built-in roles by name: `system:…` and `cluster-admin` (Kubernetes
/// "Default roles and role bindings"). Annotations are not trusted: anyone who
/// can write RBAC can set them.
fn is_system_role(name: &str) -> bool {
    name.starts_with("system:") || name == "cluster-admin"
}

/// The one bootstrap binding that deliberately serves unauthenticated requests:
/// `system:public-info-viewer` (health and version endpoints only). It is
/// exempt from `anonymousBindings` only while its role grants nothing but
/// non-resource URLs.
fn is_public_info_binding(
    name: &str,
    role_ref: &RoleRef,
    cluster: &BTreeMap<&str, RoleFacts>,
) -> bool {
    name == "system:public-info-viewer"
        && role_ref.kind == "ClusterRole"
        && role_ref.name == "system:public-info-viewer"
        && cluster
            .get("system:public-info-viewer")
            .is_none_or(|f| f.non_resource_only)
}

struct BindingView<'a> {
    name: &'a str,
    subjects: &'a [Subject],
    role_ref: &'a RoleRef,
    namespace: &'a str,
    cluster_wide: bool,
}

/// Evaluates RBAC bindings and, optionally, roles.
///
/// # Errors
/// None in practice: malformed selectors in cluster data select nothing.
fn evaluate(spec: &RbacCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
    let mut out = Outcome::default();
    let cluster = cluster_role_facts(cx)?;
    for crb in cx.objects::<ClusterRoleBinding>().iter() {
        out.resources_checked += 1;
        let view = BindingView {
            name: name_of(crb.as_ref()),
            subjects: crb.subjects.as_deref().unwrap_or(&[]),
            role_ref: &crb.role_ref,
            namespace: "",
            cluster_wide: true,
        };
        check_binding(spec, cx, &cluster, &view, &mut out, |reason, msg| {
            violation(crb.as_ref(), reason, msg)
        });
    }
    cx.each_namespace(&mut out, |ns, out| {
        for rb in cx.objects::<RoleBinding>().in_namespace(ns) {
            out.resources_checked += 1;
            let view = BindingView {
                name: name_of(rb.as_ref()),
                subjects: rb.subjects.as_deref().unwrap_or(&[]),
                role_ref: &rb.role_ref,
                namespace: ns,
                cluster_wide: false,
            };
            check_binding(spec, cx, &cluster, &view, out, |reason, msg| {
                violation(rb.as_ref(), reason, msg)
            });
        }
    });
    if spec.wildcard_rules {
        for cr in cx.objects::<ClusterRole>().iter() {
            out.resources_checked += 1;
            if is_system_role(name_of(cr.as_ref())) {
                continue;
            }
            if let Some(what) = wildcard(cr.rules.iter().flatten()) {
                out.violations
                    .push(violation(cr.as_ref(), "WildcardRule", what));
            }
        }
        cx.each_namespace(&mut out, |ns, out| {
            for r in cx.objects::<Role>().in_namespace(ns) {
                out.resources_checked += 1;
                if is_system_role(name_of(r.as_ref())) {
                    continue;
                }
                if let Some(what) = wildcard(r.rules.iter().flatten()) {
                    out.violations
                        .push(violation(r.as_ref(), "WildcardRule", what));
                }
            }
        });
    }
    Ok(out)
}

fn wildcard<'a>(rules: impl Iterator<Item = &'a PolicyRule>) -> Option<String> {
    let mut found = BTreeSet::new();
    for r in rules {
        if r.verbs.iter().any(|v| v == "*") {
            found.insert("verbs");
        }
        if r.resources.iter().flatten().any(|v| v == "*") {
            found.insert("resources");
        }
    }
    (!found.is_empty()).then(|| {
        format!(
            "grants \"*\" in {}",
            found.into_iter().collect::<Vec<_>>().join(" and ")
        )
    })
}

fn check_binding(
    spec: &RbacCheck,
    cx: &Context,
    cluster: &BTreeMap<&str, RoleFacts>,
    b: &BindingView,
    out: &mut Outcome,
    make: impl Fn(&str, String) -> crate::api::Violation,
) {
    if spec.anonymous_bindings && !is_public_info_binding(b.name, b.role_ref, cluster) {
        for s in b.subjects {
            let anon = (s.kind == "User" && s.name == "system:anonymous")
                || (s.kind == "Group" && s.name == "system:unauthenticated");
            if anon {
                out.violations.push(make(
                    "AnonymousBinding",
                    format!(
                        "binds {} {} to unauthenticated requests ({})",
                        b.role_ref.kind,
                        b.role_ref.name,
                        describe_subject(s)
                    ),
                ));
            }
        }
    }
    let Some(f) = bound_facts(cx, cluster, b.role_ref, b.namespace) else {
        return;
    };
    let (admin, secrets, escalation) = (f.admin, b.cluster_wide && f.secrets, f.escalation);
    for s in b.subjects.iter().filter(|s| !allowed(spec, s)) {
        let who = describe_subject(s);
        if admin {
            out.violations.push(make(
                "AdminBoundToSubject",
                format!(
                    "grants {} {} (all verbs on all resources) to {who}, which is not on the allow-list",
                    b.role_ref.kind, b.role_ref.name
                ),
            ));
            continue;
        }
        if spec.secrets_read_cluster_wide && secrets {
            out.violations.push(make(
                "SecretsReadClusterWide",
                format!(
                    "grants get/list/watch on Secrets in every namespace ({} {}) to {who}",
                    b.role_ref.kind, b.role_ref.name
                ),
            ));
        }
        if spec.escalation_verbs && !escalation.is_empty() {
            out.violations.push(make(
                "EscalationVerbs",
                format!(
                    "grants the escalation verb(s) {} ({} {}) to {who}",
                    escalation.iter().copied().collect::<Vec<_>>().join(", "),
                    b.role_ref.kind,
                    b.role_ref.name
                ),
            ));
        }
    }
}
