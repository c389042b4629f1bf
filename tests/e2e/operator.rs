//! The operator's main job on the real control plane: status, Events and
//! metrics follow the cluster within seconds; no status write without a change;
//! only the leader writes; invalid and deleted Controls are handled.

use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use soc2_operator::api::Control;
use soc2_operator::api::conditions::{COMPLIANT, READY, find};

use crate::admission::install_control_crd;
use crate::support::controls::{
    TestControls, apply_control, condition, create_deny_ingress, is_compliant, scope_to,
    start_operator, wait_control,
};
use crate::support::{
    self, Cluster, ClusterOptions, TestNamespace, eventually, kubectl, unique_name,
};

fn fixture(path: &str) -> std::path::PathBuf {
    support::repo_root().join("tests/fixtures/real").join(path)
}

async fn events_for(client: &Client, control: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), "default");
    api.list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(control))
        .collect()
}

#[tokio::test]
async fn online_boutique_network_policies_flip_the_control_within_seconds() {
    let client = support::client().await;
    install_control_crd(&client).await;
    let kc = support::control_plane().kubeconfig.clone();
    let ns = support::namespace(&client, "boutique").await;
    kubectl(
        &kc,
        &[
            "apply",
            "-n",
            &ns.name,
            "-f",
            fixture("microservices-demo/kubernetes-manifests.yaml")
                .to_str()
                .unwrap(),
        ],
    );
    let test = TestControls::new("np");
    let name = unique_name("default-deny");
    apply_control(
        &client,
        &name,
        &test,
        json!({
            "criteria": ["CC6.1", "CC6.6"], "category": "Security", "severity": "High",
            "title": "Default-deny network policies", "scope": scope_to(&[&ns.name]),
            "check": {"networkPolicy": {"egress": true}}
        }),
    )
    .await;
    let op = start_operator(&kc, &test, &[]);

    let c = wait_control(
        &client,
        &name,
        "NonCompliant",
        Duration::from_secs(30),
        |c| is_compliant(c, "False"),
    )
    .await;
    let status = c.status.unwrap();
    let listed: Vec<(String, Option<String>, String)> = status
        .violations
        .iter()
        .map(|v| (v.kind.clone(), v.namespace.clone(), v.name.clone()))
        .collect();
    assert_eq!(
        listed,
        vec![
            ("Namespace".into(), None, ns.name.clone()),
            ("Namespace".into(), None, ns.name.clone())
        ],
        "exactly the Online Boutique namespace, for ingress and egress"
    );
    let series = format!(
        "soc2_control_compliant{{category=\"Security\",control=\"{name}\",severity=\"High\"}}"
    );
    assert_eq!(op.sample(&series), Some(0.0), "{}", op.metrics());

    // Apply Online Boutique's own network policies: compliant within 5 s.
    let started = Instant::now();
    kubectl(
        &kc,
        &[
            "apply",
            "-n",
            &ns.name,
            "-f",
            fixture("microservices-demo/network-policies")
                .to_str()
                .unwrap(),
        ],
    );
    wait_control(
        &client,
        &name,
        "Compliant after the policies",
        Duration::from_secs(5),
        |c| is_compliant(c, "True"),
    )
    .await;
    let took = started.elapsed();
    eprintln!("network-policy control flipped to Compliant {took:?} after kubectl apply returned");
    assert_eq!(op.sample(&series), Some(1.0));

    // An Event for each transition.
    let events = eventually("two Events", Duration::from_secs(10), || {
        let client = client.clone();
        let name = name.clone();
        async move {
            let ev = events_for(&client, &name).await;
            (ev.len() >= 2).then_some(ev)
        }
    })
    .await;
    let mut reasons: Vec<String> = events.iter().filter_map(|e| e.reason.clone()).collect();
    reasons.sort();
    assert_eq!(reasons, ["Compliant", "NonCompliant"]);
    let non = events
        .iter()
        .find(|e| e.reason.as_deref() == Some("NonCompliant"))
        .unwrap();
    assert!(
        non.note.as_deref().unwrap_or("").contains(&ns.name),
        "the Event names the violation: {:?}",
        non.note
    );

    // Break it again differently (egress only): a third Event with its own note.
    // Add an ingress-only default-deny first, then drop deny-all, so there is
    // never a moment without an ingress default-deny.
    create_deny_ingress(&client, &ns.name, "deny-ingress").await;
    kubectl(
        &kc,
        &["delete", "networkpolicy", "-n", &ns.name, "deny-all"],
    );
    wait_control(
        &client,
        &name,
        "NonCompliant again",
        Duration::from_secs(5),
        |c| is_compliant(c, "False"),
    )
    .await;
    let events = eventually("a third Event", Duration::from_secs(10), || {
        let client = client.clone();
        let name = name.clone();
        async move {
            let ev = events_for(&client, &name).await;
            (ev.len() >= 3).then_some(ev)
        }
    })
    .await;
    let newest = events
        .iter()
        .max_by_key(|e| e.event_time.as_ref().map(|t| t.0))
        .unwrap();
    assert_eq!(newest.reason.as_deref(), Some("NonCompliant"));
    let note = newest.note.as_deref().unwrap_or("");
    assert!(
        note.contains("egress") && !note.contains("ingress traffic"),
        "the new Event has the new note: {note}"
    );
}

#[tokio::test]
async fn a_cluster_admin_binding_to_a_user_appears_and_disappears() {
    let client = support::client().await;
    install_control_crd(&client).await;
    let kc = support::control_plane().kubeconfig.clone();
    let test = TestControls::new("rbac");
    let name = unique_name("no-admins");
    let user = unique_name("mallory");
    apply_control(
        &client,
        &name,
        &test,
        json!({
            "criteria": ["CC6.1", "CC6.3"], "category": "Security", "severity": "Critical",
            "title": "No unexpected cluster admins", "check": {"rbac": {}}
        }),
    )
    .await;
    let _op = start_operator(&kc, &test, &[]);
    wait_control(&client, &name, "evaluated", Duration::from_secs(30), |c| {
        condition(c, READY).is_some()
    })
    .await;
    let has_binding = |c: &Control, binding: &str| {
        c.status.as_ref().is_some_and(|s| {
            s.violations
                .iter()
                .any(|v| v.name == binding && v.reason == "AdminBoundToSubject")
        })
    };
    let binding = format!("{user}-admin");
    kubectl(
        &kc,
        &[
            "create",
            "clusterrolebinding",
            &binding,
            "--clusterrole=cluster-admin",
            &format!("--user={user}"),
        ],
    );
    let c = wait_control(
        &client,
        &name,
        "the binding reported",
        Duration::from_secs(10),
        |c| has_binding(c, &binding),
    )
    .await;
    assert!(is_compliant(&c, "False"));
    let v = c
        .status
        .unwrap()
        .violations
        .into_iter()
        .find(|v| v.name == binding)
        .unwrap();
    assert!(v.message.contains(&format!("User {user}")), "{}", v.message);
    kubectl(&kc, &["delete", "clusterrolebinding", &binding]);
    wait_control(
        &client,
        &name,
        "the binding gone",
        Duration::from_secs(10),
        |c| condition(c, READY).is_some() && !has_binding(c, &binding),
    )
    .await;
}

const VELERO_CRDS: [&str; 4] = [
    "velero/crds/velero.io_schedules.yaml",
    "velero/crds/velero.io_backups.yaml",
    "velero/crds/velero.io_backupstoragelocations.yaml",
    "velero/crds/velero.io_restores.yaml",
];

#[tokio::test]
async fn backups_are_judged_by_completed_fresh_backups_and_crds_can_arrive_later() {
    let client = support::client().await;
    install_control_crd(&client).await;
    let kc = support::control_plane().kubeconfig.clone();
    // Start without Velero (a test cluster: remove it if an earlier run left it).
    for crd in [
        "schedules.velero.io",
        "backups.velero.io",
        "backupstoragelocations.velero.io",
        "restores.velero.io",
    ] {
        let _ = soc2_test_support::kubectl(
            &kc,
            &["delete", "crd", crd, "--ignore-not-found", "--wait=true"],
        );
    }
    let app = support::namespace(&client, "backed-up").await;
    let velero = support::namespace(&client, "velero").await;
    let test = TestControls::new("backup");
    let name = unique_name("backups");
    apply_control(
        &client,
        &name,
        &test,
        json!({
            "criteria": ["A1.2"], "category": "Availability", "severity": "High",
            "title": "Fresh successful backups", "scope": scope_to(&[&app.name]),
            "check": {"backup": {"maxAge": "26h"}}
        }),
    )
    .await;
    let _op = start_operator(&kc, &test, &[]);
    let c = wait_control(
        &client,
        &name,
        "BackupProviderNotInstalled",
        Duration::from_secs(30),
        |c| condition(c, COMPLIANT).is_some_and(|(_, r)| r == "BackupProviderNotInstalled"),
    )
    .await;
    assert!(is_compliant(&c, "False"));

    // Velero's CRDs arrive: the running operator starts watching them.
    for crd in VELERO_CRDS {
        kubectl(
            &kc,
            &[
                "apply",
                "--server-side",
                "-f",
                fixture(crd).to_str().unwrap(),
            ],
        );
    }
    kubectl(
        &kc,
        &[
            "wait",
            "--for=condition=Established",
            "crd/schedules.velero.io",
            "crd/backups.velero.io",
            "crd/backupstoragelocations.velero.io",
        ],
    );
    let now = jiff::Timestamp::now();
    let ago = |h: i64| (now - jiff::SignedDuration::from_hours(h)).to_string();
    let docs = vec![
        json!({"apiVersion": "velero.io/v1", "kind": "BackupStorageLocation", "metadata": {"name": "default", "namespace": velero.name},
               "spec": {"provider": "aws", "objectStorage": {"bucket": "backups"}}, "status": {"phase": "Available"}}),
        json!({"apiVersion": "velero.io/v1", "kind": "Schedule", "metadata": {"name": "daily", "namespace": velero.name},
               "spec": {"schedule": "0 1 * * *", "template": {"includedNamespaces": ["*"], "excludedNamespaces": ["kube-system"]}},
               "status": {"phase": "Enabled", "lastBackup": ago(1)}}),
        // Newest: PartiallyFailed (not success); then a Completed one from
        // before the namespace existed.
        json!({"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": "daily-2", "namespace": velero.name, "labels": {"velero.io/schedule-name": "daily"}},
               "spec": {}, "status": {"phase": "PartiallyFailed", "completionTimestamp": ago(1)}}),
        json!({"apiVersion": "velero.io/v1", "kind": "Backup", "metadata": {"name": "daily-1", "namespace": velero.name, "labels": {"velero.io/schedule-name": "daily"}},
               "spec": {}, "status": {"phase": "Completed", "startTimestamp": ago(3), "completionTimestamp": ago(2),
                                       "progress": {"totalItems": 120, "itemsBackedUp": 120}}}),
    ];
    for d in &docs {
        let ar = kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("velero.io", "v1", d["kind"].as_str().unwrap()),
            &format!("{}s", d["kind"].as_str().unwrap().to_lowercase()),
        );
        let api: Api<kube::api::DynamicObject> =
            Api::namespaced_with(client.clone(), &velero.name, &ar);
        let obj: kube::api::DynamicObject = serde_json::from_value(d.clone()).unwrap();
        api.create(&PostParams::default(), &obj).await.unwrap();
    }
    // The namespace was created after daily-1 started: it is not in it
    // (a stale backup, which needs an older namespace, is an engine test).
    let c = wait_control(
        &client,
        &name,
        "NamespaceNotYetBackedUp",
        Duration::from_secs(20),
        |c| {
            c.status.as_ref().is_some_and(|s| {
                s.violations
                    .iter()
                    .any(|v| v.reason == "NamespaceNotYetBackedUp")
            })
        },
    )
    .await;
    let v = &c.status.unwrap().violations[0];
    assert_eq!(v.name, app.name);
    assert!(v.message.contains("daily-1"), "{}", v.message);

    // A Completed backup that started after the namespace was created, and
    // backed items up, makes it compliant, with the backup as evidence.
    let started = jiff::Timestamp::now().to_string();
    let api: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client.clone(),
        &velero.name,
        &kube::api::ApiResource::from_gvk_with_plural(
            &kube::api::GroupVersionKind::gvk("velero.io", "v1", "Backup"),
            "backups",
        ),
    );
    let fresh: kube::api::DynamicObject = serde_json::from_value(json!({
        "apiVersion": "velero.io/v1", "kind": "Backup",
        "metadata": {"name": "daily-3", "namespace": velero.name, "labels": {"velero.io/schedule-name": "daily"}},
        "spec": {}, "status": {"phase": "Completed", "startTimestamp": started, "completionTimestamp": jiff::Timestamp::now().to_string(),
                               "progress": {"totalItems": 120, "itemsBackedUp": 120}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &fresh).await.unwrap();
    let c = wait_control(&client, &name, "Compliant", Duration::from_secs(10), |c| {
        is_compliant(c, "True")
    })
    .await;
    let evidence = c.status.unwrap().evidence;
    assert!(
        evidence
            .iter()
            .any(|e| e.source == "VeleroBackup" && e.message.contains("daily-3")),
        "{evidence:?}"
    );
}

async fn secrets_control(client: &Client, test: &TestControls) -> String {
    let name = unique_name("secrets-encrypted");
    apply_control(client, &name, test, json!({
        "criteria": ["CC6.1", "C1.1"], "category": "Confidentiality", "severity": "Critical",
        "title": "Secrets are encrypted at rest", "check": {"encryption": {"atRest": {"secrets": {}}}}
    }))
    .await;
    name
}

async fn write_a_secret(client: &Client, ns: &str) {
    let api: Api<Secret> = Api::namespaced(client.clone(), ns);
    let s: Secret = serde_json::from_value(
        json!({"metadata": {"name": unique_name("s")}, "stringData": {"k": "v"}}),
    )
    .unwrap();
    api.create(&PostParams::default(), &s).await.unwrap();
}

#[tokio::test]
async fn secret_encryption_is_verified_from_a_real_aescbc_api_server() {
    // An API server with --encryption-provider-config (aescbc).
    let state = std::env::temp_dir().join(unique_name("soc2-e2e-enc"));
    let options = ClusterOptions {
        encrypt_secrets: true,
        ..Default::default()
    };
    let cp = Cluster::up(&state, &options).expect("encrypted control plane");
    let enc_client = support::client_from(&cp.kubeconfig).await.unwrap();
    install_control_crd(&enc_client).await;
    let ns = TestNamespace::new(&cp.kubeconfig, &enc_client, "secrets").await;
    write_a_secret(&enc_client, &ns.name).await;
    let test = TestControls::on(&cp.kubeconfig, "enc");
    let name = secrets_control(&enc_client, &test).await;
    let _op = start_operator(&cp.kubeconfig, &test, &[]);
    let c = wait_control(
        &enc_client,
        &name,
        "Compliant",
        Duration::from_secs(30),
        |c| is_compliant(c, "True"),
    )
    .await;
    let ev = &c.status.unwrap().evidence;
    assert_eq!(ev.len(), 1, "{ev:?}");
    assert_eq!(ev[0].source, "APIServerMetrics");
    assert_eq!(
        ev[0].verification,
        soc2_operator::api::Verification::Verified
    );
    assert!(
        ev[0].message.contains("k8s:enc:aescbc:v1:"),
        "{}",
        ev[0].message
    );
    drop(_op);
    drop(test);
    drop(ns);
    cp.down();

    // The shared control plane has no encryption config: NonCompliant.
    let client = support::client().await;
    install_control_crd(&client).await;
    let plain = support::namespace(&client, "plain-secrets").await;
    write_a_secret(&client, &plain.name).await;
    let test = TestControls::new("noenc");
    let name = secrets_control(&client, &test).await;
    let _op = start_operator(&support::control_plane().kubeconfig, &test, &[]);
    let c = wait_control(
        &client,
        &name,
        "NonCompliant",
        Duration::from_secs(30),
        |c| is_compliant(c, "False"),
    )
    .await;
    // Without an encryption config the API server counts no transformation
    // at all; the Secret it created (apiserver_request_total) was therefore
    // written in plain text.
    let v = &c.status.unwrap().violations[0];
    assert_eq!(v.reason, "SecretsWrittenUnencrypted", "{}", v.message);
    assert!(
        v.message.contains("apiserver_request_total"),
        "{}",
        v.message
    );
}

fn resource_versions(kc: &Path, test: &TestControls) -> String {
    kubectl(
        kc,
        &[
            "get",
            "controls",
            "-l",
            &test.selector(),
            "-o",
            "jsonpath={range .items[*]}{.metadata.name}={.metadata.resourceVersion} {end}",
        ],
    )
}

#[tokio::test]
async fn a_restart_with_nothing_changed_writes_no_status() {
    let client = support::client().await;
    install_control_crd(&client).await;
    let kc = support::control_plane().kubeconfig.clone();
    let ns = support::namespace(&client, "restart").await;
    let test = TestControls::new("restart");
    let mut names = Vec::new();
    // Namespace-scoped checks only: cluster-wide objects change under parallel tests.
    for check in [
        json!({"networkPolicy": {}}),
        json!({"availability": {}}),
        json!({"encryption": {"inTransit": {}}}),
    ] {
        let name = unique_name("restart");
        apply_control(&client, &name, &test, json!({
            "criteria": ["CC6.1"], "category": "Security", "severity": "Low", "title": "restart",
            "scope": scope_to(&[&ns.name]), "check": check
        })).await;
        names.push(name);
    }
    let mut first = start_operator(&kc, &test, &[]);
    for n in &names {
        wait_control(&client, n, "evaluated", Duration::from_secs(30), |c| {
            condition(c, READY).is_some()
        })
        .await;
    }
    assert_eq!(first.terminate(), Some(0), "graceful exit on SIGTERM");
    let before = resource_versions(&kc, &test);

    let second = start_operator(&kc, &test, &[]);
    // Every Control evaluated by the new process…
    eventually(
        "all Controls evaluated after the restart",
        Duration::from_secs(30),
        || {
            let m = second.metrics();
            let done = names.iter().all(|n| {
                m.contains(&format!(
                    "soc2_control_last_evaluation_timestamp_seconds{{control=\"{n}\"}}"
                ))
            });
            async move { done.then_some(()) }
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // …and nothing written.
    assert_eq!(
        second.sample("soc2_status_writes_total"),
        Some(0.0),
        "{}",
        second.logs()
    );
    assert_eq!(
        resource_versions(&kc, &test),
        before,
        "no resourceVersion moved"
    );
}

#[tokio::test]
async fn only_the_leader_writes_and_a_standby_takes_over() {
    let client = support::client().await;
    install_control_crd(&client).await;
    let kc = support::control_plane().kubeconfig.clone();
    let ns = support::namespace(&client, "leader").await;
    let test = TestControls::new("leader");
    let name = unique_name("leader-np");
    apply_control(
        &client,
        &name,
        &test,
        json!({
            "criteria": ["CC6.6"], "category": "Security", "severity": "Medium", "title": "leader",
            "scope": scope_to(&[&ns.name]), "check": {"networkPolicy": {}}
        }),
    )
    .await;
    let lease = unique_name("soc2-lease");
    let args = [
        "--leader-election=true",
        "--lease-name",
        lease.as_str(),
        "--lease-namespace",
        "default",
        "--lease-duration",
        "4s",
    ];
    let mut ops = [
        start_operator(
            &kc,
            &test,
            &[&args[..], &["--identity", "replica-a"]].concat(),
        ),
        start_operator(
            &kc,
            &test,
            &[&args[..], &["--identity", "replica-b"]].concat(),
        ),
    ];
    let leader = eventually("exactly one leader", Duration::from_secs(20), || {
        let l: Vec<usize> = ops
            .iter()
            .enumerate()
            .filter(|(_, o)| o.sample("soc2_leader") == Some(1.0))
            .map(|(i, _)| i)
            .collect();
        async move { (l.len() == 1).then(|| l[0]) }
    })
    .await;
    let standby = 1 - leader;
    wait_control(
        &client,
        &name,
        "NonCompliant",
        Duration::from_secs(20),
        |c| is_compliant(c, "False"),
    )
    .await;
    // Both evaluate; only the leader wrote.
    eventually("the standby evaluated", Duration::from_secs(10), || {
        let v = ops[standby].sample(&format!(
            "soc2_control_compliant{{category=\"Security\",control=\"{name}\",severity=\"Medium\"}}"
        ));
        async move { (v == Some(0.0)).then_some(()) }
    })
    .await;
    assert_eq!(ops[standby].sample("soc2_status_writes_total"), Some(0.0));
    assert!(
        ops[leader]
            .sample("soc2_status_writes_total")
            .unwrap_or(0.0)
            >= 1.0
    );

    // Crash the leader, then change the cluster: the standby takes over and writes.
    ops[leader].kill();
    let killed = Instant::now();
    create_deny_ingress(&client, &ns.name, "deny").await;
    wait_control(
        &client,
        &name,
        "Compliant written by the new leader",
        Duration::from_secs(15),
        |c| is_compliant(c, "True"),
    )
    .await;
    let took = killed.elapsed();
    eprintln!("standby took over and wrote {took:?} after the leader was killed (lease 4 s)");
    assert_eq!(ops[standby].sample("soc2_leader"), Some(1.0));
    // The counter moves when the patch call returns, which can be just after
    // the watch has shown the written status.
    eventually(
        "the new leader counts its status write",
        Duration::from_secs(5),
        || {
            let v = ops[standby].sample("soc2_status_writes_total");
            async move { (v.unwrap_or(0.0) >= 1.0).then_some(()) }
        },
    )
    .await;
}

#[tokio::test]
async fn an_invalid_control_is_reported_and_the_others_keep_working() {
    let client = support::client().await;
    install_control_crd(&client).await;
    let kc = support::control_plane().kubeconfig.clone();
    let ns = support::namespace(&client, "invalid").await;
    let test = TestControls::new("invalid");
    let bad = unique_name("bad");
    let good = unique_name("good");
    // "0s" passes the schema's duration pattern; only the engine sees it is not positive.
    apply_control(
        &client,
        &bad,
        &test,
        json!({
            "criteria": ["A1.2"], "category": "Availability", "severity": "High", "title": "bad",
            "check": {"backup": {"maxAge": "0s"}}
        }),
    )
    .await;
    apply_control(
        &client,
        &good,
        &test,
        json!({
            "criteria": ["CC6.6"], "category": "Security", "severity": "High", "title": "good",
            "scope": scope_to(&[&ns.name]), "check": {"networkPolicy": {}}
        }),
    )
    .await;
    let op = start_operator(&kc, &test, &[]);
    let c = wait_control(&client, &bad, "Ready=False", Duration::from_secs(30), |c| {
        condition(c, READY).is_some_and(|(s, _)| s == "False")
    })
    .await;
    let ready = find(&c.status.as_ref().unwrap().conditions, READY).unwrap();
    assert_eq!(ready.reason, "InvalidSpec");
    assert!(
        ready.message.starts_with("spec.check.backup.maxAge"),
        "{}",
        ready.message
    );
    wait_control(
        &client,
        &good,
        "the valid Control evaluated",
        Duration::from_secs(30),
        |c| is_compliant(c, "False"),
    )
    .await;
    assert_eq!(
        op.sample(&format!("soc2_control_ready{{control=\"{bad}\"}}")),
        Some(0.0)
    );
}

#[tokio::test]
async fn a_deleted_controls_metric_series_disappear() {
    let client = support::client().await;
    install_control_crd(&client).await;
    let kc = support::control_plane().kubeconfig.clone();
    let test = TestControls::new("delete");
    let name = unique_name("short-lived");
    apply_control(&client, &name, &test, json!({
        "criteria": ["CC6.2"], "category": "Security", "severity": "Low", "title": "short-lived",
        "check": {"rbac": {}}
    })).await;
    let op = start_operator(&kc, &test, &[]);
    let series = format!("control=\"{name}\"");
    eventually("series exported", Duration::from_secs(30), || {
        let found = op.metrics().contains(&series);
        async move { found.then_some(()) }
    })
    .await;
    assert!(
        op.metrics()
            .contains("soc2_criterion_compliant{criterion=\"CC6.2\"}")
    );
    Api::<Control>::all(client.clone())
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    eventually("series removed", Duration::from_secs(10), || {
        let gone = !op.metrics().contains(&series);
        async move { gone.then_some(()) }
    })
    .await;
    assert!(
        !op.metrics().contains("criterion=\"CC6.2\""),
        "the criterion had only this Control"
    );
    // Health endpoints.
    assert_eq!(op.get("/healthz").map(|(c, _)| c), Some(200));
    eventually("/readyz 200", Duration::from_secs(10), || {
        let ok = op.get("/readyz").map(|(c, _)| c) == Some(200);
        async move { ok.then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn a_status_overwritten_by_someone_else_is_repaired() {
    let client = support::client().await;
    install_control_crd(&client).await;
    let kc = support::control_plane().kubeconfig.clone();
    let ns = support::namespace(&client, "repair").await;
    let test = TestControls::new("repair");
    let name = unique_name("repair-np");
    apply_control(
        &client,
        &name,
        &test,
        json!({
            "criteria": ["CC6.6"], "category": "Security", "severity": "High", "title": "repair",
            "scope": scope_to(&[&ns.name]), "check": {"networkPolicy": {}}
        }),
    )
    .await;
    let _op = start_operator(&kc, &test, &[]);
    wait_control(
        &client,
        &name,
        "NonCompliant",
        Duration::from_secs(30),
        |c| is_compliant(c, "False"),
    )
    .await;
    // Another writer (say, a deposed leader) claims compliance.
    let api: Api<Control> = Api::all(client.clone());
    let mut status = api.get(&name).await.unwrap().status.unwrap();
    for c in &mut status.conditions {
        if c.type_ == COMPLIANT {
            c.status = "True".into();
            c.message = "stale".into();
        }
    }
    status.violations.clear();
    api.patch_status(
        &name,
        &PatchParams::default(),
        &Patch::Merge(json!({"status": status})),
    )
    .await
    .unwrap();
    let c = wait_control(
        &client,
        &name,
        "the operator's verdict restored",
        Duration::from_secs(10),
        |c| is_compliant(c, "False") && c.status.as_ref().is_some_and(|s| !s.violations.is_empty()),
    )
    .await;
    assert_ne!(
        find(&c.status.unwrap().conditions, COMPLIANT)
            .unwrap()
            .message,
        "stale"
    );
}

/// Without permission to list a kind, the Controls that read it say so
/// (`Ready=False`, reason `WatchFailed`, naming the kind) and the operator
/// still becomes ready and evaluates the others.
#[tokio::test]
async fn a_kind_the_operator_may_not_list_is_reported_on_the_controls_that_need_it() {
    let client = support::client().await;
    install_control_crd(&client).await;
    let ns = support::namespace(&client, "norbac").await;
    let sa = unique_name("limited");
    let token = support::service_account_token(&client, &ns.name, &sa, json!([
        {"apiGroups": ["soc2-operator.dev"], "resources": ["controls"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["soc2-operator.dev"], "resources": ["controls/status"], "verbs": ["patch"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": ["get", "list", "watch"]}
    ])).await.expect("a ServiceAccount with a ClusterRole, and its token");
    let kubeconfig = support::kubeconfig_with_token(&token);
    let test = TestControls::new("norbac");
    let rbac = unique_name("rbac-denied");
    let np = unique_name("np-allowed");
    apply_control(&client, &rbac, &test, json!({
        "criteria": ["CC6.3"], "category": "Security", "severity": "High", "title": "rbac", "check": {"rbac": {}}
    })).await;
    apply_control(
        &client,
        &np,
        &test,
        json!({
            "criteria": ["CC6.6"], "category": "Security", "severity": "High", "title": "np",
            "scope": scope_to(&[&ns.name]), "check": {"networkPolicy": {}}
        }),
    )
    .await;
    let op = start_operator(kubeconfig.path(), &test, &[]);
    let c = wait_control(
        &client,
        &rbac,
        "Ready=False WatchFailed",
        Duration::from_secs(30),
        |c| condition(c, READY).is_some_and(|(s, r)| s == "False" && r == "WatchFailed"),
    )
    .await;
    let msg = find(&c.status.unwrap().conditions, READY)
        .unwrap()
        .message
        .clone();
    assert!(
        msg.contains("rbac.authorization.k8s.io") && msg.contains("forbidden"),
        "{msg}"
    );
    wait_control(
        &client,
        &np,
        "the other Control evaluated",
        Duration::from_secs(30),
        |c| is_compliant(c, "False"),
    )
    .await;
    eventually("/readyz 200", Duration::from_secs(10), || {
        let ok = op.get("/readyz").map(|(c, _)| c) == Some(200);
        async move { ok.then_some(()) }
    })
    .await;
}

/// `soc2-operator check --manifests` on the Online Boutique files gives exactly
/// the operator's verdicts on the same objects in the cluster.
#[tokio::test]
async fn check_on_manifests_matches_the_operator_on_the_cluster() {
    let client = support::client().await;
    install_control_crd(&client).await;
    let kc = support::control_plane().kubeconfig.clone();
    let ns = support::namespace(&client, "same").await;
    let manifests = fixture("microservices-demo/kubernetes-manifests.yaml");
    kubectl(
        &kc,
        &["apply", "-n", &ns.name, "-f", manifests.to_str().unwrap()],
    );
    let test = TestControls::new("same");
    let specs = [
        json!({"criteria": ["CC6.6"], "category": "Security", "severity": "High", "title": "np",
               "scope": scope_to(&[&ns.name]), "check": {"networkPolicy": {"egress": true}}}),
        json!({"criteria": ["A1.1"], "category": "Availability", "severity": "Medium", "title": "avail",
               "scope": scope_to(&[&ns.name]), "check": {"availability": {}}}),
    ];
    let mut docs = Vec::new();
    let mut names = Vec::new();
    for spec in specs {
        let name = unique_name("same");
        apply_control(&client, &name, &test, spec.clone()).await;
        docs.push(serde_yaml::to_string(&json!({
            "apiVersion": "soc2-operator.dev/v1alpha1", "kind": "Control", "metadata": {"name": name}, "spec": spec
        })).unwrap());
        names.push(name);
    }
    let controls = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(controls.path(), docs.join("---\n")).unwrap();
    let _op = start_operator(&kc, &test, &[]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_soc2-operator"))
        .args(["check", "--output", "json", "-n", &ns.name, "--manifests"])
        .arg(&manifests)
        .arg("--controls")
        .arg(controls.path())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for name in &names {
        let c = wait_control(&client, name, "evaluated", Duration::from_secs(30), |c| {
            condition(c, READY).is_some()
        })
        .await;
        let status = c.status.unwrap();
        let offline = report["controls"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name.as_str())
            .unwrap();
        let online: Vec<(String, String, String)> = status
            .violations
            .iter()
            .map(|v| (v.kind.clone(), v.name.clone(), v.reason.clone()))
            .collect();
        let offline_v: Vec<(String, String, String)> = offline["violations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| {
                (
                    v["kind"].as_str().unwrap().to_owned(),
                    v["name"].as_str().unwrap().to_owned(),
                    v["reason"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert!(!online.is_empty());
        assert_eq!(online, offline_v, "{name}: operator and check disagree");
        let compliant = find(&status.conditions, COMPLIANT).unwrap().status == "True";
        assert_eq!(compliant, offline["verdict"] == "Compliant");
    }
}
