//! The one-shot commands beside the operator (the top floor): `check`
//! (evaluate Controls against manifests or the live cluster, for CI) and
//! `report` (evidence for auditors). Both use the engine the operator uses.
pub mod check;
pub mod report;

/// `s` with `&`, `<`, `>` and `"` escaped, for XML (JUnit) and HTML output.
pub(crate) fn escape_markup(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
