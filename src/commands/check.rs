//! `soc2-operator check`: one-shot evaluation of Controls against manifests
//! (offline) or a snapshot, with table, JSON, JUnit and SARIF output and CI
//! exit codes. Uses the same engine as the operator.
use std::io::Read;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde_json::json;

use super::escape_markup as xml_escape;
use crate::api::{Control, Severity};
use crate::engine::{Evaluation, Verdict, evaluate};
use crate::snapshot::Snapshot;

// The built-in catalog (`controls/`), embedded in the binary by build.rs.
include!(concat!(env!("OUT_DIR"), "/catalog.rs"));

/// A broken input: the file, the document index (1-based) and the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputError {
    /// The file (or `-` for standard input).
    pub file: String,
    /// 1-based document index in the file.
    pub document: usize,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.document, self.line) {
            (0, _) => write!(f, "{}: {}", self.file, self.message),
            (d, Some(l)) => write!(f, "{}: document {d}, line {l}: {}", self.file, self.message),
            (d, None) => write!(f, "{}: document {d}: {}", self.file, self.message),
        }
    }
}

/// YAML/JSON files under `path` (a file, a directory searched recursively in
/// name order, or `-` for standard input), as `(name, text)`.
///
/// # Errors
/// An [`InputError`] when a path cannot be read.
pub fn read_inputs(path: &str) -> Result<Vec<(String, String)>, InputError> {
    let err = |file: &str, message: String| InputError {
        file: file.to_owned(),
        document: 0,
        line: None,
        message,
    };
    if path == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| err("-", e.to_string()))?;
        return Ok(vec![("-".into(), text)]);
    }
    let mut files: Vec<PathBuf> = Vec::new();
    collect(Path::new(path), &mut files).map_err(|e| err(path, e.to_string()))?;
    files
        .into_iter()
        .map(|f| {
            let name = f.display().to_string();
            std::fs::read_to_string(&f)
                .map(|t| (name.clone(), t))
                .map_err(|e| err(&name, e.to_string()))
        })
        .collect()
}

fn collect(p: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if p.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(p)?
            .map(|e| e.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        entries.sort();
        for e in entries {
            let is_manifest = e
                .extension()
                .is_some_and(|x| x == "yaml" || x == "yml" || x == "json");
            if e.is_dir() || is_manifest {
                collect(&e, out)?;
            }
        }
        Ok(())
    } else {
        std::fs::metadata(p)?;
        out.push(p.to_path_buf());
        Ok(())
    }
}

/// Every document of `text` as JSON values (`List` kinds expanded later), with
/// the errors of the documents that do not parse; the others are kept. The
/// stream is split on `---` lines first, so a syntax error in one document
/// does not hide the documents after it; lines are numbered in the file.
pub fn documents(file: &str, text: &str) -> (Vec<(usize, serde_json::Value)>, Vec<InputError>) {
    let (mut docs, mut errors) = (Vec::new(), Vec::new());
    // (first line of the chunk, 1-based; the chunk's text)
    let mut chunks: Vec<(usize, String)> = vec![(1, String::new())];
    for (i, line) in text.lines().enumerate() {
        let separator = line == "---" || line.starts_with("--- ") || line == "...";
        if separator {
            chunks.push((i + 2, String::new()));
        } else if let Some((_, c)) = chunks.last_mut() {
            c.push_str(line);
            c.push('\n');
        }
    }
    let mut index = 0;
    for (first_line, chunk) in chunks {
        if chunk
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            continue;
        }
        index += 1;
        match serde_yaml::from_str::<serde_json::Value>(&chunk) {
            Ok(v) if v.is_null() => {}
            Ok(v) => docs.push((index, v)),
            Err(e) => errors.push(InputError {
                file: file.to_owned(),
                document: index,
                line: e.location().map(|l| first_line + l.line() - 1),
                // serde_yaml appends the position within the document; the
                // line in the file is given above.
                message: e
                    .to_string()
                    .split(" at line ")
                    .next()
                    .unwrap_or_default()
                    .to_owned(),
            }),
        }
    }
    (docs, errors)
}

/// Builds a snapshot from manifest files; namespaced objects without a
/// namespace go to `namespace`.
pub fn snapshot_from(inputs: &[(String, String)], namespace: &str) -> (Snapshot, Vec<InputError>) {
    let mut snapshot = Snapshot::default();
    let mut errors = Vec::new();
    for (file, text) in inputs {
        let (docs, errs) = documents(file, text);
        errors.extend(errs);
        for (i, v) in docs {
            if let Err(e) = snapshot.insert_document(v, namespace) {
                errors.push(InputError {
                    file: file.clone(),
                    document: i,
                    line: None,
                    message: e.to_string(),
                });
            }
        }
    }
    snapshot.add_implicit_namespaces();
    (snapshot, errors)
}

/// Controls from files (documents of other kinds are ignored).
pub fn controls_from(inputs: &[(String, String)]) -> (Vec<Control>, Vec<InputError>) {
    let (mut controls, mut errors) = (Vec::new(), Vec::new());
    for (file, text) in inputs {
        let (docs, errs) = documents(file, text);
        errors.extend(errs);
        for (i, v) in docs {
            if v.get("kind").and_then(|k| k.as_str()) != Some("Control") {
                continue;
            }
            match serde_json::from_value::<Control>(v) {
                Ok(c) => controls.push(c),
                Err(e) => errors.push(InputError {
                    file: file.clone(),
                    document: i,
                    line: None,
                    message: e.to_string(),
                }),
            }
        }
    }
    (controls, errors)
}

/// Output formats.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// A table for people (coloured on a terminal).
    Table,
    /// One JSON document.
    Json,
    /// JUnit XML: one test case per Control.
    Junit,
    /// SARIF 2.1.0: one result per violation.
    Sarif,
}

/// One Control's result.
pub struct ControlResult {
    /// The Control.
    pub control: Control,
    /// Its evaluation.
    pub evaluation: Evaluation,
}

/// Evaluates every Control at `now`.
pub fn run(controls: Vec<Control>, snapshot: &Snapshot, now: Timestamp) -> Vec<ControlResult> {
    controls
        .into_iter()
        .map(|control| ControlResult {
            evaluation: evaluate(&control, snapshot, now),
            control,
        })
        .collect()
}

/// The exit code: 2 on input errors, 1 when a Control at or above `fail_on`
/// is not compliant (an invalid spec counts), else 0.
pub fn exit_code(outcomes: &[ControlResult], errors: &[InputError], fail_on: Severity) -> u8 {
    if !errors.is_empty() {
        return 2;
    }
    let failing = outcomes
        .iter()
        .any(|o| o.control.spec.severity >= fail_on && o.evaluation.verdict != Verdict::Compliant);
    u8::from(failing)
}

fn name(c: &Control) -> &str {
    c.metadata.name.as_deref().unwrap_or("")
}

fn verdict(v: Verdict) -> &'static str {
    match v {
        Verdict::Compliant => "Compliant",
        Verdict::NonCompliant => "NonCompliant",
        Verdict::InvalidSpec => "InvalidSpec",
    }
}

/// Renders the outcomes (and input errors) in `format`.
pub fn render(
    outcomes: &[ControlResult],
    errors: &[InputError],
    format: Output,
    color: bool,
) -> String {
    match format {
        Output::Table => table(outcomes, errors, color),
        Output::Json => serde_json::to_string_pretty(&json!({
            "controls": outcomes.iter().map(|o| json!({
                "name": name(&o.control),
                "criteria": o.control.spec.criteria,
                "category": o.control.spec.category,
                "severity": o.control.spec.severity,
                "verdict": verdict(o.evaluation.verdict),
                "reason": o.evaluation.reason,
                "message": o.evaluation.message,
                "resourcesChecked": o.evaluation.resources_checked,
                "violations": o.evaluation.violations,
                "evidence": o.evaluation.evidence,
            })).collect::<Vec<_>>(),
            "errors": errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }))
        .expect("JSON"),
        Output::Junit => junit(outcomes, errors),
        Output::Sarif => sarif(outcomes, errors),
    }
}

fn table(outcomes: &[ControlResult], errors: &[InputError], color: bool) -> String {
    let paint = |s: &str, code: &str| {
        if color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_owned()
        }
    };
    let mut out = format!(
        "{:<34} {:<18} {:<9} {:<13} {:>10}  {}\n",
        "CONTROL", "CRITERIA", "SEVERITY", "VERDICT", "VIOLATIONS", "REASON"
    );
    for o in outcomes {
        let v = verdict(o.evaluation.verdict);
        let colored = match o.evaluation.verdict {
            Verdict::Compliant => paint(&format!("{v:<13}"), "32"),
            _ => paint(&format!("{v:<13}"), "31"),
        };
        out.push_str(&format!(
            "{:<34} {:<18} {:<9} {colored} {:>10}  {}\n",
            name(&o.control),
            o.control.spec.criteria.join(","),
            format!("{:?}", o.control.spec.severity),
            o.evaluation.violations.len(),
            o.evaluation.reason
        ));
    }
    if !errors.is_empty() {
        out.push_str(&format!(
            "{} input error(s), listed on standard error
",
            errors.len()
        ));
    }
    out
}

fn junit(outcomes: &[ControlResult], errors: &[InputError]) -> String {
    let failures = outcomes
        .iter()
        .filter(|o| o.evaluation.verdict == Verdict::NonCompliant)
        .count();
    let invalid = outcomes
        .iter()
        .filter(|o| o.evaluation.verdict == Verdict::InvalidSpec)
        .count();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"soc2-operator\" tests=\"{}\" failures=\"{failures}\" errors=\"{}\">\n  <testsuite name=\"soc2-controls\" tests=\"{}\" failures=\"{failures}\" errors=\"{}\">\n",
        outcomes.len() + errors.len(),
        invalid + errors.len(),
        outcomes.len() + errors.len(),
        invalid + errors.len()
    );
    for o in outcomes {
        let classname = o.control.spec.criteria.join(",");
        out.push_str(&format!(
            "    <testcase name=\"{}\" classname=\"{}\">\n",
            xml_escape(name(&o.control)),
            xml_escape(&classname)
        ));
        match o.evaluation.verdict {
            Verdict::Compliant => {}
            Verdict::NonCompliant => {
                let body: Vec<String> = o
                    .evaluation
                    .violations
                    .iter()
                    .map(crate::engine::describe)
                    .collect();
                out.push_str(&format!(
                    "      <failure type=\"{}\" message=\"{}\">{}</failure>\n",
                    xml_escape(&o.evaluation.reason),
                    xml_escape(&o.evaluation.message),
                    xml_escape(&body.join("\n"))
                ));
            }
            Verdict::InvalidSpec => out.push_str(&format!(
                "      <error type=\"InvalidSpec\" message=\"{}\"/>\n",
                xml_escape(&o.evaluation.message)
            )),
        }
        out.push_str("    </testcase>\n");
    }
    for e in errors {
        out.push_str(&format!(
            "    <testcase name=\"{}\" classname=\"input\">\n      <error type=\"InputError\" message=\"{}\"/>\n    </testcase>\n",
            xml_escape(&e.file),
            xml_escape(&e.to_string())
        ));
    }
    out.push_str("  </testsuite>\n</testsuites>\n");
    out
}

fn sarif(outcomes: &[ControlResult], errors: &[InputError]) -> String {
    let level = |s: Severity| match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low => "note",
    };
    let rules: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|o| json!({
            "id": name(&o.control),
            "name": name(&o.control),
            "shortDescription": {"text": o.control.spec.title},
            "fullDescription": {"text": o.control.spec.description.clone().unwrap_or_else(|| o.control.spec.title.clone())},
            "properties": {"criteria": o.control.spec.criteria, "category": o.control.spec.category, "severity": o.control.spec.severity},
        }))
        .collect();
    let results: Vec<serde_json::Value> = outcomes
        .iter()
        .flat_map(|o| {
            o.evaluation.violations.iter().map(move |v| {
                let object = match &v.namespace {
                    Some(ns) => format!("{}/{}/{ns}/{}", v.api_version, v.kind, v.name),
                    None => format!("{}/{}/{}", v.api_version, v.kind, v.name),
                };
                json!({
                    "ruleId": name(&o.control),
                    "level": level(o.control.spec.severity),
                    "message": {"text": format!("{}: {}", v.reason, v.message)},
                    "locations": [{"logicalLocations": [{"fullyQualifiedName": object, "kind": "resource"}]}],
                })
            })
        })
        .collect();
    serde_json::to_string_pretty(&json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "soc2-operator", "version": crate::VERSION, "rules": rules}},
            "results": results,
            "invocations": [{
                "executionSuccessful": errors.is_empty(),
                "toolExecutionNotifications": errors.iter().map(|e| json!({
                    "level": "error",
                    "message": {"text": e.to_string()},
                    "locations": [{"physicalLocation": {
                        "artifactLocation": {"uri": e.file},
                        "region": {"startLine": e.line.unwrap_or(1)}
                    }}],
                })).collect::<Vec<_>>(),
            }],
        }]
    }))
    .expect("JSON")
}

/// A snapshot of the live cluster: every kind the Controls read, listed once
/// (optional kinds whose CRDs are absent are skipped, as the operator does).
///
/// # Errors
/// The first list that fails for another reason than a missing CRD.
pub async fn snapshot_from_cluster(
    client: &kube::Client,
    controls: &[Control],
) -> Result<Snapshot, kube::Error> {
    use crate::snapshot::{KindSet, KindVisitor, Stored};
    use futures::future::BoxFuture;
    let mut kinds = KindSet::new();
    for c in controls {
        kinds.extend(crate::checks::kinds_for(&c.spec.check));
    }
    type Insert = Box<dyn FnOnce(&mut Snapshot) + Send>;
    struct List(kube::Client);
    impl KindVisitor for List {
        type Output = BoxFuture<'static, Result<Insert, kube::Error>>;
        fn visit<K: Stored>(self) -> Self::Output {
            Box::pin(async move {
                let list = K::watch_api(self.0).list(&Default::default()).await?;
                let objects: Vec<K> = list.items.into_iter().filter_map(|g| g.0.ok()).collect();
                let insert: Insert = Box::new(move |s: &mut Snapshot| {
                    for mut o in objects {
                        o.trim();
                        K::objects_mut(s).insert(std::sync::Arc::new(o));
                    }
                });
                Ok(insert)
            })
        }
    }
    let mut snapshot = Snapshot::default();
    for kind in kinds {
        match kind.visit(List(client.clone())).await {
            Ok(insert) => {
                if kind.crd_name().is_some() {
                    snapshot.mark_installed(kind);
                }
                insert(&mut snapshot);
            }
            Err(kube::Error::Api(s)) if s.code == 404 && kind.crd_name().is_some() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(snapshot)
}

/// The catalog as a Markdown table (`docs/controls.md`, `make docs`).
pub fn catalog_markdown() -> String {
    let (controls, _) = controls_from(
        &BUILTIN_CONTROLS
            .iter()
            .map(|(n, t)| ((*n).to_owned(), (*t).to_owned()))
            .collect::<Vec<_>>(),
    );
    let mut by_criterion: std::collections::BTreeMap<&str, Vec<&str>> =
        std::collections::BTreeMap::new();
    for c in &controls {
        for cr in &c.spec.criteria {
            by_criterion.entry(cr.as_str()).or_default().push(name(c));
        }
    }
    let mut out = String::from(
        "# The SOC 2 catalog\n\n<!-- Generated by `make docs` (soc2-operator docs) from controls/. Do not edit. -->\n\n",
    );
    out.push_str(&format!(
        "{} Controls covering {} Trust Services Criteria.\n\n",
        controls.len(),
        by_criterion.len()
    ));
    out.push_str("| Control | Criteria | Category | Severity | What it checks | Evidence |\n|---|---|---|---|---|---|\n");
    for c in &controls {
        out.push_str(&format!(
            "| `{}` | {} | {:?} | {:?} | {} | {} |\n",
            name(c),
            c.spec.criteria.join(", "),
            c.spec.category,
            c.spec.severity,
            c.spec.title,
            crate::checks::evidence_of(&c.spec.check)
        ));
    }
    out.push_str("\n## By criterion\n\n| Criterion | Controls |\n|---|---|\n");
    for (cr, names) in by_criterion {
        out.push_str(&format!(
            "| {cr} | {} |\n",
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out
}
