//! The check engine: `evaluate(control, snapshot, now) -> Evaluation`.
//!
//! Pure: no I/O, no clock (time is the `now` argument), deterministic output
//! (violations sorted by namespace, kind, name, reason). The operator, the
//! one-shot `check` command and offline manifest checks all call
//! [`evaluate`]; [`Evaluation::to_status`] turns the result into the
//! `Control` status.
use std::collections::BTreeSet;

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::core::{Selector, SelectorExt};

use crate::api::conditions::{self, COMPLIANT, READY};
use crate::api::{
    Check, Control, ControlStatus, Evidence, MAX_STATUS_VIOLATIONS, Mode, Summary, Violation,
};
use crate::checks;
use crate::snapshot::{Snapshot, labels_of, name_of};

/// Namespaces out of scope unless a Control's selector names them explicitly.
pub const SYSTEM_NAMESPACES: [&str; 3] = ["kube-system", "kube-public", "kube-node-lease"];

/// The well-known label holding a namespace's name (set by the API server).
pub const NAMESPACE_NAME_LABEL: &str = "kubernetes.io/metadata.name";

/// A spec error only the engine can see, naming the field (JSON path from the
/// object root, e.g. `spec.check.backup.maxAge`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidSpec {
    /// The offending field, e.g. `spec.scope.namespaceSelector`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl InvalidSpec {
    /// An error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        InvalidSpec {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The verdict of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No violation.
    Compliant,
    /// At least one violation, or a required provider is missing.
    NonCompliant,
    /// The spec cannot be evaluated; see [`Evaluation::invalid`].
    InvalidSpec,
}

/// The result of a check family: what it looked at and what it found.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    /// Objects (and namespaces) looked at.
    pub resources_checked: u64,
    /// Every violation (unsorted; [`evaluate`] sorts them).
    pub violations: Vec<Violation>,
    /// Evidence behind the verdict.
    pub evidence: Vec<Evidence>,
    /// Informational notes, e.g. "Gateway API not installed: Gateways not checked".
    pub notes: Vec<String>,
    /// A reason that makes the control non-compliant on its own, with its
    /// message, e.g. (`BackupProviderNotInstalled`, "…").
    pub blocking: Option<(String, String)>,
    /// What [`Context::each_namespace`] attributed to each in-scope namespace:
    /// the resources checked and the violations found while looking at it.
    /// Everything else is the cluster-wide part. Incremental evaluation
    /// ([`crate::incremental`]) replaces one namespace's parts when only that
    /// namespace changed.
    pub namespace_parts: Vec<NamespacePart>,
}

/// What one call of [`Context::each_namespace`]'s closure added for one
/// namespace.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NamespacePart {
    /// The namespace.
    pub namespace: String,
    /// Added to [`Outcome::resources_checked`].
    pub checked: u64,
    /// Indices of the violations it added to [`Outcome::violations`] (before
    /// [`evaluate`] sorts them).
    pub violations: std::ops::Range<usize>,
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
    /// Every violation, sorted by namespace, kind, name, reason.
    pub violations: Vec<Violation>,
    /// Evidence, sorted.
    pub evidence: Vec<Evidence>,
    /// Informational notes (also in the `Ready` condition's message).
    pub notes: Vec<String>,
    /// The spec error when `verdict` is `InvalidSpec`.
    pub invalid: Option<InvalidSpec>,
    /// When the evaluation ran.
    pub evaluated_at: Timestamp,
}

/// Evaluation context handed to every check family.
pub struct Context<'a> {
    /// The cluster state.
    pub snapshot: &'a Snapshot,
    /// The evaluation time.
    pub now: Timestamp,
    /// The namespaces in the Control's scope, sorted.
    pub namespaces: &'a BTreeSet<String>,
    /// The Control's name (for control-level violations).
    pub control_name: &'a str,
}

impl<'a> Context<'a> {
    /// Whether `namespace` is in scope.
    pub fn in_scope(&self, namespace: &str) -> bool {
        self.namespaces.contains(namespace)
    }

    /// Calls `f` for every in-scope namespace in order, and attributes what
    /// `f` adds to `out.resources_checked` and `out.violations` to that
    /// namespace ([`Outcome::namespace_parts`]). Families whose findings in a
    /// namespace depend only on that namespace's objects (and cluster-scoped
    /// ones) iterate namespaces through this, so that a change confined to one
    /// namespace can be re-evaluated for that namespace alone; what they find
    /// outside it is the cluster-wide part, whatever namespace it names.
    pub fn each_namespace(&self, out: &mut Outcome, mut f: impl FnMut(&'a str, &mut Outcome)) {
        for ns in self.namespaces {
            let (checked, found) = (out.resources_checked, out.violations.len());
            f(ns.as_str(), out);
            out.namespace_parts.push(NamespacePart {
                namespace: ns.clone(),
                checked: out.resources_checked.saturating_sub(checked),
                violations: found..out.violations.len(),
            });
        }
    }

    /// A violation of the Control itself (for requirements that no single
    /// object carries, e.g. "no restore tested in 30 days").
    pub fn control_violation(&self, reason: &str, message: String) -> Violation {
        Violation {
            namespace: None,
            kind: "Control".into(),
            name: self.control_name.to_owned(),
            api_version: "soc2-operator.dev/v1alpha1".into(),
            reason: reason.into(),
            message,
        }
    }
}

/// A violation of `obj` with `reason` (CamelCase) and `message`.
pub fn violation<K>(obj: &K, reason: &str, message: String) -> Violation
where
    K: kube::Resource<DynamicType = ()>,
{
    Violation {
        namespace: obj.meta().namespace.clone(),
        kind: K::kind(&()).into_owned(),
        name: name_of(obj).to_owned(),
        api_version: K::api_version(&()).into_owned(),
        reason: reason.into(),
        message,
    }
}

/// Parses a Go/Kubernetes duration string as Go's `time.ParseDuration` does
/// (`26h`, `90m`, `1h30m`, `1.5h`, `1.5h30m`, `300ms`; units `ns`, `us`/`µs`/`μs`,
/// `ms`, `s`, `m`, `h`) for `field`. Zero and negative durations are rejected.
///
/// # Errors
/// [`InvalidSpec`] naming `field` when the string is not a positive duration.
pub fn parse_duration(field: &str, value: &str) -> Result<SignedDuration, InvalidSpec> {
    match go_duration_nanos(value) {
        Some(n) if n > 0 => Ok(SignedDuration::from_nanos(n)),
        Some(_) => Err(InvalidSpec::new(
            field,
            format!("duration {value:?} must be greater than zero"),
        )),
        None => Err(InvalidSpec::new(
            field,
            format!("{value:?} is not a Go duration such as \"26h\", \"90m\" or \"1h30m\""),
        )),
    }
}

/// Go's `time.ParseDuration` grammar, `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+`, in
/// nanoseconds; `None` when malformed or beyond ±292 years. (The published Rust
/// port slices strings at char counts and can panic on `µ`, so the grammar is
/// implemented here.)
fn go_duration_nanos(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total: i128 = 0;
    while !rest.is_empty() {
        let int_len = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(a) => {
                let n = a.find(|c: char| !c.is_ascii_digit()).unwrap_or(a.len());
                a.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let scale: i128 = match unit {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let int: i128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok().filter(|v: &i128| *v < 1_i128 << 63)?
        };
        let mut value = int.checked_mul(scale)?;
        if !frac_part.is_empty() {
            // At most 18 fractional digits matter at nanosecond resolution.
            let digits = &frac_part[..frac_part.len().min(18)];
            let f: i128 = digits.parse().ok()?;
            value += f * scale / 10_i128.pow(digits.len() as u32);
        }
        total = total.checked_add(value)?;
        if total > i64::MAX as i128 {
            return None;
        }
        rest = after;
    }
    let total = total as i64;
    Some(if neg { -total } else { total })
}

/// The first `n` items joined with `, `, then "and N more" — for messages that
/// must stay short whatever the cluster holds.
pub fn list_some(items: &[String], n: usize) -> String {
    let mut out = items.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > n {
        out.push_str(&format!(" and {} more", items.len() - n));
    }
    out
}

/// Longest violation message kept (bytes); longer ones are cut with `…`.
pub const MAX_VIOLATION_MESSAGE: usize = 1024;

/// Longest condition message (bytes): `metav1.Condition.message` allows 32768.
pub const MAX_CONDITION_MESSAGE: usize = 32 * 1024;

/// `s` cut to at most `max` bytes on a character boundary, marked with `…`.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// Parses an RFC 3339 timestamp from cluster data.
pub fn parse_time(value: &str) -> Option<Timestamp> {
    value.parse().ok()
}

/// Human form of a duration for messages, e.g. `26h 0m 5s`.
pub fn human(d: SignedDuration) -> String {
    format!("{d:#}")
}

/// Evaluates `control` against `snapshot` at `now`. Never panics on any Control
/// or cluster object; spec errors the API server could not catch yield
/// [`Verdict::InvalidSpec`].
pub fn evaluate(control: &Control, snapshot: &Snapshot, now: Timestamp) -> Evaluation {
    let name = control.metadata.name.as_deref().unwrap_or("");
    match evaluate_inner(control, snapshot, now, name) {
        Ok((outcome, _)) => finish(outcome, now),
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
pub(crate) fn evaluate_inner(
    control: &Control,
    snapshot: &Snapshot,
    now: Timestamp,
    name: &str,
) -> Result<(Outcome, BTreeSet<String>), InvalidSpec> {
    let namespaces = scope_namespaces(control, snapshot)?;
    let cx = Context {
        snapshot,
        now,
        namespaces: &namespaces,
        control_name: name,
    };
    let mut outcome = checks::evaluate(&control.spec.check, &cx)?;
    if namespaces.is_empty() {
        outcome.notes.push(NO_NAMESPACE_IN_SCOPE.into());
    }
    Ok((outcome, namespaces))
}

fn finish(mut outcome: Outcome, now: Timestamp) -> Evaluation {
    normalize(&mut outcome);
    conclude(outcome, now)
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
    outcome.violations.iter_mut().for_each(cut_message);
    outcome.violations.sort();
    outcome.violations.dedup();
    outcome.evidence.sort();
    outcome.evidence.dedup();
}

/// The verdict, reason and message of a normalized outcome.
pub(crate) fn conclude(outcome: Outcome, now: Timestamp) -> Evaluation {
    let (verdict, reason, message) = if let Some((reason, message)) = outcome.blocking.clone() {
        (Verdict::NonCompliant, reason, message)
    } else if outcome.violations.is_empty() {
        (
            Verdict::Compliant,
            "Compliant".to_owned(),
            format!(
                "{} resources checked, no violations",
                outcome.resources_checked
            ),
        )
    } else {
        let n = outcome.violations.len();
        let first: Vec<String> = outcome.violations.iter().take(3).map(describe).collect();
        let more = if n > 3 {
            format!("; and {} more violations", n - 3)
        } else {
            String::new()
        };
        (
            Verdict::NonCompliant,
            "ViolationsFound".to_owned(),
            format!(
                "{n} violation{}: {}{more}",
                if n == 1 { "" } else { "s" },
                first.join("; ")
            ),
        )
    };
    Evaluation {
        verdict,
        reason,
        message: truncate(&message, MAX_CONDITION_MESSAGE),
        resources_checked: outcome.resources_checked,
        violations: outcome.violations,
        evidence: outcome.evidence,
        notes: outcome.notes,
        invalid: None,
        evaluated_at: now,
    }
}

/// `Kind namespace/name: message`, for condition messages and Events.
pub fn describe(v: &Violation) -> String {
    match &v.namespace {
        Some(ns) => format!("{} {ns}/{}: {}", v.kind, v.name, v.message),
        None => format!("{} {}: {}", v.kind, v.name, v.message),
    }
}

/// The namespaces in the Control's scope, from the snapshot's Namespace objects.
///
/// # Errors
/// [`InvalidSpec`] for a selector with an invalid operator or values.
pub fn scope_namespaces(
    control: &Control,
    snapshot: &Snapshot,
) -> Result<BTreeSet<String>, InvalidSpec> {
    let scope = Scope::of(control)?;
    Ok(snapshot
        .namespaces
        .iter()
        .filter(|ns| scope.contains(ns))
        .map(|ns| name_of(ns.as_ref()).to_owned())
        .collect())
}

/// Whether namespace `name` exists in the snapshot and is in the Control's
/// scope (one namespace of [`scope_namespaces`]).
///
/// # Errors
/// [`InvalidSpec`] for a selector with an invalid operator or values.
pub fn namespace_in_scope(
    control: &Control,
    snapshot: &Snapshot,
    name: &str,
) -> Result<bool, InvalidSpec> {
    let scope = Scope::of(control)?;
    Ok(snapshot
        .namespaces
        .get("", name)
        .is_some_and(|ns| scope.contains(ns)))
}

/// A Control's `spec.scope`, parsed.
struct Scope {
    selector: Option<Selector>,
    explicit: BTreeSet<String>,
    excluded: BTreeSet<String>,
}

impl Scope {
    fn of(control: &Control) -> Result<Scope, InvalidSpec> {
        let scope = control.spec.scope.clone().unwrap_or_default();
        let selector = match &scope.namespace_selector {
            None => None,
            Some(ls) => Some(parse_selector("spec.scope.namespaceSelector", ls)?),
        };
        let explicit = scope
            .namespace_selector
            .as_ref()
            .map(explicitly_named)
            .unwrap_or_default();
        Ok(Scope {
            selector,
            explicit,
            excluded: scope.excluded_namespaces.into_iter().collect(),
        })
    }

    fn contains(&self, ns: &k8s_openapi::api::core::v1::Namespace) -> bool {
        let name = name_of(ns);
        if self.excluded.contains(name) {
            return false;
        }
        if SYSTEM_NAMESPACES.contains(&name) && !self.explicit.contains(name) {
            return false;
        }
        // The API server always sets kubernetes.io/metadata.name; offline
        // manifests may not, so match as if it were set.
        match &self.selector {
            None => true,
            Some(s) => {
                let labels = labels_of(ns);
                if labels.contains_key(NAMESPACE_NAME_LABEL) {
                    s.matches(labels)
                } else {
                    let mut with_name = labels.clone();
                    with_name.insert(NAMESPACE_NAME_LABEL.to_owned(), name.to_owned());
                    s.matches(&with_name)
                }
            }
        }
    }
}

/// Parses a LabelSelector, naming `field` on error (e.g. an `In` without values).
///
/// # Errors
/// [`InvalidSpec`] naming `field`.
pub fn parse_selector(field: &str, selector: &LabelSelector) -> Result<Selector, InvalidSpec> {
    if let Some(exprs) = &selector.match_expressions {
        for (i, e) in exprs.iter().enumerate() {
            let values = e.values.as_deref().unwrap_or(&[]);
            let bad = match e.operator.as_str() {
                "In" | "NotIn" => values.is_empty().then_some("needs at least one value"),
                "Exists" | "DoesNotExist" => (!values.is_empty()).then_some("takes no values"),
                _ => Some("is not one of In, NotIn, Exists, DoesNotExist"),
            };
            if let Some(why) = bad {
                return Err(InvalidSpec::new(
                    format!("{field}.matchExpressions[{i}]"),
                    format!(
                        "operator {:?} {why}; this selector can never match",
                        e.operator
                    ),
                ));
            }
        }
    }
    Selector::try_from(selector.clone()).map_err(|e| InvalidSpec::new(field, e.to_string()))
}

/// Namespace names a selector names explicitly through
/// `kubernetes.io/metadata.name` (matchLabels, or matchExpressions `In`).
fn explicitly_named(selector: &LabelSelector) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(v) = selector
        .match_labels
        .as_ref()
        .and_then(|m| m.get(NAMESPACE_NAME_LABEL))
    {
        out.insert(v.clone());
    }
    for e in selector.match_expressions.iter().flatten() {
        if e.key == NAMESPACE_NAME_LABEL && e.operator == "In" {
            out.extend(e.values.iter().flatten().cloned());
        }
    }
    out
}

impl Evaluation {
    /// Whether the control is compliant.
    pub fn is_compliant(&self) -> bool {
        self.verdict == Verdict::Compliant
    }

    /// The `Control` status for this evaluation: conditions that keep their
    /// `lastTransitionTime` from `previous` while their status is unchanged,
    /// `observedGeneration`, summary, at most [`MAX_STATUS_VIOLATIONS`]
    /// violations with `violationsTruncated`, and evidence.
    pub fn to_status(&self, control: &Control, previous: Option<&ControlStatus>) -> ControlStatus {
        let generation = control.metadata.generation;
        let prev = previous.map(|s| s.conditions.as_slice()).unwrap_or(&[]);
        // metav1.Time has whole seconds on the wire: a status built with
        // nanoseconds would never equal the one read back, and the operator
        // would take its own write for someone else's.
        let now = Time(
            Timestamp::from_second(self.evaluated_at.as_second()).unwrap_or(self.evaluated_at),
        );
        let (ready_status, ready_reason, ready_message) = match (&self.invalid, control.spec.mode) {
            (Some(invalid), _) => ("False", "InvalidSpec", invalid.to_string()),
            (None, Mode::Enforce) => (
                "True",
                "EnforceNotSupported",
                "mode Enforce is not implemented yet: the control is evaluated and reported (Audit) but nothing is enforced".to_owned(),
            ),
            (None, Mode::Audit) => ("True", "Evaluated", truncate(&self.notes.join("; "), MAX_CONDITION_MESSAGE)),
        };
        let ready_message = if self.invalid.is_none()
            && control.spec.mode == Mode::Enforce
            && !self.notes.is_empty()
        {
            format!("{ready_message}; {}", self.notes.join("; "))
        } else {
            ready_message
        };
        let (compliant_status, compliant_reason) = match self.verdict {
            Verdict::Compliant => ("True", self.reason.as_str()),
            Verdict::NonCompliant => ("False", self.reason.as_str()),
            Verdict::InvalidSpec => ("Unknown", "InvalidSpec"),
        };
        let conditions = vec![
            conditions::next_condition(
                prev,
                READY,
                ready_status,
                ready_reason,
                &ready_message,
                generation,
                now.clone(),
            ),
            conditions::next_condition(
                prev,
                COMPLIANT,
                compliant_status,
                compliant_reason,
                &self.message,
                generation,
                now.clone(),
            ),
        ];
        let total = self.violations.len();
        ControlStatus {
            observed_generation: generation,
            conditions,
            summary: Some(Summary {
                resources_checked: i64::try_from(self.resources_checked).unwrap_or(i64::MAX),
                violations: i64::try_from(total).unwrap_or(i64::MAX),
                last_evaluation_time: now,
            }),
            violations: self
                .violations
                .iter()
                .take(MAX_STATUS_VIOLATIONS)
                .cloned()
                .collect(),
            violations_truncated: total > MAX_STATUS_VIOLATIONS,
            evidence: self.evidence.clone(),
        }
    }
}

/// Whether the check in `check` is set at all (the CRD's CEL rule guarantees
/// exactly one at admission; a `null` member can still slip through).
pub fn check_is_set(check: &Check) -> bool {
    checks::members_set(check) > 0
}
