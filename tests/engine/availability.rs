use soc2_operator::engine::Verdict;
use soc2_operator::snapshot::Snapshot;

use crate::util::*;

fn deployment(name: &str, replicas: Option<i32>, probe: bool) -> String {
    let replicas = replicas.map_or(String::new(), |r| format!("  replicas: {r}\n"));
    let probe = if probe {
        "\n        readinessProbe: {httpGet: {path: /healthz, port: 8080}}"
    } else {
        ""
    };
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: app}}\nspec:\n{replicas}  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}, tier: web}}}}\n    spec:\n      containers:\n      - name: main\n        image: example/{name}:1{probe}\n"
    )
}

fn pdb(name: &str, selector: &str) -> String {
    format!(
        "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {{name: {name}, namespace: app}}\nspec:\n  minAvailable: 1\n  selector: {selector}\n"
    )
}

#[test]
fn availability_table() {
    let check = "availability: {minReplicas: 2}";
    let cases: Vec<(&str, Vec<String>, Vec<(&str, &str, &str)>)> = vec![
        ("all good", vec![deployment("web", Some(3), true), pdb("web", "{matchLabels: {app: web}}")], vec![]),
        (
            "omitted replicas is 1",
            vec![deployment("web", None, true), pdb("web", "{matchLabels: {app: web}}")],
            vec![("InsufficientReplicas", "Deployment", "app/web")],
        ),
        (
            "PDB selecting other pods does not count",
            vec![deployment("web", Some(2), true), pdb("other", "{matchLabels: {app: api}}")],
            vec![("MissingPodDisruptionBudget", "Deployment", "app/web")],
        ),
        ("an empty PDB selector matches every pod", vec![deployment("web", Some(2), true), pdb("all", "{}")], vec![]),
        (
            "no readiness probe",
            vec![deployment("web", Some(2), false), pdb("web", "{matchLabels: {app: web}}")],
            vec![("MissingReadinessProbe", "Deployment", "app/web")],
        ),
        (
            "StatefulSets are checked too",
            vec!["apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: db, namespace: app}\nspec:\n  replicas: 1\n  serviceName: db\n  selector: {matchLabels: {app: db}}\n  template:\n    metadata: {labels: {app: db}}\n    spec: {containers: [{name: pg, image: postgres}]}\n".into()],
            vec![
                ("InsufficientReplicas", "StatefulSet", "app/db"),
                ("MissingPodDisruptionBudget", "StatefulSet", "app/db"),
                ("MissingReadinessProbe", "StatefulSet", "app/db"),
            ],
        ),
    ];
    for (name, docs, expected) in cases {
        let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
        assert_eq!(
            sorted(&eval(&control(check), &snapshot(&refs))),
            expect(&expected),
            "case: {name}"
        );
    }
    // Options switch requirements off.
    let s = snapshot(&[&deployment("web", Some(1), false)]);
    let lax = "availability: {minReplicas: 1, requirePodDisruptionBudget: false, requireReadinessProbes: false}";
    assert_eq!(eval(&control(lax), &s).verdict, Verdict::Compliant);
}

/// Online Boutique: 11 Deployments with `replicas` omitted (1) and one
/// (loadgenerator) with `replicas: 1`; no PodDisruptionBudgets; every service
/// has a readiness probe except loadgenerator. Expected with minReplicas 2:
/// every Deployment InsufficientReplicas and MissingPodDisruptionBudget, and
/// loadgenerator MissingReadinessProbe.
#[test]
fn online_boutique_availability() {
    let mut s = Snapshot::default();
    s.insert_yaml(
        &fixture("real/microservices-demo/kubernetes-manifests.yaml"),
        "boutique",
    )
    .unwrap();
    s.add_implicit_namespaces();
    assert_eq!(
        s.objects::<soc2_operator::resources::compact::Deployment>()
            .len(),
        12
    );
    let e = eval(&control("availability: {}"), &s);
    let by_reason = |r: &str| {
        e.violations
            .iter()
            .filter(|v| v.reason == r)
            .map(|v| v.name.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(by_reason("InsufficientReplicas").len(), 12);
    assert_eq!(by_reason("MissingPodDisruptionBudget").len(), 12);
    assert_eq!(
        by_reason("MissingReadinessProbe"),
        vec!["loadgenerator".to_owned()]
    );
}
