//! Parsing what Control specs and cluster data hold: Go durations, RFC 3339
//! times, label selectors.
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::core::Selector;

use super::InvalidSpec;

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
        let (value, after) = go_duration_term(rest)?;
        total = total.checked_add(value)?;
        if total > i64::MAX as i128 {
            return None;
        }
        rest = after;
    }
    let total = total as i64;
    Some(if neg { -total } else { total })
}

/// One `<number>[.<fraction>]<unit>` term of a Go duration: its value in
/// nanoseconds and the rest of the string.
fn go_duration_term(rest: &str) -> Option<(i128, &str)> {
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
    Some((value, after))
}

/// Parses an RFC 3339 timestamp from cluster data.
pub fn parse_time(value: &str) -> Option<Timestamp> {
    value.parse().ok()
}

/// Human form of a duration for messages, e.g. `26h 0m 5s`.
pub fn human(d: SignedDuration) -> String {
    format!("{d:#}")
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

/// Whether a label selector is empty (no `matchLabels`, no
/// `matchExpressions`), which selects every object ("an empty label selector
/// matches all objects", Kubernetes "Labels and Selectors").
pub fn selects_everything(selector: &LabelSelector) -> bool {
    selector.match_labels.as_ref().is_none_or(|m| m.is_empty())
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(|e| e.is_empty())
}
