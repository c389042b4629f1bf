//! The table of built-in RBAC objects (`src/checks/rbac/builtin.json`) that
//! offline checks use is the real API server's bootstrap policy: this test
//! lists the objects labelled `kubernetes.io/bootstrapping=rbac-defaults` on
//! the local control plane and compares. With `SOC2_UPDATE_BUILTIN_RBAC=1` it
//! rewrites the table instead (after a Kubernetes upgrade).
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role};
use kube::Api;
use kube::api::ListParams;
use soc2_operator::checks::rbac::builtin;

use crate::support;

#[tokio::test]
async fn builtin_rbac_table_matches_the_api_server() {
    let client = support::client().await;
    let lp = ListParams::default().labels("kubernetes.io/bootstrapping=rbac-defaults");
    // kube-controller-manager's clusterrole-aggregation controller fills the
    // aggregated roles shortly after a control plane starts, `admin` only
    // after `edit` (which it aggregates): wait until every aggregated role
    // holds every rule of the roles it selects.
    let api = Api::<ClusterRole>::all(client.clone());
    let cluster_roles = support::eventually(
        "the aggregated ClusterRoles to converge",
        std::time::Duration::from_secs(60),
        || {
            let (api, lp) = (api.clone(), lp.clone());
            async move {
                let list = api.list(&lp).await.ok()?;
                aggregated(&list.items).then_some(list)
            }
        },
    )
    .await;
    let roles = Api::<Role>::all(client.clone()).list(&lp).await.unwrap();
    let bindings = Api::<ClusterRoleBinding>::all(client.clone())
        .list(&lp)
        .await
        .unwrap();
    let version = client.apiserver_version().await.unwrap().git_version;
    let live = builtin::normalize(
        &version,
        &cluster_roles.items,
        &roles.items,
        &bindings.items,
    );
    let path = support::repo_root().join("src/checks/rbac/builtin.json");
    if std::env::var_os("SOC2_UPDATE_BUILTIN_RBAC").is_some() {
        std::fs::write(&path, builtin::to_json(&live)).unwrap();
        return;
    }
    let table = builtin::table();
    assert_eq!(
        table.version, live.version,
        "rerun with SOC2_UPDATE_BUILTIN_RBAC=1"
    );
    let names = |t: &builtin::Builtin| -> Vec<String> {
        t.cluster_roles
            .iter()
            .filter_map(|r| r.metadata.name.clone())
            .collect()
    };
    assert_eq!(names(table), names(&live), "built-in ClusterRoles");
    for (ours, theirs) in table.cluster_roles.iter().zip(&live.cluster_roles) {
        assert_eq!(ours, theirs, "ClusterRole {:?}", ours.metadata.name);
    }
    assert_eq!(table.roles, live.roles, "built-in Roles");
    assert_eq!(
        table.cluster_role_bindings, live.cluster_role_bindings,
        "built-in ClusterRoleBindings"
    );
    // What the offline checks rely on is there.
    for name in ["cluster-admin", "admin", "edit", "view", "system:node"] {
        assert!(builtin::cluster_role(name).is_some(), "{name}");
    }
    // The file is exactly what the generator writes (one object a line).
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        builtin::to_json(table),
        "builtin.json is not in generator form: rerun with SOC2_UPDATE_BUILTIN_RBAC=1"
    );
}

/// Whether every aggregated ClusterRole of `roles` holds every rule of each
/// role its `matchLabels` selectors select (the bootstrap policy uses no
/// expressions).
fn aggregated(roles: &[ClusterRole]) -> bool {
    roles.iter().all(|r| {
        let Some(selectors) = r
            .aggregation_rule
            .as_ref()
            .and_then(|a| a.cluster_role_selectors.as_ref())
        else {
            return true;
        };
        let own = r.rules.clone().unwrap_or_default();
        selectors.iter().all(|sel| {
            let want = sel.match_labels.clone().unwrap_or_default();
            roles
                .iter()
                .filter(|x| {
                    let labels = x.metadata.labels.clone().unwrap_or_default();
                    want.iter().all(|(k, v)| labels.get(k) == Some(v))
                })
                .flat_map(|x| x.rules.clone().unwrap_or_default())
                .all(|rule| own.contains(&rule))
        })
    })
}
