//! Message helpers: bounded lists and byte-bounded strings, so that messages
//! stay short whatever the cluster holds.

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
