//! The built-in RBAC objects of Kubernetes v1.36 (the bootstrap policy,
//! label `kubernetes.io/bootstrapping=rbac-defaults`): ClusterRoles with their
//! aggregated rules and aggregation selectors, the Roles of `kube-system` and
//! `kube-public`, and the ClusterRoleBindings. Offline input rarely contains
//! them, yet bindings name them (`edit`, `view`, `system:…`): the checks use
//! this table for roles missing from offline input, and to tell built-in
//! roles and bindings by name.
//!
//! `builtin.json` is generated from a real API server: the end-to-end test
//! `builtin_rbac_table_matches_the_api_server` compares it with the live
//! objects and, with `SOC2_UPDATE_BUILTIN_RBAC=1`, rewrites it.
use std::sync::LazyLock;

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role};
use serde::{Deserialize, Serialize};

/// The table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Builtin {
    /// The Kubernetes version it was read from.
    pub version: String,
    /// Built-in ClusterRoles, by name.
    pub cluster_roles: Vec<ClusterRole>,
    /// Built-in Roles, by namespace and name.
    pub roles: Vec<Role>,
    /// Built-in ClusterRoleBindings, by name.
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
}

static TABLE: LazyLock<Builtin> = LazyLock::new(|| {
    serde_json::from_str(include_str!("builtin.json")).expect("builtin.json is valid")
});

/// The table embedded in the binary.
pub fn table() -> &'static Builtin {
    &TABLE
}

/// The built-in ClusterRole `name`, if there is one.
pub fn cluster_role(name: &str) -> Option<&'static ClusterRole> {
    TABLE
        .cluster_roles
        .iter()
        .find(|r| r.metadata.name.as_deref() == Some(name))
}

/// Whether `namespace/name` is a built-in Role.
pub fn is_role(namespace: &str, name: &str) -> bool {
    TABLE.roles.iter().any(|r| {
        r.metadata.namespace.as_deref() == Some(namespace)
            && r.metadata.name.as_deref() == Some(name)
    })
}

/// The built-in ClusterRoleBinding `name`, if there is one.
pub fn cluster_role_binding(name: &str) -> Option<&'static ClusterRoleBinding> {
    TABLE
        .cluster_role_bindings
        .iter()
        .find(|b| b.metadata.name.as_deref() == Some(name))
}

/// The labels the table keeps: aggregation labels only.
const AGGREGATION_LABEL_PREFIX: &str = "rbac.authorization.k8s.io/aggregate-to-";

fn rules(rules: &Option<Vec<PolicyRule>>) -> Option<Vec<PolicyRule>> {
    Some(rules.clone().unwrap_or_default())
}

/// The table as it reads from the bootstrap-labelled objects an API server
/// of `version` lists (kept: names, aggregation labels and selectors, rules,
/// role references and subjects; sorted by name).
pub fn normalize(
    version: &str,
    cluster_roles: &[ClusterRole],
    roles: &[Role],
    bindings: &[ClusterRoleBinding],
) -> Builtin {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
    let mut cluster_roles: Vec<ClusterRole> = cluster_roles
        .iter()
        .map(|r| ClusterRole {
            metadata: ObjectMeta {
                name: r.metadata.name.clone(),
                labels: r
                    .metadata
                    .labels
                    .as_ref()
                    .map(|l| {
                        l.iter()
                            .filter(|(k, _)| k.starts_with(AGGREGATION_LABEL_PREFIX))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect::<std::collections::BTreeMap<_, _>>()
                    })
                    .filter(|l| !l.is_empty()),
                ..Default::default()
            },
            aggregation_rule: r.aggregation_rule.clone(),
            // The aggregation controller writes aggregated rules in no fixed
            // order; rule order grants nothing.
            rules: rules(&r.rules).map(|mut x| {
                if r.aggregation_rule.is_some() {
                    x.sort_by_cached_key(|rule| serde_json::to_string(rule).unwrap_or_default());
                }
                x
            }),
        })
        .collect();
    cluster_roles.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    let mut roles: Vec<Role> = roles
        .iter()
        .map(|r| Role {
            metadata: ObjectMeta {
                name: r.metadata.name.clone(),
                namespace: r.metadata.namespace.clone(),
                ..Default::default()
            },
            rules: rules(&r.rules),
        })
        .collect();
    roles.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    let mut bindings: Vec<ClusterRoleBinding> = bindings
        .iter()
        .map(|b| ClusterRoleBinding {
            metadata: ObjectMeta {
                name: b.metadata.name.clone(),
                ..Default::default()
            },
            role_ref: b.role_ref.clone(),
            subjects: b.subjects.clone().filter(|s| !s.is_empty()),
        })
        .collect();
    bindings.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Builtin {
        version: version.to_owned(),
        cluster_roles,
        roles,
        cluster_role_bindings: bindings,
    }
}

/// `items` as a JSON array, one item a line, without `apiVersion` and
/// `kind` (the table's position says what each item is).
fn lines<T: Serialize>(items: &[T]) -> String {
    let each: Vec<String> = items
        .iter()
        .map(|x| {
            let mut v = serde_json::to_value(x).expect("JSON");
            if let Some(o) = v.as_object_mut() {
                o.remove("apiVersion");
                o.remove("kind");
            }
            serde_json::to_string(&v).expect("JSON")
        })
        .collect();
    format!("[\n{}\n]", each.join(",\n"))
}

/// The table as `builtin.json` holds it: one object a line.
pub fn to_json(t: &Builtin) -> String {
    format!(
        "{{\n\"version\":{},\n\"clusterRoles\":{},\n\"roles\":{},\n\"clusterRoleBindings\":{}\n}}\n",
        serde_json::to_string(&t.version).expect("JSON"),
        lines(&t.cluster_roles),
        lines(&t.roles),
        lines(&t.cluster_role_bindings),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_knows_the_user_facing_and_system_roles() {
        for name in [
            "cluster-admin",
            "admin",
            "edit",
            "view",
            "system:node-proxier",
        ] {
            assert!(cluster_role(name).is_some(), "{name}");
        }
        let edit = cluster_role("edit").unwrap();
        assert!(edit.aggregation_rule.is_some() && !edit.rules.as_ref().unwrap().is_empty());
        assert!(is_role("kube-system", "system:controller:bootstrap-signer"));
        assert!(cluster_role_binding("system:public-info-viewer").is_some());
    }

    #[test]
    fn the_table_survives_its_own_normalization() {
        let t = table();
        let again = normalize(
            &t.version,
            &t.cluster_roles,
            &t.roles,
            &t.cluster_role_bindings,
        );
        assert_eq!(&again, t);
    }
}
