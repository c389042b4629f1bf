//! `metav1.Condition` helpers following the Kubernetes API conventions
//! ("Typical status properties"): `lastTransitionTime` moves only when `status`
//! changes; `observedGeneration` records the generation the condition is about.
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Condition type: the spec is valid and was evaluated.
pub const READY: &str = "Ready";
/// Condition type: the cluster satisfies the control's check.
pub const COMPLIANT: &str = "Compliant";

/// A condition's status value, `"True"`, `"False"` or `"Unknown"`.
pub fn status_str(value: Option<bool>) -> &'static str {
    match value {
        Some(true) => "True",
        Some(false) => "False",
        None => "Unknown",
    }
}

/// Builds the condition `type_` with `status`/`reason`/`message` for
/// `generation`, keeping `lastTransitionTime` from `previous` when the status
/// did not change, and using `now` otherwise.
pub fn next_condition(
    previous: &[Condition],
    type_: &str,
    status: &str,
    reason: &str,
    message: &str,
    generation: Option<i64>,
    now: Time,
) -> Condition {
    let last_transition_time = previous
        .iter()
        .find(|c| c.type_ == type_ && c.status == status)
        .map(|c| c.last_transition_time.clone())
        .unwrap_or(now);
    Condition {
        type_: type_.to_owned(),
        status: status.to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        observed_generation: generation,
        last_transition_time,
    }
}

/// The condition of `type_` in `conditions`, if any.
pub fn find<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn transition_time_moves_only_when_status_changes() {
        let first = next_condition(
            &[],
            COMPLIANT,
            "False",
            "Violations",
            "1",
            Some(1),
            t("2026-01-01T00:00:00Z"),
        );
        assert_eq!(first.last_transition_time, t("2026-01-01T00:00:00Z"));
        // Same status, new reason and message: the transition time stays.
        let same = next_condition(
            std::slice::from_ref(&first),
            COMPLIANT,
            "False",
            "Other",
            "2",
            Some(2),
            t("2026-01-02T00:00:00Z"),
        );
        assert_eq!(same.last_transition_time, first.last_transition_time);
        assert_eq!(same.reason, "Other");
        assert_eq!(same.observed_generation, Some(2));
        // Status flips: the transition time moves to now.
        let flipped = next_condition(
            &[same],
            COMPLIANT,
            "True",
            "Compliant",
            "",
            Some(2),
            t("2026-01-03T00:00:00Z"),
        );
        assert_eq!(flipped.last_transition_time, t("2026-01-03T00:00:00Z"));
    }
}
