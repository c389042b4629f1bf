//! The API server's own evidence of encryption at rest: samples of
//! `apiserver_storage_transformation_operations_total` from its `/metrics`.
use super::SnapshotError;

/// One sample of the API server metric
/// `apiserver_storage_transformation_operations_total`.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageTransformation {
    /// `to_storage` (encrypting writes) or `from_storage` (decrypting reads).
    pub transformation_type: String,
    /// The envelope prefix, e.g. `k8s:enc:aescbc:v1:key1:`; empty means identity.
    pub transformer_prefix: String,
    /// The `status` label (`OK` on success).
    pub status: String,
    /// Counter value.
    pub count: f64,
}

/// Extracts `apiserver_storage_transformation_operations_total` samples from
/// Prometheus text exposition format.
///
/// # Errors
/// [`SnapshotError::Metrics`] when the text cannot be parsed.
pub fn parse_storage_transformations(
    text: &str,
) -> Result<Vec<StorageTransformation>, SnapshotError> {
    let lines = text.lines().map(|l| Ok(l.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines)
        .map_err(|e| SnapshotError::Metrics(e.to_string()))?;
    Ok(scrape
        .samples
        .into_iter()
        .filter(|s| s.metric == "apiserver_storage_transformation_operations_total")
        .map(|s| {
            let count = match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            };
            let label = |k: &str| s.labels.get(k).unwrap_or_default().to_owned();
            StorageTransformation {
                transformation_type: label("transformation_type"),
                transformer_prefix: label("transformer_prefix"),
                status: label("status"),
                count,
            }
        })
        .collect())
}
