//! The reconcile loop: evaluates dirty Controls, writes status only when its
//! content changed, records Events on compliance transitions, updates metrics.
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta, Time};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{CachedControl, FIELD_MANAGER, Shared, Written};
use crate::api::conditions::{self, COMPLIANT, READY};
use crate::api::{Control, ControlStatus};
use crate::checks::kinds_for;
use crate::engine::{MAX_CONDITION_MESSAGE, truncate};
use crate::incremental::{self, Changes};

/// How long a reading of the API server's `/metrics` is reused.
pub const APISERVER_METRICS_TTL: Duration = Duration::from_secs(20);

/// Deadline of every request the reconcile loop makes (status patch, Event,
/// `/metrics`): one hung request must not stall every Control or shutdown.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Controls of one evaluation pass reconciled at the same time: their status
/// writes and Events overlap instead of queueing behind each other (a change
/// that concerns five Controls is published in about one request's time).
pub const PASS_CONCURRENCY: usize = 4;

/// Errors of one reconciliation, each with a bounded metric label.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The status patch failed.
    #[error("status patch failed: {0}")]
    StatusPatch(#[source] kube::Error),
    /// The Event could not be recorded.
    #[error("event failed: {0}")]
    Event(#[source] kube::Error),
    /// A request did not answer within [`REQUEST_TIMEOUT`].
    #[error("{0} timed out after 10 s")]
    Timeout(&'static str),
}

impl ReconcileError {
    /// The `reason` label of `soc2_reconcile_errors_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ReconcileError::StatusPatch(_) => "StatusPatch",
            ReconcileError::Event(_) => "Event",
            ReconcileError::Timeout(_) => "Timeout",
        }
    }
}

/// An Event to publish about a Control (one per compliance transition).
#[derive(Clone, Debug, PartialEq)]
pub struct PendingEvent {
    /// `Normal` or `Warning`.
    pub type_: &'static str,
    /// `Compliant`, `NonCompliant` or `InvalidSpec`.
    pub reason: &'static str,
    /// The condition message (first violations).
    pub note: String,
    /// The Control.
    pub regarding: ObjectReference,
}

/// Evaluates dirty Controls until `shutdown`: wakes on a change or on the
/// periodic resync. A pass starts at once unless the previous one started less
/// than `debounce` ago (then it waits for the rest of that interval), so an
/// isolated change is evaluated immediately and a burst of changes costs one
/// pass per interval; changes that arrive during a pass are collected for the
/// next one.
pub async fn run_loop(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut resync = tokio::time::interval(shared.config.resync);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    resync.tick().await;
    let mut last_pass: Option<tokio::time::Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = shared.wake.notified() => {}
            _ = resync.tick() => {
                debug!("periodic resync");
                shared.all_kinds_changed().await;
            }
        }
        if let Some(last) = last_pass {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep_until(last + shared.config.debounce) => {}
            }
        }
        last_pass = Some(tokio::time::Instant::now());
        let batch = std::mem::take(&mut *shared.dirty.lock().expect("dirty lock"));
        debug!(controls = batch.len(), "evaluation pass");
        let (shared_ref, shutdown_ref) = (&shared, &shutdown);
        futures::stream::iter(batch)
            .for_each_concurrent(PASS_CONCURRENCY, |(name, changes)| async move {
                if shutdown_ref.is_cancelled() {
                    return;
                }
                if let Err(e) = reconcile(shared_ref, &name, &changes).await {
                    warn!(control = %name, error = %e, "reconcile failed; retrying");
                    shared_ref
                        .metrics
                        .reconcile_errors
                        .with_label_values(&[e.metric_label()])
                        .inc();
                    let s = shared_ref.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_secs(2)).await;
                        s.mark(&name);
                    });
                }
            })
            .await;
        if shutdown.is_cancelled() {
            return;
        }
        shared.update_ready().await;
    }
}

/// Evaluates one Control — incrementally when `changes` allow it and a
/// retained result exists, else fully — and publishes the result.
///
/// # Errors
/// [`ReconcileError`] when the status patch or the Event fails.
pub async fn reconcile(
    shared: &Arc<Shared>,
    name: &str,
    changes: &Changes,
) -> Result<(), ReconcileError> {
    let Some(entry) = shared.controls.read().await.get(name).cloned() else {
        return Ok(());
    };
    let control = match entry {
        CachedControl::Valid(c) => c,
        CachedControl::Invalid { metadata, error } => {
            let message = format!("spec cannot be read: {error}");
            return write_not_ready(shared, name, &metadata, "InvalidSpec", &message).await;
        }
    };
    let kinds = kinds_for(&control.spec.check);
    for k in &kinds {
        super::cache::ensure_watch(shared, *k).await;
    }
    {
        let w = shared.watches.lock().await;
        let snap = shared.snapshot.read().await;
        if !w.ready_for(&kinds, &snap) {
            let errors = w.errors_for(&kinds);
            drop((w, snap));
            if errors.is_empty() {
                // Re-marked when the missing caches sync.
                debug!(control = name, "waiting for caches");
                return Ok(());
            }
            let message = format!("cannot watch what this check reads: {}", errors.join("; "));
            return write_not_ready(shared, name, &control.metadata, "WatchFailed", &message).await;
        }
    }
    let mut changes = changes.clone();
    if needs_apiserver_metrics(&control)
        && shared.config.read_apiserver_metrics
        && refresh_apiserver_metrics(shared).await
    {
        // New evidence for every Control that reads it: evaluate them fully
        // (an incremental update would keep the retained evidence).
        changes = Changes::full();
        shared.kind_changed(crate::snapshot::Kind::Pod).await;
        // This one is evaluated fully right now.
        shared.dirty.lock().expect("dirty lock").remove(name);
    }
    let timer = shared.metrics.evaluation_duration.start_timer();
    let eval = {
        let snap = shared.snapshot.read().await;
        let now = Timestamp::now();
        let previous = shared.retained.lock().expect("retained lock").remove(name);
        let updated = previous.and_then(|mut r| {
            incremental::update(&control, &snap, now, &mut r, &changes).map(|e| (e, r))
        });
        match updated {
            Some((e, r)) => (e, Some(r), "incremental"),
            None => {
                let (e, r) = incremental::evaluate_retained(&control, &snap, now);
                (e, r, "full")
            }
        }
    };
    let (eval, retained, mode) = eval;
    timer.observe_duration();
    shared.metrics.evaluations.with_label_values(&[mode]).inc();
    let (previous, pending) = {
        // Export and keep the result only while the Control still exists (a
        // Delete forgets its series and result under the write lock of
        // `controls`).
        let controls = shared.controls.read().await;
        let entry = controls.get(name);
        if !same_object(entry, &control.metadata) {
            return Ok(());
        }
        if let Some(r) = retained {
            shared
                .retained
                .lock()
                .expect("retained lock")
                .insert(name.to_owned(), r);
        }
        shared.metrics.observe(&control, &eval);
        // What we wrote last, else the newest status the watch has delivered
        // (it may have moved on since `control` was read). Read together under
        // the `controls` guard: the watch updates `controls` before it drops
        // a `written` record, so the two cannot disagree.
        match shared.written.lock().await.get(name) {
            Some(w) if w.uid == control.metadata.uid => {
                (Some(w.status.clone()), w.pending_event.clone())
            }
            _ => match entry {
                Some(CachedControl::Valid(c)) => (c.status.clone(), None),
                _ => (control.status.clone(), None),
            },
        }
    };
    let status = eval.to_status(&control, previous.as_ref());
    if previous.as_ref().is_some_and(|p| same_content(p, &status)) {
        if let Some(ev) = pending {
            publish_pending(shared, name, ev).await?;
        }
        return Ok(());
    }
    if !shared.is_leader() || shared.shutdown.is_cancelled() {
        return Ok(());
    }
    let event = transition_event(&control, previous.as_ref(), &status);
    write_status(shared, name, &control.metadata, &status, event.clone()).await?;
    info!(control = name, verdict = ?eval.verdict, violations = eval.violations.len(), "status updated");
    if let Some(ev) = event {
        publish_pending(shared, name, ev).await?;
    }
    Ok(())
}

fn same_object(entry: Option<&CachedControl>, meta: &ObjectMeta) -> bool {
    match entry {
        Some(CachedControl::Valid(c)) => c.metadata.uid == meta.uid,
        Some(CachedControl::Invalid { metadata, .. }) => metadata.uid == meta.uid,
        None => false,
    }
}

/// Patches the status and records it as written (with the transition Event
/// still to publish). Recorded before the patch is sent: the Control watch can
/// deliver this very write before the patch call returns, and must recognise
/// it as ours rather than as someone else's write to repair. A failed patch
/// puts the previous record back.
async fn write_status(
    shared: &Shared,
    name: &str,
    meta: &ObjectMeta,
    status: &ControlStatus,
    pending_event: Option<PendingEvent>,
) -> Result<(), ReconcileError> {
    let prior = {
        let controls = shared.controls.read().await;
        if !same_object(controls.get(name), meta) {
            // Deleted (or re-created) meanwhile: nothing to write.
            return Ok(());
        }
        let mut written = shared.written.lock().await;
        // Statuses written before this one whose echo may still be on its
        // way, and an Event of an earlier transition not yet published.
        let (earlier, pending_event) = match written.get(name) {
            Some(w) if w.uid == meta.uid => {
                let mut e = w.earlier.clone();
                e.push(w.status.clone());
                let drop = e.len().saturating_sub(super::MAX_EARLIER_WRITES);
                e.drain(..drop);
                (e, pending_event.or_else(|| w.pending_event.clone()))
            }
            _ => (Vec::new(), pending_event),
        };
        written.insert(
            name.to_owned(),
            Written {
                uid: meta.uid.clone(),
                status: status.clone(),
                pending_event,
                earlier,
            },
        )
    };
    if let Err(e) = patch_status(shared, name, status).await {
        let mut written = shared.written.lock().await;
        // Unless someone else's write replaced the record meanwhile.
        if written.get(name).is_some_and(|w| w.status == *status) {
            match prior {
                Some(p) => written.insert(name.to_owned(), p),
                None => written.remove(name),
            };
        }
        return Err(e);
    }
    Ok(())
}

/// Publishes the Event, clearing it from `written` once sent.
async fn publish_pending(
    shared: &Shared,
    name: &str,
    ev: PendingEvent,
) -> Result<(), ReconcileError> {
    if !shared.is_leader() || shared.shutdown.is_cancelled() {
        return Ok(());
    }
    publish_event(shared, &ev).await?;
    if let Some(w) = shared.written.lock().await.get_mut(name)
        && w.pending_event.as_ref() == Some(&ev)
    {
        w.pending_event = None;
    }
    Ok(())
}

/// Whether the encryption check needs the API server's storage metrics.
fn needs_apiserver_metrics(control: &Control) -> bool {
    control
        .spec
        .check
        .encryption
        .as_ref()
        .and_then(|e| e.at_rest.as_ref())
        .is_some_and(|a| a.secrets.is_some())
}

/// Reads `apiserver_storage_transformation_operations_total` from the API
/// server's `/metrics` (needs `get` on the nonResourceURL `/metrics`), at most
/// once per [`APISERVER_METRICS_TTL`]. Parsed outside the snapshot lock; a
/// failure keeps the previous reading. Returns whether what the encryption
/// check reads of it (which transformations have happened) changed.
async fn refresh_apiserver_metrics(shared: &Shared) -> bool {
    {
        let mut last = shared.apiserver_metrics_read.lock().await;
        if last.is_some_and(|t| t.elapsed() < APISERVER_METRICS_TTL) {
            return false;
        }
        *last = Some(tokio::time::Instant::now());
    }
    let Ok(req) = http::Request::get("/metrics").body(Vec::new()) else {
        return false;
    };
    let read = tokio::time::timeout(REQUEST_TIMEOUT, shared.client.request_text(req)).await;
    let text = match read {
        Ok(Ok(text)) => text,
        failed => {
            let why = match failed {
                Ok(Err(e)) => e.to_string(),
                _ => "no answer within 10 s".to_owned(),
            };
            warn!(error = %why, "cannot read the API server's /metrics (encryption evidence falls back to pods and attestations)");
            shared
                .metrics
                .reconcile_errors
                .with_label_values(&["APIServerMetrics"])
                .inc();
            return false;
        }
    };
    match crate::snapshot::parse_storage_transformations(&text) {
        Ok(samples) => {
            let seen = |s: &[crate::snapshot::StorageTransformation]| {
                s.iter()
                    .filter(|t| t.count > 0.0)
                    .map(|t| {
                        (
                            t.transformation_type.clone(),
                            t.transformer_prefix.clone(),
                            t.status.clone(),
                        )
                    })
                    .collect::<BTreeSet<_>>()
            };
            let mut snap = shared.snapshot.write().await;
            let changed = snap.storage_transformations.as_deref().map(seen) != Some(seen(&samples));
            snap.storage_transformations = Some(samples);
            changed
        }
        Err(e) => {
            warn!(error = %e, "cannot parse the API server's /metrics");
            false
        }
    }
}

/// Equal except for `summary.lastEvaluationTime`: a new evaluation with the same
/// outcome is not a reason to write (a no-op write churns resourceVersion).
pub fn same_content(a: &ControlStatus, b: &ControlStatus) -> bool {
    let mut b = b.clone();
    if let (Some(sa), Some(sb)) = (&a.summary, &mut b.summary) {
        sb.last_evaluation_time = sa.last_evaluation_time.clone();
    }
    *a == b
}

async fn patch_status(
    shared: &Shared,
    name: &str,
    status: &ControlStatus,
) -> Result<(), ReconcileError> {
    let api: Api<Control> = Api::all(shared.client.clone());
    let body = json!({
        "apiVersion": Control::api_version(&()),
        "kind": Control::kind(&()),
        "status": status,
    });
    let params = PatchParams::apply(FIELD_MANAGER).force();
    tokio::time::timeout(
        REQUEST_TIMEOUT,
        api.patch_status(name, &params, &Patch::Apply(&body)),
    )
    .await
    .map_err(|_| ReconcileError::Timeout("status patch"))?
    .map_err(ReconcileError::StatusPatch)?;
    shared.metrics.status_writes.inc();
    Ok(())
}

/// The Event for a change of the `Compliant` (or `Ready`) condition's status.
fn transition_event(
    control: &Control,
    previous: Option<&ControlStatus>,
    status: &ControlStatus,
) -> Option<PendingEvent> {
    let cond = |s: Option<&ControlStatus>, t: &str| {
        s.and_then(|s| conditions::find(&s.conditions, t))
            .map(|c| (c.status.clone(), c.message.clone()))
    };
    let (was, now) = (cond(previous, COMPLIANT), cond(Some(status), COMPLIANT));
    let (was_ready, now_ready) = (cond(previous, READY), cond(Some(status), READY));
    let status_of = |c: &Option<(String, String)>| c.as_ref().map(|(s, _)| s.clone());
    let (type_, reason, note) = match &now_ready {
        Some((s, m)) if s == "False" && status_of(&was_ready) != status_of(&now_ready) => {
            ("Warning", "InvalidSpec", m.clone())
        }
        _ if status_of(&was) != status_of(&now) => match &now {
            Some((s, m)) if s == "True" => ("Normal", "Compliant", m.clone()),
            Some((s, m)) if s == "False" => ("Warning", "NonCompliant", m.clone()),
            _ => return None,
        },
        _ => return None,
    };
    Some(PendingEvent {
        type_,
        reason,
        note,
        regarding: control.object_ref(&()),
    })
}

/// Creates one `events.k8s.io/v1` Event (one per transition: an aggregated
/// series would keep the first note).
async fn publish_event(shared: &Shared, ev: &PendingEvent) -> Result<(), ReconcileError> {
    let now = Timestamp::now();
    let name = format!(
        "{}.{:x}",
        ev.regarding.name.as_deref().unwrap_or("control"),
        now.as_nanosecond()
    );
    let event = Event {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(shared.config.events_namespace.clone()),
            ..Default::default()
        },
        event_time: Some(MicroTime(now)),
        action: Some("Evaluate".into()),
        reason: Some(ev.reason.into()),
        note: Some(truncate(&ev.note, 1000)),
        type_: Some(ev.type_.into()),
        regarding: Some(ev.regarding.clone()),
        reporting_controller: Some(format!("soc2-operator.dev/{FIELD_MANAGER}")),
        reporting_instance: Some(truncate(&shared.config.identity, 128)),
        ..Default::default()
    };
    let api: Api<Event> = Api::namespaced(shared.client.clone(), &shared.config.events_namespace);
    tokio::time::timeout(REQUEST_TIMEOUT, api.create(&PostParams::default(), &event))
        .await
        .map_err(|_| ReconcileError::Timeout("event"))?
        .map_err(ReconcileError::Event)?;
    Ok(())
}

/// `Ready=False` with `reason` and `message`, `Compliant=Unknown`: a Control
/// that cannot be read, or whose inputs cannot be watched. Written once per
/// generation and message.
async fn write_not_ready(
    shared: &Arc<Shared>,
    name: &str,
    metadata: &ObjectMeta,
    reason: &str,
    message: &str,
) -> Result<(), ReconcileError> {
    let message = truncate(message, MAX_CONDITION_MESSAGE);
    // Whole seconds, as the API server stores them (see `Evaluation::to_status`).
    let now = Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_default());
    let cached_status = match shared.controls.read().await.get(name) {
        Some(CachedControl::Valid(c)) => c.status.clone(),
        _ => None,
    };
    let previous = match shared.written.lock().await.get(name) {
        Some(w) if w.uid == metadata.uid => Some(w.status.clone()),
        _ => cached_status,
    };
    let prev_conditions = previous
        .as_ref()
        .map(|p| p.conditions.clone())
        .unwrap_or_default();
    let unchanged = previous.as_ref().is_some_and(|p| {
        p.observed_generation == metadata.generation
            && conditions::find(&p.conditions, READY)
                .is_some_and(|c| c.status == "False" && c.reason == reason && c.message == message)
    });
    shared.metrics.not_ready(name);
    if unchanged || !shared.is_leader() || shared.shutdown.is_cancelled() {
        return Ok(());
    }
    let status = ControlStatus {
        observed_generation: metadata.generation,
        conditions: vec![
            conditions::next_condition(
                &prev_conditions,
                READY,
                "False",
                reason,
                &message,
                metadata.generation,
                now.clone(),
            ),
            conditions::next_condition(
                &prev_conditions,
                COMPLIANT,
                "Unknown",
                reason,
                &message,
                metadata.generation,
                now,
            ),
        ],
        ..Default::default()
    };
    write_status(shared, name, metadata, &status, None).await?;
    warn!(control = name, reason, %message, "Control cannot be evaluated");
    Ok(())
}
