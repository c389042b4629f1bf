//! The controller's decisions, without a cluster: the real watch-event
//! handlers, queue, ledger and reconcile pass, driven with synthetic watch
//! events, a fixed clock and a fake [`Cluster`] that records the status
//! patches and Events the controller asks for (and can fail them).
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::BoxFuture;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::api::rbac::v1::ClusterRole;
use kube::core::DeserializeGuard;
use kube::runtime::watcher;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::cache::CrdWatch;
use super::cluster::{Cluster, ReconcileError, Request};
use super::controls::ControlWatch;
use super::{Config, Core, reconcile};
use crate::api::conditions::{COMPLIANT, READY, find};
use crate::api::{Control, ControlStatus};
use crate::incremental::Changes;
use crate::metrics::Metrics;
use crate::resources::velero::{Backup, BackupStorageLocation, Schedule};
use crate::snapshot::{Kind, Objects, Stored};

/// Records what the controller asks of the cluster.
#[derive(Default)]
struct FakeCluster {
    patches: Mutex<Vec<(String, ControlStatus)>>,
    events: Mutex<Vec<Event>>,
    watches: Mutex<Vec<Kind>>,
    fail_patches: AtomicUsize,
    fail_events: AtomicUsize,
    /// What `/metrics` answers (an error until a test sets it).
    apiserver_metrics: Mutex<Option<String>>,
}

impl Cluster for FakeCluster {
    fn start_watch(&self, kind: Kind, _core: Arc<Core>) -> tokio::task::JoinHandle<()> {
        self.watches.lock().unwrap().push(kind);
        tokio::spawn(std::future::pending())
    }

    fn patch_status<'a>(&'a self, name: &'a str, status: &'a ControlStatus) -> Request<'a> {
        Box::pin(async move {
            if take_one(&self.fail_patches) {
                return Err(ReconcileError::StatusPatch("injected".into()));
            }
            self.patches
                .lock()
                .unwrap()
                .push((name.to_owned(), status.clone()));
            Ok(())
        })
    }

    fn create_event<'a>(&'a self, event: &'a Event) -> Request<'a> {
        Box::pin(async move {
            if take_one(&self.fail_events) {
                return Err(ReconcileError::Event("injected".into()));
            }
            self.events.lock().unwrap().push(event.clone());
            Ok(())
        })
    }

    fn read_apiserver_metrics(&self) -> BoxFuture<'_, Result<String, String>> {
        let text = self.apiserver_metrics.lock().unwrap().clone();
        Box::pin(async move { text.ok_or_else(|| "not served by the fake cluster".to_owned()) })
    }
}

fn take_one(n: &AtomicUsize) -> bool {
    n.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
        .is_ok()
}

const NOW: &str = "2026-06-01T12:00:00Z";

/// The operator's parts around a fake cluster, and the watch states that
/// tests feed events through.
struct Harness {
    core: Arc<Core>,
    cluster: Arc<FakeCluster>,
    leader: watch::Sender<bool>,
    controls: ControlWatch,
    crds: CrdWatch,
    listed: BTreeSet<Kind>,
}

fn config() -> Config {
    Config {
        metrics_addr: "127.0.0.1:0".parse().unwrap(),
        resync: Duration::from_secs(600),
        debounce: Duration::from_millis(100),
        leader_election: false,
        lease_name: "l".into(),
        lease_namespace: "default".into(),
        identity: "test".into(),
        lease_duration: Duration::from_secs(15),
        control_selector: None,
        read_apiserver_metrics: false,
        events_namespace: "default".into(),
    }
}

fn guard<K>(obj: K) -> DeserializeGuard<K> {
    DeserializeGuard(Ok(obj))
}

impl Harness {
    /// A leader with every CRD listed (none installed).
    async fn new() -> Self {
        Self::with(config()).await
    }

    async fn with(config: Config) -> Self {
        let cluster = Arc::new(FakeCluster::default());
        let (leader, rx) = watch::channel(true);
        let now: Timestamp = NOW.parse().unwrap();
        let core = Arc::new(Core::new(
            config,
            cluster.clone(),
            Arc::new(move || now),
            Arc::new(Metrics::new("test")),
            Arc::new(AtomicBool::new(false)),
            rx,
            CancellationToken::new(),
        ));
        let mut h = Harness {
            core,
            cluster,
            leader,
            controls: ControlWatch::default(),
            crds: CrdWatch::default(),
            listed: BTreeSet::new(),
        };
        h.list_crds(&[]).await;
        h
    }

    async fn delete_crd(&mut self, name: &str) {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let mut m = kube::core::PartialObjectMeta::<CustomResourceDefinition>::default();
        m.metadata.name = Some(name.to_owned());
        self.crds.apply(&self.core, watcher::Event::Delete(m)).await;
    }

    async fn list_crds(&mut self, names: &[&str]) {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        use kube::core::PartialObjectMeta;
        self.crds.apply(&self.core, watcher::Event::Init).await;
        for n in names {
            let mut m = PartialObjectMeta::<CustomResourceDefinition>::default();
            m.metadata.name = Some((*n).to_owned());
            self.crds
                .apply(&self.core, watcher::Event::InitApply(m))
                .await;
        }
        self.crds.apply(&self.core, watcher::Event::InitDone).await;
    }

    async fn list_controls(&mut self, controls: &[Control]) {
        self.controls.apply(&self.core, watcher::Event::Init).await;
        for c in controls {
            self.controls
                .apply(&self.core, watcher::Event::InitApply(guard(c.clone())))
                .await;
        }
        self.controls
            .apply(&self.core, watcher::Event::InitDone)
            .await;
    }

    async fn apply_control(&mut self, c: &Control) {
        self.controls
            .apply(&self.core, watcher::Event::Apply(guard(c.clone())))
            .await;
    }

    async fn delete_control(&mut self, c: &Control) {
        self.controls
            .apply(&self.core, watcher::Event::Delete(guard(c.clone())))
            .await;
    }

    /// A relist of kind `K` holding `objects`.
    async fn list<K: Stored>(&mut self, objects: Vec<K>) {
        let mut relist: Option<Objects<K>> = None;
        let caches = &self.core.caches;
        caches
            .apply(&self.core, &mut relist, watcher::Event::Init)
            .await;
        for o in objects {
            caches
                .apply(&self.core, &mut relist, watcher::Event::InitApply(guard(o)))
                .await;
        }
        caches
            .apply(&self.core, &mut relist, watcher::Event::InitDone)
            .await;
        self.listed.insert(K::KIND);
    }

    async fn apply<K: Stored>(&self, obj: K) {
        self.core
            .caches
            .apply(&self.core, &mut None, watcher::Event::Apply(guard(obj)))
            .await;
    }

    async fn delete<K: Stored>(&self, obj: K) {
        self.core
            .caches
            .apply(&self.core, &mut None, watcher::Event::Delete(guard(obj)))
            .await;
    }

    async fn pass(&self) {
        reconcile::pass(&self.core).await;
    }

    /// The status patches since the last call.
    fn patches(&self) -> Vec<(String, ControlStatus)> {
        std::mem::take(&mut *self.cluster.patches.lock().unwrap())
    }

    /// `(regarding, reason)` of the Events since the last call.
    fn events(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.cluster.events.lock().unwrap())
            .into_iter()
            .map(|e| {
                (
                    e.regarding.and_then(|r| r.name).unwrap_or_default(),
                    e.reason.unwrap_or_default(),
                )
            })
            .collect()
    }

    /// The Control watch delivers `c` with `status` (an echo, or someone
    /// else's write): same spec and generation.
    async fn deliver_status(&mut self, c: &Control, status: ControlStatus) {
        let mut echoed = c.clone();
        echoed.status = Some(status);
        self.apply_control(&echoed).await;
    }

    fn metric(&self, series: &str) -> Option<f64> {
        self.core.metrics.render().lines().find_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            (name == series).then(|| value.parse().ok()).flatten()
        })
    }

    fn queued(&self, name: &str) -> Option<Changes> {
        self.core.queue.queued(name)
    }
}

fn control(name: &str, check: serde_json::Value) -> Control {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "soc2-operator.dev/v1alpha1",
        "kind": "Control",
        "metadata": {"name": name, "uid": format!("uid-{name}"), "generation": 1},
        "spec": {
            "criteria": ["CC6.1"], "category": "Security", "title": name,
            "severity": "High", "check": check,
        },
    }))
    .unwrap()
}

fn np_control() -> Control {
    control("np", serde_json::json!({"networkPolicy": {}}))
}

fn rbac_control() -> Control {
    control("admins", serde_json::json!({"rbac": {}}))
}

fn namespace(name: &str) -> Namespace {
    serde_json::from_value(serde_json::json!({"metadata": {
        "name": name, "labels": {"kubernetes.io/metadata.name": name}
    }}))
    .unwrap()
}

fn deny_all(ns: &str) -> NetworkPolicy {
    serde_json::from_value(serde_json::json!({
        "metadata": {"name": "deny", "namespace": ns},
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }))
    .unwrap()
}

fn compliant(s: &ControlStatus) -> &str {
    find(&s.conditions, COMPLIANT).map_or("", |c| c.status.as_str())
}

/// A cluster with namespaces `a` and `b`, the network-policy Control and
/// its caches listed, evaluated once (NonCompliant, written) and its write
/// echoed back; returns the Control as the watch last delivered it.
async fn evaluated_np() -> (Harness, Control) {
    let mut h = Harness::new().await;
    let c = np_control();
    h.list(vec![namespace("a"), namespace("b")]).await;
    h.list_controls(std::slice::from_ref(&c)).await;
    h.list::<NetworkPolicy>(vec![]).await;
    h.pass().await;
    let patches = h.patches();
    assert_eq!(patches.len(), 1, "{patches:?}");
    assert_eq!(compliant(&patches[0].1), "False");
    let mut echoed = c.clone();
    echoed.status = Some(patches[0].1.clone());
    h.apply_control(&echoed).await;
    (h, echoed)
}

#[tokio::test]
async fn the_first_evaluation_writes_status_and_one_transition_event() {
    let (h, _) = evaluated_np().await;
    assert_eq!(h.events(), [("np".to_owned(), "NonCompliant".to_owned())]);
    assert_eq!(
        h.metric(r#"soc2_control_compliant{category="Security",control="np",severity="High"}"#),
        Some(0.0)
    );
    assert_eq!(h.metric("soc2_status_writes_total"), Some(1.0));
}

#[tokio::test]
async fn our_own_echo_is_not_evaluated_again_and_a_resync_writes_nothing() {
    let (mut h, c) = evaluated_np().await;
    h.events();
    assert_eq!(h.queued("np"), None, "our echo queued a re-evaluation");
    // A resync evaluates everything; nothing changed, so nothing is written.
    h.core.controls.enqueue_all(&h.core).await;
    h.pass().await;
    assert!(h.patches().is_empty());
    assert!(h.events().is_empty());
    // A label change (same generation) is not a reason to write either.
    let mut labelled = c.clone();
    labelled.metadata.labels = Some([("team".to_owned(), "x".to_owned())].into());
    h.apply_control(&labelled).await;
    h.pass().await;
    assert!(h.patches().is_empty());
}

#[tokio::test]
async fn a_change_in_one_namespace_reevaluates_only_that_namespace_of_its_readers() {
    let (mut h, c) = evaluated_np().await;
    let admins = rbac_control();
    h.apply_control(&admins).await;
    for k in [
        Kind::ClusterRole,
        Kind::ClusterRoleBinding,
        Kind::Role,
        Kind::RoleBinding,
    ] {
        assert!(
            h.cluster.watches.lock().unwrap().contains(&k),
            "a new Control starts the watches of what it reads: {k:?}"
        );
    }
    h.list::<ClusterRole>(vec![]).await;
    h.list::<k8s_openapi::api::rbac::v1::ClusterRoleBinding>(vec![])
        .await;
    h.list::<k8s_openapi::api::rbac::v1::Role>(vec![]).await;
    h.list::<k8s_openapi::api::rbac::v1::RoleBinding>(vec![])
        .await;
    h.pass().await;
    let written = h.patches();
    assert_eq!(written.len(), 1);
    h.deliver_status(&admins, written[0].1.clone()).await;
    h.events();

    h.apply(deny_all("a")).await;
    let queued = h.queued("np").expect("the NetworkPolicy reader is queued");
    assert!(!queued.full && !queued.cluster);
    assert_eq!(queued.namespaces, BTreeSet::from(["a".to_owned()]));
    assert_eq!(
        h.queued("admins"),
        None,
        "RBAC does not read NetworkPolicies"
    );
    let incremental = r#"soc2_evaluations_total{mode="incremental"}"#;
    let before = h.metric(incremental).unwrap_or(0.0);
    h.pass().await;
    assert_eq!(h.metric(incremental), Some(before + 1.0));
    let written = h.patches();
    assert_eq!(written.len(), 1);
    assert_eq!(written[0].0, "np");
    // Namespace b still has no policy.
    assert_eq!(written[0].1.violations.len(), 1);
    assert_eq!(written[0].1.violations[0].name, "b");
    assert!(h.events().is_empty(), "still non-compliant: no transition");
    h.deliver_status(&c, written[0].1.clone()).await;

    // A ClusterRole can change every binding: the RBAC Control is
    // re-evaluated fully.
    h.apply::<ClusterRole>(
        serde_json::from_value(serde_json::json!({"metadata": {"name": "x"}})).unwrap(),
    )
    .await;
    assert!(h.queued("admins").is_some_and(|c| c.full));
    assert_eq!(h.queued("np"), None);
}

#[tokio::test]
async fn transitions_make_one_event_each() {
    let (mut h, c) = evaluated_np().await;
    assert_eq!(h.events().len(), 1);
    h.apply(deny_all("a")).await;
    h.apply(deny_all("b")).await;
    h.pass().await;
    let written = h.patches();
    assert_eq!(written.len(), 1);
    assert_eq!(compliant(&written[0].1), "True");
    assert_eq!(h.events(), [("np".to_owned(), "Compliant".to_owned())]);
    h.deliver_status(&c, written[0].1.clone()).await;
    h.delete(deny_all("b")).await;
    h.pass().await;
    assert_eq!(compliant(&h.patches()[0].1), "False");
    assert_eq!(h.events(), [("np".to_owned(), "NonCompliant".to_owned())]);
}

#[tokio::test]
async fn someone_elses_status_is_put_back_without_an_event() {
    let (mut h, c) = evaluated_np().await;
    h.events();
    let ours = c.clone();
    let mut foreign = evaluated_status(&h, &ours).await;
    foreign.violations.clear();
    h.deliver_status(&c, foreign).await;
    assert!(
        h.queued("np").is_some_and(|c| c.full),
        "a foreign status is re-evaluated"
    );
    h.pass().await;
    let written = h.patches();
    assert_eq!(written.len(), 1, "the leader repairs it");
    assert_eq!(written[0].1.violations.len(), 2);
    assert!(h.events().is_empty(), "same verdict: no transition Event");
}

/// The status the controller would write for `c` now.
async fn evaluated_status(h: &Harness, c: &Control) -> ControlStatus {
    let snap = h.core.caches.snapshot().await;
    crate::engine::evaluate(c, &snap, NOW.parse().unwrap()).to_status(c, None)
}

#[tokio::test]
async fn a_standby_evaluates_and_exports_but_never_writes_until_it_leads() {
    let mut h = Harness::new().await;
    h.leader.send_replace(false);
    h.core.leadership_changed(false).await;
    let c = np_control();
    h.list(vec![namespace("a")]).await;
    h.list_controls(std::slice::from_ref(&c)).await;
    h.list::<NetworkPolicy>(vec![]).await;
    h.pass().await;
    assert!(h.patches().is_empty() && h.events().is_empty());
    assert_eq!(
        h.metric(r#"soc2_control_compliant{category="Security",control="np",severity="High"}"#),
        Some(0.0)
    );
    // A status written by someone else is not the standby's to repair.
    h.deliver_status(&c, ControlStatus::default()).await;
    assert_eq!(h.queued("np"), None);
    // Leadership: everything is evaluated again, and written.
    h.leader.send_replace(true);
    h.core.leadership_changed(true).await;
    assert!(h.queued("np").is_some_and(|c| c.full));
    assert_eq!(h.metric("soc2_leader"), Some(1.0));
    h.pass().await;
    assert_eq!(h.patches().len(), 1);
    assert_eq!(h.events().len(), 1);
}

/// A leader with namespace `a`, the network-policy Control and its caches
/// listed, not evaluated yet.
async fn listed_np() -> (Harness, Control) {
    let mut h = Harness::new().await;
    let c = np_control();
    h.list(vec![namespace("a")]).await;
    h.list_controls(std::slice::from_ref(&c)).await;
    h.list::<NetworkPolicy>(vec![]).await;
    (h, c)
}

#[tokio::test(start_paused = true)]
async fn a_failed_patch_is_counted_and_retried_with_its_event() {
    let (h, _) = listed_np().await;
    h.cluster.fail_patches.store(1, Ordering::SeqCst);
    h.pass().await;
    assert!(h.patches().is_empty() && h.events().is_empty());
    assert_eq!(
        h.metric(r#"soc2_reconcile_errors_total{reason="StatusPatch"}"#),
        Some(1.0)
    );
    assert!(
        h.core.controls.read().await.ledger().is_empty(),
        "the failed write was taken back"
    );
    tokio::time::sleep(reconcile::RETRY_AFTER + Duration::from_millis(100)).await;
    assert!(
        h.queued("np").is_some(),
        "retried after {:?}",
        reconcile::RETRY_AFTER
    );
    h.pass().await;
    assert_eq!(h.patches().len(), 1);
    assert_eq!(h.events(), [("np".to_owned(), "NonCompliant".to_owned())]);
}

#[tokio::test]
async fn an_event_that_failed_is_published_once_with_the_next_evaluation() {
    let (mut h, c) = listed_np().await;
    h.cluster.fail_events.store(1, Ordering::SeqCst);
    h.pass().await;
    let written = h.patches();
    assert_eq!(written.len(), 1);
    assert!(h.events().is_empty());
    // The echo does not settle a write whose Event is still pending.
    h.deliver_status(&c, written[0].1.clone()).await;
    assert_eq!(h.core.controls.read().await.ledger().len(), 1);
    h.core.queue.enqueue("np", Changes::full());
    h.pass().await;
    assert!(h.patches().is_empty(), "same content: no second write");
    assert_eq!(h.events(), [("np".to_owned(), "NonCompliant".to_owned())]);
    h.core.queue.enqueue("np", Changes::full());
    h.pass().await;
    assert!(h.events().is_empty(), "published once");
}

#[tokio::test]
async fn an_unreadable_control_is_reported_not_ready_once() {
    let mut h = Harness::new().await;
    h.list(vec![namespace("a")]).await;
    let broken: DeserializeGuard<Control> = serde_json::from_value(serde_json::json!({
        "apiVersion": "soc2-operator.dev/v1alpha1", "kind": "Control",
        "metadata": {"name": "broken", "uid": "u", "generation": 3},
        "spec": {"criteria": "CC6.1"},
    }))
    .unwrap();
    assert!(broken.0.is_err());
    h.controls.apply(&h.core, watcher::Event::Init).await;
    h.controls
        .apply(&h.core, watcher::Event::InitApply(broken))
        .await;
    h.controls.apply(&h.core, watcher::Event::InitDone).await;
    h.pass().await;
    let written = h.patches();
    assert_eq!(written.len(), 1);
    let ready = find(&written[0].1.conditions, READY).unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "InvalidSpec")
    );
    assert!(
        ready.message.contains("spec cannot be read"),
        "{}",
        ready.message
    );
    assert_eq!(written[0].1.observed_generation, Some(3));
    assert!(
        h.events().is_empty(),
        "a Control that cannot be read gets no Event"
    );
    assert_eq!(
        h.metric(r#"soc2_control_ready{control="broken"}"#),
        Some(0.0)
    );
    h.core.queue.enqueue("broken", Changes::full());
    h.pass().await;
    assert!(
        h.patches().is_empty(),
        "written once per generation and message"
    );
}

#[tokio::test]
async fn a_deleted_control_loses_its_series_and_is_not_evaluated_again() {
    let (mut h, c) = evaluated_np().await;
    assert!(h.metric(r#"soc2_control_ready{control="np"}"#).is_some());
    h.core.queue.enqueue("np", Changes::full());
    h.delete_control(&c).await;
    h.pass().await;
    assert!(h.patches().is_empty());
    assert!(!h.core.metrics.render().contains(r#"control="np""#));
    assert!(h.core.controls.read().await.retained().is_empty());
}

#[tokio::test]
async fn a_control_waits_for_its_caches_and_reports_a_kind_it_cannot_watch() {
    let mut h = Harness::new().await;
    let c = np_control();
    h.list(vec![namespace("a")]).await;
    h.list_controls(std::slice::from_ref(&c)).await;
    h.pass().await;
    assert!(h.patches().is_empty(), "NetworkPolicies are not listed yet");
    h.core
        .caches
        .watch_failed(&h.core, Kind::NetworkPolicy, "403 Forbidden".into())
        .await;
    assert!(h.queued("np").is_some_and(|c| c.full));
    h.pass().await;
    let written = h.patches();
    let ready = find(&written[0].1.conditions, READY).unwrap();
    assert_eq!(ready.reason, "WatchFailed");
    assert!(ready.message.contains("403 Forbidden"), "{}", ready.message);
    // The watch recovers: the Control is evaluated.
    h.list::<NetworkPolicy>(vec![]).await;
    h.pass().await;
    let written = h.patches();
    assert_eq!(compliant(&written[0].1), "False");
    assert_eq!(
        find(&written[0].1.conditions, READY).unwrap().reason,
        "Evaluated"
    );
}

#[tokio::test]
async fn an_optional_kind_is_watched_once_its_crd_appears() {
    let mut h = Harness::new().await;
    let c = control("backups", serde_json::json!({"backup": {"maxAge": "26h"}}));
    h.list(vec![namespace("a")]).await;
    h.list_controls(std::slice::from_ref(&c)).await;
    h.pass().await;
    let written = h.patches();
    assert_eq!(
        find(&written[0].1.conditions, COMPLIANT).unwrap().reason,
        "BackupProviderNotInstalled",
        "no Velero CRDs is a verdict, not a wait"
    );
    assert!(
        !h.cluster
            .watches
            .lock()
            .unwrap()
            .contains(&Kind::VeleroSchedule)
    );
    h.list_crds(&[
        "schedules.velero.io",
        "backups.velero.io",
        "backupstoragelocations.velero.io",
    ])
    .await;
    let watches = h.cluster.watches.lock().unwrap().clone();
    for k in [
        Kind::VeleroSchedule,
        Kind::VeleroBackup,
        Kind::VeleroBackupStorageLocation,
    ] {
        assert!(watches.contains(&k), "{k:?} watched: {watches:?}");
    }
    assert!(h.queued("backups").is_some_and(|c| c.full));
    h.list::<Schedule>(vec![]).await;
    h.list::<Backup>(vec![]).await;
    h.list::<BackupStorageLocation>(vec![]).await;
    h.pass().await;
    let written = h.patches();
    assert_eq!(
        find(&written[0].1.conditions, COMPLIANT).unwrap().reason,
        "ViolationsFound",
        "with Velero installed, namespace a has no schedule"
    );
    // The CRD goes: its readers are evaluated again, without it.
    h.delete_crd("schedules.velero.io").await;
    assert!(h.queued("backups").is_some_and(|c| c.full));
    h.pass().await;
    let written = h.patches();
    assert_eq!(
        find(&written[0].1.conditions, COMPLIANT).unwrap().reason,
        "BackupProviderNotInstalled"
    );
}

#[tokio::test]
async fn a_relist_forgets_the_controls_that_are_gone() {
    let (mut h, _) = evaluated_np().await;
    h.list_controls(&[]).await;
    assert!(!h.core.metrics.render().contains(r#"control="np""#));
    h.core.queue.enqueue("np", Changes::full());
    h.pass().await;
    assert!(h.patches().is_empty());
}

#[tokio::test]
async fn new_apiserver_metrics_evidence_reaches_every_reader() {
    let mut cfg = config();
    cfg.read_apiserver_metrics = true;
    let mut h = Harness::with(cfg).await;
    *h.cluster.apiserver_metrics.lock().unwrap() = Some(
        "# TYPE apiserver_storage_transformation_operations_total counter\n\
         apiserver_storage_transformation_operations_total{resource=\"secrets\",status=\"OK\",transformation_type=\"to_storage\",transformer_prefix=\"k8s:enc:aescbc:v1:\"} 5\n"
            .into(),
    );
    let secrets = serde_json::json!({"encryption": {"atRest": {"secrets": {}}}});
    let (a, b) = (control("enc-a", secrets.clone()), control("enc-b", secrets));
    h.list(vec![namespace("a")]).await;
    h.list_controls(&[a, b]).await;
    h.list::<crate::resources::compact::Pod>(vec![]).await;
    h.pass().await;
    let written = h.patches();
    assert_eq!(written.len(), 2, "{written:?}");
    for (name, status) in &written {
        assert_eq!(compliant(status), "True", "{name}");
        assert_eq!(status.evidence[0].source, "APIServerMetrics", "{name}");
    }
    // The first reader's new reading queued the other for a full evaluation.
    assert!(h.queued("enc-b").is_some_and(|c| c.full));
    h.pass().await;
    assert!(h.patches().is_empty(), "nothing changed since");
}

#[tokio::test]
async fn watches_follow_the_kinds_the_controls_read() {
    let (mut h, c) = evaluated_np().await;
    h.apply(deny_all("a")).await;
    let count = |h: &Harness, k: Kind| {
        h.cluster
            .watches
            .lock()
            .unwrap()
            .iter()
            .filter(|w| **w == k)
            .count()
    };
    assert_eq!(count(&h, Kind::NetworkPolicy), 1);
    h.delete_control(&c).await;
    // Stopped when no Control reads it: a new reader starts it again.
    let mut again = c.clone();
    again.metadata.uid = Some("uid-np-2".into());
    h.apply_control(&again).await;
    assert_eq!(count(&h, Kind::NetworkPolicy), 2);
    assert!(
        h.core
            .caches
            .snapshot()
            .await
            .objects::<NetworkPolicy>()
            .is_empty(),
        "a stopped watch's objects are dropped"
    );
}

/// A pod judged through its owner is not cached; a bare pod is, until a
/// controller the checks read adopts it (then its copy is dropped and the
/// Control no longer reports it).
#[tokio::test]
async fn pods_judged_through_their_owner_are_not_cached() {
    use crate::resources::compact::Pod;
    let pod = |owner: Option<&str>| -> Pod {
        let mut meta = serde_json::json!({"name": "p", "namespace": "a"});
        if let Some(kind) = owner {
            meta["ownerReferences"] = serde_json::json!([
                {"apiVersion": "apps/v1", "kind": kind, "name": "rs", "uid": "u", "controller": true}
            ]);
        }
        serde_json::from_value(serde_json::json!({
            "metadata": meta,
            "spec": {"hostPID": true, "containers": [{"name": "c", "image": "x:1"}]}
        }))
        .unwrap()
    };
    let mut h = Harness::new().await;
    let c = control("hardened", serde_json::json!({"workloadSecurity": {}}));
    h.list(vec![namespace("a")]).await;
    h.list_controls(std::slice::from_ref(&c)).await;
    for k in crate::checks::workloads::kinds()
        .iter()
        .filter(|k| *k != Kind::Pod)
    {
        k.visit(ListEmpty(&mut h)).await;
    }
    h.list(vec![pod(Some("ReplicaSet"))]).await;
    assert_eq!(h.core.caches.snapshot().await.objects::<Pod>().len(), 0);
    h.pass().await;
    assert_eq!(compliant(&h.patches()[0].1), "True");
    // Orphaned: now a bare pod, cached and judged.
    h.apply(pod(None)).await;
    assert_eq!(h.core.caches.snapshot().await.objects::<Pod>().len(), 1);
    h.pass().await;
    assert_eq!(compliant(&h.patches()[0].1), "False");
    // Adopted again: the copy is dropped.
    h.apply(pod(Some("ReplicaSet"))).await;
    assert_eq!(h.core.caches.snapshot().await.objects::<Pod>().len(), 0);
    h.pass().await;
    assert_eq!(compliant(&h.patches()[0].1), "True");
}

/// Lists kind `K` empty (a [`crate::snapshot::KindVisitor`]).
struct ListEmpty<'a>(&'a mut Harness);

impl<'a> crate::snapshot::KindVisitor for ListEmpty<'a> {
    type Output = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + 'a>>;
    fn visit<K: Stored>(self) -> Self::Output {
        Box::pin(self.0.list::<K>(vec![]))
    }
}

/// A pass evaluates the Controls it can update incrementally before those
/// that need a full evaluation, each group by name.
#[test]
fn a_pass_puts_full_evaluations_last() {
    let mut batch = std::collections::BTreeMap::new();
    batch.insert("a-full".to_owned(), Changes::full());
    batch.insert(
        "b-cheap".to_owned(),
        Changes {
            cluster: true,
            ..Changes::default()
        },
    );
    batch.insert("c-full".to_owned(), Changes::full());
    batch.insert(
        "d-cheap".to_owned(),
        Changes {
            cluster: true,
            ..Changes::default()
        },
    );
    let order: Vec<String> = reconcile::pass_order(batch)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(order, ["b-cheap", "d-cheap", "a-full", "c-full"]);
}
