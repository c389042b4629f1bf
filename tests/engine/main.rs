//! Table-driven tests of the pure check engine on real and synthetic input.
//! No cluster: snapshots are built from YAML with `Snapshot::insert_yaml`.
#![allow(clippy::type_complexity)] // table-driven tests are tuples by design

mod adversarial;
mod availability;
mod backup;
mod capacity;
mod encryption;
mod engine;
mod evidence;
mod hardening;
mod incremental;
mod issue_cases;
mod network_policy;
mod pod_kinds;
mod pod_security;
mod rbac;
mod regressions;

pub mod util {
    use jiff::Timestamp;
    use soc2_operator::api::{Control, Violation};
    use soc2_operator::engine::{Evaluation, evaluate};
    use soc2_operator::snapshot::Snapshot;

    /// The fixed evaluation time of every engine test.
    pub const NOW: &str = "2026-06-01T12:00:00Z";

    pub fn now() -> Timestamp {
        NOW.parse().unwrap()
    }

    /// Reads a fixture under tests/fixtures/.
    pub fn fixture(path: &str) -> String {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(path);
        std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
    }

    /// A Control named `test`, severity High, with the given `spec.check`
    /// (YAML).
    pub fn control(check: &str) -> Control {
        control_with(check, "")
    }

    /// [`control`] with extra spec fields (YAML mapping lines at spec level;
    /// a `severity:` among them replaces High).
    pub fn control_with(check: &str, extra_spec: &str) -> Control {
        let check = check
            .lines()
            .map(|l| format!("    {l}"))
            .collect::<Vec<_>>()
            .join("\n");
        let extra = extra_spec
            .lines()
            .map(|l| format!("  {l}"))
            .collect::<Vec<_>>()
            .join("\n");
        // `severity: High` unless the extra fields name another.
        let severity = if extra_spec.contains("severity:") {
            ""
        } else {
            "  severity: High\n"
        };
        let yaml = format!(
            "apiVersion: soc2-operator.dev/v1alpha1\nkind: Control\nmetadata:\n  name: test\n  generation: 1\nspec:\n  criteria: [CC6.1]\n  category: Security\n  title: test\n{severity}{extra}\n  check:\n{check}\n"
        );
        serde_yaml::from_str(&yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"))
    }

    /// A snapshot of YAML documents; namespaced objects without a namespace go
    /// to `default`; namespaces holding objects get a Namespace object.
    pub fn snapshot(docs: &[&str]) -> Snapshot {
        let mut s = Snapshot::default();
        for d in docs {
            s.insert_yaml(d, "default").unwrap();
        }
        s.add_implicit_namespaces();
        s
    }

    /// Namespace YAML.
    pub fn ns(name: &str) -> String {
        format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n")
    }

    pub fn eval(c: &Control, s: &Snapshot) -> Evaluation {
        evaluate(c, s, now())
    }

    /// `(reason, kind, namespace/name)` of every violation, in engine order.
    pub fn found(e: &Evaluation) -> Vec<(String, String, String)> {
        e.violations.iter().map(key).collect()
    }

    pub fn key(v: &Violation) -> (String, String, String) {
        let id = match &v.namespace {
            Some(ns) => format!("{ns}/{}", v.name),
            None => v.name.clone(),
        };
        (v.reason.clone(), v.kind.clone(), id)
    }

    /// Builds the expected list from string triples.
    pub fn expect(items: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
        let mut v: Vec<_> = items
            .iter()
            .map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string()))
            .collect();
        v.sort_by(|a, b| a.2.cmp(&b.2).then(a.1.cmp(&b.1)).then(a.0.cmp(&b.0)));
        v
    }

    /// Violations sorted like `expect` (by object then reason) for comparison.
    pub fn sorted(e: &Evaluation) -> Vec<(String, String, String)> {
        let mut v = found(e);
        v.sort_by(|a, b| a.2.cmp(&b.2).then(a.1.cmp(&b.1)).then(a.0.cmp(&b.0)));
        v
    }
}
