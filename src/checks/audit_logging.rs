//! API server audit logging — TSC CC7.2 (monitor system components for
//! anomalies): who did what through the API is recorded.
//!
//! Rule (Kubernetes "Auditing"): every kube-apiserver mirror pod in
//! `kube-system` runs with `--audit-policy-file` and a backend,
//! `--audit-log-path` or `--audit-webhook-config-file` (Verified). Managed
//! control planes have no such pods: `attestation` makes the control compliant
//! as Attested.
use k8s_openapi::api::core::v1::Pod;

use super::apiserver;
use crate::api::{AuditLoggingCheck, Evidence, Verification};
use crate::snapshot::{Kind, KindSet, name_of};
use crate::vocabulary::{
    Context, Family, InvalidSpec, Locality, Outcome, list_some, member, violation,
};

/// The audit policy flag.
pub const POLICY_FLAG: &str = "--audit-policy-file";
/// The log-file backend flag.
pub const LOG_FLAG: &str = "--audit-log-path";
/// The webhook backend flag.
pub const WEBHOOK_FLAG: &str = "--audit-webhook-config-file";

/// The `auditLogging` check family.
pub struct AuditLogging;

impl Family for AuditLogging {
    member!(audit_logging: AuditLoggingCheck = "auditLogging");

    fn evidence(_spec: &AuditLoggingCheck) -> &'static str {
        "kube-apiserver audit flags (or attestation)"
    }

    /// Kinds read: Pod (kube-system).
    fn kinds(_spec: &AuditLoggingCheck) -> KindSet {
        KindSet::from([Kind::Pod])
    }

    /// How far a change reaches: everything (a full evaluation reads only
    /// the kube-apiserver pods, so nothing is gained by less).
    fn locality(_spec: &AuditLoggingCheck, _kind: Kind) -> Locality {
        Locality::Global
    }

    fn evaluate(spec: &AuditLoggingCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
        evaluate(spec, cx)
    }
}

/// What is missing on a kube-apiserver pod, if anything.
fn missing(pod: &Pod) -> Option<String> {
    let policy = apiserver::flag_value(pod, POLICY_FLAG);
    let backend =
        apiserver::flag_value(pod, LOG_FLAG).or_else(|| apiserver::flag_value(pod, WEBHOOK_FLAG));
    match (policy, backend) {
        (Some(_), Some(_)) => None,
        (None, Some(_)) => Some(format!("no {POLICY_FLAG}: nothing is audited")),
        (Some(_), None) => Some(format!(
            "{POLICY_FLAG} but no backend ({LOG_FLAG} or {WEBHOOK_FLAG})"
        )),
        (None, None) => Some(format!("neither {POLICY_FLAG} nor an audit backend")),
    }
}

/// Evaluates audit logging from the API server's flags.
///
/// # Errors
/// None: every spec this family accepts is valid.
fn evaluate(spec: &AuditLoggingCheck, cx: &Context) -> Result<Outcome, InvalidSpec> {
    let mut out = Outcome::default();
    let pods: Vec<&Pod> = apiserver::pods(cx).collect();
    out.resources_checked += pods.len() as u64;
    let bad: Vec<(&Pod, String)> = pods
        .iter()
        .filter_map(|p| missing(p).map(|m| (*p, m)))
        .collect();
    if !pods.is_empty() && bad.is_empty() {
        let names: Vec<String> = pods
            .iter()
            .map(|p| format!("kube-system/{}", name_of(*p)))
            .collect();
        out.evidence.push(Evidence {
            source: "AuditPolicyFlag".into(),
            verification: Verification::Verified,
            message: format!(
                "{} run kube-apiserver with {POLICY_FLAG} and an audit backend",
                list_some(&names, 5)
            ),
        });
        return Ok(out);
    }
    if !bad.is_empty() {
        for (p, m) in bad {
            out.violations.push(violation(
                p,
                "AuditLoggingDisabled",
                format!("kube-apiserver runs with {m}"),
            ));
        }
        return Ok(out);
    }
    match &spec.attestation {
        Some(text) => out.evidence.push(Evidence {
            source: "Attestation".into(),
            verification: Verification::Attested,
            message: text.clone(),
        }),
        None => out.violations.push(cx.control_violation(
            "NoAuditEvidence",
            "no kube-apiserver pod in kube-system to read audit flags from, and no attestation in spec.check.auditLogging".into(),
        )),
    }
    Ok(out)
}
