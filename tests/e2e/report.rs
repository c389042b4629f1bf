//! `soc2-operator report` on the real control plane: grouped evidence, the
//! cluster identity, a verifiable SHA-256 digest, a self-contained HTML page,
//! and compliance over a period from a real Prometheus scraping the operator.

use std::time::Duration;

use k8s_openapi::api::core::v1::Namespace;
use kube::Api;
use serde_json::{Value, json};
use soc2_operator::api::conditions::READY;
use soc2_operator::commands::report::sha256_hex;

use crate::admission::install_control_crd;
use crate::prometheus::{query, start_prometheus};
use crate::support::controls::{
    TestControls, apply_control, condition, create_deny_ingress, create_static_pvc, scope_to,
    start_operator, volumes_check, wait_control,
};
use crate::support::{self, eventually, unique_name};

fn report(args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_soc2-operator"))
        .arg("report")
        .args(args)
        .env("KUBECONFIG", &support::control_plane().kubeconfig)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Every entry of `name` in the report's categories.
fn entries<'a>(report: &'a Value, name: &str) -> Vec<&'a Value> {
    report["categories"]
        .as_object()
        .unwrap()
        .values()
        .flat_map(|criteria| criteria.as_object().unwrap().values())
        .flat_map(|controls| controls.as_array().unwrap())
        .filter(|c| c["name"] == name)
        .collect()
}

#[tokio::test]
async fn the_report_groups_evidence_and_proves_its_integrity() {
    let client = support::client().await;
    install_control_crd(&client).await;
    let kc = support::control_plane().kubeconfig.clone();
    let ns = support::namespace(&client, "report").await;
    let test = TestControls::new("report");
    let bad = unique_name("report-np");
    let good = unique_name("report-avail");
    apply_control(&client, &bad, &test, json!({
        "criteria": ["CC6.6"], "category": "Security", "severity": "High", "title": "Default deny",
        "scope": scope_to(&[&ns.name]), "check": {"networkPolicy": {}}
    })).await;
    apply_control(&client, &good, &test, json!({
        "criteria": ["A1.1"], "category": "Availability", "severity": "Medium", "title": "Replicated",
        "scope": scope_to(&[&ns.name]), "check": {"availability": {}}
    })).await;
    // A third Control cannot tell (a claim on a pre-provisioned volume).
    let unknown = unique_name("report-unknown");
    create_static_pvc(&client, &ns.name, "legacy").await;
    apply_control(&client, &unknown, &test, json!({
        "criteria": ["C1.1"], "category": "Confidentiality", "severity": "High", "title": "Encrypted volumes",
        "scope": scope_to(&[&ns.name]), "check": volumes_check()
    })).await;
    let op = start_operator(&kc, &test, &[]);
    for n in [&bad, &good, &unknown] {
        wait_control(&client, n, "evaluated", Duration::from_secs(30), |c| {
            condition(c, READY).is_some()
        })
        .await;
    }
    let prom = start_prometheus(op.base_url.trim_start_matches("http://"));
    // Scraped for about two minutes: non-compliant for the first minute, then
    // compliant: the period statistics must show the share and one transition.
    let samples = |control: &str| {
        query(
            &prom,
            &format!("count_over_time(soc2_control_compliant{{control=\"{control}\"}}[5m])"),
        )
        .and_then(|v| {
            v["data"]["result"][0]["value"][1]
                .as_str()
                .and_then(|s| s.parse::<f64>().ok())
        })
        .unwrap_or(0.0)
    };
    eventually("a minute of scrapes", Duration::from_secs(150), || {
        let n = samples(&bad);
        async move { (n >= 60.0).then_some(()) }
    })
    .await;
    create_deny_ingress(&client, &ns.name, "deny").await;
    eventually(
        "a second minute of scrapes",
        Duration::from_secs(150),
        || {
            let n = samples(&bad);
            async move { (n >= 120.0).then_some(()) }
        },
    )
    .await;

    // JSON: identity, grouping, verdicts, period statistics, digest.
    let text = report(&[
        "--format",
        "json",
        "--prometheus",
        &prom.url,
        "--period",
        "5m",
    ]);
    let doc: Value = serde_json::from_str(&text).unwrap();
    let body = &doc["report"];
    let uid = Api::<Namespace>::all(client.clone())
        .get("kube-system")
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    assert_eq!(body["clusterUID"], uid.as_str());
    assert_eq!(body["operatorVersion"], soc2_operator::VERSION);
    assert_eq!(
        doc["sha256"],
        sha256_hex(serde_json::to_string(body).unwrap().as_bytes()).as_str()
    );
    let b = entries(body, &bad);
    assert_eq!(b.len(), 1);
    assert!(
        body["categories"]["Security"]["CC6.6"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == bad.as_str())
    );
    assert_eq!(b[0]["compliant"]["status"], "True", "compliant at the end");
    let fraction = b[0]["period"]["compliantFraction"].as_f64().unwrap();
    assert!(
        (0.2..0.8).contains(&fraction),
        "compliant for part of the period: {fraction}"
    );
    assert_eq!(b[0]["period"]["transitions"].as_u64(), Some(1));
    let g = entries(body, &good);
    assert_eq!(g[0]["compliant"]["status"], "True");
    assert_eq!(g[0]["period"]["compliantFraction"].as_f64(), Some(1.0));
    assert_eq!(g[0]["period"]["transitions"].as_u64(), Some(0));
    let u = entries(body, &unknown);
    assert_eq!(u[0]["verdict"], "Unknown", "{}", u[0]);
    assert_eq!(u[0]["compliant"]["status"], "Unknown");

    // Markdown: grouped, and the digest covers everything above it.
    let md = report(&["--format", "markdown"]);
    let (text, digest_line) = md.rsplit_once("\n---\n").unwrap();
    assert!(
        digest_line.contains(&sha256_hex(text.as_bytes())),
        "digest does not verify"
    );
    assert!(
        md.contains("## Security") && md.contains("### CC6.6") && md.contains(&format!("`{bad}`"))
    );
    assert!(md.contains(&format!("Cluster (kube-system UID): {uid}")));
    // Unknown is told apart, with what could not be judged.
    assert!(md.contains("Unknown (cannot be told)"), "{md}");
    assert!(
        md.contains(&format!(
            "- cannot tell: PersistentVolumeClaim {}/legacy",
            ns.name
        )),
        "{md}"
    );

    // HTML: one self-contained page.
    let html = report(&["--format", "html"]);
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
    for external in ["http://", "https://", "<script", "src=", "<link"] {
        assert!(
            !html.contains(external),
            "the page must make no external request ({external})"
        );
    }
    assert!(html.contains(&bad) && html.contains("@media print"));
    assert!(
        html.contains("class=\"unknown\">Unknown (cannot be told)"),
        "the Unknown verdict has its own style"
    );
    assert!(md.contains("Compliant"));
    assert_renders_in_chromium(&html);
}

/// Renders `html` in headless Chromium (Debian's `chromium`) and checks the
/// screenshot is a real page: the right size, mostly background, with text.
fn assert_renders_in_chromium(html: &str) {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let shot = dir.path().join("report.png");
    std::fs::write(&page, html).unwrap();
    let out = std::process::Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1200,1600",
        ])
        .arg(format!(
            "--user-data-dir={}",
            dir.path().join("profile").display()
        ))
        .arg(format!("--screenshot={}", shot.display()))
        .arg(format!("file://{}", page.display()))
        .output()
        .expect("chromium (Debian package) is installed");
    assert!(
        shot.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&shot).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap();
    assert_eq!((info.width, info.height), (1200, 1600));
    let bytes = &buf[..info.buffer_size()];
    let px = info.color_type.samples();
    let (mut dark, mut light) = (0usize, 0usize);
    for p in bytes.chunks(px) {
        let lum = (u32::from(p[0]) + u32::from(p[1]) + u32::from(p[2])) / 3;
        if lum < 100 {
            dark += 1;
        } else if lum > 230 {
            light += 1;
        }
    }
    let total = (info.width * info.height) as usize;
    assert!(
        light > total / 2,
        "mostly page background ({light} of {total} light pixels)"
    );
    assert!(dark > 2_000, "text was drawn ({dark} dark pixels)");
}

/// `soc2-operator check` without `--manifests` reads the live cluster.
#[tokio::test]
async fn check_reads_the_live_cluster() {
    let client = support::client().await;
    let ns = support::namespace(&client, "live-check").await;
    let controls = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(
        controls.path(),
        serde_yaml::to_string(&json!({
            "apiVersion": "soc2-operator.dev/v1alpha1", "kind": "Control", "metadata": {"name": "live-np"},
            "spec": {"criteria": ["CC6.6"], "category": "Security", "severity": "High", "title": "np",
                     "scope": scope_to(&[&ns.name]), "check": {"networkPolicy": {}}}
        }))
        .unwrap(),
    )
    .unwrap();
    let run = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_soc2-operator"))
            .args(["check", "--output", "json", "--controls"])
            .arg(controls.path())
            .env("KUBECONFIG", &support::control_plane().kubeconfig)
            .output()
            .unwrap()
    };
    let out = run();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let v = &report["controls"][0]["violations"];
    assert_eq!(v[0]["name"], ns.name.as_str());
    create_deny_ingress(&client, &ns.name, "deny").await;
    assert_eq!(
        run().status.code(),
        Some(0),
        "compliant once the policy exists"
    );
}
