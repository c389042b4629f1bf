//! The reconcile loop: evaluates queued Controls, writes status only when its
//! content changed, records Events on compliance transitions, updates
//! metrics. One Control's reconciliation ([`reconcile`]) is a short pipeline:
//! read it → are its inputs ready? → evaluate, incrementally when the changes
//! allow → publish the result (metrics, then status and Event when this
//! replica leads).
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use tracing::{debug, info, warn};

use super::Core;
use super::cache::Inputs;
use super::cluster::ReconcileError;
use super::controls::CachedControl;
use super::events::{PendingEvent, event_object, transition_event};
use crate::api::conditions::{self, READY};
use crate::api::{Control, ControlStatus};
use crate::checks::{kinds_for, reads_apiserver_metrics};
use crate::engine::{Evaluation, not_ready_status, same_content};
use crate::incremental::{self, Changes, Retained};
use crate::snapshot::parse_apiserver_metrics;

/// How long a reading of the API server's `/metrics` is reused.
pub const APISERVER_METRICS_TTL: Duration = Duration::from_secs(20);

/// Controls of one evaluation pass reconciled at the same time: their status
/// writes and Events overlap instead of queueing behind each other (a change
/// that concerns five Controls is published in about one request's time).
pub const PASS_CONCURRENCY: usize = 4;

/// How long after a failed reconciliation the Control is tried again.
pub const RETRY_AFTER: Duration = Duration::from_secs(2);

/// Evaluates queued Controls until shutdown: wakes on a change or on the
/// periodic resync. A pass starts at once unless the previous one started less
/// than `debounce` ago (then it waits for the rest of that interval), so an
/// isolated change is evaluated immediately and a burst of changes costs one
/// pass per interval; changes that arrive during a pass are collected for the
/// next one.
pub async fn run_loop(core: Arc<Core>) {
    let mut resync = tokio::time::interval(core.config.resync);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    resync.tick().await;
    let mut last_pass: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = core.shutdown.cancelled() => return,
            _ = core.queue.woken() => {}
            _ = resync.tick() => {
                debug!("periodic resync");
                core.controls.enqueue_all(&core).await;
            }
        }
        if let Some(last) = last_pass {
            tokio::select! {
                _ = core.shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(last + core.config.debounce) => {}
            }
        }
        last_pass = Some(tokio::time::Instant::now());
        pass(&core).await;
        if core.shutdown.is_cancelled() {
            return;
        }
    }
}

/// One evaluation pass: every queued Control, [`PASS_CONCURRENCY`] at a time,
/// those that can be brought up to date incrementally first (see
/// [`pass_order`]). A Control whose reconciliation fails is counted and
/// queued again after [`RETRY_AFTER`].
pub async fn pass(core: &Arc<Core>) {
    let batch = pass_order(core.queue.take());
    debug!(controls = batch.len(), "evaluation pass");
    futures::stream::iter(batch)
        .for_each_concurrent(PASS_CONCURRENCY, |(name, changes)| async move {
            if core.shutdown.is_cancelled() {
                return;
            }
            if let Err(e) = reconcile(core, &name, &changes).await {
                warn!(control = %name, error = %e, "reconcile failed; retrying");
                core.metrics.reconcile_error(e.metric_label());
                let core = core.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(RETRY_AFTER).await;
                    core.queue.enqueue(&name, Changes::full());
                });
            }
        })
        .await;
    if !core.shutdown.is_cancelled() {
        core.update_ready().await;
    }
}

/// The order a pass evaluates its Controls in: those whose changes allow an
/// incremental update (microseconds) before those that need a full
/// evaluation (tens of milliseconds at 10,000 namespaces), each group by
/// name. Evaluation runs on the pass's task until a Control's first status
/// write, so a full evaluation queued first would delay every cheap one
/// behind it (seen in the scale benchmark: a new ClusterRoleBinding made
/// `no-unexpected-cluster-admins` wait for the full evaluation of
/// `no-privilege-escalation-grants`, whose reach index spans every
/// namespace).
pub fn pass_order(batch: BTreeMap<String, Changes>) -> Vec<(String, Changes)> {
    let mut v: Vec<(String, Changes)> = batch.into_iter().collect();
    v.sort_by_key(|(_, c)| c.full);
    v
}

/// Evaluates one Control — incrementally when `changes` allow it and a
/// retained result exists, else fully — and publishes the result.
///
/// # Errors
/// [`ReconcileError`] when the status patch or the Event fails.
pub async fn reconcile(
    core: &Arc<Core>,
    name: &str,
    changes: &Changes,
) -> Result<(), ReconcileError> {
    let Some(entry) = core.controls.read().await.get(name).cloned() else {
        return Ok(());
    };
    let control = match entry {
        CachedControl::Valid(c) => c,
        CachedControl::Invalid { metadata, error } => {
            let message = format!("spec cannot be read: {error}");
            return write_not_ready(core, name, &metadata, "InvalidSpec", &message).await;
        }
    };
    match inputs_ready(core, &control).await {
        Inputs::Ready => {}
        Inputs::Waiting => {
            // Queued again when the missing caches sync.
            debug!(control = name, "waiting for caches");
            return Ok(());
        }
        Inputs::Failed(errors) => {
            let message = format!("cannot watch what this check reads: {}", errors.join("; "));
            return write_not_ready(core, name, &control.metadata, "WatchFailed", &message).await;
        }
    }
    let mut changes = changes.clone();
    if reads_apiserver_metrics(&control.spec.check)
        && core.config.read_apiserver_metrics
        && refresh_apiserver_metrics(core).await
    {
        // New evidence for every Control that reads it: evaluate them fully
        // (an incremental update would keep the retained evidence).
        changes = Changes::full();
        core.controls.enqueue_metrics_readers(core).await;
        // This one is evaluated fully right now.
        core.queue.dequeue(name);
    }
    let eval = evaluate(core, name, &control, &changes).await;
    publish(core, name, &control, eval).await
}

/// Starts the watches `control` needs and tells whether they are ready.
async fn inputs_ready(core: &Arc<Core>, control: &Control) -> Inputs {
    let kinds = kinds_for(&control.spec.check);
    for k in kinds {
        core.caches.ensure_watch(core, k).await;
    }
    core.caches.inputs(kinds).await
}

/// Evaluates `control` from its retained result when `changes` allow, else
/// fully; returns the evaluation and the result to retain.
async fn evaluate(
    core: &Core,
    name: &str,
    control: &Control,
    changes: &Changes,
) -> (Evaluation, Option<Retained>) {
    let timer = std::time::Instant::now();
    let previous = core.controls.read().await.retained().remove(name);
    let snap = core.caches.snapshot().await;
    let now = core.now();
    let updated = previous.and_then(|mut r| {
        incremental::update(control, &snap, now, &mut r, changes).map(|e| (e, r))
    });
    let (eval, retained, mode) = match updated {
        Some((e, r)) => (e, Some(r), "incremental"),
        None => {
            let (e, r) = incremental::evaluate_retained(control, &snap, now);
            (e, r, "full")
        }
    };
    drop(snap);
    core.metrics.evaluated(mode, timer.elapsed().as_secs_f64());
    (eval, retained)
}

/// Publishes an evaluation: keeps its result and exports its metrics while
/// the Control still exists; writes the status when its content changed and
/// this replica leads, with the transition Event; publishes an Event still
/// pending from an earlier write.
async fn publish(
    core: &Core,
    name: &str,
    control: &Control,
    (eval, retained): (Evaluation, Option<Retained>),
) -> Result<(), ReconcileError> {
    let (previous, pending) = {
        // Export and keep the result only while the Control still exists (a
        // Delete forgets its series and result under the write lock of the
        // table).
        let table = core.controls.read().await;
        let Some(entry) = table.get(name).filter(|e| e.is(&control.metadata)) else {
            return Ok(());
        };
        if let Some(r) = retained {
            table.retained().insert(name.to_owned(), r);
        }
        core.metrics.observe(control, &eval);
        // What we wrote last, else the newest status the watch has delivered
        // (it may have moved on since `control` was read). Read together under
        // the table's guard: the watch updates the table before it settles a
        // ledger record, so the two cannot disagree.
        let ledger = table.ledger();
        match ledger.last_written(name, control.metadata.uid.as_deref()) {
            Some((status, pending)) => (Some(status.clone()), pending.cloned()),
            None => match entry {
                CachedControl::Valid(c) => (c.status.clone(), None),
                CachedControl::Invalid { .. } => (control.status.clone(), None),
            },
        }
    };
    let status = eval.to_status(control, previous.as_ref());
    if previous.as_ref().is_some_and(|p| same_content(p, &status)) {
        if let Some(ev) = pending {
            publish_event(core, name, ev).await?;
        }
        return Ok(());
    }
    if !core.may_write() {
        return Ok(());
    }
    let event = transition_event(control, previous.as_ref(), &status);
    write_status(core, name, &control.metadata, &status, event.clone()).await?;
    info!(control = name, verdict = ?eval.verdict, violations = eval.violation_count, "status updated");
    if let Some(ev) = event {
        publish_event(core, name, ev).await?;
    }
    Ok(())
}

/// Patches the status and records it in the ledger (with the transition Event
/// still to publish). Recorded before the patch is sent: the Control watch can
/// deliver this very write before the patch call returns, and must recognise
/// it as ours rather than as someone else's write to repair. A failed patch
/// puts the previous record back.
async fn write_status(
    core: &Core,
    name: &str,
    meta: &ObjectMeta,
    status: &ControlStatus,
    event: Option<PendingEvent>,
) -> Result<(), ReconcileError> {
    let undo = {
        let table = core.controls.read().await;
        if !table.holds(name, meta) {
            // Deleted (or re-created) meanwhile: nothing to write.
            return Ok(());
        }
        table
            .ledger()
            .record(name, meta.uid.as_deref(), status, event)
    };
    if let Err(e) = core.cluster.patch_status(name, status).await {
        core.controls.read().await.ledger().undo(undo);
        return Err(e);
    }
    core.metrics.status_written();
    Ok(())
}

/// Publishes the Event when this replica leads, and clears it from the ledger
/// once sent.
async fn publish_event(core: &Core, name: &str, ev: PendingEvent) -> Result<(), ReconcileError> {
    if !core.may_write() {
        return Ok(());
    }
    let event = event_object(
        &ev,
        core.now(),
        &core.config.events_namespace,
        &core.config.identity,
    );
    core.cluster.create_event(&event).await?;
    core.controls
        .read()
        .await
        .ledger()
        .event_published(name, &ev);
    Ok(())
}

/// `Ready=False` with `reason` and `message`, `Compliant=Unknown`: a Control
/// that cannot be read, or whose inputs cannot be watched. Written once per
/// generation and message.
async fn write_not_ready(
    core: &Core,
    name: &str,
    metadata: &ObjectMeta,
    reason: &str,
    message: &str,
) -> Result<(), ReconcileError> {
    let previous = {
        let table = core.controls.read().await;
        let cached = match table.get(name) {
            Some(CachedControl::Valid(c)) => c.status.clone(),
            _ => None,
        };
        let ledger = table.ledger();
        match ledger.last_written(name, metadata.uid.as_deref()) {
            Some((s, _)) => Some(s.clone()),
            None => cached,
        }
    };
    let status = not_ready_status(
        metadata.generation,
        previous.as_ref(),
        reason,
        message,
        core.now(),
    );
    let ready_message = conditions::find(&status.conditions, READY).map(|c| &c.message);
    let unchanged = previous.as_ref().is_some_and(|p| {
        p.observed_generation == metadata.generation
            && conditions::find(&p.conditions, READY).is_some_and(|c| {
                c.status == "False" && c.reason == reason && Some(&c.message) == ready_message
            })
    });
    core.metrics.not_ready(name);
    if unchanged || !core.may_write() {
        return Ok(());
    }
    write_status(core, name, metadata, &status, None).await?;
    let message = ready_message.map_or(message, String::as_str);
    warn!(control = name, reason, %message, "Control cannot be evaluated");
    Ok(())
}

/// Reads what checks read of the API server's `/metrics` (storage
/// transformations, audit events; needs `get` on the nonResourceURL
/// `/metrics`), at most once per [`APISERVER_METRICS_TTL`]. Parsed outside the
/// snapshot lock; a failure keeps the previous reading. Returns whether what
/// the checks conclude from it changed
/// ([`crate::snapshot::ApiServerMetrics::fingerprint`]).
async fn refresh_apiserver_metrics(core: &Core) -> bool {
    {
        let mut last = core
            .apiserver_metrics_read
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if last.is_some_and(|t| t.elapsed() < APISERVER_METRICS_TTL) {
            return false;
        }
        *last = Some(tokio::time::Instant::now());
    }
    let text = match core.cluster.read_apiserver_metrics().await {
        Ok(text) => text,
        Err(why) => {
            warn!(error = %why, "cannot read the API server's /metrics (encryption evidence falls back to pods and attestations)");
            core.metrics.reconcile_error("APIServerMetrics");
            return false;
        }
    };
    let reading = match parse_apiserver_metrics(&text) {
        Ok(reading) => reading,
        Err(e) => {
            warn!(error = %e, "cannot parse the API server's /metrics");
            return false;
        }
    };
    let mut snap = core.caches.snapshot_mut().await;
    let changed = snap.apiserver_metrics().map(|m| m.fingerprint()) != Some(reading.fingerprint());
    snap.set_apiserver_metrics(Some(reading));
    changed
}
