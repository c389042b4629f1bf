//! API server audit logging — TSC CC7.2 (monitor system components for
//! anomalies): who did what through the API is recorded.
//!
//! Rule (Kubernetes "Auditing"): every kube-apiserver mirror pod in
//! `kube-system` runs with `--audit-policy-file` and a backend,
//! `--audit-log-path` or `--audit-webhook-config-file` (Configured: a setting
//! that should produce audit records). The API server's own metrics prove it:
//! `apiserver_audit_event_total` counts the audit events it generated and sent
//! to its backends since it started, `apiserver_audit_error_total` those that
//! could not be written (k8s.io/apiserver `pkg/audit/metrics.go`). Events and
//! no errors are Verified; no events at all while the API server serves
//! requests means nothing is audited; errors mean records were lost. Managed
//! control planes have no such pods and may not serve those metrics: an
//! `attestation` is Attested evidence; with nothing at all the verdict is
//! Unknown.

use super::apiserver;
use crate::api::{AuditLoggingCheck, Verification};
use crate::resources::compact::Pod;
use crate::snapshot::{ApiServerMetrics, Kind, KindSet, name_of};
use crate::vocabulary::{
    Context, EvidenceKind, Family, InvalidSpec, Locality, Outcome, list_some, member, violation,
};

/// The audit policy flag.
pub const POLICY_FLAG: &str = "--audit-policy-file";
/// The log-file backend flag.
pub const LOG_FLAG: &str = "--audit-log-path";
/// The webhook backend flag.
pub const WEBHOOK_FLAG: &str = "--audit-webhook-config-file";

/// The claim of this family.
const AUDITED: &str = "API server activity is audited";

/// The API server's count of audit events it generated.
pub static AUDIT_EVENTS: EvidenceKind = EvidenceKind {
    claim: AUDITED,
    source: "APIServerMetrics",
    verification: Verification::Verified,
    proves: "the API server answering /metrics generated audit events since it started and none failed to be written (apiserver_audit_event_total, apiserver_audit_error_total)",
    does_not_prove: "which requests the policy records, where the records are kept or for how long, or anything about other API server replicas",
};

/// The audit flags on every kube-apiserver replica.
pub static AUDIT_FLAGS: EvidenceKind = EvidenceKind {
    claim: AUDITED,
    source: "AuditPolicyFlag",
    verification: Verification::Configured,
    proves: "every kube-apiserver replica visible in kube-system runs with an audit policy file and a log or webhook backend",
    does_not_prove: "that the policy records anything (a policy of level None records nothing), or that the backend keeps the records",
};

/// An attestation of audit logging.
pub static AUDIT_ATTESTED: EvidenceKind = EvidenceKind {
    claim: AUDITED,
    source: "Attestation",
    verification: Verification::Attested,
    proves: "a named person stated on a given date that the API server is audited (e.g. the managed control plane's audit logs)",
    does_not_prove: "anything the operator can see",
};

/// The `auditLogging` check family.
pub struct AuditLogging;

impl Family for AuditLogging {
    member!(audit_logging: AuditLoggingCheck = "auditLogging");

    fn evidence_kinds(_spec: &AuditLoggingCheck) -> Vec<&'static EvidenceKind> {
        vec![&AUDIT_EVENTS, &AUDIT_FLAGS, &AUDIT_ATTESTED]
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
        Ok(evaluate(spec, cx))
    }

    /// The audit event counters are read from the API server's `/metrics`.
    fn reads_apiserver_metrics(_spec: &AuditLoggingCheck) -> bool {
        true
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

/// Evaluates audit logging from the API server's flags, its metrics and an
/// attestation.
fn evaluate(spec: &AuditLoggingCheck, cx: &Context) -> Outcome {
    let mut out = Outcome::default();
    flags(cx, &mut out);
    if let Some(m) = cx.apiserver_metrics() {
        events(cx, m, &mut out);
    }
    if let Some(a) = &spec.attestation {
        out.evidence.push(AUDIT_ATTESTED.attested(a, ""));
    }
    if out.evidence.is_empty() && out.violations.is_empty() {
        out.undetermined.push(cx.control_violation(
            "NoAuditEvidence",
            "no kube-apiserver pod in kube-system to read audit flags from, no audit counters in the API server's metrics, and no attestation in spec.check.auditLogging: whether the API server is audited cannot be told".into(),
        ));
    }
    out
}

/// The flags of every kube-apiserver replica (Configured).
fn flags(cx: &Context, out: &mut Outcome) {
    let pods: Vec<&Pod> = apiserver::pods(cx).collect();
    out.resources_checked += pods.len() as u64;
    let bad: Vec<(&Pod, String)> = pods
        .iter()
        .filter_map(|p| missing(p).map(|m| (*p, m)))
        .collect();
    for (p, m) in &bad {
        out.violations.push(violation(
            *p,
            "AuditLoggingDisabled",
            format!("kube-apiserver runs with {m}"),
        ));
    }
    if !pods.is_empty() && bad.is_empty() {
        let names: Vec<String> = pods
            .iter()
            .map(|p| format!("kube-system/{}", name_of(*p)))
            .collect();
        out.evidence.push(AUDIT_FLAGS.evidence(format!(
            "{} run kube-apiserver with {POLICY_FLAG} and an audit backend",
            list_some(&names, 5)
        )));
    }
}

/// The API server's audit counters (Verified when events were written and
/// none was lost).
fn events(cx: &Context, m: &ApiServerMetrics, out: &mut Outcome) {
    match m.audit_events {
        Some(n) if n > 0.0 && m.audit_errors == 0.0 => {
            out.evidence.push(AUDIT_EVENTS.evidence(format!(
                "the API server generated {n} audit events since it started, none failed (apiserver_audit_event_total, apiserver_audit_error_total)"
            )))
        }
        Some(n) if n > 0.0 => out.violations.push(cx.control_violation(
            "AuditEventsLost",
            format!(
                "apiserver_audit_error_total is {}: audit events could not be written to a backend",
                m.audit_errors
            ),
        )),
        Some(_) => out.violations.push(cx.control_violation(
            "AuditLoggingDisabled",
            "apiserver_audit_event_total is 0 on an API server that answers requests: it audits nothing".into(),
        )),
        None => {}
    }
}
