//! `soc2-operator report`: the auditor's evidence report, rendered from the
//! Controls and their status in the cluster, grouped by category → criterion →
//! control, with the operator version, the cluster identity (the `kube-system`
//! namespace UID), the generation time and a SHA-256 digest of the body. With
//! Prometheus, each Control also gets the fraction of the period it was
//! compliant and its number of transitions (`soc2_control_compliant`): the
//! operating-effectiveness evidence of a SOC 2 Type II audit.
use std::collections::BTreeMap;

use jiff::Timestamp;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::escape_markup as esc;
use crate::api::Control;
use crate::api::conditions::{COMPLIANT, READY, find};

/// Compliance of one Control over the reporting period, from Prometheus.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodStats {
    /// Share of the period the Control was compliant (0–1).
    pub compliant_fraction: f64,
    /// How often `soc2_control_compliant` changed value.
    pub transitions: u64,
}

/// Everything a report is made of.
pub struct ReportInput {
    /// The Controls with their status.
    pub controls: Vec<Control>,
    /// `metadata.uid` of the `kube-system` namespace.
    pub cluster_uid: String,
    /// When the report was generated.
    pub generated: Timestamp,
    /// The reporting period (e.g. `90d`) and each Control's statistics.
    pub period: Option<(String, BTreeMap<String, PeriodStats>)>,
}

/// Report formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Markdown.
    Markdown,
    /// One self-contained HTML file (no external requests), print-friendly.
    Html,
    /// JSON: `{"report": …, "sha256": …}`.
    Json,
}

fn name(c: &Control) -> &str {
    c.metadata.name.as_deref().unwrap_or("")
}

/// The report's content as JSON (the body that the digest covers).
pub fn body(input: &ReportInput) -> Value {
    let mut by_category: BTreeMap<String, BTreeMap<String, Vec<Value>>> = BTreeMap::new();
    for c in &input.controls {
        let status = c.status.clone().unwrap_or_default();
        let cond = |t: &str| {
            find(&status.conditions, t)
                .map(|c| json!({"status": c.status, "reason": c.reason, "message": c.message}))
        };
        let period = input.period.as_ref().and_then(|(_, s)| s.get(name(c)));
        let entry = json!({
            "name": name(c),
            "title": c.spec.title,
            "severity": c.spec.severity,
            "criteria": c.spec.criteria,
            "verdict": status.verdict,
            "minimumEvidence": c.spec.required_evidence(),
            "compliant": cond(COMPLIANT),
            "ready": cond(READY),
            "resourcesChecked": status.summary.as_ref().map(|s| s.resources_checked),
            "violations": status.summary.as_ref().map(|s| s.violations),
            "undetermined": status.summary.as_ref().map(|s| s.undetermined),
            "lastEvaluationTime": status.summary.as_ref().map(|s| s.last_evaluation_time.0.to_string()),
            "firstViolations": status.violations.iter().take(10).collect::<Vec<_>>(),
            "firstUndetermined": status.undetermined.iter().take(10).collect::<Vec<_>>(),
            "evidence": status.evidence,
            // Six decimals: short enough to survive any JSON parser unchanged,
            // so that a verifier re-serialising the report gets the same digest.
            "period": period.map(|p| json!({"compliantFraction": (p.compliant_fraction * 1e6).round() / 1e6, "transitions": p.transitions})),
        });
        let category = format!("{:?}", c.spec.category);
        for cr in &c.spec.criteria {
            by_category
                .entry(category.clone())
                .or_default()
                .entry(cr.clone())
                .or_default()
                .push(entry.clone());
        }
    }
    json!({
        "title": "SOC 2 controls evidence report",
        "operatorVersion": crate::VERSION,
        "clusterUID": input.cluster_uid,
        "generated": input.generated.to_string(),
        "period": input.period.as_ref().map(|(p, _)| p.clone()),
        "categories": by_category,
    })
}

/// Hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Renders the report; the digest covers everything before its own line (for
/// JSON: the compact serialisation of `report`).
pub fn render(input: &ReportInput, format: Format) -> String {
    let b = body(input);
    match format {
        Format::Json => {
            let compact = serde_json::to_string(&b).expect("JSON");
            serde_json::to_string_pretty(
                &json!({"report": b, "sha256": sha256_hex(compact.as_bytes())}),
            )
            .expect("JSON")
        }
        Format::Markdown => {
            let text = markdown(&b);
            format!(
                "{text}\n---\nSHA-256 of the report above: `{}`\n",
                sha256_hex(text.as_bytes())
            )
        }
        Format::Html => {
            let text = html(&b);
            format!(
                "{text}<footer>SHA-256 of the report above: <code>{}</code></footer>\n</body></html>\n",
                sha256_hex(text.as_bytes())
            )
        }
    }
}

/// The verdict for people: `status.verdict` when the operator wrote one,
/// else from the `Compliant` condition.
fn verdict(entry: &Value) -> &str {
    match (
        entry["verdict"].as_str(),
        entry["compliant"]["status"].as_str(),
    ) {
        (Some("Compliant"), _) | (None, Some("True")) => "Compliant",
        (Some("NonCompliant"), _) | (None, Some("False")) => "Not compliant",
        (Some("Unknown"), _) => "Unknown (cannot be told)",
        (Some("InvalidSpec"), _) => "Invalid spec",
        (Some("NotEvaluated"), _) => "Not evaluated",
        _ => "Unknown",
    }
}

fn period_text(entry: &Value) -> String {
    match entry["period"].as_object() {
        Some(p) => format!(
            "{:.1}% of the period compliant, {} transition(s)",
            p["compliantFraction"].as_f64().unwrap_or(0.0) * 100.0,
            p["transitions"].as_u64().unwrap_or(0)
        ),
        None => String::new(),
    }
}

fn markdown(b: &Value) -> String {
    let mut out = format!(
        "# {}\n\n- Operator version: {}\n- Cluster (kube-system UID): {}\n- Generated: {}\n",
        b["title"].as_str().unwrap_or(""),
        b["operatorVersion"].as_str().unwrap_or(""),
        b["clusterUID"].as_str().unwrap_or(""),
        b["generated"].as_str().unwrap_or("")
    );
    if let Some(p) = b["period"].as_str() {
        out.push_str(&format!("- Period: last {p}\n"));
    }
    for (category, criteria) in b["categories"].as_object().into_iter().flatten() {
        out.push_str(&format!("\n## {category}\n"));
        for (criterion, controls) in criteria.as_object().into_iter().flatten() {
            out.push_str(&format!("\n### {criterion}\n\n| Control | Status | Violations | Last evaluated | Over the period |\n|---|---|---|---|---|\n"));
            for c in controls.as_array().into_iter().flatten() {
                out.push_str(&format!(
                    "| `{}` — {} | {} | {} | {} | {} |\n",
                    c["name"].as_str().unwrap_or(""),
                    c["title"].as_str().unwrap_or(""),
                    verdict(c),
                    c["violations"].as_i64().unwrap_or(0),
                    c["lastEvaluationTime"].as_str().unwrap_or("never"),
                    period_text(c)
                ));
            }
            for c in controls.as_array().into_iter().flatten() {
                let violations = c["firstViolations"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                let undetermined = c["firstUndetermined"]
                    .as_array()
                    .map(Vec::as_slice)
                    .unwrap_or(&[]);
                let evidence = c["evidence"].as_array().map(Vec::as_slice).unwrap_or(&[]);
                if violations.is_empty() && undetermined.is_empty() && evidence.is_empty() {
                    continue;
                }
                out.push_str(&format!("\n`{}`:\n", c["name"].as_str().unwrap_or("")));
                for v in violations {
                    out.push_str(&format!(
                        "- violation: {} {}/{}: {}\n",
                        v["kind"].as_str().unwrap_or(""),
                        v["namespace"].as_str().unwrap_or("-"),
                        v["name"].as_str().unwrap_or(""),
                        v["message"].as_str().unwrap_or("")
                    ));
                }
                for v in undetermined {
                    out.push_str(&format!(
                        "- cannot tell: {} {}/{}: {}\n",
                        v["kind"].as_str().unwrap_or(""),
                        v["namespace"].as_str().unwrap_or("-"),
                        v["name"].as_str().unwrap_or(""),
                        v["message"].as_str().unwrap_or("")
                    ));
                }
                for e in evidence {
                    out.push_str(&format!(
                        "- evidence ({}, {}): {}\n",
                        e["source"].as_str().unwrap_or(""),
                        e["verification"].as_str().unwrap_or(""),
                        e["message"].as_str().unwrap_or("")
                    ));
                }
            }
        }
    }
    out
}

/// The string at `key` of `v`, or `""`.
fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("")
}

/// A Control's evidence (`source (verification): message`), then its first
/// violations (`kind name: message`), for the HTML table.
fn details(c: &Value) -> Vec<String> {
    let list = |key: &str| c[key].as_array().into_iter().flatten();
    list("evidence")
        .map(|e| {
            let (source, how) = (text(e, "source"), text(e, "verification"));
            format!("{source} ({how}): {}", text(e, "message"))
        })
        .chain(list("firstViolations").map(|x| {
            format!(
                "{} {}: {}",
                text(x, "kind"),
                text(x, "name"),
                text(x, "message")
            )
        }))
        .collect()
}

fn html(b: &Value) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>SOC 2 controls evidence report</title>\n<style>\nbody{font-family:system-ui,sans-serif;margin:2em;color:#222}\ntable{border-collapse:collapse;width:100%;margin:.5em 0 1.5em}\nth,td{border:1px solid #bbb;padding:.3em .5em;text-align:left;vertical-align:top}\nth{background:#eee}\n.ok{color:#176f2c;font-weight:600}.bad{color:#b00020;font-weight:600}.unknown{color:#8a5a00;font-weight:600}\nh2{border-bottom:2px solid #444;margin-top:1.5em}\nfooter{margin-top:2em;font-size:.85em;color:#555}\n@media print{body{margin:0}h2{page-break-before:auto}tr{page-break-inside:avoid}}\n</style></head><body>\n",
    );
    out.push_str(&format!(
        "<h1>{}</h1>\n<ul><li>Operator version: {}</li><li>Cluster (kube-system UID): {}</li><li>Generated: {}</li>{}</ul>\n",
        esc(b["title"].as_str().unwrap_or("")),
        esc(b["operatorVersion"].as_str().unwrap_or("")),
        esc(b["clusterUID"].as_str().unwrap_or("")),
        esc(b["generated"].as_str().unwrap_or("")),
        b["period"].as_str().map(|p| format!("<li>Period: last {}</li>", esc(p))).unwrap_or_default()
    ));
    for (category, criteria) in b["categories"].as_object().into_iter().flatten() {
        out.push_str(&format!("<h2>{}</h2>\n", esc(category)));
        for (criterion, controls) in criteria.as_object().into_iter().flatten() {
            out.push_str(&format!("<h3>{}</h3>\n<table><tr><th>Control</th><th>Status</th><th>Violations</th><th>Last evaluated</th><th>Over the period</th><th>Evidence and first violations</th></tr>\n", esc(criterion)));
            for c in controls.as_array().into_iter().flatten() {
                let v = verdict(c);
                let class = match v {
                    "Compliant" => "ok",
                    v if v.starts_with("Unknown") => "unknown",
                    _ => "bad",
                };
                let details = details(c);
                out.push_str(&format!(
                    "<tr><td><b>{}</b><br>{}</td><td class=\"{class}\">{v}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                    esc(c["name"].as_str().unwrap_or("")),
                    esc(c["title"].as_str().unwrap_or("")),
                    c["violations"].as_i64().unwrap_or(0),
                    esc(c["lastEvaluationTime"].as_str().unwrap_or("never")),
                    esc(&period_text(c)),
                    details.iter().map(|d| esc(d)).collect::<Vec<_>>().join("<br>")
                ));
            }
            out.push_str("</table>\n");
        }
    }
    out
}

/// Per-Control compliance over `period` (a Prometheus duration such as `90d`)
/// from `soc2_control_compliant` in the Prometheus at `url`.
///
/// # Errors
/// A message when Prometheus cannot be queried or answers an error.
pub fn period_stats(url: &str, period: &str) -> Result<BTreeMap<String, PeriodStats>, String> {
    let query = |expr: String| -> Result<Vec<(String, f64)>, String> {
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(std::time::Duration::from_secs(30)))
            .build()
            .new_agent();
        let mut resp = agent
            .get(format!("{}/api/v1/query", url.trim_end_matches('/')))
            .query("query", &expr)
            .call()
            .map_err(|e| format!("querying {url}: {e}"))?;
        let v: Value = serde_json::from_str(
            &resp
                .body_mut()
                .read_to_string()
                .map_err(|e| e.to_string())?,
        )
        .map_err(|e| e.to_string())?;
        if v["status"] != "success" {
            return Err(format!(
                "Prometheus: {}",
                v["error"].as_str().unwrap_or("query failed")
            ));
        }
        Ok(v["data"]["result"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|r| {
                Some((
                    r["metric"]["control"].as_str()?.to_owned(),
                    r["value"][1].as_str()?.parse().ok()?,
                ))
            })
            .collect())
    };
    let series = "max by (control) (soc2_control_compliant)";
    // About a thousand points over the period, at least one a second.
    let seconds = prometheus_seconds(period).ok_or_else(|| {
        format!("--period {period:?} is not a Prometheus duration such as 90d or 12h")
    })?;
    let step = (seconds / 1000).max(1);
    let fractions = query(format!("avg_over_time(({series})[{period}:{step}s])"))?;
    let changes: BTreeMap<String, f64> = query(format!("changes(({series})[{period}:{step}s])"))?
        .into_iter()
        .collect();
    Ok(fractions
        .into_iter()
        .map(|(control, f)| {
            let transitions = changes.get(&control).copied().unwrap_or(0.0) as u64;
            (
                control,
                PeriodStats {
                    compliant_fraction: f,
                    transitions,
                },
            )
        })
        .collect())
}

/// Seconds in a Prometheus duration (`90d`, `1h30m`, `2w`; units ms s m h d w y).
pub fn prometheus_seconds(d: &str) -> Option<u64> {
    let mut total = 0u64;
    let mut rest = d;
    if rest.is_empty() {
        return None;
    }
    while !rest.is_empty() {
        let n_len = rest.find(|c: char| !c.is_ascii_digit())?;
        if n_len == 0 {
            return None;
        }
        let n: u64 = rest[..n_len].parse().ok()?;
        rest = &rest[n_len..];
        let (mult, len) = if rest.starts_with("ms") {
            (0, 2)
        } else {
            match rest.chars().next()? {
                's' => (1, 1),
                'm' => (60, 1),
                'h' => (3600, 1),
                'd' => (86_400, 1),
                'w' => (604_800, 1),
                'y' => (31_536_000, 1),
                _ => return None,
            }
        };
        total = total.checked_add(n.checked_mul(mult)?)?;
        rest = &rest[len..];
    }
    Some(total)
}
