//! What the controller asks of the cluster besides its watch streams: start a
//! kind's watch, patch a Control's status, create an Event, read the API
//! server's `/metrics`. [`KubeCluster`] does it with a kube client; the
//! controller's decision tests use a fake that records the requests.
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, Resource};
use serde_json::json;

use super::{Core, FIELD_MANAGER};
use crate::api::{Control, ControlStatus};
use crate::snapshot::{Kind, KindVisitor, Stored};

/// Deadline of every request the reconcile loop makes (status patch, Event,
/// `/metrics`): one hung request must not stall every Control or shutdown.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Errors of one reconciliation, each with a bounded metric label.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    /// The status patch failed.
    #[error("status patch failed: {0}")]
    StatusPatch(String),
    /// The Event could not be recorded.
    #[error("event failed: {0}")]
    Event(String),
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

/// A request to the API server, answered or failed.
pub type Request<'a> = BoxFuture<'a, Result<(), ReconcileError>>;

/// The cluster as the controller uses it.
pub trait Cluster: Send + Sync + 'static {
    /// Starts the watch of `kind`, feeding `core`'s caches
    /// ([`super::cache::Caches::apply`]) until the task is aborted.
    fn start_watch(&self, kind: Kind, core: Arc<Core>) -> tokio::task::JoinHandle<()>;

    /// Writes Control `name`'s status by server-side apply (field manager
    /// [`FIELD_MANAGER`], forced).
    fn patch_status<'a>(&'a self, name: &'a str, status: &'a ControlStatus) -> Request<'a>;

    /// Creates `event` in its namespace.
    fn create_event<'a>(&'a self, event: &'a Event) -> Request<'a>;

    /// The API server's `/metrics` text (Prometheus exposition format), or
    /// why it could not be read.
    fn read_apiserver_metrics(&self) -> BoxFuture<'_, Result<String, String>>;
}

/// The real cluster, through a kube client; every request is bounded by
/// [`REQUEST_TIMEOUT`].
pub struct KubeCluster {
    client: Client,
}

impl KubeCluster {
    /// The cluster of `client`.
    pub fn new(client: Client) -> Self {
        KubeCluster { client }
    }
}

struct Spawn {
    client: Client,
    core: Arc<Core>,
}

impl KindVisitor for Spawn {
    type Output = tokio::task::JoinHandle<()>;
    fn visit<K: Stored>(self) -> Self::Output {
        tokio::spawn(super::cache::watch_kind::<K>(self.client, self.core))
    }
}

impl Cluster for KubeCluster {
    fn start_watch(&self, kind: Kind, core: Arc<Core>) -> tokio::task::JoinHandle<()> {
        kind.visit(Spawn {
            client: self.client.clone(),
            core,
        })
    }

    fn patch_status<'a>(&'a self, name: &'a str, status: &'a ControlStatus) -> Request<'a> {
        Box::pin(async move {
            let api: Api<Control> = Api::all(self.client.clone());
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
            .map_err(|e| ReconcileError::StatusPatch(e.to_string()))?;
            Ok(())
        })
    }

    fn create_event<'a>(&'a self, event: &'a Event) -> Request<'a> {
        Box::pin(async move {
            let namespace = event.metadata.namespace.as_deref().unwrap_or("default");
            let api: Api<Event> = Api::namespaced(self.client.clone(), namespace);
            tokio::time::timeout(REQUEST_TIMEOUT, api.create(&PostParams::default(), event))
                .await
                .map_err(|_| ReconcileError::Timeout("event"))?
                .map_err(|e| ReconcileError::Event(e.to_string()))?;
            Ok(())
        })
    }

    fn read_apiserver_metrics(&self) -> BoxFuture<'_, Result<String, String>> {
        Box::pin(async move {
            let req = http::Request::get("/metrics")
                .body(Vec::new())
                .map_err(|e| e.to_string())?;
            match tokio::time::timeout(REQUEST_TIMEOUT, self.client.request_text(req)).await {
                Ok(Ok(text)) => Ok(text),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("no answer within 10 s".to_owned()),
            }
        })
    }
}
