//! RBAC subjects: who a binding names, as the authorizer reads it, and
//! whether the allow-list (or the built-in control plane) covers them.
use k8s_openapi::api::rbac::v1::{RoleRef, Subject};

use super::builtin;
use crate::api::{RbacCheck, SubjectKind, SubjectMatcher};

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
pub const SYSTEM_COMPONENT_USERS: [&str; 4] = [
    "system:kube-controller-manager",
    "system:kube-scheduler",
    "system:kube-proxy",
    "system:apiserver",
];

/// The subject as the authorizer reads it: a ServiceAccount without a
/// namespace in a RoleBinding is one of the binding's namespace (upstream
/// `appliesToUser`), and user `system:serviceaccount:<ns>:<name>` is that
/// ServiceAccount.
pub fn normalize(s: &Subject, binding_namespace: &str) -> Subject {
    if s.kind == "ServiceAccount" && s.namespace.as_deref().is_none_or(str::is_empty) {
        return Subject {
            namespace: (!binding_namespace.is_empty()).then(|| binding_namespace.to_owned()),
            ..s.clone()
        };
    }
    if s.kind == "User"
        && let Some((ns, name)) = s
            .name
            .strip_prefix("system:serviceaccount:")
            .and_then(|r| r.split_once(':'))
    {
        return Subject {
            kind: "ServiceAccount".into(),
            name: name.to_owned(),
            namespace: Some(ns.to_owned()),
            api_group: None,
        };
    }
    s.clone()
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

/// Whether `s` is a built-in control-plane identity: a component user of
/// [`SYSTEM_COMPONENT_USERS`], a node (`system:node:…`, group `system:nodes`)
/// or a ServiceAccount of `kube-system` (also as group
/// `system:serviceaccounts:kube-system`) — never one of
/// [`ANONYMOUS_SUBJECTS`].
fn is_system_identity(s: &Subject) -> bool {
    if ANONYMOUS_SUBJECTS.contains(&s.name.as_str()) {
        return false;
    }
    match s.kind.as_str() {
        "ServiceAccount" => s.namespace.as_deref() == Some("kube-system"),
        "User" => {
            SYSTEM_COMPONENT_USERS.contains(&s.name.as_str()) || s.name.starts_with("system:node:")
        }
        "Group" => s.name == "system:nodes" || s.name == "system:serviceaccounts:kube-system",
        _ => false,
    }
}

/// Whether `role_ref` (from a binding in `namespace`, `""` for a
/// ClusterRoleBinding) names a built-in `system:` role of the bootstrap
/// policy: what the control-plane identities are bound to.
fn is_builtin_system_role(role_ref: &RoleRef, namespace: &str) -> bool {
    role_ref.name.starts_with("system:")
        && match role_ref.kind.as_str() {
            "ClusterRole" => builtin::cluster_role(&role_ref.name).is_some(),
            "Role" => builtin::is_role(namespace, &role_ref.name),
            _ => false,
        }
}

/// Whether `s` (normalized) may hold what `role_ref` grants under `spec`'s
/// allow-list: group `system:masters`; with `allowSystemSubjects`, a built-in
/// control-plane identity bound to a built-in `system:` role (so a
/// kube-system ServiceAccount bound to cluster-admin is not allowed); and
/// every `allowedSubjects` entry.
pub fn allowed(spec: &RbacCheck, s: &Subject, role_ref: &RoleRef, namespace: &str) -> bool {
    (s.kind == "Group" && s.name == "system:masters")
        || (spec.allow_system_subjects
            && is_system_identity(s)
            && is_builtin_system_role(role_ref, namespace))
        || spec.allowed_subjects.iter().any(|m| subject_matches(m, s))
}

/// `Kind name` or `ServiceAccount namespace/name`, for messages.
pub fn describe_subject(s: &Subject) -> String {
    match (&s.kind[..], &s.namespace) {
        ("ServiceAccount", Some(ns)) => format!("ServiceAccount {ns}/{}", s.name),
        _ => format!("{} {}", s.kind, s.name),
    }
}
