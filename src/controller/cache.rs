//! Shared watch caches: one watch per kind, feeding one [`Snapshot`].
//!
//! Each kind a Control needs gets exactly one `watcher` (kube-runtime), whose
//! events update the shared snapshot in place (objects trimmed first, see
//! [`Stored::trim`]); a relist replaces the kind's objects atomically on
//! `InitDone`. Objects that fail to deserialize are dropped from the cache and
//! counted, without stopping the watch (`DeserializeGuard`). Kinds provided by
//! optional CRDs (Velero, VolumeSnapshot, Gateway API) are watched once their
//! CRD exists; a metadata-only watch on CustomResourceDefinitions tells when.
//! Secrets are never watched.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::watcher;
use kube::{Api, Client};
use tracing::{debug, info, warn};

use super::Shared;
use crate::snapshot::{Kind, KindVisitor, Objects, Snapshot, Stored};

/// Per-kind watch bookkeeping.
#[derive(Default)]
pub struct Watches {
    /// Running watch tasks by kind.
    tasks: BTreeMap<Kind, tokio::task::JoinHandle<()>>,
    /// Kinds whose initial list has completed.
    pub synced: BTreeSet<Kind>,
    /// Whether the CRD watch has completed its initial list.
    pub crds_synced: bool,
    /// The last error of a kind's watch that has not (re)synced since, e.g. a
    /// 403 when the operator may not list the kind.
    pub errors: BTreeMap<Kind, String>,
}

impl Watches {
    /// Whether every kind in `kinds` can be evaluated: built-in kinds synced;
    /// optional kinds synced, or known absent once the CRD list is synced.
    pub fn ready_for(&self, kinds: &BTreeSet<Kind>, snapshot: &Snapshot) -> bool {
        kinds.iter().all(|k| {
            if k.crd_name().is_some() {
                self.crds_synced && (!snapshot.is_installed(*k) || self.synced.contains(k))
            } else {
                self.synced.contains(k)
            }
        })
    }

    /// Whether every started watch has synced or reported why it cannot (a
    /// forbidden kind must not keep the whole operator unready; the Controls
    /// that need it say so in their status).
    pub fn all_synced(&self) -> bool {
        self.crds_synced
            && self
                .tasks
                .keys()
                .all(|k| self.synced.contains(k) || self.errors.contains_key(k))
    }

    /// The errors of the watches `kinds` need and that have not synced.
    pub fn errors_for(&self, kinds: &BTreeSet<Kind>) -> Vec<String> {
        kinds
            .iter()
            .filter(|k| !self.synced.contains(k))
            .filter_map(|k| self.errors.get(k).map(|e| format!("{k}: {e}")))
            .collect()
    }

    /// Stops every watch.
    pub fn abort_all(&mut self) {
        for (_, t) in std::mem::take(&mut self.tasks) {
            t.abort();
        }
    }
}

/// Starts a watch for `kind` unless one runs. Optional kinds are started only
/// when their CRD is installed.
pub async fn ensure_watch(shared: &Arc<Shared>, kind: Kind) {
    // Decided under the watches lock, so a CRD removal cannot interleave.
    let mut w = shared.watches.lock().await;
    if w.tasks.contains_key(&kind) {
        return;
    }
    if kind.crd_name().is_some() && !shared.snapshot.read().await.is_installed(kind) {
        return;
    }
    info!(%kind, "starting watch");
    let task = kind.visit(Spawn {
        shared: shared.clone(),
    });
    w.tasks.insert(kind, task);
}

/// Stops the watches of kinds no managed Control reads any more and drops
/// their objects.
pub async fn stop_unneeded(shared: &Arc<Shared>) {
    let needed = shared.needed_kinds().await;
    let stopped: Vec<Kind> = {
        let mut w = shared.watches.lock().await;
        let unneeded: Vec<Kind> = w
            .tasks
            .keys()
            .filter(|k| !needed.contains(k))
            .copied()
            .collect();
        for k in &unneeded {
            if let Some(t) = w.tasks.remove(k) {
                t.abort();
            }
            w.synced.remove(k);
            w.errors.remove(k);
        }
        unneeded
    };
    if stopped.is_empty() {
        return;
    }
    let mut snap = shared.snapshot.write().await;
    for k in stopped {
        info!(kind = %k, "stopping watch: no Control reads this kind any more");
        snap.clear(k);
        shared
            .metrics
            .cache_objects
            .with_label_values(&[k.type_meta().1])
            .set(0);
    }
}

/// Exponential backoff for watch errors, reset only by real progress (kube's
/// `default_backoff` resets on the `Init` that precedes every relist, so a
/// failing list would be retried about once a second forever).
pub struct Backoff {
    next: std::time::Duration,
}

impl Backoff {
    const MIN: std::time::Duration = std::time::Duration::from_millis(500);
    const MAX: std::time::Duration = std::time::Duration::from_secs(30);

    /// A fresh backoff.
    pub fn new() -> Self {
        Backoff { next: Self::MIN }
    }

    /// Waits the current delay, then doubles it (up to 30 s).
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(Self::MAX);
    }

    /// Back to the shortest delay after progress.
    pub fn reset(&mut self) {
        self.next = Self::MIN;
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Self::new()
    }
}

/// The next event of a watch stream, or `None` when it ended. An error goes
/// to `on_error`, then waits out `backoff`, which resets on every event but the
/// `Init`/`InitApply` of a relist.
pub async fn next_event<K, F>(
    stream: &mut (impl futures::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Unpin),
    backoff: &mut Backoff,
    mut on_error: impl FnMut(watcher::Error) -> F,
) -> Option<watcher::Event<K>>
where
    F: std::future::Future<Output = ()>,
{
    loop {
        match stream.try_next().await {
            Ok(Some(e)) => {
                if !matches!(e, watcher::Event::Init | watcher::Event::InitApply(_)) {
                    backoff.reset();
                }
                return Some(e);
            }
            Ok(None) => return None,
            Err(e) => {
                on_error(e).await;
                backoff.wait().await;
            }
        }
    }
}

/// Stops the watch of `kind` (its CRD was deleted).
async fn stop_watch(shared: &Arc<Shared>, kind: Kind) {
    let mut w = shared.watches.lock().await;
    if let Some(t) = w.tasks.remove(&kind) {
        info!(%kind, "stopping watch: CRD removed");
        t.abort();
    }
    w.synced.remove(&kind);
}

struct Spawn {
    shared: Arc<Shared>,
}

impl KindVisitor for Spawn {
    type Output = tokio::task::JoinHandle<()>;
    fn visit<K: Stored>(self) -> Self::Output {
        tokio::spawn(watch_kind::<K>(self.shared))
    }
}

/// Runs one kind's watch until aborted, applying events to the snapshot.
async fn watch_kind<K: Stored>(shared: Arc<Shared>) {
    let client: Client = shared.client.clone();
    // kube-apiserver mirror pods are all the checks read of Pods.
    let api: Api<DeserializeGuard<K>> = K::watch_api(client);
    let cfg = watcher::Config::default();
    let kind = K::KIND;
    let label = kind.type_meta().1;
    let mut buffer: Option<Objects<K>> = None;
    let mut stream = watcher(api, cfg).boxed();
    let mut backoff = Backoff::new();
    loop {
        let on_error = |e: watcher::Error| {
            let shared = shared.clone();
            async move {
                warn!(%kind, error = %e, "watch error; retrying with backoff");
                shared
                    .metrics
                    .reconcile_errors
                    .with_label_values(&["WatchError"])
                    .inc();
                let first = shared
                    .watches
                    .lock()
                    .await
                    .errors
                    .insert(kind, e.to_string())
                    .is_none();
                if first {
                    // Dependent Controls learn why they cannot be evaluated.
                    shared.kind_changed(kind).await;
                    shared.update_ready().await;
                }
            }
        };
        let Some(event) = next_event(&mut stream, &mut backoff, on_error).await else {
            return;
        };
        shared
            .metrics
            .watch_events
            .with_label_values(&[label])
            .inc();
        match event {
            watcher::Event::Init => buffer = Some(Objects::default()),
            watcher::Event::InitApply(g) => {
                if let (Some(b), Some(obj)) = (buffer.as_mut(), accept(&shared, g)) {
                    b.insert(Arc::new(obj));
                }
            }
            watcher::Event::InitDone => {
                let fresh = buffer.take().unwrap_or_default();
                let n = fresh.len();
                *K::objects_mut(&mut *shared.snapshot.write().await) = fresh;
                shared
                    .metrics
                    .cache_objects
                    .with_label_values(&[label])
                    .set(n as i64);
                {
                    let mut w = shared.watches.lock().await;
                    w.synced.insert(kind);
                    w.errors.remove(&kind);
                }
                debug!(%kind, objects = n, "cache synced");
                shared.update_ready().await;
                shared.kind_changed(kind).await;
            }
            watcher::Event::Apply(g) => {
                let (ns, name) = key(&g);
                let obj = accept(&shared, g);
                let mut snap = shared.snapshot.write().await;
                let objects = K::objects_mut(&mut snap);
                match obj {
                    // A change only to what trimming drops (status of workloads,
                    // resourceVersion, managedFields) is no change to any check.
                    Some(obj) if objects.get(&ns, &name).is_some_and(|o| **o == obj) => continue,
                    Some(obj) => objects.insert(Arc::new(obj)),
                    // It no longer deserializes: drop the stale copy.
                    None => {
                        objects.remove(&ns, &name);
                    }
                }
                changed::<K>(&shared, snap, label, &ns, &name).await;
            }
            watcher::Event::Delete(g) => {
                let (ns, name) = key(&g);
                let mut snap = shared.snapshot.write().await;
                K::objects_mut(&mut snap).remove(&ns, &name);
                changed::<K>(&shared, snap, label, &ns, &name).await;
            }
        }
    }
}

fn key<K: Stored>(g: &DeserializeGuard<K>) -> (String, String) {
    let m = g.meta();
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

/// After object `ns/name` changed: the cache-size gauge and the dependent
/// Controls (told which namespace changed).
async fn changed<K: Stored>(
    shared: &Shared,
    snap: tokio::sync::RwLockWriteGuard<'_, Snapshot>,
    label: &str,
    ns: &str,
    name: &str,
) {
    let n = K::objects(&snap).len();
    drop(snap);
    shared
        .metrics
        .cache_objects
        .with_label_values(&[label])
        .set(n as i64);
    let ns = (!ns.is_empty()).then_some(ns);
    shared.object_changed(K::KIND, ns, name).await;
}

use kube::Resource;

/// The object, trimmed, or `None` (logged and counted) when it did not
/// deserialize.
fn accept<K: Stored>(shared: &Shared, g: DeserializeGuard<K>) -> Option<K> {
    match g.0 {
        Ok(mut obj) => {
            obj.trim();
            Some(obj)
        }
        Err(invalid) => {
            warn!(
                kind = %K::KIND,
                namespace = invalid.metadata.namespace.as_deref().unwrap_or(""),
                name = invalid.metadata.name.as_deref().unwrap_or(""),
                error = %invalid.error,
                "ignoring an object that does not deserialize"
            );
            shared
                .metrics
                .reconcile_errors
                .with_label_values(&["InvalidObject"])
                .inc();
            None
        }
    }
}

/// Watches CustomResourceDefinitions (metadata only) to learn when the CRDs of
/// optional kinds appear or disappear; starts or stops their watches and
/// re-evaluates dependent Controls.
pub async fn watch_crds(shared: Arc<Shared>) {
    let api: Api<PartialObjectMeta<CustomResourceDefinition>> = Api::all(shared.client.clone());
    let mut stream = watcher(api, watcher::Config::default()).boxed();
    let mut listing: Option<BTreeSet<Kind>> = None;
    let mut backoff = Backoff::new();
    loop {
        let on_error = |e: watcher::Error| async move {
            warn!(error = %e, "CustomResourceDefinition watch error; retrying with backoff");
        };
        let Some(event) = next_event(&mut stream, &mut backoff, on_error).await else {
            return;
        };
        let kinds_of = |name: Option<&String>| -> Vec<Kind> {
            Kind::ALL
                .into_iter()
                .filter(|k| k.crd_name().is_some() && k.crd_name() == name.map(String::as_str))
                .collect()
        };
        match event {
            watcher::Event::Init => listing = Some(BTreeSet::new()),
            watcher::Event::InitApply(m) => {
                if let Some(l) = listing.as_mut() {
                    l.extend(kinds_of(m.metadata.name.as_ref()));
                }
            }
            watcher::Event::InitDone => {
                let present = listing.take().unwrap_or_default();
                for k in Kind::ALL.into_iter().filter(|k| k.crd_name().is_some()) {
                    set_installed(&shared, k, present.contains(&k)).await;
                }
                shared.watches.lock().await.crds_synced = true;
                shared.update_ready().await;
                shared.all_kinds_changed().await;
            }
            watcher::Event::Apply(m) => {
                for k in kinds_of(m.metadata.name.as_ref()) {
                    set_installed(&shared, k, true).await;
                }
            }
            watcher::Event::Delete(m) => {
                for k in kinds_of(m.metadata.name.as_ref()) {
                    set_installed(&shared, k, false).await;
                }
            }
        }
    }
}

async fn set_installed(shared: &Arc<Shared>, kind: Kind, installed: bool) {
    let was = shared.snapshot.read().await.is_installed(kind);
    if was == installed {
        return;
    }
    if installed {
        info!(%kind, "CRD installed");
        shared.snapshot.write().await.mark_installed(kind);
        if shared.needed_kinds().await.contains(&kind) {
            ensure_watch(shared, kind).await;
        }
    } else {
        info!(%kind, "CRD removed");
        stop_watch(shared, kind).await;
        shared.snapshot.write().await.mark_uninstalled(kind);
    }
    shared.kind_changed(kind).await;
}
