//! The reconcile loop: evaluates dirty Controls, writes status only when its
//! content changed, records Events on compliance transitions, updates metrics.
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Resource;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::events::{Event, EventType};
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::{CachedControl, FIELD_MANAGER, Shared};
use crate::api::conditions::{self, COMPLIANT, READY};
use crate::api::{Control, ControlStatus};
use crate::checks::kinds_for;
use crate::engine::{Evaluation, evaluate};

/// How long a reading of the API server's `/metrics` is reused.
pub const APISERVER_METRICS_TTL: Duration = Duration::from_secs(20);

/// Errors of one reconciliation, each with a bounded metric label.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The status patch failed.
    #[error("status patch failed: {0}")]
    StatusPatch(#[source] kube::Error),
    /// The Event could not be recorded.
    #[error("event failed: {0}")]
    Event(#[source] kube::Error),
}

impl ReconcileError {
    /// The `reason` label of `soc2_reconcile_errors_total`.
    pub fn metric_label(&self) -> &'static str {
        match self {
            ReconcileError::StatusPatch(_) => "StatusPatch",
            ReconcileError::Event(_) => "Event",
        }
    }
}

/// Evaluates dirty Controls until `shutdown`: wakes on a change (then waits
/// `debounce` to batch a burst) or on the periodic resync.
pub async fn run_loop(shared: Arc<Shared>, shutdown: CancellationToken) {
    let mut resync = tokio::time::interval(shared.config.resync);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    resync.tick().await;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = shared.wake.notified() => {}
            _ = resync.tick() => {
                debug!("periodic resync");
                shared.all_kinds_changed().await;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(shared.config.debounce) => {}
        }
        let batch = std::mem::take(&mut *shared.dirty.lock().expect("dirty lock"));
        for name in batch {
            if shutdown.is_cancelled() {
                return;
            }
            if let Err(e) = reconcile(&shared, &name).await {
                warn!(control = %name, error = %e, "reconcile failed; retrying");
                shared
                    .metrics
                    .reconcile_errors
                    .with_label_values(&[e.metric_label()])
                    .inc();
                let s = shared.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    s.mark(&name);
                });
            }
        }
        shared.update_ready().await;
    }
}

/// Evaluates one Control and publishes the result.
///
/// # Errors
/// [`ReconcileError`] when the status patch or the Event fails.
pub async fn reconcile(shared: &Arc<Shared>, name: &str) -> Result<(), ReconcileError> {
    let Some(entry) = shared.controls.read().await.get(name).cloned() else {
        return Ok(());
    };
    let control = match entry {
        CachedControl::Valid(c) => c,
        CachedControl::Invalid { metadata, error } => {
            return write_undecodable(shared, name, *metadata, &error).await;
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
            // Re-marked when the missing caches sync.
            debug!(control = name, "waiting for caches");
            return Ok(());
        }
    }
    if needs_apiserver_metrics(&control) && shared.config.read_apiserver_metrics {
        refresh_apiserver_metrics(shared).await;
    }
    let timer = shared.metrics.evaluation_duration.start_timer();
    let eval = {
        let snap = shared.snapshot.read().await;
        evaluate(&control, &snap, Timestamp::now())
    };
    timer.observe_duration();
    shared.metrics.observe(&control, &eval);

    let previous = match shared.written.lock().await.get(name) {
        Some(s) => Some(s.clone()),
        None => control.status.clone(),
    };
    let status = eval.to_status(&control, previous.as_ref());
    if previous.as_ref().is_some_and(|p| same_content(p, &status)) {
        return Ok(());
    }
    if !shared.is_leader() {
        return Ok(());
    }
    patch_status(shared, name, &status).await?;
    info!(control = name, verdict = ?eval.verdict, violations = eval.violations.len(), "status updated");
    shared
        .written
        .lock()
        .await
        .insert(name.to_owned(), status.clone());
    record_transition(shared, &control, previous.as_ref(), &status, &eval).await
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
/// once per [`APISERVER_METRICS_TTL`]. Failures leave the previous reading.
async fn refresh_apiserver_metrics(shared: &Shared) {
    let mut last = shared.apiserver_metrics_read.lock().await;
    if last.is_some_and(|t| t.elapsed() < APISERVER_METRICS_TTL) {
        return;
    }
    *last = Some(tokio::time::Instant::now());
    let req = match http::Request::get("/metrics").body(Vec::new()) {
        Ok(r) => r,
        Err(_) => return,
    };
    match shared.client.request_text(req).await {
        Ok(text) => {
            if let Err(e) = shared.snapshot.write().await.set_apiserver_metrics(&text) {
                warn!(error = %e, "cannot parse the API server's /metrics");
            }
        }
        Err(e) => {
            warn!(error = %e, "cannot read the API server's /metrics (encryption evidence falls back to pods and attestations)");
            shared
                .metrics
                .reconcile_errors
                .with_label_values(&["APIServerMetrics"])
                .inc();
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
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map_err(ReconcileError::StatusPatch)?;
    shared.metrics.status_writes.inc();
    Ok(())
}

/// Publishes an Event when the `Compliant` (or `Ready`) condition changed status.
async fn record_transition(
    shared: &Shared,
    control: &Control,
    previous: Option<&ControlStatus>,
    status: &ControlStatus,
    eval: &Evaluation,
) -> Result<(), ReconcileError> {
    let cond_status = |s: Option<&ControlStatus>, t: &str| {
        s.and_then(|s| conditions::find(&s.conditions, t))
            .map(|c| c.status.clone())
    };
    let (was, now) = (
        cond_status(previous, COMPLIANT),
        cond_status(Some(status), COMPLIANT),
    );
    let (was_ready, now_ready) = (
        cond_status(previous, READY),
        cond_status(Some(status), READY),
    );
    let event = if now_ready.as_deref() == Some("False") && was_ready != now_ready {
        Some((EventType::Warning, "InvalidSpec", eval.message.clone()))
    } else if was != now {
        match now.as_deref() {
            Some("True") => Some((EventType::Normal, "Compliant", eval.message.clone())),
            Some("False") => Some((EventType::Warning, "NonCompliant", eval.message.clone())),
            _ => None,
        }
    } else {
        None
    };
    let Some((type_, reason, note)) = event else {
        return Ok(());
    };
    if !shared.is_leader() {
        return Ok(());
    }
    shared
        .recorder
        .publish(
            &Event {
                type_,
                reason: reason.into(),
                note: Some(truncate(&note, 1000)),
                action: "Evaluate".into(),
                secondary: None,
            },
            &control.object_ref(&()),
        )
        .await
        .map_err(ReconcileError::Event)
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max - 3;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

/// A Control that did not deserialize (for example stored under an older
/// schema): `Ready=False`, reason `InvalidSpec`, with the decoder's message,
/// written once per generation.
async fn write_undecodable(
    shared: &Arc<Shared>,
    name: &str,
    metadata: ObjectMeta,
    error: &str,
) -> Result<(), ReconcileError> {
    let now = Time(Timestamp::now());
    let message = format!("spec cannot be read: {error}");
    let previous = shared.written.lock().await.get(name).cloned();
    if previous.as_ref().is_some_and(|p| {
        p.observed_generation == metadata.generation
            && conditions::find(&p.conditions, READY).is_some_and(|c| c.message == message)
    }) {
        return Ok(());
    }
    let prev_conditions = previous.map(|p| p.conditions).unwrap_or_default();
    let status = ControlStatus {
        observed_generation: metadata.generation,
        conditions: vec![
            conditions::next_condition(
                &prev_conditions,
                READY,
                "False",
                "InvalidSpec",
                &message,
                metadata.generation,
                now.clone(),
            ),
            conditions::next_condition(
                &prev_conditions,
                COMPLIANT,
                "Unknown",
                "InvalidSpec",
                &message,
                metadata.generation,
                now,
            ),
        ],
        ..Default::default()
    };
    shared.metrics.forget(name);
    if !shared.is_leader() {
        return Ok(());
    }
    patch_status(shared, name, &status).await?;
    warn!(control = name, %message, "Control cannot be read");
    shared.written.lock().await.insert(name.to_owned(), status);
    Ok(())
}
