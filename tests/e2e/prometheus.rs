//! Alerts and dashboard against a real Prometheus (Debian's `prometheus`
//! package): `promtool check rules` and `promtool test rules` for every alert,
//! then a Prometheus on loopback scrapes a running operator, loads the alert
//! rules, and answers every PromQL expression of the dashboard — the core
//! panels with data.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::admission::install_control_crd;
use crate::support::controls::{
    TestControls, apply_control, create_static_pvc, scope_to, start_operator, volumes_check,
};
use crate::support::{self, eventually, unique_name};

fn repo(path: &str) -> String {
    support::repo_root()
        .join(path)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn promtool_checks_and_unit_tests_every_alert() {
    let check = Command::new("promtool")
        .args([
            "check",
            "rules",
            &repo("charts/soc2-operator/files/alerts.yaml"),
        ])
        .output()
        .expect("promtool (Debian package prometheus) is installed");
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    assert!(String::from_utf8_lossy(&check.stdout).contains("SUCCESS: 8 rules found"));
    let test = Command::new("promtool")
        .args(["test", "rules", &repo("tests/prometheus/alerts_test.yaml")])
        .output()
        .unwrap();
    assert!(
        test.status.success(),
        "{}{}",
        String::from_utf8_lossy(&test.stdout),
        String::from_utf8_lossy(&test.stderr)
    );
    // Every alert has a firing and a not-firing case.
    let tests = std::fs::read_to_string(repo("tests/prometheus/alerts_test.yaml")).unwrap();
    for alert in [
        "SOC2ControlNonCompliant",
        "SOC2ControlUnknown",
        "SOC2CriterionNonCompliant",
        "SOC2OperatorDown",
        "SOC2NoLeader",
        "SOC2EvaluationsStale",
        "SOC2ReconcileErrors",
        "SOC2ControlNotReady",
    ] {
        assert!(
            tests.matches(&format!("alertname: {alert}\n")).count() >= 2,
            "{alert} needs firing and not-firing tests"
        );
    }
}

pub struct Prometheus {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Prometheus on loopback scraping `target` every second, with the alert rules.
pub fn start_prometheus(target: &str) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{}]\nscrape_configs:\n  - job_name: soc2-operator\n    static_configs: [{{targets: ['{target}']}}]\n",
        repo("charts/soc2-operator/files/alerts.yaml")
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.path().join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus (Debian package) is installed");
    Prometheus {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    }
}

/// An instant query.
pub fn query(prom: &Prometheus, expr: &str) -> Option<Value> {
    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .new_agent();
    let mut resp = agent
        .get(format!("{}/api/v1/query", prom.url))
        .query("query", expr)
        .call()
        .ok()?;
    serde_json::from_str(&resp.body_mut().read_to_string().ok()?).ok()
}

#[tokio::test]
async fn prometheus_scrapes_the_operator_and_answers_the_dashboard() {
    let client = support::client().await;
    install_control_crd(&client).await;
    let kc = support::control_plane().kubeconfig.clone();
    let ns = support::namespace(&client, "prom").await;
    let test = TestControls::new("prom");
    let mut names = Vec::new();
    // A claim on a pre-provisioned volume (storageClassName ""): how it is
    // encrypted cannot be told, so the third Control is Unknown.
    create_static_pvc(&client, &ns.name, "legacy").await;
    for (i, (criteria, category, check)) in [
        (json!(["CC6.6"]), "Security", json!({"networkPolicy": {}})),
        (json!(["A1.1"]), "Availability", json!({"availability": {}})),
        (json!(["C1.1"]), "Confidentiality", volumes_check()),
    ]
    .into_iter()
    .enumerate()
    {
        let name = unique_name(&format!("prom-{i}"));
        apply_control(
            &client,
            &name,
            &test,
            json!({
                "criteria": criteria, "category": category, "severity": "High", "title": "prom",
                "scope": scope_to(&[&ns.name]), "check": check
            }),
        )
        .await;
        names.push(name);
    }
    let op = start_operator(&kc, &test, &[]);
    let target = op.base_url.trim_start_matches("http://").to_owned();
    let prom = start_prometheus(&target);
    // Scraped and evaluated.
    eventually(
        "Prometheus to scrape the operator",
        Duration::from_secs(60),
        || {
            let r = query(&prom, "count(soc2_control_compliant)");
            let n = r.and_then(|v| {
                v["data"]["result"][0]["value"][1]
                    .as_str()
                    .map(str::to_owned)
            });
            async move { (n.as_deref() == Some("3")).then_some(()) }
        },
    )
    .await;
    // The alert rules loaded and evaluate without errors.
    let rules: Value = {
        let agent = ureq::Agent::new_with_defaults();
        let mut r = agent
            .get(format!("{}/api/v1/rules", prom.url))
            .call()
            .unwrap();
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
    };
    let loaded: Vec<&Value> = rules["data"]["groups"][0]["rules"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(loaded.len(), 8);
    for r in loaded {
        assert_eq!(r["health"], "ok", "{r}");
    }

    let dashboard: Value = serde_json::from_str(
        &std::fs::read_to_string(repo("dashboards/soc2-operator.json")).unwrap(),
    )
    .unwrap();
    let panels = dashboard["panels"].as_array().unwrap();
    assert!(panels.len() >= 8);
    let core = [
        "Controls compliant (%)",
        "Compliance by TSC category",
        "Compliance by criterion",
        "Non-compliant Controls",
        "Unknown Controls",
        "Compliance over time",
        "Operator availability",
        "Violations by Control",
        "Cached objects by kind",
    ];
    for p in panels {
        let title = p["title"].as_str().unwrap();
        for t in p["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let r = query(&prom, expr).unwrap_or_else(|| panic!("{title}: no answer for {expr}"));
            assert_eq!(r["status"], "success", "{title}: {expr}: {r}");
            if core.contains(&title) {
                let result = r["data"]["result"].as_array().unwrap();
                assert!(
                    !result.is_empty(),
                    "core panel {title} has no data for {expr}"
                );
            }
        }
    }
    // The panels that must match the cluster: one Control non-compliant (no
    // default-deny in the namespace), the empty-namespace availability Control compliant.
    let table_panel = panels
        .iter()
        .find(|p| p["title"] == "Non-compliant Controls")
        .unwrap();
    let table = query(&prom, table_panel["targets"][0]["expr"].as_str().unwrap()).unwrap();
    let rows = table["data"]["result"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["metric"]["control"], names[0].as_str());
    // The Unknown Control is in its own table, and nowhere else.
    let unknown_panel = panels
        .iter()
        .find(|p| p["title"] == "Unknown Controls")
        .unwrap();
    let unknown = query(&prom, unknown_panel["targets"][0]["expr"].as_str().unwrap()).unwrap();
    let rows = unknown["data"]["result"].as_array().unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["metric"]["control"], names[2].as_str());
    assert_eq!(rows[0]["metric"]["category"], "Confidentiality");
    // kubectl shows the verdict in its own column.
    let table = support::kubectl(&kc, &["get", "control", &names[2], &names[0]]);
    let header = table.lines().next().unwrap();
    assert!(header.contains("VERDICT"), "{table}");
    let row = |n: &str| table.lines().find(|l| l.starts_with(n)).unwrap().to_owned();
    assert!(row(&names[2]).contains(" Unknown "), "{table}");
    assert!(row(&names[0]).contains(" NonCompliant "), "{table}");
    // On the real Prometheus, SOC2ControlUnknown is pending for the Unknown
    // Control, and SOC2ControlNonCompliant only for the NonCompliant one.
    eventually("the alerts to be pending", Duration::from_secs(60), || {
        let pending = pending_alerts(&prom);
        let want = [
            ("SOC2ControlNonCompliant".to_owned(), names[0].clone()),
            ("SOC2ControlUnknown".to_owned(), names[2].clone()),
        ];
        async move { (pending == want).then_some(()) }
    })
    .await;
}

/// `(alert, control)` of every pending or firing per-Control alert, sorted.
fn pending_alerts(prom: &Prometheus) -> Vec<(String, String)> {
    let r = query(
        prom,
        "ALERTS{alertname=~\"SOC2ControlNonCompliant|SOC2ControlUnknown\"}",
    )
    .unwrap_or_default();
    let mut out: Vec<(String, String)> = r["data"]["result"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|a| {
            let alert = a["metric"]["alertname"].as_str()?;
            let control = a["metric"]["control"].as_str()?;
            Some((alert.to_owned(), control.to_owned()))
        })
        .collect();
    out.sort();
    out
}
