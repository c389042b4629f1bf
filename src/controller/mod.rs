//! The operator: watches Controls and exactly the kinds their checks read,
//! re-evaluates the Controls that depend on a changed object (at once, at most
//! one pass per `debounce`, plus a periodic resync for time-based checks),
//! writes status with server-side apply only when its content changed, records
//! Events on compliance transitions, and keeps the metrics current. Only the
//! holder of the leader Lease writes.
//!
//! One Control's path: `Control` watch ([`controls::ControlWatch`]) → the
//! work queue (what changed for it, [`queue::Queue`]) →
//! [`reconcile::reconcile`] → [`crate::incremental::update`] (only the
//! namespaces or the cluster part that changed) or a full evaluation over the
//! shared [`crate::snapshot::Snapshot`] (fed by [`cache`]) → status patch,
//! Event, metrics.
//!
//! The parts, each with its own state behind its own lock: [`cache::Caches`]
//! (snapshot and watches), [`controls::Controls`] (the Control table, the
//! status [`ledger`] and the retained results), [`queue::Queue`], the metrics,
//! and the cluster ([`cluster::Cluster`]: every request the controller
//! makes besides its watch streams). [`Core`] holds them; what a watch event or
//! a pass decides is tested without a cluster by driving these parts with
//! synthetic events and a fake cluster (`controller/tests.rs`).
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use kube::core::DeserializeGuard;
use kube::runtime::watcher;
use kube::{Api, Client};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::api::Control;
use crate::metrics::Metrics;
use crate::snapshot::Kind;

pub mod cache;
pub mod cluster;
pub mod controls;
pub mod events;
pub mod leader;
pub mod ledger;
pub mod queue;
pub mod reconcile;
#[cfg(test)]
mod tests;

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

/// The clock the controller reads evaluation and Event times from.
pub type Clock = Arc<dyn Fn() -> Timestamp + Send + Sync>;

/// The parts every task of the operator shares. No field is public: tasks go
/// through the parts' own APIs.
pub struct Core {
    config: Config,
    cluster: Arc<dyn cluster::Cluster>,
    clock: Clock,
    caches: cache::Caches,
    controls: controls::Controls,
    queue: queue::Queue,
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
    leader: watch::Receiver<bool>,
    apiserver_metrics_read: std::sync::Mutex<Option<tokio::time::Instant>>,
    shutdown: CancellationToken,
}

impl Core {
    /// The shared parts of an operator that reaches its cluster through
    /// `cluster`, reads time from `clock`, exports `metrics`, reports `/readyz`
    /// through `ready`, writes only while `leader` holds true, and stops
    /// writing once `shutdown` is cancelled.
    pub fn new(
        config: Config,
        cluster: Arc<dyn cluster::Cluster>,
        clock: Clock,
        metrics: Arc<Metrics>,
        ready: Arc<AtomicBool>,
        leader: watch::Receiver<bool>,
        shutdown: CancellationToken,
    ) -> Self {
        Core {
            config,
            cluster,
            clock,
            caches: Default::default(),
            controls: Default::default(),
            queue: Default::default(),
            metrics,
            ready,
            leader,
            apiserver_metrics_read: Default::default(),
            shutdown,
        }
    }

    /// The current time.
    fn now(&self) -> Timestamp {
        (self.clock)()
    }

    /// Whether this replica holds the Lease (always, without leader election).
    fn is_leader(&self) -> bool {
        *self.leader.borrow()
    }

    /// Whether this replica may write now: it leads and is not shutting down.
    fn may_write(&self) -> bool {
        self.is_leader() && !self.shutdown.is_cancelled()
    }

    /// Recomputes `/readyz`: Controls listed and every started watch synced.
    async fn update_ready(&self) {
        let ready = self.controls.is_synced() && self.caches.all_synced().await;
        self.ready.store(ready, Ordering::Release);
    }

    /// This replica became leader, or stopped being leader. A new leader
    /// forgets what it wrote before (another leader may have written since)
    /// and re-evaluates everything.
    async fn leadership_changed(&self, leader: bool) {
        self.metrics.set_leader(leader);
        if leader {
            info!("this replica is the leader: writing status");
            self.controls.read().await.ledger().clear();
            self.controls.enqueue_all(self).await;
        } else {
            info!("this replica is not the leader: evaluating, not writing");
        }
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
    metrics.set_resync_interval(config.resync);
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
    let core = Arc::new(Core::new(
        config,
        Arc::new(cluster::KubeCluster::new(client.clone())),
        Arc::new(Timestamp::now),
        metrics,
        ready,
        leader_rx,
        shutdown.clone(),
    ));

    let crds = tokio::spawn(cache::watch_crds(client.clone(), core.clone()));
    let controls = tokio::spawn(watch_controls(client, core.clone()));
    let leadership = tokio::spawn(follow_leadership(core.clone()));
    let reconciler = tokio::spawn(reconcile::run_loop(core.clone()));
    core.caches.ensure_watch(&core, Kind::Namespace).await;

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
    core.caches.stop_all().await;
    leader_task.release().await;
    let _ = http_task.await;
    info!("stopped");
    result
}

/// Follows the leader flag (see [`Core::leadership_changed`]).
async fn follow_leadership(core: Arc<Core>) {
    let mut rx = core.leader.clone();
    loop {
        let leader = *rx.borrow_and_update();
        core.leadership_changed(leader).await;
        if rx.changed().await.is_err() {
            return;
        }
    }
}

/// Watches the managed Controls (those matching `--control-selector`) and
/// hands each event to [`controls::ControlWatch::apply`].
async fn watch_controls(client: Client, core: Arc<Core>) {
    let api: Api<DeserializeGuard<Control>> = Api::all(client);
    let mut cfg = watcher::Config::default();
    if let Some(sel) = &core.config.control_selector {
        cfg = cfg.labels(sel);
    }
    let mut stream = watcher(api, cfg).boxed();
    let mut state = controls::ControlWatch::default();
    let mut backoff = cache::Backoff::new();
    loop {
        let on_error = |e: watcher::Error| async move {
            warn!(error = %e, "Control watch error; retrying with backoff");
        };
        let Some(event) = cache::next_event(&mut stream, &mut backoff, on_error).await else {
            return;
        };
        core.metrics.watch_event("Control");
        state.apply(&core, event).await;
    }
}
