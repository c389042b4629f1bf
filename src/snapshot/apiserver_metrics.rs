//! What the API server says about itself on `/metrics`, as far as the checks
//! read it: storage transformations (encryption at rest) and audit events.
use super::SnapshotError;

/// One sample of the API server metric
/// `apiserver_storage_transformation_operations_total` (k8s.io/apiserver
/// `pkg/storage/value/metrics.go`): counted per resource since the API server
/// started, `to_storage` with the prefix of the provider that wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageTransformation {
    /// The group-resource, e.g. `secrets`; empty from API servers older than
    /// the `resource` label.
    pub resource: String,
    /// `to_storage` (encrypting writes) or `from_storage` (decrypting reads).
    pub transformation_type: String,
    /// The envelope prefix, e.g. `k8s:enc:aescbc:v1:key1:`; empty means identity.
    pub transformer_prefix: String,
    /// The `status` label (`OK` on success).
    pub status: String,
    /// Counter value.
    pub count: f64,
}

/// The API server's own metrics the checks read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ApiServerMetrics {
    /// Samples of `apiserver_storage_transformation_operations_total`.
    pub storage_transformations: Vec<StorageTransformation>,
    /// `apiserver_audit_event_total`: audit events generated since the API
    /// server started; `None` when the metric is absent.
    pub audit_events: Option<f64>,
    /// The sum of `apiserver_audit_error_total` over its plugins: audit
    /// events that could not be written.
    pub audit_errors: f64,
    /// Secrets the API server created since it started:
    /// `apiserver_request_total{resource="secrets", subresource="",
    /// verb="POST"|"APPLY", code="201", dry_run=""}` — each such request wrote
    /// a Secret to storage through the transformer that applies to Secrets.
    pub secrets_created: f64,
}

/// A storage transformation as a check tells it apart: `(resource,
/// transformation_type, transformer_prefix, status)`.
pub type TransformationKey = (String, String, String, String);

impl ApiServerMetrics {
    /// What a check concludes from these metrics, for comparing two readings:
    /// which transformations happened (not how often) and whether audit
    /// events and errors were seen.
    pub fn fingerprint(&self) -> (Vec<TransformationKey>, [bool; 3]) {
        let mut seen: Vec<_> = self
            .storage_transformations
            .iter()
            .filter(|t| t.count > 0.0)
            .map(|t| {
                (
                    t.resource.clone(),
                    t.transformation_type.clone(),
                    t.transformer_prefix.clone(),
                    t.status.clone(),
                )
            })
            .collect();
        seen.sort();
        seen.dedup();
        (
            seen,
            [
                self.audit_events.is_some_and(|n| n > 0.0),
                self.audit_errors > 0.0,
                self.secrets_created > 0.0,
            ],
        )
    }
}

/// Extracts what the checks read from the API server's `/metrics` text
/// (Prometheus exposition format).
///
/// # Errors
/// [`SnapshotError::Metrics`] when the text cannot be parsed.
pub fn parse_apiserver_metrics(text: &str) -> Result<ApiServerMetrics, SnapshotError> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines)
        .map_err(|e| SnapshotError::Metrics(e.to_string()))?;
    let mut out = ApiServerMetrics::default();
    for s in scrape.samples {
        let value = match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => 0.0,
        };
        let label = |k: &str| s.labels.get(k).unwrap_or_default().to_owned();
        match s.metric.as_str() {
            "apiserver_storage_transformation_operations_total" => {
                out.storage_transformations.push(StorageTransformation {
                    resource: label("resource"),
                    transformation_type: label("transformation_type"),
                    transformer_prefix: label("transformer_prefix"),
                    status: label("status"),
                    count: value,
                });
            }
            "apiserver_audit_event_total" => {
                *out.audit_events.get_or_insert(0.0) += value;
            }
            "apiserver_audit_error_total" => out.audit_errors += value,
            "apiserver_request_total"
                if label("resource") == "secrets"
                    && label("group").is_empty()
                    && label("subresource").is_empty()
                    && label("dry_run").is_empty()
                    && label("code") == "201"
                    && matches!(label("verb").as_str(), "POST" | "APPLY") =>
            {
                out.secrets_created += value;
            }
            _ => {}
        }
    }
    Ok(out)
}
