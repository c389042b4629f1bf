//! Over-privileged RBAC — TSC CC6.1 (logical access), CC6.2 (authorising
//! users) and CC6.3 (least privilege, role-based access).
//!
//! Rule (Kubernetes "Using RBAC Authorization" and "Role Based Access Control
//! Good Practices"): each option reports one kind of grant, by a
//! ClusterRoleBinding or an in-scope RoleBinding, to a subject outside the
//! allow-list — `clusterAdmin` (on by default): `cluster-admin` or an
//! equivalent role (`*` verbs on `*` resources in the `*` or core group,
//! every write verb on every resource, or impersonating `system:masters`);
//! `riskyGrants`: each privilege-escalation risk of the good-practices page
//! ([`RiskyGrant`]); `anonymousBindings` and `allAuthenticatedBindings`: any
//! binding to unauthenticated, or to all authenticated, subjects beyond the
//! bootstrap ones; `wildcardRules`: `*`
//! in roles that are not built-in. Rules are matched as the authorizer matches
//! them ([`rules`]); aggregated ClusterRoles are judged by the union of their
//! rules and those of the ClusterRoles they select. Offline input rarely holds
//! the built-in roles bindings name (`edit`, `view`, `system:…`): they are
//! taken from the table of Kubernetes v1.36's bootstrap policy ([`builtin`]);
//! a binding to a role neither in the input nor built in is undetermined.
use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::rbac::v1::{
    ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject,
};
use kube::core::SelectorExt;

use crate::api::{RbacCheck, RiskyGrant, Verification, Violation};
use crate::snapshot::{Kind, KindSet, labels_of, name_of};
use crate::vocabulary::{
    Context, EvidenceKind, Family, InvalidSpec, Locality, Outcome, list_some, member,
    parse_selector, violation,
};

pub mod builtin;
mod reach;
pub mod rules;
pub mod subjects;

pub use rules::is_wildcard_admin;
pub use subjects::{ANONYMOUS_SUBJECTS, SYSTEM_COMPONENT_USERS, allowed, subject_matches};

/// The RBAC objects: what the RBAC authorizer grants is exactly these.
pub static RBAC_OBJECTS: EvidenceKind = EvidenceKind {
    claim: "RBAC grants nothing this Control forbids",
    source: "RBAC",
    verification: Verification::Verified,
    proves: "what the ClusterRoles, ClusterRoleBindings, Roles and RoleBindings grant, aggregation resolved, as the RBAC authorizer reads them",
    does_not_prove: "grants by other authorizers (Node, webhook, ABAC), client certificates in group system:masters, access that bypasses the API (node or etcd access), or RoleBindings in namespaces out of scope (kube-system is out unless the scope names it)",
};

/// The `rbac` check family.
pub struct Rbac;

impl Family for Rbac {
    member!(rbac: RbacCheck = "rbac");

    fn evidence_kinds(_spec: &RbacCheck) -> Vec<&'static EvidenceKind> {
        vec![&RBAC_OBJECTS]
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
    /// With `riskyGrants` that reach other identities (`Impersonate`,
    /// `WorkloadCreation`, `TokenRequest`), any Role or binding can change
    /// what a grant elsewhere reaches, so they reach everything.
    fn locality(spec: &RbacCheck, kind: Kind) -> Locality {
        match kind {
            Kind::Role | Kind::RoleBinding | Kind::ClusterRoleBinding if reaches_others(spec) => {
                Locality::Global
            }
            Kind::Namespace | Kind::Role | Kind::RoleBinding => Locality::Namespace,
            Kind::ClusterRoleBinding => Locality::Cluster,
            _ => Locality::Global,
        }
    }

    /// [`InvalidSpec`] when no option is on (`clusterAdmin: false` and
    /// nothing else): such a check would check nothing; or when an
    /// `allowedSubjects` ServiceAccount entry has no namespace (or another
    /// kind has one).
    fn evaluate(spec: &RbacCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
        let anything = reads_roles(spec)
            || spec.anonymous_bindings
            || spec.all_authenticated_bindings
            || spec.wildcard_rules;
        if let Some(i) = spec.allowed_subjects.iter().position(|m| {
            (m.kind == crate::api::SubjectKind::ServiceAccount) != m.namespace.is_some()
        }) {
            return Err(InvalidSpec::new(
                format!("spec.check.rbac.allowedSubjects[{i}].namespace"),
                "required for a ServiceAccount entry (without it, a ServiceAccount of that name in any namespace would be allowed), and for no other kind",
            ));
        }
        if !anything {
            return Err(InvalidSpec::new(
                "spec.check.rbac.clusterAdmin",
                "with clusterAdmin false, set at least one other option (riskyGrants, anonymousBindings, allAuthenticatedBindings, wildcardRules): this check would check nothing",
            ));
        }
        Ok(evaluate(spec, cx))
    }
}

/// The ClusterRoles the check sees: the snapshot's, and for offline input the
/// built-in ones it lacks.
fn all_cluster_roles<'a>(cx: &Context<'a>) -> Vec<&'a ClusterRole> {
    let mut roles: Vec<&ClusterRole> = cx
        .objects::<ClusterRole>()
        .iter()
        .map(|r| r.as_ref())
        .collect();
    if cx.is_partial() {
        let present: BTreeSet<&str> = roles.iter().map(|r| name_of(*r)).collect();
        roles.extend(
            builtin::table()
                .cluster_roles
                .iter()
                .filter(|r| !present.contains(name_of(*r))),
        );
    }
    roles
}

/// The effective rules of a ClusterRole: its own plus, when aggregated, those of
/// every ClusterRole its selectors match (recursively, each role once).
fn effective_rules<'a>(all: &[&'a ClusterRole], role: &'a ClusterRole) -> Vec<&'a PolicyRule> {
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
            stack.extend(all.iter().copied().filter(|c| sel.matches(labels_of(*c))));
        }
    }
    rules
}

/// What a role grants, as far as this check cares.
#[derive(Clone, Default)]
struct RoleFacts {
    admin: bool,
    risks: BTreeSet<RiskyGrant>,
    /// The legacy `escalationVerbs` option's verbs.
    escalation: BTreeSet<&'static str>,
    /// Every rule is `get` on the bootstrap health and version URLs.
    public_info_only: bool,
    /// `bind` narrowed by name to a ClusterRole that is admin-equivalent or
    /// holds a risk: through a ClusterRoleBinding its holder can grant that
    /// role in every namespace (the delegation pattern of the Good Practices
    /// page is a RoleBinding's).
    binds_powerful: Option<String>,
    /// The identities impersonated by name, as (resource, name).
    impersonates: Vec<(&'static str, String)>,
}

/// The non-resource URLs the bootstrap `system:public-info-viewer` role opens.
const PUBLIC_INFO_URLS: [&str; 5] = ["/healthz", "/livez", "/readyz", "/version", "/version/"];

fn facts(rules: &[&PolicyRule]) -> RoleFacts {
    let all_risks = [
        RiskyGrant::SecretsRead,
        RiskyGrant::WorkloadCreation,
        RiskyGrant::PersistentVolumeCreation,
        RiskyGrant::NodeProxy,
        RiskyGrant::Escalate,
        RiskyGrant::Bind,
        RiskyGrant::Impersonate,
        RiskyGrant::CertificateSigning,
        RiskyGrant::TokenRequest,
        RiskyGrant::AdmissionWebhooks,
        RiskyGrant::NamespaceModification,
    ];
    RoleFacts {
        admin: rules::is_admin(rules),
        risks: all_risks
            .into_iter()
            .filter(|r| rules::grants(rules, *r))
            .collect(),
        escalation: rules::escalation_verbs(rules),
        public_info_only: rules.iter().all(|r| {
            r.resources.as_ref().is_none_or(Vec::is_empty)
                && r.verbs.iter().all(|v| v == "get")
                && r.non_resource_urls
                    .iter()
                    .flatten()
                    .all(|u| PUBLIC_INFO_URLS.contains(&u.as_str()))
        }),
        binds_powerful: None,
        impersonates: reach::impersonated_by_name(rules),
    }
}

/// Facts of every ClusterRole, computed once per evaluation (aggregation
/// resolved), keyed by name.
fn cluster_role_facts<'a>(all: &[&'a ClusterRole]) -> BTreeMap<&'a str, RoleFacts> {
    let rules: Vec<(&str, Vec<&PolicyRule>)> = all
        .iter()
        .map(|cr| (name_of(*cr), effective_rules(all, cr)))
        .collect();
    let mut out: BTreeMap<&str, RoleFacts> = rules
        .iter()
        .map(|(name, rules)| {
            let mut f = facts(rules);
            f.admin |= *name == "cluster-admin";
            (*name, f)
        })
        .collect();
    let powerful: Vec<&str> = out
        .iter()
        .filter(|(_, f)| f.admin || !f.risks.is_empty())
        .map(|(n, _)| *n)
        .collect();
    // Only roles that may bind some ClusterRole can bind a powerful one.
    for (name, rules) in rules
        .iter()
        .filter(|(_, r)| rules::binds_any_cluster_role(r))
    {
        let target = powerful
            .iter()
            .find(|p| rules::binds_cluster_role(rules, p));
        if let (Some(t), Some(f)) = (target, out.get_mut(name)) {
            f.binds_powerful = Some((*t).to_owned());
        }
    }
    out
}

/// The facts of namespace Roles, by the Roles' rules (as JSON), computed
/// once per evaluation: the same Role is met once per binding and again by
/// the reach index, and charts install identical Roles in many namespaces
/// (at 10,000 namespaces this was most of an RBAC evaluation).
#[derive(Default)]
struct RoleFactsMemo(std::cell::RefCell<std::collections::HashMap<String, RoleFacts>>);

impl RoleFactsMemo {
    fn of(&self, rules: &[PolicyRule]) -> RoleFacts {
        let key = serde_json::to_string(rules).unwrap_or_default();
        if let Some(f) = self.0.borrow().get(&key) {
            return f.clone();
        }
        let f = facts(&rules.iter().collect::<Vec<_>>());
        self.0.borrow_mut().insert(key, f.clone());
        f
    }
}

/// What a binding's `roleRef` grants; `None` when the role is not known
/// (absent from the cluster: it grants nothing; absent from offline input:
/// it cannot be told).
fn bound_facts(
    cx: &Context,
    cluster: &BTreeMap<&str, RoleFacts>,
    memo: &RoleFactsMemo,
    role_ref: &RoleRef,
    namespace: &str,
) -> Option<RoleFacts> {
    match role_ref.kind.as_str() {
        "ClusterRole" => cluster.get(role_ref.name.as_str()).cloned(),
        "Role" => {
            let role = cx
                .objects::<Role>()
                .get(namespace, &role_ref.name)
                .map(|r| r.as_ref());
            let builtin = || {
                builtin::table().roles.iter().find(|r| {
                    r.metadata.namespace.as_deref() == Some(namespace)
                        && name_of(*r) == role_ref.name
                })
            };
            let role = role.or_else(|| cx.is_partial().then(builtin).flatten())?;
            Some(memo.of(role.rules.as_deref().unwrap_or(&[])))
        }
        _ => None,
    }
}

/// A role exempt from `wildcardRules`: a built-in one, by name (a role a user
/// names `system:…` is not).
fn is_builtin_role(kind: &str, namespace: &str, name: &str) -> bool {
    match kind {
        "ClusterRole" => builtin::cluster_role(name).is_some(),
        _ => builtin::is_role(namespace, name),
    }
}

/// A binding as the checks see it, ClusterRoleBinding or RoleBinding.
struct BindingView<'a> {
    name: &'a str,
    subjects: &'a [Subject],
    role_ref: &'a RoleRef,
    namespace: &'a str,
    cluster_wide: bool,
}

/// The options of `spec` that need to know what the bound role grants.
fn reads_roles(spec: &RbacCheck) -> bool {
    spec.cluster_admin
        || spec.secrets_read_cluster_wide
        || spec.escalation_verbs
        || !spec.risky_grants.is_empty()
}

/// The risks `spec` asks about (`secretsReadClusterWide` is `SecretsRead`).
fn requested_risks(spec: &RbacCheck) -> BTreeSet<RiskyGrant> {
    let mut risks: BTreeSet<RiskyGrant> = spec.risky_grants.iter().copied().collect();
    if spec.secrets_read_cluster_wide {
        risks.insert(RiskyGrant::SecretsRead);
    }
    risks
}

/// Evaluates RBAC bindings and, optionally, roles.
fn evaluate(spec: &RbacCheck, cx: &Context) -> Outcome {
    let mut out = Outcome::default();
    out.evidence.push(RBAC_OBJECTS.evidence(
        "ClusterRoles, ClusterRoleBindings, Roles and RoleBindings (aggregation resolved)".into(),
    ));
    let all = all_cluster_roles(cx);
    let facts = cluster_role_facts(&all);
    let memo = RoleFactsMemo::default();
    let powers = reaches_others(spec).then(|| reach::powers(cx, &facts, &memo));
    let cluster = Roles {
        facts,
        powers,
        risks: requested_risks(spec),
        memo,
    };
    for crb in cx.objects::<ClusterRoleBinding>().iter() {
        out.resources_checked += 1;
        let view = BindingView {
            name: name_of(crb.as_ref()),
            subjects: crb.subjects.as_deref().unwrap_or(&[]),
            role_ref: &crb.role_ref,
            namespace: "",
            cluster_wide: true,
        };
        check_binding(spec, cx, &cluster, &view, &mut out, &|reason, msg| {
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
            check_binding(spec, cx, &cluster, &view, out, &|reason, msg| {
                violation(rb.as_ref(), reason, msg)
            });
        }
    });
    if spec.wildcard_rules {
        wildcard_roles(cx, &mut out);
    }
    out
}

/// `wildcardRules`: `*` in the verbs or resources of roles that are not
/// built in.
fn wildcard_roles(cx: &Context, out: &mut Outcome) {
    for cr in cx.objects::<ClusterRole>().iter() {
        out.resources_checked += 1;
        if is_builtin_role("ClusterRole", "", name_of(cr.as_ref())) {
            continue;
        }
        if let Some(what) = rules::wildcard(cr.rules.iter().flatten()) {
            out.violations
                .push(violation(cr.as_ref(), "WildcardRule", what));
        }
    }
    cx.each_namespace(out, |ns, out| {
        for r in cx.objects::<Role>().in_namespace(ns) {
            out.resources_checked += 1;
            if is_builtin_role("Role", ns, name_of(r.as_ref())) {
                continue;
            }
            if let Some(what) = rules::wildcard(r.rules.iter().flatten()) {
                out.violations
                    .push(violation(r.as_ref(), "WildcardRule", what));
            }
        }
    });
}

type Make<'m> = dyn Fn(&str, String) -> Violation + 'm;

/// What every ClusterRole grants and, when the Control asks about grants that
/// reach other identities, who holds what ([`reach::Powers`]).
struct Roles<'a> {
    facts: BTreeMap<&'a str, RoleFacts>,
    powers: Option<reach::Powers>,
    /// The risks the Control asks about ([`requested_risks`]), once.
    risks: BTreeSet<RiskyGrant>,
    /// Namespace Roles' facts, once per distinct rule set.
    memo: RoleFactsMemo,
}

/// Whether `spec` asks about grants that reach other identities'
/// privileges: `Impersonate`, `WorkloadCreation`, `TokenRequest`.
fn reaches_others(spec: &RbacCheck) -> bool {
    requested_risks(spec)
        .iter()
        .any(|r| *r == RiskyGrant::Impersonate || reach::REACHING.contains(r))
}

fn check_binding(
    spec: &RbacCheck,
    cx: &Context,
    cluster: &Roles,
    b: &BindingView,
    out: &mut Outcome,
    make: &Make,
) {
    let subjects: Vec<Subject> = b
        .subjects
        .iter()
        .map(|s| subjects::normalize(s, b.namespace))
        .collect();
    let facts = bound_facts(cx, &cluster.facts, &cluster.memo, b.role_ref, b.namespace);
    if spec.anonymous_bindings || spec.all_authenticated_bindings {
        everyone_bindings(spec, b, &subjects, facts.as_ref(), out, make);
    }
    if !reads_roles(spec) {
        return;
    }
    let judged: Vec<&Subject> = subjects
        .iter()
        .filter(|s| !allowed(spec, s, b.role_ref, b.namespace))
        .collect();
    let Some(f) = facts else {
        if cx.is_partial() && !judged.is_empty() {
            out.undetermined.push(make(
                "RoleNotFound",
                format!(
                    "binds {} {}, which is neither in the input nor a built-in role: what it grants cannot be told",
                    b.role_ref.kind, b.role_ref.name
                ),
            ));
        }
        return;
    };
    for s in judged {
        grants_to(spec, cluster, b, &f, s, out, make);
        if let Some(p) = &cluster.powers {
            reached(&cluster.risks, b, &f, s, p, out, make);
        }
    }
}

/// The findings of one subject outside the allow-list holding role facts `f`.
fn grants_to(
    spec: &RbacCheck,
    cluster: &Roles,
    b: &BindingView,
    f: &RoleFacts,
    s: &Subject,
    out: &mut Outcome,
    make: &Make,
) {
    let who = subjects::describe_subject(s);
    let role = format!("{} {}", b.role_ref.kind, b.role_ref.name);
    if spec.cluster_admin && f.admin {
        out.violations.push(make(
            "AdminBoundToSubject",
            format!("grants {role} (all verbs on all resources) to {who}, which is not on the allow-list"),
        ));
        return;
    }
    let risks = &cluster.risks;
    for risk in risks {
        if f.risks.contains(risk) && (b.cluster_wide || !rules::cluster_wide_only(*risk)) {
            let (reason, what) = rules::describe(*risk);
            out.violations
                .push(make(reason, format!("grants {what} ({role}) to {who}")));
        }
    }
    let named_bind = f.binds_powerful.as_ref().filter(|_| b.cluster_wide);
    if let Some(target) = named_bind
        .filter(|_| risks.contains(&RiskyGrant::Bind) && !f.risks.contains(&RiskyGrant::Bind))
    {
        out.violations.push(make(
            rules::describe(RiskyGrant::Bind).0,
            format!("grants bind on ClusterRole {target}, which is admin-equivalent or holds a privilege-escalation risk, in every namespace ({role}) to {who}"),
        ));
    }
    if spec.escalation_verbs && !f.escalation.is_empty() {
        out.violations.push(make(
            "EscalationVerbs",
            format!(
                "grants the escalation verb(s) {} ({role}) to {who}",
                f.escalation.iter().copied().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
}

/// Grants that reach another identity's privileges: impersonating a
/// privileged identity by name (`ImpersonateVerb`), and creating workloads or
/// tokens in a namespace whose ServiceAccounts are privileged
/// (`ServiceAccountPrivilegesReachable`; cluster-wide grants are reported as
/// such by [`grants_to`]).
fn reached(
    risks: &BTreeSet<RiskyGrant>,
    b: &BindingView,
    f: &RoleFacts,
    s: &Subject,
    powers: &reach::Powers,
    out: &mut Outcome,
    make: &Make,
) {
    let (who, role) = (
        subjects::describe_subject(s),
        format!("{} {}", b.role_ref.kind, b.role_ref.name),
    );
    if risks.contains(&RiskyGrant::Impersonate) && !f.risks.contains(&RiskyGrant::Impersonate) {
        let targets: Vec<String> = f
            .impersonates
            .iter()
            .filter_map(|(res, name)| reach::impersonated_power(powers, res, name, b.namespace))
            .collect();
        if !targets.is_empty() {
            out.violations.push(make(
                rules::describe(RiskyGrant::Impersonate).0,
                format!(
                    "grants impersonating {} ({role}) to {who}",
                    list_some(&targets, 3)
                ),
            ));
        }
    }
    let reaching = reach::REACHING
        .iter()
        .find(|r| risks.contains(r) && f.risks.contains(r));
    if let (Some(r), false) = (reaching, b.cluster_wide) {
        let held = reach::service_accounts_of(powers, b.namespace);
        if !held.is_empty() {
            out.violations.push(make(
                "ServiceAccountPrivilegesReachable",
                format!(
                    "grants {} in namespace {} ({role}) to {who}, where {}",
                    reach_words(*r),
                    b.namespace,
                    list_some(&held, 3)
                ),
            ));
        }
    }
}

/// A namespaced reaching grant in words.
fn reach_words(r: RiskyGrant) -> &'static str {
    match r {
        RiskyGrant::TokenRequest => "creating ServiceAccount tokens",
        _ => "creating or changing workloads",
    }
}

/// `anonymousBindings`: bindings to unauthenticated requests (user
/// `system:anonymous`, group `system:unauthenticated`), reason
/// `AnonymousBinding`; `allAuthenticatedBindings`: to everyone authenticated (groups
/// `system:authenticated`, `system:serviceaccounts`; on some managed clusters
/// any account of the provider), reason `AllAuthenticatedBinding` — except the
/// bootstrap bindings that do so on purpose, while they are as built in:
/// `system:public-info-viewer` (only while its role opens nothing but `get` on
/// the health and version URLs), `system:basic-user`, `system:discovery`,
/// `system:service-account-issuer-discovery`.
fn everyone_bindings(
    spec: &RbacCheck,
    b: &BindingView,
    subjects: &[Subject],
    facts: Option<&RoleFacts>,
    out: &mut Outcome,
    make: &Make,
) {
    for s in subjects {
        let anonymous = (s.kind == "User" && s.name == "system:anonymous")
            || (s.kind == "Group" && s.name == "system:unauthenticated");
        let everyone = s.kind == "Group"
            && (s.name == "system:authenticated" || s.name == "system:serviceaccounts");
        let asked =
            (anonymous && spec.anonymous_bindings) || (everyone && spec.all_authenticated_bindings);
        if !asked || is_bootstrap_everyone(b, s, facts) {
            continue;
        }
        let (reason, whom) = if anonymous {
            ("AnonymousBinding", "unauthenticated requests")
        } else {
            ("AllAuthenticatedBinding", "every authenticated identity")
        };
        out.violations.push(make(
            reason,
            format!(
                "binds {} {} to {whom} ({})",
                b.role_ref.kind,
                b.role_ref.name,
                subjects::describe_subject(s)
            ),
        ));
    }
}

/// Whether binding `b` grants subject `s` exactly as a bootstrap binding of
/// the built-in table does (same name, role and subject).
fn is_bootstrap_everyone(b: &BindingView, s: &Subject, facts: Option<&RoleFacts>) -> bool {
    let Some(builtin) = builtin::cluster_role_binding(b.name) else {
        return false;
    };
    let same = b.cluster_wide
        && b.role_ref.kind == "ClusterRole"
        && builtin.role_ref.name == b.role_ref.name
        && builtin
            .subjects
            .iter()
            .flatten()
            .any(|x| x.kind == s.kind && x.name == s.name);
    let narrow = b.name != "system:public-info-viewer" || facts.is_none_or(|f| f.public_info_only);
    same && narrow
}
