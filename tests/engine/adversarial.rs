//! The adversarial reviews of issue 12: each finding a reviewer wrote as a
//! failing input (tests/fixtures/adversarial/<case>/: `objects.yaml`, the
//! Controls in `controls.yaml`, and in `expect.yaml` the finding and, per
//! Control, the verdict and every violation and undetermined finding as
//! `Reason Kind namespace/name`), judged offline as `check --manifests` judges
//! it.
use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use soc2_operator::commands::check::{controls_from, read_inputs, snapshot_from};
use soc2_operator::engine::evaluate;

/// The time the cases were written against (their timestamps are relative to it).
const WRITTEN_AT: &str = "2026-12-02T08:30:00Z";

#[derive(Deserialize)]
struct Expect {
    /// The finding, in the reviewer's words.
    finding: String,
    /// Per Control name.
    controls: BTreeMap<String, Expected>,
}

#[derive(Deserialize)]
struct Expected {
    verdict: String,
    findings: Vec<String>,
}

#[test]
fn every_adversarial_finding_is_judged_as_the_review_expects() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/adversarial");
    let mut cases = 0;
    for entry in std::fs::read_dir(&root).unwrap() {
        let dir = entry.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let case = dir.file_name().unwrap().to_string_lossy().to_string();
        let expect: Expect =
            serde_yaml::from_str(&std::fs::read_to_string(dir.join("expect.yaml")).unwrap())
                .unwrap_or_else(|e| panic!("{case}/expect.yaml: {e}"));
        let objects = read_inputs(dir.join("objects.yaml").to_str().unwrap()).unwrap();
        let (snapshot, errors) = snapshot_from(&objects, "default");
        assert!(errors.is_empty(), "{case}: {errors:?}");
        let controls = read_inputs(dir.join("controls.yaml").to_str().unwrap()).unwrap();
        let (controls, errors) = controls_from(&controls);
        assert!(errors.is_empty(), "{case}: {errors:?}");
        assert_eq!(controls.len(), expect.controls.len(), "{case}");
        for c in &controls {
            let name = c.metadata.name.clone().unwrap();
            let want = &expect.controls[&name];
            let e = evaluate(c, &snapshot, WRITTEN_AT.parse().unwrap());
            let mut found: Vec<String> = e
                .violations
                .iter()
                .chain(&e.undetermined)
                .map(|v| {
                    let ns = v
                        .namespace
                        .as_ref()
                        .map(|n| format!("{n}/"))
                        .unwrap_or_default();
                    format!("{} {} {ns}{}", v.reason, v.kind, v.name)
                })
                .collect();
            found.sort();
            found.dedup();
            assert_eq!(
                (e.verdict.name(), &found),
                (want.verdict.as_str(), &want.findings),
                "{case} ({}), Control {name}: {e:#?}",
                expect.finding
            );
        }
        cases += 1;
    }
    assert!(cases >= 35, "{cases} cases");
}
