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
    snapshot.mark_partial();
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

/// What fails the CI gate: a Control of at least `fail_on` severity that is
/// NonCompliant or InvalidSpec, and, unless `allow_unknown`, one whose verdict
/// is Unknown (the evidence it needs cannot be seen).
#[derive(Clone, Copy, Debug)]
pub struct Gate {
    /// The lowest severity that fails.
    pub fail_on: Severity,
    /// Whether an Unknown verdict passes.
    pub allow_unknown: bool,
}

impl Gate {
    /// Whether `r` fails the gate.
    pub fn fails(&self, r: &ControlResult) -> bool {
        r.control.spec.severity >= self.fail_on
            && match r.evaluation.verdict {
                Verdict::Compliant => false,
                Verdict::Unknown => !self.allow_unknown,
                Verdict::NonCompliant | Verdict::InvalidSpec => true,
            }
    }
}

/// The exit code: 2 on input errors, 1 when a Control fails `gate`, else 0.
pub fn exit_code(outcomes: &[ControlResult], errors: &[InputError], gate: Gate) -> u8 {
    if !errors.is_empty() {
        return 2;
    }
    u8::from(outcomes.iter().any(|o| gate.fails(o)))
}

fn name(c: &Control) -> &str {
    c.metadata.name.as_deref().unwrap_or("")
}

fn verdict(v: Verdict) -> &'static str {
    v.name()
}

/// Renders the outcomes (and input errors) in `format`; JUnit marks an
/// Unknown verdict a failure or a skip as `gate` treats it.
pub fn render(
    outcomes: &[ControlResult],
    errors: &[InputError],
    format: Output,
    color: bool,
    gate: Gate,
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
                "undetermined": o.evaluation.undetermined,
                "evidence": o.evaluation.evidence,
                "minimumEvidence": o.control.spec.required_evidence(),
            })).collect::<Vec<_>>(),
            "errors": errors.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }))
        .expect("JSON"),
        Output::Junit => junit(outcomes, errors, gate),
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
            Verdict::Unknown => paint(&format!("{v:<13}"), "33"),
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

fn junit(outcomes: &[ControlResult], errors: &[InputError], gate: Gate) -> String {
    let count = |f: &dyn Fn(&ControlResult) -> bool| outcomes.iter().filter(|o| f(o)).count();
    let unknown_fails =
        |o: &ControlResult| o.evaluation.verdict == Verdict::Unknown && gate.fails(o);
    let failures = count(&|o| o.evaluation.verdict == Verdict::NonCompliant || unknown_fails(o));
    let invalid = count(&|o| o.evaluation.verdict == Verdict::InvalidSpec) + errors.len();
    let skipped = count(&|o| o.evaluation.verdict == Verdict::Unknown && !gate.fails(o));
    let tests = outcomes.len() + errors.len();
    let mut out = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"soc2-operator\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{invalid}\" skipped=\"{skipped}\">\n  <testsuite name=\"soc2-controls\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{invalid}\" skipped=\"{skipped}\">\n"
    );
    for o in outcomes {
        let classname = o.control.spec.criteria.join(",");
        out.push_str(&format!(
            "    <testcase name=\"{}\" classname=\"{}\">\n",
            xml_escape(name(&o.control)),
            xml_escape(&classname)
        ));
        out.push_str(&junit_result(o, gate));
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

/// The element inside one Control's `<testcase>`: nothing when compliant, a
/// `<failure>` listing the findings, an `<error>` for an invalid spec, and for
/// an Unknown verdict a failure or (when the gate allows it) `<skipped>`.
fn junit_result(o: &ControlResult, gate: Gate) -> String {
    let e = &o.evaluation;
    let failure = |findings: &[crate::api::Violation]| {
        let body: Vec<String> = findings.iter().map(crate::engine::describe).collect();
        format!(
            "      <failure type=\"{}\" message=\"{}\">{}</failure>\n",
            xml_escape(&e.reason),
            xml_escape(&e.message),
            xml_escape(&body.join("\n"))
        )
    };
    match e.verdict {
        Verdict::Compliant => String::new(),
        Verdict::NonCompliant => failure(&e.violations),
        Verdict::Unknown if gate.fails(o) => failure(&e.undetermined),
        Verdict::Unknown => format!(
            "      <skipped message=\"Unknown: {}\"/>\n",
            xml_escape(&e.message)
        ),
        Verdict::InvalidSpec => format!(
            "      <error type=\"InvalidSpec\" message=\"{}\"/>\n",
            xml_escape(&e.message)
        ),
    }
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
    let result = |o: &ControlResult, v: &crate::api::Violation, verdict: Verdict| {
        let object = match &v.namespace {
            Some(ns) => format!("{}/{}/{ns}/{}", v.api_version, v.kind, v.name),
            None => format!("{}/{}/{}", v.api_version, v.kind, v.name),
        };
        // An undetermined finding is reported one level lower: it is not a
        // known violation.
        let level = match verdict {
            Verdict::Unknown => "note",
            _ => level(o.control.spec.severity),
        };
        json!({
            "ruleId": name(&o.control),
            "level": level,
            "message": {"text": format!("{}: {}", v.reason, v.message)},
            "locations": [{"logicalLocations": [{"fullyQualifiedName": object, "kind": "resource"}]}],
            "properties": {"verdict": verdict.name()},
        })
    };
    let results: Vec<serde_json::Value> = outcomes
        .iter()
        .flat_map(|o| {
            let violations = o
                .evaluation
                .violations
                .iter()
                .map(move |v| (o, v, Verdict::NonCompliant));
            let undetermined = o
                .evaluation
                .undetermined
                .iter()
                .map(move |v| (o, v, Verdict::Unknown));
            violations.chain(undetermined)
        })
        .map(|(o, v, verdict)| result(o, v, verdict))
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
    for kind in kinds.iter().filter(|k| k.watchable()) {
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

/// How `docs/controls.md` explains evidence strength and Unknown.
const EVIDENCE_PREAMBLE: &str = "Every piece of evidence has a strength: **Verified** (cluster state that \
proves the property itself), **Configured** (a setting that should produce it: a flag, a StorageClass \
parameter, an Ingress `tls` entry) or **Attested** (a person's statement, with who and when). A \
Control is Compliant only when, for every claim it makes, its strongest evidence reaches its \
minimum (`spec.minimumEvidence`; Critical Controls default to Verified, others to Configured); \
otherwise it is **Unknown** (reason `InsufficientEvidence`), as it is when the evidence a check \
needs cannot be seen (a managed control plane, a statically provisioned volume). A violation \
makes it NonCompliant whatever the evidence.\n\n";

/// The catalog as Markdown (`docs/controls.md`, `make docs`): a table of the
/// Controls with their minimum evidence, then per Control what each kind of
/// evidence it can produce proves and does not prove.
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
    out.push_str(EVIDENCE_PREAMBLE);
    out.push_str("| Control | Criteria | Category | Severity | Minimum evidence | What it checks | Evidence (strength) |\n|---|---|---|---|---|---|---|\n");
    for c in &controls {
        out.push_str(&format!(
            "| [`{}`](#{}) | {} | {:?} | {:?} | {:?}{} | {} | {} |\n",
            name(c),
            name(c),
            c.spec.criteria.join(", "),
            c.spec.category,
            c.spec.severity,
            c.spec.required_evidence(),
            if c.spec.minimum_evidence.is_some() {
                " (set)"
            } else {
                ""
            },
            c.spec.title,
            crate::checks::evidence_of(&c.spec.check)
        ));
    }
    out.push_str("\n## What each Control's evidence proves\n");
    for c in &controls {
        out.push_str(&format!(
            "\n### {}\n\n{} (minimum evidence: {:?})\n\n| Claim | Source | Strength | Proves | Does not prove |\n|---|---|---|---|---|\n",
            name(c),
            c.spec.title,
            c.spec.required_evidence()
        ));
        for k in crate::checks::evidence_kinds_of(&c.spec.check) {
            out.push_str(&format!(
                "| {} | `{}` | {:?} | {} | {} |\n",
                k.claim, k.source, k.verification, k.proves, k.does_not_prove
            ));
        }
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
