//! RBAC rules matched as the authorizer matches them (`k8s.io/kubernetes`
//! `pkg/apis/rbac/v1/evaluation_helpers.go`: `VerbMatches`,
//! `APIGroupMatches`, `ResourceMatches`, `ResourceNameMatches`), and what a
//! set of rules grants that the checks care about.
use std::collections::BTreeSet;

use k8s_openapi::api::rbac::v1::PolicyRule;

use crate::api::RiskyGrant;

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";

fn verb_matches(rule: &PolicyRule, verb: &str) -> bool {
    rule.verbs.iter().any(|v| v == "*" || v == verb)
}

fn group_matches(rule: &PolicyRule, group: &str) -> bool {
    rule.api_groups
        .iter()
        .flatten()
        .any(|g| g == "*" || g == group)
}

/// `resource` may name a subresource (`pods/exec`); a rule resource matches
/// when it is `*`, the same string, or `*/<subresource>` (upstream has no
/// `<resource>/*` form).
fn resource_matches(rule: &PolicyRule, resource: &str) -> bool {
    let sub = resource.split_once('/').map(|(_, s)| s);
    rule.resources
        .iter()
        .flatten()
        .any(|r| r == "*" || r == resource || sub.is_some_and(|s| r.strip_prefix("*/") == Some(s)))
}

/// A rule without `resourceNames` matches every name; one with them only a
/// request for one of those names (never `create`, `list` or `watch`, which
/// carry no name: "Referring to resources" in the RBAC docs).
fn name_matches(rule: &PolicyRule, name: Option<&str>) -> bool {
    match rule.resource_names.as_deref() {
        None | Some([]) => true,
        Some(names) => name.is_some_and(|n| names.iter().any(|x| x == n)),
    }
}

/// Whether `rules` allow `verb` on every object of `resource` in `group`
/// (`name` `None`), or on the object named `name`.
pub fn allows(
    rules: &[&PolicyRule],
    group: &str,
    resource: &str,
    verb: &str,
    name: Option<&str>,
) -> bool {
    rules.iter().any(|r| {
        verb_matches(r, verb)
            && group_matches(r, group)
            && resource_matches(r, resource)
            && name_matches(r, name)
    })
}

/// Whether `rules` allow `verb` on `resource` for at least some names (a rule
/// narrowed by `resourceNames` counts).
pub fn reaches(rules: &[&PolicyRule], group: &str, resource: &str, verb: &str) -> bool {
    rules
        .iter()
        .any(|r| verb_matches(r, verb) && group_matches(r, group) && resource_matches(r, resource))
}

fn any_verb(rules: &[&PolicyRule], group: &str, resource: &str, verbs: &[&str]) -> bool {
    verbs.iter().any(|v| reaches(rules, group, resource, v))
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

/// Whether `rules` make their holder an administrator: a `*`/`*` rule; every
/// write verb on every resource of every (or the core) group, which includes
/// writing RBAC itself; or impersonating group `system:masters`, whose members
/// "bypass all RBAC rights checks" (RBAC Good Practices).
pub fn is_admin(rules: &[&PolicyRule]) -> bool {
    let writes_everything = rules.iter().any(|r| {
        let everything = r.resources.iter().flatten().any(|x| x == "*")
            && r.api_groups
                .iter()
                .flatten()
                .any(|g| g == "*" || g.is_empty())
            && name_matches(r, None);
        everything
            && ["create", "update", "patch", "delete"]
                .iter()
                .all(|v| verb_matches(r, v))
    });
    rules.iter().any(|r| is_wildcard_admin(r))
        || writes_everything
        || allows(rules, "", "groups", "impersonate", Some("system:masters"))
}

/// Whether `rules` grant the privilege-escalation `risk` (Kubernetes "Role
/// Based Access Control Good Practices", "Privilege escalation risks").
pub fn grants(rules: &[&PolicyRule], risk: RiskyGrant) -> bool {
    let all = |group: &str, resource: &str, verb: &str| allows(rules, group, resource, verb, None);
    match risk {
        RiskyGrant::SecretsRead => ["get", "list", "watch"]
            .iter()
            .any(|v| all("", "secrets", v)),
        RiskyGrant::WorkloadCreation => {
            let creates = [
                ("", "pods"),
                ("", "replicationcontrollers"),
                ("apps", "deployments"),
                ("apps", "replicasets"),
                ("apps", "statefulsets"),
                ("apps", "daemonsets"),
                ("batch", "jobs"),
                ("batch", "cronjobs"),
            ];
            // Changing a pod template (or a pod's image, which is mutable in
            // place) runs any image under the workload's ServiceAccount as
            // surely as creating one does.
            creates
                .iter()
                .any(|(g, r)| ["create", "update", "patch"].iter().any(|v| all(g, r, v)))
                || all("", "pods/exec", "create")
                || all("", "pods/attach", "create")
                || ["update", "patch"]
                    .iter()
                    .any(|v| all("", "pods/ephemeralcontainers", v))
        }
        RiskyGrant::PersistentVolumeCreation => all("", "persistentvolumes", "create"),
        RiskyGrant::NodeProxy => any_verb(
            rules,
            "",
            "nodes/proxy",
            &["get", "create", "update", "patch", "delete"],
        ),
        RiskyGrant::Escalate => ["roles", "clusterroles"]
            .iter()
            .any(|r| all(RBAC_GROUP, r, "escalate")),
        RiskyGrant::Bind => ["roles", "clusterroles"].iter().any(|r| {
            all(RBAC_GROUP, r, "bind")
                || allows(rules, RBAC_GROUP, r, "bind", Some("cluster-admin"))
        }),
        RiskyGrant::Impersonate => impersonates(rules),
        RiskyGrant::CertificateSigning => {
            let g = "certificates.k8s.io";
            all(g, "certificatesigningrequests", "create")
                && any_verb(
                    rules,
                    g,
                    "certificatesigningrequests/approval",
                    &["update", "patch"],
                )
                && reaches(rules, g, "signers", "approve")
        }
        RiskyGrant::TokenRequest => all("", "serviceaccounts/token", "create"),
        RiskyGrant::AdmissionWebhooks => [
            "mutatingwebhookconfigurations",
            "validatingwebhookconfigurations",
            "validatingadmissionpolicies",
            "validatingadmissionpolicybindings",
            "mutatingadmissionpolicies",
            "mutatingadmissionpolicybindings",
        ]
        .iter()
        .any(|r| {
            any_verb(
                rules,
                "admissionregistration.k8s.io",
                r,
                &["create", "update", "patch", "delete"],
            )
        }),
        RiskyGrant::NamespaceModification => {
            any_verb(rules, "", "namespaces", &["update", "patch"])
        }
    }
}

/// `impersonate` on users, groups, ServiceAccounts (core group), uids or user
/// extras (`authentication.k8s.io`), for any name, or of group `system:masters`
/// by name (which bypasses RBAC: cluster-admin in all but name).
fn impersonates(rules: &[&PolicyRule]) -> bool {
    let all = |group: &str, resource: &str| allows(rules, group, resource, "impersonate", None);
    ["users", "groups", "serviceaccounts"]
        .iter()
        .any(|r| all("", r))
        || allows(rules, "", "groups", "impersonate", Some("system:masters"))
        || all("authentication.k8s.io", "uids")
        || rules.iter().any(|r| {
            verb_matches(r, "impersonate")
                && group_matches(r, "authentication.k8s.io")
                && name_matches(r, None)
                && r.resources
                    .iter()
                    .flatten()
                    .any(|x| x == "*" || x.starts_with("userextras/"))
        })
}

/// Whether a risk can only be granted cluster-wide: its resources are
/// cluster-scoped, or the good-practices page is about the cluster-wide grant
/// (Secrets of every namespace, workloads and tokens in every namespace).
/// `NamespaceModification` is not: a RoleBinding to a Role that may patch
/// `namespaces` lets its subject relabel that namespace itself (Good
/// Practices: "through a namespaced RoleBinding to a Role with that access").
pub fn cluster_wide_only(risk: RiskyGrant) -> bool {
    !matches!(
        risk,
        RiskyGrant::Escalate
            | RiskyGrant::Bind
            | RiskyGrant::Impersonate
            | RiskyGrant::NamespaceModification
    )
}

/// Whether `rules` allow `bind` on some ClusterRole (every one, or some by
/// name).
pub fn binds_any_cluster_role(rules: &[&PolicyRule]) -> bool {
    reaches(rules, RBAC_GROUP, "clusterroles", "bind")
}

/// Whether `rules` allow `bind` on the ClusterRole named `name` (by name or
/// on every ClusterRole).
pub fn binds_cluster_role(rules: &[&PolicyRule], name: &str) -> bool {
    allows(rules, RBAC_GROUP, "clusterroles", "bind", Some(name))
}

/// The reason and the plain words of a risk, for violations.
pub fn describe(risk: RiskyGrant) -> (&'static str, &'static str) {
    match risk {
        RiskyGrant::SecretsRead => (
            "SecretsReadClusterWide",
            "get/list/watch on Secrets in every namespace",
        ),
        RiskyGrant::WorkloadCreation => (
            "WorkloadCreationClusterWide",
            "creating or changing pods or pod-managing workloads, or exec, attach or ephemeral containers, in every namespace",
        ),
        RiskyGrant::PersistentVolumeCreation => (
            "PersistentVolumeCreation",
            "creating PersistentVolumes (a hostPath volume reaches the node)",
        ),
        RiskyGrant::NodeProxy => (
            "NodeProxyAccess",
            "nodes/proxy (the kubelet API: exec into any pod of the node, around audit and admission)",
        ),
        RiskyGrant::Escalate => ("EscalateVerb", "escalate on roles or clusterroles"),
        RiskyGrant::Bind => ("BindVerb", "bind on roles or clusterroles"),
        RiskyGrant::Impersonate => (
            "ImpersonateVerb",
            "impersonate on users, groups, serviceaccounts, uids or userextras",
        ),
        RiskyGrant::CertificateSigning => (
            "CertificateSigning",
            "creating and approving CertificateSigningRequests (a client certificate for any identity)",
        ),
        RiskyGrant::TokenRequest => (
            "TokenRequestClusterWide",
            "creating serviceaccounts/token in every namespace (a token of any ServiceAccount)",
        ),
        RiskyGrant::AdmissionWebhooks => (
            "AdmissionControl",
            "writing admission webhooks or ValidatingAdmissionPolicies (read or change every admitted object, or remove the guards)",
        ),
        RiskyGrant::NamespaceModification => (
            "NamespaceModification",
            "updating Namespaces (their labels decide Pod Security Admission and NetworkPolicy selection)",
        ),
    }
}

/// The escalation verbs of the legacy `escalationVerbs` option that `rules`
/// grant.
pub fn escalation_verbs(rules: &[&PolicyRule]) -> BTreeSet<&'static str> {
    let mut out = BTreeSet::new();
    if grants(rules, RiskyGrant::Bind) {
        out.insert("bind");
    }
    if grants(rules, RiskyGrant::Escalate) {
        out.insert("escalate");
    }
    if grants(rules, RiskyGrant::Impersonate) {
        out.insert("impersonate");
    }
    out
}

/// `"*"` in the verbs or resources of `rules`, said in words.
pub fn wildcard<'a>(rules: impl Iterator<Item = &'a PolicyRule>) -> Option<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(groups: &[&str], resources: &[&str], verbs: &[&str], names: &[&str]) -> PolicyRule {
        let v = |s: &[&str]| Some(s.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>());
        PolicyRule {
            api_groups: v(groups),
            resources: v(resources),
            verbs: verbs.iter().map(|x| (*x).to_owned()).collect(),
            resource_names: (!names.is_empty()).then(|| v(names)).flatten(),
            non_resource_urls: None,
        }
    }

    #[test]
    fn resources_match_as_the_authorizer_matches_them() {
        let status = rule(&["*"], &["*/status"], &["bind", "escalate"], &[]);
        assert!(!grants(&[&status], RiskyGrant::Bind), "*/status is no role");
        let nodes = rule(&["*"], &["nodes/proxy"], &["get"], &[]);
        assert!(grants(&[&nodes], RiskyGrant::NodeProxy));
        let one_node = rule(&[""], &["nodes/proxy"], &["get"], &["node-1"]);
        assert!(
            grants(&[&one_node], RiskyGrant::NodeProxy),
            "one node is still a node"
        );
        let create_named = rule(&[""], &["pods"], &["create"], &["x"]);
        assert!(
            !grants(&[&create_named], RiskyGrant::WorkloadCreation),
            "create cannot be narrowed by name, so such a rule grants no create"
        );
    }

    #[test]
    fn admin_includes_writing_everything_and_impersonating_masters() {
        let almost = rule(
            &["*"],
            &["*"],
            &["get", "list", "create", "update", "patch", "delete"],
            &[],
        );
        assert!(is_admin(&[&almost]));
        let masters = rule(&[""], &["groups"], &["impersonate"], &["system:masters"]);
        assert!(is_admin(&[&masters]));
        let metrics = rule(&["metrics.k8s.io"], &["*"], &["*"], &[]);
        assert!(!is_admin(&[&metrics]));
    }

    #[test]
    fn certificate_signing_needs_all_three_grants() {
        let create = rule(
            &["certificates.k8s.io"],
            &["certificatesigningrequests"],
            &["create"],
            &[],
        );
        let approve_csr = rule(
            &["certificates.k8s.io"],
            &["certificatesigningrequests/approval"],
            &["update"],
            &[],
        );
        let signer = rule(
            &["certificates.k8s.io"],
            &["signers"],
            &["approve"],
            &["kubernetes.io/kube-apiserver-client"],
        );
        assert!(!grants(
            &[&create, &approve_csr],
            RiskyGrant::CertificateSigning
        ));
        assert!(grants(
            &[&create, &approve_csr, &signer],
            RiskyGrant::CertificateSigning
        ));
    }
}
