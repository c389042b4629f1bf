//! The one builder of `Control` status: from an [`Evaluation`]
//! ([`Evaluation::to_status`]) or for a Control that cannot be evaluated
//! ([`not_ready_status`]). Conditions keep their `lastTransitionTime` while
//! their status is unchanged (`metav1.Condition` conventions); times are whole
//! seconds, as the API server stores them, so a status read back equals the
//! one written.
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

use super::{Evaluation, Verdict};
use crate::api::conditions::{self, COMPLIANT, READY};
use crate::api::{
    Control, ControlStatus, MAX_STATUS_VIOLATIONS, Mode, StatusVerdict, Summary, Violation,
};
use crate::vocabulary::{MAX_CONDITION_MESSAGE, truncate};

/// A condition's status, reason and message.
struct Cond<'a> {
    status: &'a str,
    reason: &'a str,
    message: &'a str,
}

/// `at` in whole seconds: `metav1.Time` has whole seconds on the wire, and a
/// status built with nanoseconds would never equal the one read back (the
/// operator would take its own write for someone else's).
fn whole_seconds(at: Timestamp) -> Time {
    Time(Timestamp::from_second(at.as_second()).unwrap_or(at))
}

/// The status with `ready` and `compliant` conditions for `generation`;
/// summary, violations and evidence are the caller's.
fn with_conditions(
    generation: Option<i64>,
    previous: Option<&ControlStatus>,
    at: &Time,
    ready: Cond,
    compliant: Cond,
) -> ControlStatus {
    let prev = previous.map(|s| s.conditions.as_slice()).unwrap_or(&[]);
    let condition = |type_: &str, c: &Cond| {
        conditions::next_condition(
            prev,
            type_,
            c.status,
            c.reason,
            c.message,
            generation,
            at.clone(),
        )
    };
    ControlStatus {
        observed_generation: generation,
        conditions: vec![condition(READY, &ready), condition(COMPLIANT, &compliant)],
        ..Default::default()
    }
}

/// `Ready=False` with `reason` and `message` (cut to a condition's limit),
/// `Compliant=Unknown` with the same: a Control whose spec cannot be read
/// (verdict `InvalidSpec`), or whose inputs cannot be watched (any other
/// reason; verdict `NotEvaluated`). No summary, violations or evidence.
pub fn not_ready_status(
    generation: Option<i64>,
    previous: Option<&ControlStatus>,
    reason: &str,
    message: &str,
    now: Timestamp,
) -> ControlStatus {
    let message = truncate(message, MAX_CONDITION_MESSAGE);
    let at = whole_seconds(now);
    let cond = |status| Cond {
        status,
        reason,
        message: &message,
    };
    ControlStatus {
        verdict: Some(if reason == "InvalidSpec" {
            StatusVerdict::InvalidSpec
        } else {
            StatusVerdict::NotEvaluated
        }),
        ..with_conditions(generation, previous, &at, cond("False"), cond("Unknown"))
    }
}

/// At most [`MAX_STATUS_VIOLATIONS`] of `findings` (the first of `total`),
/// and whether some were cut.
fn capped(findings: &[Violation], total: usize) -> (Vec<Violation>, bool) {
    (
        findings
            .iter()
            .take(MAX_STATUS_VIOLATIONS)
            .cloned()
            .collect(),
        total.max(findings.len()) > MAX_STATUS_VIOLATIONS,
    )
}

impl Evaluation {
    /// The `Control` status for this evaluation: conditions that keep their
    /// `lastTransitionTime` from `previous` while their status is unchanged,
    /// `observedGeneration`, summary, at most [`MAX_STATUS_VIOLATIONS`]
    /// violations with `violationsTruncated`, and evidence.
    pub fn to_status(&self, control: &Control, previous: Option<&ControlStatus>) -> ControlStatus {
        let at = whole_seconds(self.evaluated_at);
        let ready_message;
        let ready = match (&self.invalid, control.spec.mode) {
            (Some(invalid), _) => {
                ready_message = invalid.to_string();
                Cond {
                    status: "False",
                    reason: "InvalidSpec",
                    message: &ready_message,
                }
            }
            (None, Mode::Enforce) => {
                let mut m = "mode Enforce is not implemented yet: the control is evaluated and reported (Audit) but nothing is enforced".to_owned();
                if !self.notes.is_empty() {
                    m = format!("{m}; {}", self.notes.join("; "));
                }
                ready_message = m;
                Cond {
                    status: "True",
                    reason: "EnforceNotSupported",
                    message: &ready_message,
                }
            }
            (None, Mode::Audit) => {
                ready_message = truncate(&self.notes.join("; "), MAX_CONDITION_MESSAGE);
                Cond {
                    status: "True",
                    reason: "Evaluated",
                    message: &ready_message,
                }
            }
        };
        let compliant = match self.verdict {
            Verdict::Compliant => ("True", self.reason.as_str()),
            Verdict::NonCompliant => ("False", self.reason.as_str()),
            Verdict::Unknown => ("Unknown", self.reason.as_str()),
            Verdict::InvalidSpec => ("Unknown", "InvalidSpec"),
        };
        let compliant = Cond {
            status: compliant.0,
            reason: compliant.1,
            message: &self.message,
        };
        let generation = control.metadata.generation;
        let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
        let (violations, violations_truncated) = capped(&self.violations, self.violation_count);
        let (undetermined, undetermined_truncated) =
            capped(&self.undetermined, self.undetermined_count);
        ControlStatus {
            verdict: Some(match self.verdict {
                Verdict::Compliant => StatusVerdict::Compliant,
                Verdict::NonCompliant => StatusVerdict::NonCompliant,
                Verdict::Unknown => StatusVerdict::Unknown,
                Verdict::InvalidSpec => StatusVerdict::InvalidSpec,
            }),
            summary: Some(Summary {
                resources_checked: i64::try_from(self.resources_checked).unwrap_or(i64::MAX),
                violations: count(self.violation_count),
                undetermined: count(self.undetermined_count),
                last_evaluation_time: at.clone(),
            }),
            violations,
            violations_truncated,
            undetermined,
            undetermined_truncated,
            evidence: self.evidence.clone(),
            ..with_conditions(generation, previous, &at, ready, compliant)
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
