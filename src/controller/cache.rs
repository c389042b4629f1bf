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
use kube::runtime::{WatchStreamExt, watcher};
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

    /// Whether every started watch has synced.
    pub fn all_synced(&self) -> bool {
        self.crds_synced && self.tasks.keys().all(|k| self.synced.contains(k))
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
    if kind.crd_name().is_some() && !shared.snapshot.read().await.is_installed(kind) {
        return;
    }
    let mut w = shared.watches.lock().await;
    if w.tasks.contains_key(&kind) {
        return;
    }
    info!(%kind, "starting watch");
    let task = kind.visit(Spawn {
        shared: shared.clone(),
    });
    w.tasks.insert(kind, task);
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
    let api: Api<DeserializeGuard<K>> = Api::all(client);
    let mut cfg = watcher::Config::default();
    if K::KIND == Kind::Pod {
        cfg = cfg.fields("metadata.namespace=kube-system");
    }
    let kind = K::KIND;
    let label = kind.type_meta().1;
    let mut buffer: Option<Objects<K>> = None;
    let mut stream = watcher(api, cfg).default_backoff().boxed();
    loop {
        let event = match stream.try_next().await {
            Ok(Some(e)) => e,
            Ok(None) => return,
            Err(e) => {
                warn!(%kind, error = %e, "watch error; retrying with backoff");
                shared
                    .metrics
                    .reconcile_errors
                    .with_label_values(&["WatchError"])
                    .inc();
                continue;
            }
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
                shared.watches.lock().await.synced.insert(kind);
                debug!(%kind, objects = n, "cache synced");
                shared.kind_changed(kind).await;
            }
            watcher::Event::Apply(g) => {
                let (ns, name) = key(&g);
                let obj = accept(&shared, g);
                let mut snap = shared.snapshot.write().await;
                match obj {
                    Some(obj) => K::objects_mut(&mut snap).insert(Arc::new(obj)),
                    // It no longer deserializes: drop the stale copy.
                    None => {
                        K::objects_mut(&mut snap).remove(&ns, &name);
                    }
                }
                changed::<K>(&shared, snap, label).await;
            }
            watcher::Event::Delete(g) => {
                let (ns, name) = key(&g);
                let mut snap = shared.snapshot.write().await;
                K::objects_mut(&mut snap).remove(&ns, &name);
                changed::<K>(&shared, snap, label).await;
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

/// After one object changed: the cache-size gauge and the dependent Controls.
async fn changed<K: Stored>(
    shared: &Shared,
    snap: tokio::sync::RwLockWriteGuard<'_, Snapshot>,
    label: &str,
) {
    let n = K::objects(&snap).len();
    drop(snap);
    shared
        .metrics
        .cache_objects
        .with_label_values(&[label])
        .set(n as i64);
    shared.kind_changed(K::KIND).await;
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
    let mut stream = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut listing: Option<BTreeSet<Kind>> = None;
    loop {
        let event = match stream.try_next().await {
            Ok(Some(e)) => e,
            Ok(None) => return,
            Err(e) => {
                warn!(error = %e, "CustomResourceDefinition watch error; retrying");
                continue;
            }
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
