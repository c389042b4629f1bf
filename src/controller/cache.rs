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
//!
//! What a watch event changes ([`Caches::apply`], [`CrdWatch::apply`]) is
//! separate from the streams that deliver them ([`watch_kind`],
//! [`watch_crds`]), so that the controller's decisions are tested without a
//! cluster.
use std::collections::BTreeMap;
use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::core::{DeserializeGuard, PartialObjectMeta};
use kube::runtime::watcher;
use kube::{Api, Client, Resource};
use tokio::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use tracing::{debug, info, warn};

use super::Core;
use crate::snapshot::{Kind, KindSet, Objects, Snapshot, Stored};

/// Per-kind watch bookkeeping.
#[derive(Default)]
struct Watches {
    /// Running watch tasks by kind.
    tasks: BTreeMap<Kind, tokio::task::JoinHandle<()>>,
    /// Kinds whose initial list has completed.
    synced: KindSet,
    /// Whether the CRD watch has completed its initial list.
    crds_synced: bool,
    /// The last error of a kind's watch that has not (re)synced since, e.g. a
    /// 403 when the operator may not list the kind.
    errors: BTreeMap<Kind, String>,
}

/// Whether a Control's inputs can be evaluated.
#[derive(Debug, PartialEq, Eq)]
pub enum Inputs {
    /// Every kind it reads is cached (or known absent: an optional CRD).
    Ready,
    /// Some are still being listed.
    Waiting,
    /// Some cannot be watched: `Kind: error` for each.
    Failed(Vec<String>),
}

/// The snapshot and the watches that fill it.
#[derive(Default)]
pub struct Caches {
    snapshot: RwLock<Snapshot>,
    watches: Mutex<Watches>,
}

impl Caches {
    /// The snapshot, for reading.
    pub async fn snapshot(&self) -> RwLockReadGuard<'_, Snapshot> {
        self.snapshot.read().await
    }

    /// The snapshot, for writing (watch events, the API server's metrics).
    pub(crate) async fn snapshot_mut(&self) -> RwLockWriteGuard<'_, Snapshot> {
        self.snapshot.write().await
    }

    /// Whether `kinds` can be evaluated: built-in kinds synced; optional kinds
    /// synced, or known absent once the CRD list is synced; else the errors of
    /// the watches that failed.
    pub async fn inputs(&self, kinds: KindSet) -> Inputs {
        let w = self.watches.lock().await;
        let snap = self.snapshot.read().await;
        let ready = kinds.iter().all(|k| {
            if !k.watchable() {
                // Offline input only: never in a live cluster.
                true
            } else if k.crd_name().is_some() {
                w.crds_synced && (!snap.is_installed(k) || w.synced.contains(&k))
            } else {
                w.synced.contains(&k)
            }
        });
        if ready {
            return Inputs::Ready;
        }
        let errors: Vec<String> = kinds
            .iter()
            .filter(|k| !w.synced.contains(k))
            .filter_map(|k| w.errors.get(&k).map(|e| format!("{k}: {e}")))
            .collect();
        if errors.is_empty() {
            Inputs::Waiting
        } else {
            Inputs::Failed(errors)
        }
    }

    /// Whether every started watch has synced or reported why it cannot (a
    /// forbidden kind must not keep the whole operator unready; the Controls
    /// that need it say so in their status).
    pub async fn all_synced(&self) -> bool {
        let w = self.watches.lock().await;
        w.crds_synced
            && w.tasks
                .keys()
                .all(|k| w.synced.contains(k) || w.errors.contains_key(k))
    }

    /// Starts a watch for `kind` unless one runs. Optional kinds are started
    /// only when their CRD is installed.
    pub async fn ensure_watch(&self, core: &Arc<Core>, kind: Kind) {
        // Decided under the watches lock, so a CRD removal cannot interleave.
        let mut w = self.watches.lock().await;
        if w.tasks.contains_key(&kind) || !kind.watchable() {
            return;
        }
        if kind.crd_name().is_some() && !self.snapshot.read().await.is_installed(kind) {
            return;
        }
        info!(%kind, "starting watch");
        w.tasks
            .insert(kind, core.cluster.start_watch(kind, core.clone()));
    }

    /// Starts the watches of every kind the managed Controls read and stops
    /// the others.
    pub async fn follow_needed_kinds(&self, core: &Arc<Core>) {
        let needed = core.controls.read().await.needed_kinds();
        for kind in needed {
            self.ensure_watch(core, kind).await;
        }
        self.stop_unneeded(core).await;
    }

    /// Stops the watches of kinds no managed Control reads any more and drops
    /// their objects.
    pub async fn stop_unneeded(&self, core: &Core) {
        let needed = core.controls.read().await.needed_kinds();
        let stopped: Vec<Kind> = {
            let mut w = self.watches.lock().await;
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
        let mut snap = self.snapshot.write().await;
        for k in stopped {
            info!(kind = %k, "stopping watch: no Control reads this kind any more");
            snap.clear(k);
            core.metrics.set_cached(k, 0);
        }
    }

    /// Stops every watch.
    pub async fn stop_all(&self) {
        for (_, t) in std::mem::take(&mut self.watches.lock().await.tasks) {
            t.abort();
        }
    }

    /// Applies one watch event of kind `K` to the snapshot and enqueues the
    /// Controls it concerns: a relist (`InitDone`) replaces the kind's
    /// objects and marks it synced; an added, changed or deleted object is
    /// recorded for the Controls that read `K` as far as it reaches
    /// ([`crate::incremental::Changes::record`]). A change only to what
    /// trimming drops is no change.
    pub async fn apply<K: Stored>(
        &self,
        core: &Core,
        relist: &mut Option<Objects<K>>,
        event: watcher::Event<DeserializeGuard<K>>,
    ) {
        let kind = K::KIND;
        match event {
            watcher::Event::Init => *relist = Some(Objects::default()),
            watcher::Event::InitApply(g) => {
                if let (Some(b), Some(obj)) = (relist.as_mut(), accept(core, g)) {
                    b.insert(Arc::new(obj));
                }
            }
            watcher::Event::InitDone => {
                let fresh = relist.take().unwrap_or_default();
                let n = fresh.len();
                *self.snapshot.write().await.objects_mut::<K>() = fresh;
                core.metrics.set_cached(kind, n);
                {
                    let mut w = self.watches.lock().await;
                    w.synced.insert(kind);
                    w.errors.remove(&kind);
                }
                debug!(%kind, objects = n, "cache synced");
                core.update_ready().await;
                core.controls.enqueue_readers(core, kind).await;
            }
            watcher::Event::Apply(g) => {
                let (ns, name) = key(&g);
                let obj = accept(core, g);
                let mut snap = self.snapshot.write().await;
                let objects = snap.objects_mut::<K>();
                match obj {
                    Some(obj) if objects.get(&ns, &name).is_some_and(|o| **o == obj) => return,
                    Some(obj) => objects.insert(Arc::new(obj)),
                    // It is no longer cached (adopted by an owner the checks
                    // read), or no longer deserializes: drop the stale copy.
                    None => {
                        if !objects.remove(&ns, &name) {
                            return;
                        }
                    }
                }
                self.changed::<K>(core, snap, &ns, &name).await;
            }
            watcher::Event::Delete(g) => {
                let (ns, name) = key(&g);
                let mut snap = self.snapshot.write().await;
                // An object that was never cached (judged through its
                // owner) changes nothing.
                if snap.objects_mut::<K>().remove(&ns, &name) {
                    self.changed::<K>(core, snap, &ns, &name).await;
                }
            }
        }
    }

    /// After object `ns/name` changed: the cache-size gauge and the dependent
    /// Controls (told which namespace changed).
    async fn changed<K: Stored>(
        &self,
        core: &Core,
        snap: RwLockWriteGuard<'_, Snapshot>,
        ns: &str,
        name: &str,
    ) {
        let n = snap.objects::<K>().len();
        drop(snap);
        core.metrics.set_cached(K::KIND, n);
        let ns = (!ns.is_empty()).then_some(ns);
        core.controls.enqueue_change(core, K::KIND, ns, name).await;
    }

    /// A watch of `kind` failed (it will retry): the Controls that read it
    /// learn why they cannot be evaluated, the first time.
    pub async fn watch_failed(&self, core: &Core, kind: Kind, error: String) {
        warn!(%kind, %error, "watch error; retrying with backoff");
        core.metrics.reconcile_error("WatchError");
        let first = self
            .watches
            .lock()
            .await
            .errors
            .insert(kind, error)
            .is_none();
        if first {
            core.controls.enqueue_readers(core, kind).await;
            core.update_ready().await;
        }
    }

    /// Records whether the CRD providing `kind` is installed; starts or stops
    /// its watch, and enqueues the Controls that read it.
    async fn set_installed(&self, core: &Arc<Core>, kind: Kind, installed: bool) {
        let was = self.snapshot.read().await.is_installed(kind);
        if was == installed {
            return;
        }
        if installed {
            info!(%kind, "CRD installed");
            self.snapshot.write().await.mark_installed(kind);
            if core.controls.read().await.needed_kinds().contains(&kind) {
                self.ensure_watch(core, kind).await;
            }
        } else {
            info!(%kind, "CRD removed");
            {
                let mut w = self.watches.lock().await;
                if let Some(t) = w.tasks.remove(&kind) {
                    info!(%kind, "stopping watch: CRD removed");
                    t.abort();
                }
                w.synced.remove(&kind);
            }
            self.snapshot.write().await.mark_uninstalled(kind);
        }
        core.controls.enqueue_readers(core, kind).await;
    }
}

fn key<K: Stored>(g: &DeserializeGuard<K>) -> (String, String) {
    let m = g.meta();
    (
        m.namespace.clone().unwrap_or_default(),
        m.name.clone().unwrap_or_default(),
    )
}

/// The object, trimmed, or `None` (logged and counted) when it did not
/// deserialize.
fn accept<K: Stored>(core: &Core, g: DeserializeGuard<K>) -> Option<K> {
    match g.0 {
        // Judged through its owner: not kept, and not trimmed either (see
        // `Stored::cached`, which reads only what trimming keeps).
        Ok(obj) if !obj.cached() => None,
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
            core.metrics.reconcile_error("InvalidObject");
            None
        }
    }
}

/// The CRD watch's state between events: the optional kinds seen in a relist
/// in progress.
#[derive(Default)]
pub struct CrdWatch {
    relist: Option<KindSet>,
}

impl CrdWatch {
    /// Handles one CustomResourceDefinition watch event (metadata only):
    /// optional kinds appear and disappear with their CRD; after the first
    /// list every Control is evaluated.
    pub async fn apply(
        &mut self,
        core: &Arc<Core>,
        event: watcher::Event<PartialObjectMeta<CustomResourceDefinition>>,
    ) {
        let kinds_of = |name: Option<&String>| -> Vec<Kind> {
            Kind::optional()
                .filter(|k| k.crd_name() == name.map(String::as_str))
                .collect()
        };
        match event {
            watcher::Event::Init => self.relist = Some(KindSet::new()),
            watcher::Event::InitApply(m) => {
                if let Some(l) = self.relist.as_mut() {
                    l.extend(kinds_of(m.metadata.name.as_ref()));
                }
            }
            watcher::Event::InitDone => {
                let present = self.relist.take().unwrap_or_default();
                for k in Kind::optional() {
                    core.caches
                        .set_installed(core, k, present.contains(&k))
                        .await;
                }
                core.caches.watches.lock().await.crds_synced = true;
                core.update_ready().await;
                core.controls.enqueue_all(core).await;
            }
            watcher::Event::Apply(m) => {
                for k in kinds_of(m.metadata.name.as_ref()) {
                    core.caches.set_installed(core, k, true).await;
                }
            }
            watcher::Event::Delete(m) => {
                for k in kinds_of(m.metadata.name.as_ref()) {
                    core.caches.set_installed(core, k, false).await;
                }
            }
        }
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

/// Runs one kind's watch until aborted, applying its events to the caches.
pub async fn watch_kind<K: Stored>(client: Client, core: Arc<Core>) {
    let api: Api<DeserializeGuard<K>> = K::watch_api(client);
    let mut stream = watcher(api, watcher::Config::default()).boxed();
    let mut backoff = Backoff::new();
    let mut relist: Option<Objects<K>> = None;
    loop {
        let on_error = |e: watcher::Error| {
            let core = core.clone();
            async move {
                core.caches
                    .watch_failed(&core, K::KIND, e.to_string())
                    .await
            }
        };
        let Some(event) = next_event(&mut stream, &mut backoff, on_error).await else {
            return;
        };
        core.metrics.watch_event(K::kind(&()).as_ref());
        core.caches.apply(&core, &mut relist, event).await;
    }
}

/// Watches CustomResourceDefinitions (metadata only) to learn when the CRDs of
/// optional kinds appear or disappear.
pub async fn watch_crds(client: Client, core: Arc<Core>) {
    let api: Api<PartialObjectMeta<CustomResourceDefinition>> = Api::all(client);
    let mut stream = watcher(api, watcher::Config::default()).boxed();
    let mut state = CrdWatch::default();
    let mut backoff = Backoff::new();
    loop {
        let on_error = |e: watcher::Error| async move {
            warn!(error = %e, "CustomResourceDefinition watch error; retrying with backoff");
        };
        let Some(event) = next_event(&mut stream, &mut backoff, on_error).await else {
            return;
        };
        state.apply(&core, event).await;
    }
}
