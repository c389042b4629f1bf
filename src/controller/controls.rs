//! The Control table: the managed Controls as cached from their watch, the
//! status [`Ledger`] and each Control's retained result for incremental
//! re-evaluation — and what the controller does on each Control watch event.
//!
//! Lock order, as the types allow it and no other way: the table's
//! `RwLock` first; the ledger and the retained results each behind a mutex
//! reachable only through a guard of it ([`Table::ledger`],
//! [`Table::retained`]; the controller takes one of them at a time); the
//! metrics last (their own lock, taken by [`crate::metrics::Metrics`]).
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::DeserializeGuard;
use kube::runtime::watcher;
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use tracing::info;

use super::Core;
use super::ledger::{Echo, Ledger};
use crate::api::Control;
use crate::checks::{kinds_for, reads_apiserver_metrics};
use crate::incremental::{Changes, Retained};
use crate::snapshot::{Kind, KindSet};

/// A Control as cached: typed, or the error that kept it from deserializing.
#[derive(Clone, Debug)]
pub enum CachedControl {
    /// A Control that deserialized.
    Valid(Arc<Control>),
    /// A Control that did not (e.g. stored under an older schema).
    Invalid {
        /// Its metadata.
        metadata: Box<ObjectMeta>,
        /// The deserialization error, naming the field.
        error: String,
    },
}

impl CachedControl {
    /// The object's metadata.
    pub fn metadata(&self) -> &ObjectMeta {
        match self {
            CachedControl::Valid(c) => &c.metadata,
            CachedControl::Invalid { metadata, .. } => metadata,
        }
    }

    /// Whether this is the object with `meta`'s uid (not a re-created one).
    pub fn is(&self, meta: &ObjectMeta) -> bool {
        self.metadata().uid == meta.uid
    }

    /// The kinds its check reads (none for an unreadable Control).
    pub fn kinds(&self) -> KindSet {
        match self {
            CachedControl::Valid(c) => kinds_for(&c.spec.check),
            CachedControl::Invalid { .. } => KindSet::new(),
        }
    }

    fn from_guard(g: DeserializeGuard<Control>) -> (String, CachedControl) {
        match g.0 {
            Ok(c) => (
                c.metadata.name.clone().unwrap_or_default(),
                CachedControl::Valid(Arc::new(c)),
            ),
            Err(invalid) => (
                invalid.metadata.name.clone().unwrap_or_default(),
                CachedControl::Invalid {
                    metadata: Box::new(invalid.metadata),
                    error: invalid.error,
                },
            ),
        }
    }

    /// `(uid, generation, valid)`: what makes a change one to evaluate.
    fn identity(&self) -> (Option<String>, Option<i64>, bool) {
        let m = self.metadata();
        (
            m.uid.clone(),
            m.generation,
            matches!(self, CachedControl::Valid(_)),
        )
    }
}

/// The managed Controls by name, with the ledger and the retained results.
pub struct Table {
    entries: BTreeMap<String, CachedControl>,
    ledger: std::sync::Mutex<Ledger>,
    retained: std::sync::Mutex<HashMap<String, Retained>>,
}

impl Table {
    /// Control `name`, if managed.
    pub fn get(&self, name: &str) -> Option<&CachedControl> {
        self.entries.get(name)
    }

    /// Whether Control `name` is still the object with `meta`'s uid.
    pub fn holds(&self, name: &str, meta: &ObjectMeta) -> bool {
        self.entries.get(name).is_some_and(|c| c.is(meta))
    }

    /// The status ledger.
    pub fn ledger(&self) -> std::sync::MutexGuard<'_, Ledger> {
        self.ledger
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Each Control's retained result.
    pub fn retained(&self) -> std::sync::MutexGuard<'_, HashMap<String, Retained>> {
        self.retained
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The kinds the managed Controls read (always `Namespace`).
    pub fn needed_kinds(&self) -> KindSet {
        let mut kinds = KindSet::from([Kind::Namespace]);
        for c in self.entries.values() {
            kinds.extend(c.kinds());
        }
        kinds
    }

    /// The valid Controls whose check reads `kind`.
    pub fn readers(&self, kind: Kind) -> impl Iterator<Item = (&String, &Arc<Control>)> {
        self.entries.iter().filter_map(move |(name, c)| match c {
            CachedControl::Valid(v) if kinds_for(&v.spec.check).contains(&kind) => Some((name, v)),
            _ => None,
        })
    }

    /// Every Control's name.
    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.entries.keys()
    }

    /// Forgets Control `name`'s ledger record and retained result.
    fn forget(&mut self, name: &str) {
        self.ledger
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .forget(name);
        self.retained
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(name);
    }
}

/// The Control table and whether its watch has listed every Control once.
pub struct Controls {
    table: RwLock<Table>,
    synced: AtomicBool,
}

impl Default for Controls {
    fn default() -> Self {
        Controls {
            table: RwLock::new(Table {
                entries: BTreeMap::new(),
                ledger: Default::default(),
                retained: Default::default(),
            }),
            synced: AtomicBool::new(false),
        }
    }
}

impl Controls {
    /// The table, for reading (its ledger and retained results are behind it).
    pub async fn read(&self) -> RwLockReadGuard<'_, Table> {
        self.table.read().await
    }

    async fn write(&self) -> RwLockWriteGuard<'_, Table> {
        self.table.write().await
    }

    /// Whether the Control watch has completed its initial list.
    pub fn is_synced(&self) -> bool {
        self.synced.load(Ordering::Acquire)
    }

    /// Enqueues every Control that reads `kind` for a full evaluation (a
    /// relist, a watch error, a CRD that appeared or went).
    pub async fn enqueue_readers(&self, core: &Core, kind: Kind) {
        let table = self.read().await;
        core.queue.enqueue_all(
            table
                .readers(kind)
                .map(|(name, _)| (name.clone(), Changes::full())),
        );
    }

    /// Enqueues every Control that reads the API server's metrics for a full
    /// evaluation (a new reading changed what they conclude).
    pub async fn enqueue_metrics_readers(&self, core: &Core) {
        let table = self.read().await;
        core.queue
            .enqueue_all(table.entries.iter().filter_map(|(name, c)| match c {
                CachedControl::Valid(v) if reads_apiserver_metrics(&v.spec.check) => {
                    Some((name.clone(), Changes::full()))
                }
                _ => None,
            }));
    }

    /// Enqueues, for every Control that reads `kind`, the change of object
    /// `namespace/name` as far as it reaches for its check
    /// ([`Changes::record`]).
    pub async fn enqueue_change(
        &self,
        core: &Core,
        kind: Kind,
        namespace: Option<&str>,
        name: &str,
    ) {
        let table = self.read().await;
        core.queue
            .enqueue_all(table.readers(kind).map(|(control, c)| {
                let mut changes = Changes::default();
                changes.record(&c.spec.check, kind, namespace, name);
                (control.clone(), changes)
            }));
    }

    /// Enqueues every Control for a full evaluation.
    pub async fn enqueue_all(&self, core: &Core) {
        let table = self.read().await;
        core.queue
            .enqueue_all(table.names().map(|n| (n.clone(), Changes::full())));
    }
}

/// The Control watch's state between events: the objects of a relist in
/// progress.
#[derive(Default)]
pub struct ControlWatch {
    relist: Option<BTreeMap<String, CachedControl>>,
}

impl ControlWatch {
    /// Handles one Control watch event: a relist replaces the table (removed
    /// Controls are forgotten, every Control is evaluated); a new Control or
    /// a new generation is evaluated fully and the watches follow the kinds
    /// now needed; an update that changed only the status is classified by
    /// the ledger and, when someone else wrote it, evaluated again so the
    /// leader puts it right; a deleted Control is forgotten (metric series,
    /// ledger record, retained result) under the table's write lock, so no
    /// reconcile in flight can export it again.
    pub async fn apply(
        &mut self,
        core: &Arc<Core>,
        event: watcher::Event<DeserializeGuard<Control>>,
    ) {
        match event {
            watcher::Event::Init => self.relist = Some(BTreeMap::new()),
            watcher::Event::InitApply(g) => {
                if let Some(r) = self.relist.as_mut() {
                    let (name, c) = CachedControl::from_guard(g);
                    r.insert(name, c);
                }
            }
            watcher::Event::InitDone => self.listed(core).await,
            watcher::Event::Apply(g) => {
                let (name, c) = CachedControl::from_guard(g);
                applied(core, name, c).await;
            }
            watcher::Event::Delete(g) => {
                let (name, _) = CachedControl::from_guard(g);
                let mut table = core.controls.write().await;
                table.entries.remove(&name);
                forget(core, &mut table, &name);
                drop(table);
                core.caches.stop_unneeded(core).await;
            }
        }
    }

    async fn listed(&mut self, core: &Arc<Core>) {
        let fresh = self.relist.take().unwrap_or_default();
        {
            let mut table = core.controls.write().await;
            let removed: Vec<String> = table
                .entries
                .keys()
                .filter(|k| !fresh.contains_key(*k))
                .cloned()
                .collect();
            table.entries = fresh;
            for name in removed {
                forget(core, &mut table, &name);
            }
        }
        core.controls.synced.store(true, Ordering::Release);
        core.caches.follow_needed_kinds(core).await;
        core.update_ready().await;
        core.controls.enqueue_all(core).await;
    }
}

/// A Control added or updated.
async fn applied(core: &Arc<Core>, name: String, c: CachedControl) {
    let changed = {
        let mut table = core.controls.write().await;
        let changed = table.entries.get(&name).map(CachedControl::identity) != Some(c.identity());
        table.entries.insert(name.clone(), c.clone());
        changed
    };
    if changed {
        core.caches.follow_needed_kinds(core).await;
        core.queue.enqueue(&name, Changes::full());
        return;
    }
    let CachedControl::Valid(control) = &c else {
        return;
    };
    // A status-only update: our own write coming back, or someone else's
    // (e.g. a deposed leader's late write). Only the latter needs a
    // re-evaluation, which repairs it.
    let echo = core
        .controls
        .read()
        .await
        .ledger()
        .echo(&name, control.status.as_ref());
    if echo == Echo::Foreign && core.is_leader() {
        core.queue.enqueue(&name, Changes::full());
    }
}

fn forget(core: &Core, table: &mut Table, name: &str) {
    info!(
        control = name,
        "Control deleted: removing its metric series"
    );
    core.metrics.forget(name);
    table.forget(name);
}
