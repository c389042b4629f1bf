//! `soc2-operator check`: exit codes, output formats (parsed back with
//! well-kept libraries) and broken input named by file, document and line.
//! Offline (`--manifests`), so no cluster is needed.

use std::process::{Command, Output};

fn repo(p: &str) -> String {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(p)
        .to_string_lossy()
        .into_owned()
}

fn check(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_soc2-operator"))
        .arg("check")
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run soc2-operator check")
}

const BOUTIQUE: &str = "tests/fixtures/real/microservices-demo/kubernetes-manifests.yaml";

#[test]
fn exit_codes_follow_the_verdicts_and_fail_on() {
    // Online Boutique fails the built-in catalog (no network policies, 1 replica).
    let out = check(&["--manifests", &repo(BOUTIQUE)]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Its Ingress-free manifests pass a TLS-only control: 0.
    let out = check(&[
        "--manifests",
        &repo(BOUTIQUE),
        "--controls",
        &repo("tests/fixtures/check/tls-only.yaml"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Only Low-severity failures, failing on Medium and above: 0.
    let fail = check(&[
        "--manifests",
        &repo(BOUTIQUE),
        "--controls",
        &repo("controls/workloads-highly-available.yaml"),
    ]);
    assert_eq!(fail.status.code(), Some(1));
    let pass = check(&[
        "--manifests",
        &repo(BOUTIQUE),
        "--controls",
        &repo("controls/workloads-highly-available.yaml"),
        "--fail-on",
        "high",
    ]);
    assert_eq!(
        pass.status.code(),
        Some(0),
        "a Medium control does not fail --fail-on high"
    );
    // Unknown fails the gate unless --allow-unknown: offline, Secret
    // encryption cannot be told from Online Boutique's manifests.
    let unknown = [
        "--manifests",
        &repo(BOUTIQUE),
        "--controls",
        &repo("controls/secrets-encrypted-at-rest.yaml"),
    ];
    let out = check(&unknown);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Unknown"));
    let allowed: Vec<&str> = unknown.iter().copied().chain(["--allow-unknown"]).collect();
    assert_eq!(check(&allowed).status.code(), Some(0));
    // Usage error: 2.
    assert_eq!(check(&["--output", "xml"]).status.code(), Some(2));
    assert_eq!(
        check(&["--manifests", "/nonexistent/path"]).status.code(),
        Some(2)
    );
}

#[test]
fn a_broken_document_is_named_and_the_others_are_still_evaluated() {
    let out = check(&[
        "--manifests",
        &repo("tests/fixtures/check/broken.yaml"),
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.yaml: document 3, line 21"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let np = report["controls"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "network-default-deny")
        .unwrap();
    // The first two documents were read: the namespace has an ingress deny (egress missing).
    let violations: Vec<&str> = np["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["reason"].as_str().unwrap())
        .collect();
    assert_eq!(violations, ["MissingDefaultDenyEgress"], "{np}");
}

#[test]
fn json_lists_every_control_with_its_violations() {
    let out = check(&["--manifests", &repo(BOUTIQUE), "--output", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let controls = report["controls"].as_array().unwrap();
    let catalog = std::fs::read_dir(repo("controls")).unwrap().count();
    assert_eq!(
        controls.len(),
        catalog,
        "every Control of the embedded catalog"
    );
    let np = controls
        .iter()
        .find(|c| c["name"] == "network-default-deny")
        .unwrap();
    assert_eq!(np["verdict"], "NonCompliant");
    assert_eq!(
        np["violations"].as_array().unwrap().len(),
        2,
        "ingress and egress for namespace default"
    );
}

#[test]
fn junit_parses_with_one_testcase_per_control() {
    let out = check(&["--manifests", &repo(BOUTIQUE), "--output", "junit"]);
    let xml = String::from_utf8(out.stdout).unwrap();
    let json: serde_json::Value = serde_json::from_slice(
        &check(&["--manifests", &repo(BOUTIQUE), "--output", "json"]).stdout,
    )
    .unwrap();
    let controls = json["controls"].as_array().unwrap();
    let count = |verdict: &str| controls.iter().filter(|c| c["verdict"] == verdict).count();
    let (non_compliant, unknown) = (count("NonCompliant"), count("Unknown"));
    assert!(
        unknown >= 2,
        "offline, Secret encryption and backups cannot be told"
    );
    let mut reader = quick_xml::Reader::from_str(&xml);
    let (mut testcases, mut failures) = (0, 0);
    loop {
        match reader.read_event().expect("well-formed JUnit XML") {
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                match e.name().as_ref() {
                    b"testcase" => testcases += 1,
                    b"failure" => failures += 1,
                    _ => {}
                }
            }
            quick_xml::events::Event::Eof => break,
            _ => {}
        }
    }
    assert_eq!(testcases, controls.len());
    assert_eq!(
        failures,
        non_compliant + unknown,
        "a failure per NonCompliant or Unknown Control"
    );
    assert!(failures >= 4);
    // With --allow-unknown, Unknown Controls are skipped, not failed.
    let out = check(&[
        "--manifests",
        &repo(BOUTIQUE),
        "--output",
        "junit",
        "--allow-unknown",
    ]);
    let xml = String::from_utf8(out.stdout).unwrap();
    assert_eq!(xml.matches("<failure").count(), non_compliant);
    assert_eq!(xml.matches("<skipped").count(), unknown);
}

#[test]
fn sarif_parses_as_sarif_2_1_0() {
    let out = check(&["--manifests", &repo(BOUTIQUE), "--output", "sarif"]);
    let sarif: serde_sarif::sarif::Sarif =
        serde_json::from_slice(&out.stdout).expect("valid SARIF");
    let run = &sarif.runs[0];
    assert_eq!(run.tool.driver.name, "soc2-operator");
    let results = run.results.as_ref().unwrap();
    let json: serde_json::Value = serde_json::from_slice(
        &check(&["--manifests", &repo(BOUTIQUE), "--output", "json"]).stdout,
    )
    .unwrap();
    let total = |field: &str| -> usize {
        json["controls"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c[field].as_array().map_or(0, Vec::len))
            .sum()
    };
    let (violations, undetermined) = (total("violations"), total("undetermined"));
    assert!(undetermined > 0);
    assert_eq!(
        results.len(),
        violations + undetermined,
        "a SARIF result per violation and per undetermined finding"
    );
    // Undetermined findings are notes, told apart by their verdict.
    let notes: Vec<_> = results
        .iter()
        .filter(|r| {
            r.properties
                .as_ref()
                .and_then(|p| p.additional_properties.get("verdict"))
                .and_then(|v| v.as_str())
                == Some("Unknown")
        })
        .collect();
    assert_eq!(notes.len(), undetermined);
    assert!(
        notes
            .iter()
            .all(|r| matches!(r.level, Some(serde_sarif::sarif::ResultLevel::Note)))
    );
    assert!(
        results
            .iter()
            .any(|r| r.rule_id.as_deref() == Some("network-default-deny"))
    );
    assert!(results.iter().all(|r| r.rule_id.is_some()));
}

/// A syntax error in the middle of a stream does not hide the documents after
/// it; SARIF and JUnit carry the input error too.
#[test]
fn documents_after_a_syntax_error_are_still_read() {
    let file = repo("tests/fixtures/check/broken-middle.yaml");
    let controls = repo("controls/privileged-workloads-forbidden.yaml");
    let out = check(&[
        "--manifests",
        &file,
        "--controls",
        &controls,
        "--output",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken-middle.yaml: document 2, line 10: mapping values are not allowed"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["controls"][0]["violations"][0]["name"], "priv",
        "document 3 was evaluated"
    );

    let out = check(&[
        "--manifests",
        &file,
        "--controls",
        &controls,
        "--output",
        "sarif",
    ]);
    let sarif: serde_sarif::sarif::Sarif = serde_json::from_slice(&out.stdout).unwrap();
    let inv = &sarif.runs[0].invocations.as_ref().unwrap()[0];
    assert!(!inv.execution_successful);
    assert_eq!(inv.tool_execution_notifications.as_ref().unwrap().len(), 1);

    let out = check(&[
        "--manifests",
        &file,
        "--controls",
        &controls,
        "--output",
        "junit",
    ]);
    let xml = String::from_utf8(out.stdout).unwrap();
    assert!(
        xml.contains("tests=\"2\"") && xml.matches("<testcase").count() == 2,
        "{xml}"
    );
}

/// Velero's own objects (here a BackupStorageLocation in `velero`) do not make
/// their namespace one to check offline: only the workload namespace
/// (`nginx-example`) is judged.
#[test]
fn velero_objects_alone_do_not_put_their_namespace_in_scope() {
    let out = check(&[
        "--manifests",
        &repo("tests/fixtures/real/velero/examples"),
        "--controls",
        &repo("controls/network-default-deny-ingress.yaml"),
        "--output",
        "json",
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let namespaces: Vec<&str> = report["controls"][0]["violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(namespaces, ["nginx-example"]);
}
