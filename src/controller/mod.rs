//! The operator: watches Controls and exactly the kinds their checks read,
//! re-evaluates the Controls that depend on a changed object (at once, at most
//! one pass per `debounce`, plus a periodic resync for time-based checks),
//! writes status with server-side apply only when its content changed, records
//! Events on compliance transitions, and keeps the metrics current. Only the
//! holder of the leader Lease writes.
//!
//! One Control's path: `Control` watch ([`watch_controls`]) → dirty map (what
//! changed for it, [`Changes`]) → [`reconcile::reconcile`] →
//! [`crate::incremental::update`] (only the namespaces or the cluster part that
//! changed) or a full [`crate::engine::evaluate`] over the shared [`Snapshot`]
//! (fed by [`cache`]) → status patch, Event, metrics.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::DeserializeGuard;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::sync::{Mutex, Notify, RwLock, watch};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::api::{Control, ControlStatus};
use crate::checks::kinds_for;
use crate::incremental::{Changes, Retained};
use crate::metrics::Metrics;
use crate::snapshot::{Kind, Snapshot};

pub mod cache;
pub mod leader;
pub mod reconcile;

/// The field manager of every status write.
pub const FIELD_MANAGER: &str = "soc2-operator";

/// Operator settings (see `soc2-operator run --help` for the flags).
#[derive(Clone, Debug)]
pub struct Config {
    /// Address of `/metrics`, `/healthz`, `/readyz`.
    pub metrics_addr: SocketAddr,
    /// Every Control is re-evaluated at least this often (time-based checks).
    pub resync: Duration,
    /// Shortest time between two evaluation passes: an isolated change is
    /// evaluated at once, a burst of changes in one pass per interval.
    pub debounce: Duration,
    /// Leader election on a Lease; off means this process always writes.
    pub leader_election: bool,
    /// Lease name.
    pub lease_name: String,
    /// Lease namespace.
    pub lease_namespace: String,
    /// This replica's identity in the Lease.
    pub identity: String,
    /// Lease duration; a crashed leader is replaced after at most this long.
    pub lease_duration: Duration,
    /// Only Controls matching this label selector are managed (sharding, tests).
    pub control_selector: Option<String>,
    /// Read the API server's `/metrics` for Secret-encryption evidence.
    pub read_apiserver_metrics: bool,
    /// Namespace of the Events about Controls.
    pub events_namespace: String,
}

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

/// State shared by the watch tasks and the reconcile loop.
pub struct Shared {
    /// The API client.
    pub client: Client,
    /// Settings.
    pub config: Config,
    /// The cluster view the engine reads.
    pub snapshot: RwLock<Snapshot>,
    /// Watch tasks and sync state.
    pub watches: Mutex<cache::Watches>,
    /// Managed Controls by name.
    pub controls: RwLock<BTreeMap<String, CachedControl>>,
    /// Whether the Control watch has completed its initial list.
    pub controls_synced: AtomicBool,
    /// Controls waiting to be evaluated, with what changed for each.
    pub dirty: std::sync::Mutex<BTreeMap<String, Changes>>,
    /// Each Control's last full result, kept for incremental updates.
    pub retained: std::sync::Mutex<HashMap<String, Retained>>,
    /// Wakes the reconcile loop.
    pub wake: Notify,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// `/readyz`.
    pub ready: Arc<AtomicBool>,
    /// True while this replica may write.
    pub leader: watch::Receiver<bool>,
    /// The last status this process wrote per Control, until the Control watch
    /// delivers it (it is newer than the cache meanwhile).
    pub written: Mutex<BTreeMap<String, Written>>,
    /// When the API server's `/metrics` was last read.
    pub apiserver_metrics_read: Mutex<Option<tokio::time::Instant>>,
    /// Cancelled on shutdown: no write starts after it.
    pub shutdown: CancellationToken,
}

/// A status this process wrote, and the transition Event still to publish.
#[derive(Clone, Debug)]
pub struct Written {
    /// The Control's `metadata.uid` (a re-created Control starts afresh).
    pub uid: Option<String>,
    /// The status sent.
    pub status: ControlStatus,
    /// An Event whose publication failed, retried with the next evaluation.
    pub pending_event: Option<reconcile::PendingEvent>,
    /// Statuses written before `status` whose watch echo may still arrive
    /// (at most [`MAX_EARLIER_WRITES`]); their echo is ours, not a foreign
    /// write to repair.
    pub earlier: Vec<ControlStatus>,
}

/// How many earlier writes of one Control are still recognised as ours.
pub const MAX_EARLIER_WRITES: usize = 4;

impl Shared {
    /// Marks every Control that reads `kind` for a full evaluation (a relist,
    /// a watch error, a CRD that appeared or went).
    pub async fn kind_changed(&self, kind: Kind) {
        let controls = self.controls.read().await;
        let mut dirty = self.dirty.lock().expect("dirty lock");
        for (name, c) in controls.iter() {
            if let CachedControl::Valid(c) = c
                && kinds_for(&c.spec.check).contains(&kind)
            {
                dirty
                    .entry(name.clone())
                    .or_default()
                    .merge(Changes::full());
            }
        }
        drop(dirty);
        self.wake.notify_one();
    }

    /// Records that object `namespace/name` of `kind` was added, changed or
    /// deleted: every Control that reads `kind` learns how far the change
    /// reaches for its check ([`Changes::record`]).
    pub async fn object_changed(&self, kind: Kind, namespace: Option<&str>, name: &str) {
        let controls = self.controls.read().await;
        let mut dirty = self.dirty.lock().expect("dirty lock");
        for (control, c) in controls.iter() {
            if let CachedControl::Valid(c) = c
                && kinds_for(&c.spec.check).contains(&kind)
            {
                dirty.entry(control.clone()).or_default().record(
                    &c.spec.check,
                    kind,
                    namespace,
                    name,
                );
            }
        }
        drop(dirty);
        self.wake.notify_one();
    }

    /// Marks every Control for a full evaluation.
    pub async fn all_kinds_changed(&self) {
        let names: Vec<String> = self.controls.read().await.keys().cloned().collect();
        let mut dirty = self.dirty.lock().expect("dirty lock");
        for name in names {
            dirty.insert(name, Changes::full());
        }
        drop(dirty);
        self.wake.notify_one();
    }

    /// Marks one Control for a full evaluation.
    pub fn mark(&self, name: &str) {
        self.dirty
            .lock()
            .expect("dirty lock")
            .insert(name.to_owned(), Changes::full());
        self.wake.notify_one();
    }

    /// The kinds the managed Controls read.
    pub async fn needed_kinds(&self) -> BTreeSet<Kind> {
        let mut kinds = BTreeSet::from([Kind::Namespace]);
        for c in self.controls.read().await.values() {
            if let CachedControl::Valid(c) = c {
                kinds.extend(kinds_for(&c.spec.check));
            }
        }
        kinds
    }

    /// Starts the watches of every needed kind that has none yet.
    pub async fn ensure_watches(self: &Arc<Self>) {
        for kind in self.needed_kinds().await {
            cache::ensure_watch(self, kind).await;
        }
    }

    /// Recomputes `/readyz`: Controls listed and every started watch synced.
    pub async fn update_ready(&self) {
        let ready =
            self.controls_synced.load(Ordering::Acquire) && self.watches.lock().await.all_synced();
        self.ready.store(ready, Ordering::Release);
    }

    /// Whether this replica may write now.
    pub fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }
}

/// Errors that stop the operator.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The metrics server could not bind.
    #[error("cannot serve metrics on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The bind error.
        source: std::io::Error,
    },
    /// Leader election failed (the process must not keep running unsupervised).
    #[error("leader election failed: {0}")]
    Leader(String),
    /// The client configuration is unusable.
    #[error("cannot build a Kubernetes client: {0}")]
    Client(String),
}

/// Runs the operator until `shutdown` is cancelled (or leader election fails).
/// Returns the bound metrics address through `bound` as soon as it is known.
///
/// # Errors
/// [`Error::Bind`] when the metrics address is taken; [`Error::Leader`] when the
/// Lease cannot be managed.
pub async fn run(
    kube_config: kube::Config,
    config: Config,
    shutdown: CancellationToken,
    bound: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> Result<(), Error> {
    let client = Client::try_from(kube_config.clone()).map_err(|e| Error::Client(e.to_string()))?;
    let metrics = Arc::new(Metrics::new(crate::VERSION));
    metrics.resync_interval.set(config.resync.as_secs_f64());
    let ready = Arc::new(AtomicBool::new(false));
    let (addr, http_task) = crate::http::serve(
        config.metrics_addr,
        crate::http::HttpState {
            metrics: metrics.clone(),
            ready: ready.clone(),
        },
        shutdown.clone(),
    )
    .await
    .map_err(|source| Error::Bind {
        addr: config.metrics_addr,
        source,
    })?;
    info!(%addr, "serving /metrics, /healthz, /readyz");
    if let Some(tx) = bound {
        let _ = tx.send(addr);
    }

    let (leader_rx, mut leader_task) =
        leader::start(&kube_config, &config, metrics.clone(), shutdown.clone())
            .await
            .map_err(|e| Error::Leader(e.to_string()))?;
    let shared = Arc::new(Shared {
        client: client.clone(),
        config: config.clone(),
        snapshot: RwLock::new(Snapshot::default()),
        watches: Mutex::new(cache::Watches::default()),
        controls: RwLock::new(BTreeMap::new()),
        controls_synced: AtomicBool::new(false),
        dirty: std::sync::Mutex::new(BTreeMap::new()),
        retained: std::sync::Mutex::new(HashMap::new()),
        wake: Notify::new(),
        metrics,
        ready,
        leader: leader_rx,
        written: Mutex::new(BTreeMap::new()),
        apiserver_metrics_read: Mutex::new(None),
        shutdown: shutdown.clone(),
    });

    let crds = tokio::spawn(cache::watch_crds(shared.clone()));
    let controls = tokio::spawn(watch_controls(shared.clone()));
    let leadership = tokio::spawn(follow_leadership(shared.clone()));
    let reconciler = tokio::spawn(reconcile::run_loop(shared.clone(), shutdown.clone()));
    cache::ensure_watch(&shared, Kind::Namespace).await;

    let result = tokio::select! {
        _ = shutdown.cancelled() => Ok(()),
        r = leader_task.wait() => {
            // The Lease task ended without a shutdown: nobody guards writes any more.
            let msg = r.err().unwrap_or_else(|| "the lease task stopped".into());
            error!(error = %msg, "leader election failed; stopping");
            Err(Error::Leader(msg))
        }
    };
    shutdown.cancel();
    let _ = reconciler.await;
    for t in [crds, controls, leadership] {
        t.abort();
    }
    shared.watches.lock().await.abort_all();
    leader_task.release().await;
    let _ = http_task.await;
    info!("stopped");
    result
}

/// Re-evaluates everything when this replica becomes leader (it may hold
/// statuses written by another replica), and keeps `soc2_leader` current.
async fn follow_leadership(shared: Arc<Shared>) {
    let mut rx = shared.leader.clone();
    loop {
        let leader = *rx.borrow_and_update();
        shared.metrics.leader.set(i64::from(leader));
        if leader {
            info!("this replica is the leader: writing status");
            shared.written.lock().await.clear();
            shared.all_kinds_changed().await;
        } else {
            info!("this replica is not the leader: evaluating, not writing");
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Watches the managed Controls; marks new and changed (new generation) ones
/// for evaluation, forgets deleted ones, and starts the watches they need.
async fn watch_controls(shared: Arc<Shared>) {
    let api: Api<DeserializeGuard<Control>> = Api::all(shared.client.clone());
    let mut cfg = watcher::Config::default();
    if let Some(sel) = &shared.config.control_selector {
        cfg = cfg.labels(sel);
    }
    let mut stream = watcher(api, cfg).boxed();
    let mut buffer: Option<BTreeMap<String, CachedControl>> = None;
    let mut backoff = cache::Backoff::new();
    loop {
        let on_error = |e: watcher::Error| async move {
            warn!(error = %e, "Control watch error; retrying with backoff");
        };
        let Some(event) = cache::next_event(&mut stream, &mut backoff, on_error).await else {
            return;
        };
        shared
            .metrics
            .watch_events
            .with_label_values(&["Control"])
            .inc();
        match event {
            watcher::Event::Init => buffer = Some(BTreeMap::new()),
            watcher::Event::InitApply(g) => {
                if let Some(b) = buffer.as_mut() {
                    let (name, c) = cached(g);
                    b.insert(name, c);
                }
            }
            watcher::Event::InitDone => {
                let fresh = buffer.take().unwrap_or_default();
                let removed: Vec<String> = {
                    let mut controls = shared.controls.write().await;
                    let removed = controls
                        .keys()
                        .filter(|k| !fresh.contains_key(*k))
                        .cloned()
                        .collect();
                    *controls = fresh;
                    removed
                };
                for name in removed {
                    forget(&shared, &name).await;
                }
                shared.controls_synced.store(true, Ordering::Release);
                shared.ensure_watches().await;
                cache::stop_unneeded(&shared).await;
                shared.update_ready().await;
                shared.all_kinds_changed().await;
            }
            watcher::Event::Apply(g) => {
                let (name, c) = cached(g);
                let changed = {
                    let mut controls = shared.controls.write().await;
                    let generation = |c: &CachedControl| match c {
                        CachedControl::Valid(v) => {
                            (v.metadata.uid.clone(), v.metadata.generation, true)
                        }
                        CachedControl::Invalid { metadata, .. } => {
                            (metadata.uid.clone(), metadata.generation, false)
                        }
                    };
                    let changed = controls.get(&name).map(generation) != Some(generation(&c));
                    controls.insert(name.clone(), c.clone());
                    changed
                };
                if changed {
                    shared.ensure_watches().await;
                    cache::stop_unneeded(&shared).await;
                    shared.mark(&name);
                } else if let CachedControl::Valid(control) = &c {
                    // A status-only update: our own write coming back, or someone
                    // else's (e.g. a deposed leader's late write). Only the latter
                    // needs a re-evaluation, which repairs it.
                    let mut written = shared.written.lock().await;
                    let same = |s: &ControlStatus| {
                        control
                            .status
                            .as_ref()
                            .is_some_and(|c| reconcile::same_content(s, c))
                    };
                    // Echoes arrive in write order: an earlier write's echo
                    // (checked first, in case a later write has the same
                    // content) retires it and those before it.
                    let earlier = written
                        .get(&name)
                        .and_then(|w| w.earlier.iter().position(&same));
                    let ours = written.get(&name).is_some_and(|w| same(&w.status));
                    if let Some(i) = earlier {
                        if let Some(w) = written.get_mut(&name) {
                            w.earlier.drain(..=i);
                        }
                    } else if ours {
                        if let Some(w) = written.get_mut(&name) {
                            w.earlier.clear();
                        }
                        if written
                            .get(&name)
                            .is_some_and(|w| w.pending_event.is_none())
                        {
                            written.remove(&name);
                        }
                    } else {
                        written.remove(&name);
                        drop(written);
                        if shared.is_leader() {
                            shared.mark(&name);
                        }
                    }
                }
            }
            watcher::Event::Delete(g) => {
                let (name, _) = cached(g);
                // Forget under the controls lock: a reconcile that checks the
                // Control still exists before exporting cannot interleave.
                let mut controls = shared.controls.write().await;
                controls.remove(&name);
                forget(&shared, &name).await;
                drop(controls);
                cache::stop_unneeded(&shared).await;
            }
        }
    }
}

async fn forget(shared: &Shared, name: &str) {
    info!(
        control = name,
        "Control deleted: removing its metric series"
    );
    shared.metrics.forget(name);
    shared.written.lock().await.remove(name);
    shared.retained.lock().expect("retained lock").remove(name);
}

fn cached(g: DeserializeGuard<Control>) -> (String, CachedControl) {
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
