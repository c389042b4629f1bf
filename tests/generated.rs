//! Generated files match their generators, and the generated CRD documents
//! every field (what `kubectl explain control.spec…` shows).

use serde_json::Value;

#[test]
fn committed_crd_matches_the_rust_types() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crds/controls.soc2-operator.dev.yaml");
    let committed =
        std::fs::read_to_string(&path).expect("crds/controls.soc2-operator.dev.yaml exists");
    let generated = soc2_operator::api::crd_yaml();
    assert!(
        committed == generated,
        "crds/controls.soc2-operator.dev.yaml is out of date: run `make crds` and commit the result"
    );
}

fn undocumented(schema: &Value, path: &str, out: &mut Vec<String>) {
    if let Some(props) = schema.get("properties").and_then(Value::as_object) {
        for (name, sub) in props {
            let p = format!("{path}.{name}");
            let skip =
                path.is_empty() && ["apiVersion", "kind", "metadata"].contains(&name.as_str());
            if !skip
                && sub
                    .get("description")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
            {
                out.push(p.clone());
            }
            // Embedded Kubernetes types (metav1.Condition, LabelSelector) bring their own docs.
            undocumented(sub, &p, out);
        }
    }
    if let Some(items) = schema.get("items") {
        undocumented(items, &format!("{path}[]"), out);
    }
}

#[test]
fn every_field_of_the_crd_has_a_description() {
    let crd: Value = serde_yaml::from_str(&soc2_operator::api::crd_yaml()).unwrap();
    let schema = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut missing = Vec::new();
    undocumented(schema, "", &mut missing);
    assert!(
        missing.is_empty(),
        "fields without a description: {missing:#?}"
    );
}

#[test]
fn crd_has_the_printer_columns_and_categories_users_see() {
    let crd: Value = serde_yaml::from_str(&soc2_operator::api::crd_yaml()).unwrap();
    assert_eq!(crd["spec"]["scope"], "Cluster");
    assert_eq!(
        crd["spec"]["names"]["categories"],
        serde_json::json!(["soc2", "compliance"])
    );
    let cols: Vec<&str> = crd["spec"]["versions"][0]["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c.get("priority").is_none())
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    // Verdict (Compliant, NonCompliant, Unknown, InvalidSpec, NotEvaluated)
    // tells Unknown apart, where the Compliant condition's True/False/Unknown
    // would not tell Unknown from not yet evaluated.
    assert_eq!(
        cols,
        ["Category", "Criteria", "Verdict", "Violations", "Age"]
    );
    assert!(crd["spec"]["versions"][0]["subresources"]["status"].is_object());
}

/// The chart ships copies (Helm reads only files inside the chart): the CRDs,
/// the dashboard and the starter Controls must match their sources
/// (`make chart-files` copies them).
#[test]
fn chart_copies_match_their_sources() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let same = |a: &str, b: &str| {
        let (x, y) = (std::fs::read(root.join(a)), std::fs::read(root.join(b)));
        assert!(
            x.is_ok() && x.ok() == y.ok(),
            "{b} differs from {a}: run `make chart-files`"
        );
    };
    same(
        "crds/controls.soc2-operator.dev.yaml",
        "charts/soc2-operator/crds/controls.soc2-operator.dev.yaml",
    );
    same(
        "dashboards/soc2-operator.json",
        "charts/soc2-operator/files/dashboard.json",
    );
    let mut sources: Vec<_> = std::fs::read_dir(root.join("controls"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let mut copies: Vec<_> = std::fs::read_dir(root.join("charts/soc2-operator/files/controls"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    sources.sort();
    copies.sort();
    assert_eq!(sources, copies, "run `make chart-files`");
    for f in sources {
        let f = f.to_string_lossy();
        same(
            &format!("controls/{f}"),
            &format!("charts/soc2-operator/files/controls/{f}"),
        );
    }
}

/// Every starter Control is a valid Control for the engine.
#[test]
fn starter_controls_deserialize() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("controls");
    let mut n = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        let c: soc2_operator::api::Control = serde_yaml::from_str(&text).unwrap();
        assert!(soc2_operator::engine::check_is_set(&c.spec.check));
        n += 1;
    }
    assert!(n >= 5);
}

#[test]
fn docs_controls_md_matches_the_catalog() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/controls.md");
    let committed = std::fs::read_to_string(path).expect("docs/controls.md exists");
    assert!(
        committed == soc2_operator::commands::check::catalog_markdown(),
        "docs/controls.md is out of date: run `make docs`"
    );
}

/// The catalog covers every criterion that can be checked from cluster state.
#[test]
fn the_catalog_covers_the_checkable_criteria() {
    let md = soc2_operator::commands::check::catalog_markdown();
    for cr in [
        "CC6.1", "CC6.2", "CC6.3", "CC6.6", "CC6.7", "CC6.8", "CC7.1", "CC7.2", "CC8.1", "A1.1",
        "A1.2", "A1.3", "C1.1", "C1.2",
    ] {
        assert!(md.contains(&format!("| {cr} | `")), "{cr} has no Control");
    }
    assert!(soc2_operator::commands::check::BUILTIN_CONTROLS.len() >= 25);
}
