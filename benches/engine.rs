//! Engine benchmark: one full evaluation of 30 Controls (six per check family)
//! over a synthetic snapshot of 10,000 namespaces and ~100,000 objects.
//!
//! Run with `make bench` (or `cargo bench --bench engine`). The synthetic
//! cluster: per namespace a Namespace, a default-deny NetworkPolicy (9 in 10
//! namespaces), an allow-from-ingress NetworkPolicy, a Deployment, a PodDisruptionBudget, a PersistentVolumeClaim, an
//! Ingress with TLS, a Role, a RoleBinding, a VolumeSnapshot and, every fifth
//! namespace, a StatefulSet; cluster-wide 300 ClusterRoles and bindings, three
//! StorageClasses, 101 Velero Schedules with 3,000 Backups, a Restore and a
//! location, 1,000 Gateways with redirect HTTPRoutes.
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jiff::Timestamp;
use serde_json::json;
use soc2_operator::api::Control;
use soc2_operator::engine::evaluate;
use soc2_operator::snapshot::Snapshot;

const NAMESPACES: usize = 10_000;

fn add(s: &mut Snapshot, v: serde_json::Value) {
    s.insert_manifest(v, "default").expect("synthetic object");
}

fn synthetic_snapshot() -> Snapshot {
    let mut s = Snapshot::default();
    for i in 0..NAMESPACES {
        let ns = format!("team-{i:05}");
        let app = format!("app-{i}");
        add(
            &mut s,
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns, "labels": {"kubernetes.io/metadata.name": ns, "env": if i % 2 == 0 {"prod"} else {"dev"}}}}),
        );
        if i % 10 != 0 {
            add(
                &mut s,
                json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "default-deny", "namespace": ns}, "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}}),
            );
        }
        add(
            &mut s,
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": {"name": "allow-ingress-controller", "namespace": ns}, "spec": {"podSelector": {"matchLabels": {"app": app}}, "policyTypes": ["Ingress"], "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}], "ports": [{"port": 8080}]}]}}),
        );
        let template = json!({"metadata": {"labels": {"app": app}}, "spec": {"containers": [{"name": "main", "image": "registry.example.com/app:1", "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}}}, {"name": "sidecar", "image": "registry.example.com/proxy:1"}]}});
        add(
            &mut s,
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": app, "namespace": ns}, "spec": {"replicas": (i % 3) + 1, "selector": {"matchLabels": {"app": app}}, "template": template}}),
        );
        if i % 5 == 0 {
            add(
                &mut s,
                json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": ns}, "spec": {"replicas": 3, "serviceName": "db", "selector": {"matchLabels": {"app": "db"}}, "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "pg", "image": "postgres:17"}]}}}}),
            );
        }
        add(
            &mut s,
            json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": app, "namespace": ns}, "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": app}}}}),
        );
        add(
            &mut s,
            json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "data", "namespace": ns}, "spec": {"storageClassName": if i % 7 == 0 {"standard"} else {"encrypted"}, "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}),
        );
        let hosts = [
            format!("{app}.example.com"),
            format!("api-{app}.example.com"),
        ];
        let tls = if i % 4 == 0 {
            json!([{"hosts": [hosts[0]]}])
        } else {
            json!([{"hosts": hosts}])
        };
        add(
            &mut s,
            json!({"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": app, "namespace": ns}, "spec": {"tls": tls, "rules": [{"host": hosts[0]}, {"host": hosts[1]}]}}),
        );
        add(
            &mut s,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "deployer", "namespace": ns}, "rules": [{"apiGroups": ["apps"], "resources": ["deployments"], "verbs": ["get", "list", "patch"]}]}),
        );
        add(
            &mut s,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "deployer", "namespace": ns}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": if i % 50 == 0 {"ClusterRole"} else {"Role"}, "name": if i % 50 == 0 {"cluster-admin"} else {"deployer"}}, "subjects": [{"kind": "ServiceAccount", "name": "ci", "namespace": ns}]}),
        );
        add(
            &mut s,
            json!({"apiVersion": "snapshot.storage.k8s.io/v1", "kind": "VolumeSnapshot", "metadata": {"name": "data-snap", "namespace": ns}, "spec": {"source": {"persistentVolumeClaimName": "data"}}, "status": {"readyToUse": true, "creationTime": "2026-06-01T02:00:00Z"}}),
        );
    }
    for i in 0..300 {
        let labels = if i % 10 == 0 {
            json!({"example.com/aggregate-to-ops": "true"})
        } else {
            json!({})
        };
        add(
            &mut s,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": format!("role-{i}"), "labels": labels}, "rules": [{"apiGroups": [""], "resources": ["pods", "secrets"], "verbs": ["get", "list", "watch"]}, {"apiGroups": ["apps"], "resources": ["*"], "verbs": ["*"]}]}),
        );
        add(
            &mut s,
            json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": {"name": format!("binding-{i}")}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": format!("role-{i}")}, "subjects": [{"kind": "Group", "name": format!("group-{i}")}, {"kind": "ServiceAccount", "name": "ops", "namespace": "kube-system"}]}),
        );
    }
    add(
        &mut s,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "ops-aggregate"}, "aggregationRule": {"clusterRoleSelectors": [{"matchLabels": {"example.com/aggregate-to-ops": "true"}}]}}),
    );
    add(
        &mut s,
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "cluster-admin"}, "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]}),
    );
    for (name, enc) in [("encrypted", true), ("standard", false), ("fast", true)] {
        let params = if enc {
            json!({"encrypted": "true"})
        } else {
            json!({})
        };
        add(
            &mut s,
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name}, "provisioner": "ebs.csi.aws.com", "parameters": params}),
        );
    }
    add(
        &mut s,
        json!({"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation", "metadata": {"name": "default", "namespace": "velero"}, "spec": {"provider": "aws"}, "status": {"phase": "Available"}}),
    );
    // 100 schedules naming 100 namespaces each, 30 daily backups per schedule
    // (3,000 backups), plus one glob schedule.
    for sched in 0..100 {
        let included: Vec<String> = (0..NAMESPACES)
            .filter(|i| i % 100 == sched)
            .map(|i| format!("team-{i:05}"))
            .collect();
        let name = format!("daily-{sched}");
        add(
            &mut s,
            json!({"apiVersion": "velero.io/v1", "kind": "Schedule", "metadata": {"name": name, "namespace": "velero"}, "spec": {"schedule": "0 1 * * *", "template": {"includedNamespaces": included}}, "status": {"phase": "Enabled"}}),
        );
        for day in 0..30 {
            let phase = if day % 9 == 0 {
                "PartiallyFailed"
            } else {
                "Completed"
            };
            add(
                &mut s,
                json!({"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": format!("{name}-202605{:02}", day + 1), "namespace": "velero", "labels": {"velero.io/schedule-name": name}}, "spec": {"includedNamespaces": included}, "status": {"phase": phase, "completionTimestamp": format!("2026-05-{:02}T01:30:00Z", day + 1)}}),
            );
        }
    }
    add(
        &mut s,
        json!({"apiVersion": "velero.io/v1", "kind": "Schedule", "metadata": {"name": "teams-weekly", "namespace": "velero"}, "spec": {"template": {"includedNamespaces": ["team-*"], "excludedNamespaces": ["team-0000?"]}}, "status": {"phase": "Enabled"}}),
    );
    // 1,000 Gateways with an HTTP and an HTTPS listener and a redirect route each.
    for i in 0..1000 {
        let ns = format!("team-{i:05}");
        add(
            &mut s,
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "Gateway", "metadata": {"name": "gw", "namespace": ns}, "spec": {"listeners": [{"name": "http", "protocol": "HTTP", "port": 80}, {"name": "https", "protocol": "HTTPS", "port": 443}]}}),
        );
        add(
            &mut s,
            json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "redirect", "namespace": ns}, "spec": {"parentRefs": [{"name": "gw", "sectionName": "http"}], "rules": [{"filters": [{"type": "RequestRedirect", "requestRedirect": {"scheme": "https"}}]}]}}),
        );
    }
    add(
        &mut s,
        json!({"apiVersion": "velero.io/v1", "kind": "Restore", "metadata": {"name": "drill", "namespace": "velero"}, "spec": {"backupName": "daily-0-20260515"}, "status": {"phase": "Completed", "completionTimestamp": "2026-05-15T10:00:00Z"}}),
    );
    add(
        &mut s,
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "kube-apiserver-cp1", "namespace": "kube-system", "labels": {"component": "kube-apiserver"}}, "spec": {"containers": [{"name": "kube-apiserver", "command": ["kube-apiserver", "--encryption-provider-config=/etc/kubernetes/enc.yaml"]}]}}),
    );
    s
}

fn control(i: usize, check: serde_json::Value, scope: Option<serde_json::Value>) -> Control {
    let mut spec = json!({"criteria": ["CC6.1"], "category": "Security", "title": format!("bench {i}"), "severity": "High", "check": check});
    if let Some(scope) = scope {
        spec["scope"] = scope;
    }
    serde_json::from_value(json!({"apiVersion": "soc2-operator.dev/v1alpha1", "kind": "Control", "metadata": {"name": format!("bench-{i}"), "generation": 1}, "spec": spec})).unwrap()
}

/// Thirty Controls: six variants of each of the five families.
fn controls() -> Vec<Control> {
    let prod = Some(json!({"namespaceSelector": {"matchLabels": {"env": "prod"}}}));
    let checks = [
        json!({"networkPolicy": {}}),
        json!({"networkPolicy": {"egress": true}}),
        json!({"encryption": {"inTransit": {}}}),
        json!({"encryption": {"atRest": {"storageClasses": {"requiredParameters": {"encrypted": "true"}}}}}),
        json!({"encryption": {"atRest": {"secrets": {}}}}),
        json!({"encryption": {"inTransit": {"allowHttpRedirect": true}, "atRest": {"storageClasses": {"allowedProvisioners": ["ebs.csi.aws.com"]}}}}),
        json!({"rbac": {}}),
        json!({"rbac": {"secretsReadClusterWide": true}}),
        json!({"rbac": {"wildcardRules": true}}),
        json!({"rbac": {"escalationVerbs": true, "anonymousBindings": true}}),
        json!({"rbac": {"allowSystemSubjects": false}}),
        json!({"backup": {"maxAge": "26h"}}),
        json!({"backup": {"maxAge": "720h", "restoreTestedWithin": "720h"}}),
        json!({"backup": {"maxAge": "720h", "volumeSnapshots": true}}),
        json!({"availability": {}}),
        json!({"availability": {"minReplicas": 3}}),
        json!({"availability": {"requirePodDisruptionBudget": false}}),
    ];
    let mut out = Vec::new();
    let mut i = 0;
    while out.len() < 30 {
        let c = &checks[i % checks.len()];
        let scope = if i >= checks.len() {
            prod.clone()
        } else {
            None
        };
        out.push(control(i, c.clone(), scope));
        i += 1;
    }
    out
}

fn bench(c: &mut Criterion) {
    let snapshot = synthetic_snapshot();
    let controls = controls();
    let now: Timestamp = "2026-06-01T12:00:00Z".parse().unwrap();
    let objects = snapshot.len();
    eprintln!(
        "synthetic snapshot: {} namespaces, {objects} objects; {} controls",
        snapshot
            .objects::<k8s_openapi::api::core::v1::Namespace>()
            .len(),
        controls.len()
    );
    let mut g = c.benchmark_group("engine");
    g.sample_size(10);
    g.bench_function("evaluate_30_controls_10k_namespaces", |b| {
        b.iter(|| {
            for ctl in &controls {
                black_box(evaluate(ctl, &snapshot, now));
            }
        })
    });
    for (family, idx) in [
        ("network_policy", 1),
        ("encryption", 5),
        ("rbac", 8),
        ("backup", 13),
        ("availability", 14),
    ] {
        let ctl = &controls[idx];
        g.bench_function(format!("evaluate_one_{family}"), |b| {
            b.iter(|| black_box(evaluate(ctl, &snapshot, now)))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
