//! The benchmark cluster: N application namespaces of twelve objects each, cluster
//! RBAC and StorageClasses, Velero schedules and backups covering every
//! namespace, created concurrently through the API server.
//!
//! The cluster is built so that the three Controls the trials flip start
//! compliant: every namespace (also `default`, `velero` and the release
//! namespace) has a default-deny NetworkPolicy, every Ingress host has TLS, and
//! nobody but `system:masters` holds cluster-admin.
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::{StreamExt, TryStreamExt};
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, PostParams};
use serde_json::{Value, json};

/// Objects created per application namespace (the Namespace not included).
pub const OBJECTS_PER_NAMESPACE: usize = 10;

/// Namespaces a Velero Schedule covers (listed in `includedNamespaces`).
const NAMESPACES_PER_SCHEDULE: usize = 100;

/// Concurrent create requests.
const CONCURRENCY: usize = 48;

/// One object to create.
pub struct Obj {
    ar: ApiResource,
    namespace: Option<String>,
    body: Value,
}

fn gvk(group: &str, version: &str, kind: &str) -> ApiResource {
    ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind))
}

fn obj(group: &str, version: &str, kind: &str, ns: Option<&str>, body: Value) -> Obj {
    let ar = gvk(group, version, kind);
    let mut body = body;
    body["apiVersion"] = json!(ar.api_version);
    body["kind"] = json!(kind);
    Obj {
        ar,
        namespace: ns.map(str::to_owned),
        body,
    }
}

/// The name of application namespace `i`.
pub fn namespace_name(i: usize) -> String {
    format!("bench-{i:05}")
}

/// A default-deny NetworkPolicy (ingress and egress) for `ns`.
pub fn default_deny(ns: &str) -> Value {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": "default-deny", "namespace": ns},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    })
}

/// A digest-pinned image from an approved registry.
fn image(i: usize) -> String {
    format!(
        "registry.example.com/shop/web@sha256:{:064x}",
        i as u128 * 7919 + 1
    )
}

/// A hardened pod spec for the batch objects (restart policy `restart`).
fn pod_spec(i: usize, restart: &str) -> Value {
    json!({
        "restartPolicy": restart,
        "serviceAccountName": "web",
        "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [{
            "name": "task", "image": image(i),
            "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
            "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                "capabilities": {"drop": ["ALL"]}}
        }]
    })
}

/// A privileged bare Pod named `name` (the bare-Pod detection scenario).
pub fn privileged_pod(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name},
        "spec": {"containers": [{
            "name": "shell", "image": image(0),
            "securityContext": {"privileged": true}
        }]}
    })
}

/// The twelve objects of application namespace `ns` (number `i`).
fn namespace_objects(i: usize, ns: &str) -> Vec<Obj> {
    let core = |kind, body| obj("", "v1", kind, Some(ns), body);
    let host = format!("web.{ns}.example.com");
    vec![
        core("ServiceAccount", json!({"metadata": {"name": "web"}})),
        obj(
            "rbac.authorization.k8s.io",
            "v1",
            "Role",
            Some(ns),
            json!({
                "metadata": {"name": "config-reader"},
                "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "list", "watch"]}]
            }),
        ),
        obj(
            "rbac.authorization.k8s.io",
            "v1",
            "RoleBinding",
            Some(ns),
            json!({
                "metadata": {"name": "web-config-reader"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "config-reader"},
                "subjects": [{"kind": "ServiceAccount", "name": "web", "namespace": ns}]
            }),
        ),
        obj(
            "apps",
            "v1",
            "Deployment",
            Some(ns),
            json!({
                "metadata": {"name": "web", "labels": {"app": "web"}},
                "spec": {
                    "replicas": 2,
                    "selector": {"matchLabels": {"app": "web"}},
                    "template": {
                        "metadata": {"labels": {"app": "web"}},
                        "spec": {
                            "serviceAccountName": "web",
                            "securityContext": {"runAsNonRoot": true, "seccompProfile": {"type": "RuntimeDefault"}},
                            "containers": [{
                                "name": "web", "image": image(i),
                                "ports": [{"containerPort": 8080}],
                                "readinessProbe": {"httpGet": {"path": "/healthz", "port": 8080}},
                                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "128Mi"}},
                                "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                                                    "capabilities": {"drop": ["ALL"]}}
                            }]
                        }
                    }
                }
            }),
        ),
        // A nightly CronJob and a one-off Job (issue 13: every pod-creating
        // kind is read; the Job controller gives the Job a Pod).
        obj(
            "batch",
            "v1",
            "CronJob",
            Some(ns),
            json!({
                "metadata": {"name": "nightly"},
                "spec": {
                    "schedule": "0 3 * * *",
                    "jobTemplate": {"spec": {"template": {"spec": pod_spec(i, "Never")}}}
                }
            }),
        ),
        obj(
            "batch",
            "v1",
            "Job",
            Some(ns),
            json!({
                "metadata": {"name": "migrate"},
                "spec": {"template": {"spec": pod_spec(i, "Never")}}
            }),
        ),
        // Headless: the local API server's service range has 254 addresses.
        core(
            "Service",
            json!({
                "metadata": {"name": "web"},
                "spec": {"clusterIP": "None", "selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}
            }),
        ),
        obj(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            Some(ns),
            default_deny(ns),
        ),
        obj(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            Some(ns),
            json!({
                "metadata": {"name": "allow-web"},
                "spec": {
                    "podSelector": {"matchLabels": {"app": "web"}},
                    "policyTypes": ["Ingress"],
                    "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}],
                                 "ports": [{"port": 8080}]}]
                }
            }),
        ),
        core(
            "PersistentVolumeClaim",
            json!({
                "metadata": {"name": "data"},
                "spec": {"storageClassName": "encrypted-ssd", "accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "1Gi"}}}
            }),
        ),
        obj(
            "networking.k8s.io",
            "v1",
            "Ingress",
            Some(ns),
            ingress("web", &host, true),
        ),
        obj(
            "policy",
            "v1",
            "PodDisruptionBudget",
            Some(ns),
            json!({
                "metadata": {"name": "web"},
                "spec": {"minAvailable": 1, "selector": {"matchLabels": {"app": "web"}}}
            }),
        ),
    ]
}

/// An Ingress for `host`, with or without a TLS section.
pub fn ingress(name: &str, host: &str, tls: bool) -> Value {
    let mut v = json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": {"name": name},
        "spec": {
            "rules": [{"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix",
                "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]
        }
    });
    if tls {
        v["spec"]["tls"] = json!([{"hosts": [host], "secretName": format!("{name}-tls")}]);
    }
    v
}

/// Creates every object, `CONCURRENCY` at a time; a request that fails is
/// retried (up to 5 times) before the whole creation fails.
pub async fn create_all(client: &Client, objs: Vec<Obj>) -> Result<()> {
    futures::stream::iter(objs)
        .map(|o| {
            let client = client.clone();
            async move {
                let api: Api<DynamicObject> = match &o.namespace {
                    Some(ns) => Api::namespaced_with(client, ns, &o.ar),
                    None => Api::all_with(client, &o.ar),
                };
                let what = format!(
                    "{} {}/{}",
                    o.ar.kind,
                    o.namespace.as_deref().unwrap_or(""),
                    o.body["metadata"]["name"].as_str().unwrap_or("")
                );
                let d: DynamicObject = serde_json::from_value(o.body).context("object")?;
                let mut attempt = 0;
                loop {
                    match api.create(&PostParams::default(), &d).await {
                        Ok(_) => return Ok(()),
                        Err(e) if attempt < 5 => {
                            attempt += 1;
                            tracing::debug!(%what, error = %e, "create failed; retrying");
                            tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                        }
                        Err(e) => {
                            return Err(anyhow::Error::new(e).context(format!("create {what}")));
                        }
                    }
                }
            }
        })
        .buffer_unordered(CONCURRENCY)
        .try_collect::<Vec<()>>()
        .await?;
    Ok(())
}

/// What [`populate`] created.
pub struct Population {
    /// Objects created (namespaces included), Controls and RBAC of the operator not.
    pub objects: usize,
    /// Wall time of the creation.
    pub seconds: f64,
}

/// Creates the benchmark cluster's objects.
pub async fn populate(client: &Client, namespaces: usize) -> Result<Population> {
    let started = Instant::now();
    let mut count = 0;
    let names: Vec<String> = (0..namespaces).map(namespace_name).collect();
    let mut first: Vec<Obj> = names
        .iter()
        .enumerate()
        .map(|(i, ns)| {
            obj("", "v1", "Namespace", None, json!({
                "metadata": {"name": ns, "labels": {"team": format!("team-{}", i % 20), "tier": "app"}}
            }))
        })
        .collect();
    first.push(obj(
        "",
        "v1",
        "Namespace",
        None,
        json!({"metadata": {"name": "velero"}}),
    ));
    count += first.len();
    create_all(client, first).await?;

    let mut rest: Vec<Obj> = Vec::with_capacity(namespaces * OBJECTS_PER_NAMESPACE + 1000);
    for (i, ns) in names.iter().enumerate() {
        rest.extend(namespace_objects(i, ns));
    }
    for ns in ["default", "velero", crate::cluster::RELEASE_NAMESPACE] {
        rest.push(obj(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            Some(ns),
            default_deny(ns),
        ));
    }
    for (name, params) in [
        (
            "encrypted-ssd",
            json!({"type": "pd-ssd", "encrypted": "true"}),
        ),
        (
            "standard",
            json!({"type": "pd-standard", "encrypted": "true"}),
        ),
        (
            "archive",
            json!({"type": "pd-standard", "encrypted": "true"}),
        ),
    ] {
        rest.push(obj(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            None,
            json!({
                "metadata": {"name": name},
                "provisioner": "pd.csi.storage.gke.io",
                "volumeBindingMode": "WaitForFirstConsumer",
                "parameters": params
            }),
        ));
    }
    for j in 0..100 {
        rest.push(obj("rbac.authorization.k8s.io", "v1", "ClusterRole", None, json!({
            "metadata": {"name": format!("bench-team-viewer-{j}")},
            "rules": [{"apiGroups": ["", "apps"], "resources": ["configmaps", "deployments", "services"],
                       "verbs": ["get", "list", "watch"]}]
        })));
        rest.push(obj("rbac.authorization.k8s.io", "v1", "ClusterRoleBinding", None, json!({
            "metadata": {"name": format!("bench-team-viewer-{j}")},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                        "name": format!("bench-team-viewer-{j}")},
            "subjects": [{"kind": "Group", "apiGroup": "rbac.authorization.k8s.io", "name": format!("team-{j}")}]
        })));
    }
    let now = jiff::Timestamp::now();
    let ago = |h: i64| (now - jiff::SignedDuration::from_hours(h)).to_string();
    // Velero (whose CRDs have no status subresource: status is part of the
    // object, as Velero writes it): one BackupStorageLocation, a Schedule per 100 namespaces (plus
    // velero itself and the cluster's own namespaces), three Completed backups
    // of each (1 h, 25 h and 49 h old).
    rest.push(obj("velero.io", "v1", "BackupStorageLocation", Some("velero"), json!({
        "metadata": {"name": "default"},
        "spec": {"provider": "aws", "default": true,
                 "objectStorage": {"bucket": "bench-backups"}, "config": {"region": "eu-west-1"}},
        "status": {"phase": "Available", "lastValidationTime": now.to_string()}
    })));
    let mut groups: Vec<Vec<String>> = names
        .chunks(NAMESPACES_PER_SCHEDULE)
        .map(<[String]>::to_vec)
        .collect();
    groups.push(
        ["default", "velero", crate::cluster::RELEASE_NAMESPACE]
            .map(str::to_owned)
            .to_vec(),
    );
    for (g, included) in groups.iter().enumerate() {
        let schedule = format!("daily-{g:03}");
        rest.push(obj("velero.io", "v1", "Schedule", Some("velero"), json!({
            "metadata": {"name": schedule},
            "spec": {"schedule": "0 1 * * *",
                     "template": {"includedNamespaces": included, "storageLocation": "default", "ttl": "720h0m0s"}},
            "status": {"phase": "Enabled", "lastBackup": ago(1)}
        })));
        for h in [1, 25, 49] {
            rest.push(obj("velero.io", "v1", "Backup", Some("velero"), json!({
                "metadata": {"name": format!("{schedule}-{h:02}h"), "labels": {"velero.io/schedule-name": schedule}},
                "spec": {"includedNamespaces": included, "storageLocation": "default", "ttl": "720h0m0s"},
                "status": {"phase": "Completed", "startTimestamp": ago(h + 1), "completionTimestamp": ago(h),
                           "expiration": ago(h - 720)}
            })));
        }
    }
    count += rest.len();
    create_all(client, rest).await?;

    Ok(Population {
        objects: count,
        seconds: started.elapsed().as_secs_f64(),
    })
}
