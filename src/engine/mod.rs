//! The check engine: `evaluate(control, snapshot, now) -> Evaluation`.
//!
//! Pure: no I/O, no clock (time is the `now` argument), deterministic output
//! (violations sorted by namespace, kind, name, reason). The operator, the
//! one-shot `check` command and offline manifest checks all call
//! [`evaluate`]; [`Evaluation::to_status`] turns the result into the
//! `Control` status. The engine finds the Control's scope ([`scope`]), hands
//! the one check family of `spec.check` a [`Context`] that holds only what the
//! family declared, then normalizes and concludes what the family found.
use std::collections::BTreeSet;

use jiff::Timestamp;

use crate::api::{Control, Evidence, Verification, Violation};
use crate::checks;
use crate::snapshot::Snapshot;
use crate::vocabulary::{
    Context, InvalidSpec, MAX_CONDITION_MESSAGE, MAX_VIOLATION_MESSAGE, Outcome, truncate,
};

pub mod scope;
mod status;

pub use scope::{NAMESPACE_NAME_LABEL, SYSTEM_NAMESPACES, namespace_in_scope, scope_namespaces};
pub use status::{not_ready_status, same_content};

/// The verdict of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No violation, nothing undetermined, and every claim rests on evidence
    /// at least as strong as the Control requires.
    Compliant,
    /// At least one violation, or a required provider is missing.
    NonCompliant,
    /// No violation was seen, but something the check needs cannot be seen
    /// ([`Evaluation::undetermined`]) or a claim rests on evidence weaker than
    /// the Control requires (reason `InsufficientEvidence`).
    Unknown,
    /// The spec cannot be evaluated; see [`Evaluation::invalid`].
    InvalidSpec,
}

impl Verdict {
    /// The verdict's name, as in `status.verdict` and every output.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Compliant => "Compliant",
            Verdict::NonCompliant => "NonCompliant",
            Verdict::Unknown => "Unknown",
            Verdict::InvalidSpec => "InvalidSpec",
        }
    }
}

/// What [`evaluate`] returns.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// Compliant, NonCompliant or InvalidSpec.
    pub verdict: Verdict,
    /// CamelCase reason for the `Compliant` condition.
    pub reason: String,
    /// Message for the `Compliant` condition.
    pub message: String,
    /// Objects (and namespaces) looked at.
    pub resources_checked: u64,
    /// The violations, sorted by namespace, kind, name, reason: every one
    /// from [`evaluate`]; from the operator's incremental updates
    /// (`incremental::update`) only the first
    /// [`MAX_STATUS_VIOLATIONS`](crate::api::MAX_STATUS_VIOLATIONS), which is
    /// all a status holds ([`Evaluation::violation_count`] is the true count).
    pub violations: Vec<Violation>,
    /// How many violations there are (at least `violations.len()`).
    pub violation_count: usize,
    /// What could not be determined, sorted and capped likewise.
    pub undetermined: Vec<Violation>,
    /// How many undetermined findings there are.
    pub undetermined_count: usize,
    /// Evidence, sorted.
    pub evidence: Vec<Evidence>,
    /// Informational notes (also in the `Ready` condition's message).
    pub notes: Vec<String>,
    /// The spec error when `verdict` is `InvalidSpec`.
    pub invalid: Option<InvalidSpec>,
    /// When the evaluation ran.
    pub evaluated_at: Timestamp,
}

impl Evaluation {
    /// Whether the control is compliant.
    pub fn is_compliant(&self) -> bool {
        self.verdict == Verdict::Compliant
    }
}

/// Evaluates `control` against `snapshot` at `now`. Never panics on any Control
/// or cluster object; spec errors the API server could not catch yield
/// [`Verdict::InvalidSpec`].
pub fn evaluate(control: &Control, snapshot: &Snapshot, now: Timestamp) -> Evaluation {
    match evaluate_outcome(control, snapshot, now) {
        Ok((mut outcome, _)) => {
            normalize(&mut outcome);
            conclude(outcome, now, control.spec.required_evidence())
        }
        Err(invalid) => invalid_evaluation(invalid, now),
    }
}

/// The evaluation of a Control whose spec cannot be evaluated.
pub(crate) fn invalid_evaluation(invalid: InvalidSpec, now: Timestamp) -> Evaluation {
    Evaluation {
        verdict: Verdict::InvalidSpec,
        reason: "InvalidSpec".into(),
        message: invalid.to_string(),
        resources_checked: 0,
        violations: Vec::new(),
        violation_count: 0,
        undetermined: Vec::new(),
        undetermined_count: 0,
        evidence: Vec::new(),
        notes: Vec::new(),
        invalid: Some(invalid),
        evaluated_at: now,
    }
}

/// The note of an evaluation whose scope holds no namespace.
pub(crate) const NO_NAMESPACE_IN_SCOPE: &str =
    "no namespace is in scope (spec.scope): only cluster-scoped objects were checked";

/// Evaluates the check over the Control's whole scope; the outcome is not
/// yet normalized. Also returns the scope.
///
/// # Errors
/// [`InvalidSpec`] from the scope or the check family.
pub(crate) fn evaluate_outcome(
    control: &Control,
    snapshot: &Snapshot,
    now: Timestamp,
) -> Result<(Outcome, BTreeSet<String>), InvalidSpec> {
    let namespaces = scope_namespaces(control, snapshot)?;
    let mut outcome = evaluate_in(control, snapshot, now, &namespaces)?;
    if namespaces.is_empty() {
        outcome.notes.push(NO_NAMESPACE_IN_SCOPE.into());
    }
    Ok((outcome, namespaces))
}

/// Runs the Control's check family over `namespaces` (all or part of its
/// scope), with a context that holds only what the family declared. A read
/// of anything else (a bug in the family) panics in debug builds and makes
/// the Control non-compliant, reason `InternalError`, in release builds.
///
/// # Errors
/// [`InvalidSpec`] when `spec.check` does not have exactly one member set, or
/// the family's own spec errors.
pub(crate) fn evaluate_in(
    control: &Control,
    snapshot: &Snapshot,
    now: Timestamp,
    namespaces: &BTreeSet<String>,
) -> Result<Outcome, InvalidSpec> {
    let check = &control.spec.check;
    let family = checks::family_of(check)?;
    let name = control.metadata.name.as_deref().unwrap_or("");
    let cx = Context::new(
        snapshot,
        checks::declared(family, check),
        now,
        namespaces,
        name,
    );
    let mut outcome = family.evaluate(check, &cx)?;
    if let Some(kind) = cx.undeclared_read() {
        outcome.blocking = Some((
            "InternalError".into(),
            format!(
                "internal error: the {} check read {kind}, which it does not declare, so the operator does not watch it; please report this",
                family.member()
            ),
        ));
    }
    Ok(outcome)
}

/// Cuts a violation's message to [`MAX_VIOLATION_MESSAGE`].
pub(crate) fn cut_message(v: &mut Violation) {
    if v.message.len() > MAX_VIOLATION_MESSAGE {
        v.message = truncate(&v.message, MAX_VIOLATION_MESSAGE);
    }
}

/// Cuts long violation messages, sorts and de-duplicates violations and
/// evidence (the order [`Evaluation`] promises).
pub(crate) fn normalize(outcome: &mut Outcome) {
    for list in [&mut outcome.violations, &mut outcome.undetermined] {
        list.iter_mut().for_each(cut_message);
        list.sort();
        list.dedup();
    }
    outcome.evidence.sort();
    outcome.evidence.dedup();
}

/// The verdict, reason and message of a normalized outcome, for a Control
/// that requires evidence at least as strong as `required` for each claim:
/// a blocking reason or a violation makes it NonCompliant; otherwise an
/// undetermined finding, or a claim whose strongest evidence is weaker than
/// `required`, makes it Unknown; otherwise it is Compliant.
pub(crate) fn conclude(outcome: Outcome, now: Timestamp, required: Verification) -> Evaluation {
    let counts = (outcome.violations.len(), outcome.undetermined.len());
    conclude_counted(outcome, counts, now, required)
}

/// [`conclude`] for an outcome whose violations and undetermined findings
/// may be only the first of `counts` (violations, undetermined) in order.
pub(crate) fn conclude_counted(
    outcome: Outcome,
    counts: (usize, usize),
    now: Timestamp,
    required: Verification,
) -> Evaluation {
    let (verdict, reason, message) = if let Some((reason, message)) = outcome.blocking.clone() {
        (Verdict::NonCompliant, reason, message)
    } else if !outcome.violations.is_empty() {
        (
            Verdict::NonCompliant,
            "ViolationsFound".to_owned(),
            findings_message("violation", &outcome.violations, counts.0),
        )
    } else if let Some(first) = outcome.undetermined.first() {
        (
            Verdict::Unknown,
            first.reason.clone(),
            findings_message("undetermined finding", &outcome.undetermined, counts.1),
        )
    } else if let Some(weak) = insufficient_evidence(&outcome.evidence, required) {
        (Verdict::Unknown, "InsufficientEvidence".to_owned(), weak)
    } else {
        (
            Verdict::Compliant,
            "Compliant".to_owned(),
            format!(
                "{} resources checked, no violations",
                outcome.resources_checked
            ),
        )
    };
    Evaluation {
        verdict,
        reason,
        message: truncate(&message, MAX_CONDITION_MESSAGE),
        resources_checked: outcome.resources_checked,
        violations: outcome.violations,
        violation_count: counts.0,
        undetermined: outcome.undetermined,
        undetermined_count: counts.1,
        evidence: outcome.evidence,
        notes: outcome.notes,
        invalid: None,
        evaluated_at: now,
    }
}

/// The claims whose strongest evidence is weaker than `required`, said in a
/// message; `None` when every claim is strong enough.
fn insufficient_evidence(evidence: &[Evidence], required: Verification) -> Option<String> {
    let mut best: std::collections::BTreeMap<&str, &Evidence> = std::collections::BTreeMap::new();
    for e in evidence {
        let b = best.entry(e.claim.as_str()).or_insert(e);
        if e.verification.rank() > b.verification.rank() {
            *b = e;
        }
    }
    let weak: Vec<String> = best
        .values()
        .filter(|e| !e.verification.satisfies(required))
        .map(|e| {
            format!(
                "\"{}\" rests on {:?} evidence at best ({})",
                e.claim, e.verification, e.source
            )
        })
        .collect();
    (!weak.is_empty()).then(|| {
        format!(
            "{}; this Control requires {required:?} evidence (spec.minimumEvidence; Critical Controls default to Verified, others to Configured)",
            weak.join("; ")
        )
    })
}

/// "N violations: the first three; and M more violations" (or another noun).
fn findings_message(noun: &str, findings: &[Violation], n: usize) -> String {
    let first: Vec<String> = findings.iter().take(3).map(describe).collect();
    let more = if n > 3 {
        format!("; and {} more {noun}s", n - 3)
    } else {
        String::new()
    };
    format!(
        "{n} {noun}{}: {}{more}",
        if n == 1 { "" } else { "s" },
        first.join("; ")
    )
}

/// `Kind namespace/name: message`, for condition messages and Events.
pub fn describe(v: &Violation) -> String {
    match &v.namespace {
        Some(ns) => format!("{} {ns}/{}: {}", v.kind, v.name, v.message),
        None => format!("{} {}: {}", v.kind, v.name, v.message),
    }
}

/// Whether the check in `check` is set at all (the CRD's CEL rule guarantees
/// exactly one at admission; a `null` member can still slip through).
pub fn check_is_set(check: &crate::api::Check) -> bool {
    checks::members_set(check) > 0
}
