use soc2_operator::api::Verification;
use soc2_operator::checks::encryption::tls_covers;
use soc2_operator::engine::Verdict;
use soc2_operator::snapshot::Snapshot;

use crate::util::*;

fn ingress(name: &str, hosts: &[&str], tls_hosts: Option<&[&str]>) -> String {
    let rules: Vec<String> = hosts
        .iter()
        .map(|h| format!("  - host: {h}\n    http: {{paths: [{{path: /, pathType: Prefix, backend: {{service: {{name: web, port: {{number: 80}}}}}}}}]}}"))
        .collect();
    let tls = match tls_hosts {
        None => String::new(),
        Some(t) => format!(
            "  tls:\n  - hosts: [{}]\n    secretName: cert\n",
            t.join(", ")
        ),
    };
    format!(
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata: {{name: {name}, namespace: web}}\nspec:\n  rules:\n{}\n{tls}",
        rules.join("\n")
    )
}

#[test]
fn tls_host_coverage() {
    assert!(tls_covers("shop.example.com", "shop.example.com"));
    assert!(tls_covers("Shop.Example.com", "shop.example.COM"));
    assert!(tls_covers("*.example.com", "shop.example.com"));
    assert!(
        !tls_covers("*.example.com", "a.shop.example.com"),
        "a wildcard covers one label"
    );
    assert!(!tls_covers("*.example.com", "example.com"));
    assert!(!tls_covers("shop.example.com", "api.example.com"));
}

#[test]
fn ingress_tls_table() {
    let cases: Vec<(&str, String, Vec<(&str, &str, &str)>)> = vec![
        (
            "all hosts covered",
            ingress(
                "i",
                &["a.example.com", "b.example.com"],
                Some(&["a.example.com", "b.example.com"]),
            ),
            vec![],
        ),
        (
            "wildcard covers",
            ingress("i", &["a.example.com"], Some(&["\"*.example.com\""])),
            vec![],
        ),
        (
            "TLS covers only some hosts",
            ingress(
                "i",
                &["a.example.com", "b.example.com", "c.example.com"],
                Some(&["a.example.com"]),
            ),
            vec![("HostsWithoutTLS", "Ingress", "web/i")],
        ),
        (
            "no tls at all",
            ingress("i", &["a.example.com"], None),
            vec![("IngressWithoutTLS", "Ingress", "web/i")],
        ),
    ];
    for (name, doc, expected) in cases {
        let s = snapshot(&[&doc]);
        let e = eval(&control("encryption: {inTransit: {}}"), &s);
        assert_eq!(sorted(&e), expect(&expected), "case: {name}");
    }
    // The message names exactly the uncovered hosts.
    let s = snapshot(&[&ingress(
        "i",
        &["a.example.com", "b.example.com", "c.example.com"],
        Some(&["a.example.com"]),
    )]);
    let e = eval(&control("encryption: {inTransit: {}}"), &s);
    assert!(
        e.violations[0]
            .message
            .ends_with("b.example.com, c.example.com"),
        "{}",
        e.violations[0].message
    );
}

#[test]
fn gateways_are_skipped_and_said_so_without_the_crds() {
    let s = snapshot(&[&ingress("i", &["a.example.com"], Some(&["a.example.com"]))]);
    let e = eval(&control("encryption: {inTransit: {}}"), &s);
    assert_eq!(e.verdict, Verdict::Compliant);
    assert!(
        e.notes
            .iter()
            .any(|n| n.contains("Gateway API CRDs") && n.contains("not installed")),
        "{:?}",
        e.notes
    );
}

fn gateway_snapshot(examples: &[&str]) -> Snapshot {
    let mut s = Snapshot::default();
    s.insert_yaml(
        &fixture("real/gateway-api/crds/gateway.networking.k8s.io_gateways.yaml"),
        "default",
    )
    .unwrap();
    s.insert_yaml(
        &fixture("real/gateway-api/crds/gateway.networking.k8s.io_httproutes.yaml"),
        "default",
    )
    .unwrap();
    for ex in examples {
        s.insert_yaml(
            &fixture(&format!("real/gateway-api/examples/{ex}")),
            "default",
        )
        .unwrap();
    }
    s.add_implicit_namespaces();
    s
}

/// `simple-http-https-gateway.yaml` has an HTTP listener on 80 and an HTTPS
/// listener on 443: the HTTP one is plaintext. `tls-basic.yaml` terminates TLS
/// (HTTPS): passes.
#[test]
fn gateway_api_examples() {
    let s = gateway_snapshot(&["tls-basic.yaml"]);
    assert!(
        !s.objects::<soc2_operator::resources::gateway::Gateway>()
            .is_empty()
    );
    let e = eval(&control("encryption: {inTransit: {}}"), &s);
    assert_eq!(found(&e), vec![], "{e:#?}");
    assert!(e.notes.is_empty());

    let s = gateway_snapshot(&["simple-http-https-gateway.yaml"]);
    let e = eval(&control("encryption: {inTransit: {}}"), &s);
    assert_eq!(e.verdict, Verdict::NonCompliant);
    assert!(
        e.violations
            .iter()
            .all(|v| v.reason == "PlaintextListener" && v.kind == "Gateway"),
        "{e:#?}"
    );
    assert!(
        e.violations
            .iter()
            .any(|v| v.message.contains("protocol HTTP"))
    );
}

/// The route the Gateway API docs ("HTTP redirects and rewrites") attach to
/// `redirect-gateway`'s `http` listener: it only redirects to https.
const REDIRECT_ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: http-filter-redirect}\nspec:\n  parentRefs: [{name: redirect-gateway, sectionName: http}]\n  hostnames: [redirect.example]\n  rules:\n  - filters:\n    - type: RequestRedirect\n      requestRedirect: {scheme: https, statusCode: 301}\n";

/// A route on the same listener that serves content in plain HTTP.
const SERVING_ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: plain}\nspec:\n  parentRefs: [{name: redirect-gateway, sectionName: http}]\n  rules:\n  - backendRefs: [{name: web, port: 80}]\n";

/// `http-redirect-rewrite-gateway-redirect-http-https.yaml` has an HTTP and an
/// HTTPS listener. With an HTTPRoute on `http` that only redirects to https, the
/// HTTP listener is allowed with `allowHttpRedirect` and a violation without it;
/// a route serving content on it is a violation either way.
#[test]
fn http_listener_that_only_redirects_is_allowed_by_option() {
    let mut s = gateway_snapshot(&["http-redirect-rewrite-gateway-redirect-http-https.yaml"]);
    let lenient_check = "encryption: {inTransit: {allowHttpRedirect: true}}";
    // No route attached: nothing shows the listener only redirects.
    assert_eq!(eval(&control(lenient_check), &s).violations.len(), 1);
    s.insert_yaml(REDIRECT_ROUTE, "default").unwrap();
    let strict = eval(&control("encryption: {inTransit: {}}"), &s);
    assert_eq!(
        sorted(&strict),
        expect(&[("PlaintextListener", "Gateway", "default/redirect-gateway")])
    );
    let lenient = eval(&control(lenient_check), &s);
    assert_eq!(found(&lenient), vec![], "{lenient:#?}");
    s.insert_yaml(SERVING_ROUTE, "default").unwrap();
    let lenient = eval(&control(lenient_check), &s);
    assert_eq!(
        sorted(&lenient),
        expect(&[("PlaintextListener", "Gateway", "default/redirect-gateway")])
    );
}

const CLASSES: &str = "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata:\n  name: ebs-encrypted\n  annotations: {storageclass.kubernetes.io/is-default-class: \"true\"}\nprovisioner: ebs.csi.aws.com\nparameters: {encrypted: \"true\", type: gp3}\n---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: ebs-plain}\nprovisioner: ebs.csi.aws.com\nparameters: {type: gp3}\n---\napiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: gke}\nprovisioner: pd.csi.storage.gke.io\n";

fn pvc(name: &str, class: Option<&str>) -> String {
    let class = class.map_or(String::new(), |c| format!("  storageClassName: \"{c}\"\n"));
    format!(
        "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {{name: {name}, namespace: data}}\nspec:\n{class}  accessModes: [ReadWriteOnce]\n  resources: {{requests: {{storage: 1Gi}}}}\n"
    )
}

#[test]
fn storage_class_table() {
    let check = "encryption:\n  atRest:\n    storageClasses:\n      requiredParameters: {encrypted: \"true\"}\n      allowedProvisioners: [pd.csi.storage.gke.io]";
    let s = snapshot(&[
        CLASSES,
        &pvc("default-class", None),
        &pvc("explicit-ok", Some("ebs-encrypted")),
        &pvc("allowed-provisioner", Some("gke")),
        &pvc("plain", Some("ebs-plain")),
        &pvc("missing", Some("nope")),
        &pvc("static", Some("")),
    ]);
    let e = eval(&control(check), &s);
    assert_eq!(
        sorted(&e),
        expect(&[
            (
                "UnknownStorageClass",
                "PersistentVolumeClaim",
                "data/missing"
            ),
            (
                "UnencryptedStorageClass",
                "PersistentVolumeClaim",
                "data/plain"
            ),
        ])
    );
    // `storageClassName: ""` binds a pre-provisioned PersistentVolume: how
    // it is encrypted cannot be told from the claim (Unknown, not a violation).
    assert_eq!(e.verdict, Verdict::NonCompliant);
    let undetermined: Vec<_> = e.undetermined.iter().map(key).collect();
    assert_eq!(
        undetermined,
        expect(&[("StaticVolume", "PersistentVolumeClaim", "data/static")])
    );
    assert!(
        e.evidence
            .iter()
            .any(|ev| ev.message.contains("ebs-encrypted") && ev.message.contains("gke"))
    );
}

#[test]
fn pvc_without_class_and_no_default_class_is_reported() {
    let s = snapshot(&[
        "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: x}\nprovisioner: p\n",
        &pvc("p", None),
    ]);
    let e = eval(
        &control("encryption: {atRest: {storageClasses: {allowedProvisioners: [p2]}}}"),
        &s,
    );
    assert_eq!(
        sorted(&e),
        expect(&[("UnknownStorageClass", "PersistentVolumeClaim", "data/p")])
    );
    assert!(e.violations[0].message.contains("no default StorageClass"));
}

const APISERVER_POD: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver-node1\n  namespace: kube-system\n  labels: {component: kube-apiserver, tier: control-plane}\nspec:\n  containers:\n  - name: kube-apiserver\n    image: registry.k8s.io/kube-apiserver:v1.36.3\n    command: [kube-apiserver, --etcd-servers=https://127.0.0.1:2379, FLAG]\n";

const METRICS_AESCBC: &str = "# HELP apiserver_storage_transformation_operations_total [ALPHA] Total number of transformations.\n# TYPE apiserver_storage_transformation_operations_total counter\napiserver_storage_transformation_operations_total{resource=\"secrets\",status=\"OK\",transformation_type=\"from_storage\",transformer_prefix=\"k8s:enc:aescbc:v1:\"} 12\napiserver_storage_transformation_operations_total{resource=\"secrets\",status=\"OK\",transformation_type=\"to_storage\",transformer_prefix=\"k8s:enc:aescbc:v1:\"} 3\n";

const METRICS_IDENTITY: &str = "# TYPE apiserver_storage_transformation_operations_total counter\napiserver_storage_transformation_operations_total{resource=\"secrets\",status=\"OK\",transformation_type=\"to_storage\",transformer_prefix=\"\"} 7\n";

/// Encrypting writes of ConfigMaps only: nothing said of Secrets.
const METRICS_CONFIGMAPS: &str = "# TYPE apiserver_storage_transformation_operations_total counter\napiserver_storage_transformation_operations_total{resource=\"configmaps\",status=\"OK\",transformation_type=\"to_storage\",transformer_prefix=\"k8s:enc:aescbc:v1:\"} 7\n";

/// Encrypting writes before the `resource` label (Kubernetes < 1.30): which
/// resource was encrypted cannot be told.
const METRICS_UNLABELLED: &str = "# TYPE apiserver_storage_transformation_operations_total counter\napiserver_storage_transformation_operations_total{status=\"OK\",transformation_type=\"to_storage\",transformer_prefix=\"k8s:enc:aescbc:v1:\"} 7\n";

/// Reads of Secrets still stored in plain text after encryption was turned on.
const METRICS_STALE: &str = "# TYPE apiserver_storage_transformation_operations_total counter\napiserver_storage_transformation_operations_total{resource=\"secrets\",status=\"OK\",transformation_type=\"to_storage\",transformer_prefix=\"k8s:enc:aescbc:v1:\"} 3\napiserver_storage_transformation_operations_total{resource=\"secrets\",status=\"OK\",transformation_type=\"from_storage\",transformer_prefix=\"identity\"} 40\n";

/// Two Secrets created (and a dry run, a failed create and a ConfigMap, which
/// wrote nothing or no Secret), and no transformation of a Secret counted:
/// no encryption configuration applies to Secrets.
const METRICS_CREATED_PLAIN: &str = "# TYPE apiserver_request_total counter\napiserver_request_total{code=\"201\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"secrets\",scope=\"resource\",subresource=\"\",verb=\"POST\",version=\"v1\"} 2\napiserver_request_total{code=\"201\",component=\"apiserver\",dry_run=\"All\",group=\"\",resource=\"secrets\",scope=\"resource\",subresource=\"\",verb=\"POST\",version=\"v1\"} 5\napiserver_request_total{code=\"409\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"secrets\",scope=\"resource\",subresource=\"\",verb=\"POST\",version=\"v1\"} 1\n";

/// Only requests that wrote nothing: a dry run and a conflict.
const METRICS_NOTHING_WRITTEN: &str = "# TYPE apiserver_request_total counter\napiserver_request_total{code=\"201\",component=\"apiserver\",dry_run=\"All\",group=\"\",resource=\"secrets\",scope=\"resource\",subresource=\"\",verb=\"POST\",version=\"v1\"} 5\napiserver_request_total{code=\"409\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"secrets\",scope=\"resource\",subresource=\"\",verb=\"POST\",version=\"v1\"} 1\n";

const ATTESTATION: &str = "{statement: \"EKS envelope encryption with KMS\", attestedBy: ciso@example.com, attestedAt: \"2026-05-01\"}";

/// Every source of Secret-encryption evidence, alone and against each other.
/// `spec.minimumEvidence` decides whether weaker evidence is enough: the test
/// Control is High (minimum Configured) unless a case says otherwise.
#[test]
fn secret_encryption_evidence_table() {
    let secrets = "encryption: {atRest: {secrets: {}}}".to_owned();
    let attested = format!("encryption: {{atRest: {{secrets: {{attestation: {ATTESTATION}}}}}}}");
    let flag = "--encryption-provider-config=/etc/k8s/enc.yaml";
    // (case, pod flag, metrics, check, extra spec, verdict, reason, best evidence)
    let cases: Vec<(
        &str,
        Option<&str>,
        Option<&str>,
        &str,
        &str,
        Verdict,
        &str,
        Option<(&str, Verification)>,
    )> = vec![
        (
            "mirror pod flag: a setting, Configured",
            Some(flag),
            None,
            &secrets,
            "",
            Verdict::Compliant,
            "Compliant",
            Some(("EncryptionProviderConfigFlag", Verification::Configured)),
        ),
        (
            "mirror pod flag on a Critical Control: below its Verified minimum",
            Some(flag),
            None,
            &secrets,
            "severity: Critical",
            Verdict::Unknown,
            "InsufficientEvidence",
            Some(("EncryptionProviderConfigFlag", Verification::Configured)),
        ),
        (
            "mirror pod without flag",
            Some("--v=2"),
            None,
            &secrets,
            "",
            Verdict::NonCompliant,
            "ViolationsFound",
            None,
        ),
        (
            "Secret writes through aescbc: Verified",
            None,
            Some(METRICS_AESCBC),
            &secrets,
            "severity: Critical",
            Verdict::Compliant,
            "Compliant",
            Some(("APIServerMetrics", Verification::Verified)),
        ),
        (
            "flag and encrypting writes: the writes are the stronger evidence",
            Some(flag),
            Some(METRICS_AESCBC),
            &secrets,
            "severity: Critical",
            Verdict::Compliant,
            "Compliant",
            Some(("APIServerMetrics", Verification::Verified)),
        ),
        (
            "flag, but Secret writes through identity: the metrics are read and win",
            Some(flag),
            Some(METRICS_IDENTITY),
            &secrets,
            "",
            Verdict::NonCompliant,
            "ViolationsFound",
            Some(("EncryptionProviderConfigFlag", Verification::Configured)),
        ),
        (
            "Secrets still stored in plain text are read back",
            None,
            Some(METRICS_STALE),
            &secrets,
            "",
            Verdict::NonCompliant,
            "ViolationsFound",
            None,
        ),
        (
            "identity writes plus an attestation: the API server's own count wins",
            None,
            Some(METRICS_IDENTITY),
            &attested,
            "minimumEvidence: Attested",
            Verdict::NonCompliant,
            "ViolationsFound",
            Some(("Attestation", Verification::Attested)),
        ),
        (
            "attestation only, minimum Attested",
            None,
            None,
            &attested,
            "minimumEvidence: Attested",
            Verdict::Compliant,
            "Compliant",
            Some(("Attestation", Verification::Attested)),
        ),
        (
            "attestation only, default minimum Configured",
            None,
            None,
            &attested,
            "",
            Verdict::Unknown,
            "InsufficientEvidence",
            Some(("Attestation", Verification::Attested)),
        ),
        (
            "encrypting writes of ConfigMaps say nothing of Secrets",
            None,
            Some(METRICS_CONFIGMAPS),
            &secrets,
            "",
            Verdict::Unknown,
            "NoEncryptionEvidence",
            None,
        ),
        (
            "metrics without the resource label say nothing of Secrets",
            None,
            Some(METRICS_UNLABELLED),
            &secrets,
            "",
            Verdict::Unknown,
            "NoEncryptionEvidence",
            None,
        ),
        (
            "Secrets created, no transformation of a Secret counted: no provider applies to them",
            None,
            Some(METRICS_CREATED_PLAIN),
            &secrets,
            "",
            Verdict::NonCompliant,
            "ViolationsFound",
            None,
        ),
        (
            "dry runs and failed creates wrote nothing",
            None,
            Some(METRICS_NOTHING_WRITTEN),
            &secrets,
            "",
            Verdict::Unknown,
            "NoEncryptionEvidence",
            None,
        ),
        (
            "no evidence at all (a managed control plane): Unknown",
            None,
            None,
            &secrets,
            "",
            Verdict::Unknown,
            "NoEncryptionEvidence",
            None,
        ),
    ];
    for (name, flag, metrics, check, extra, verdict, reason, best) in cases {
        let mut s = Snapshot::default();
        if let Some(f) = flag {
            s.insert_yaml(&APISERVER_POD.replace("FLAG", f), "default")
                .unwrap();
        }
        if let Some(m) = metrics {
            s.set_apiserver_metrics_text(m).unwrap();
        }
        s.add_implicit_namespaces();
        let e = eval(&control_with(check, extra), &s);
        assert_eq!(e.verdict, verdict, "case: {name}: {e:#?}");
        assert_eq!(e.reason, reason, "case: {name}: {e:#?}");
        let strongest = e.evidence.iter().max_by_key(|ev| ev.verification.rank());
        assert_eq!(
            strongest.map(|ev| (ev.source.as_str(), ev.verification)),
            best,
            "case: {name}: {e:#?}"
        );
    }
}

#[test]
fn aescbc_prefix_is_named_in_the_evidence() {
    let mut s = Snapshot::default();
    s.set_apiserver_metrics_text(METRICS_AESCBC).unwrap();
    let e = eval(&control("encryption: {atRest: {secrets: {}}}"), &s);
    assert!(
        e.evidence[0].message.contains("k8s:enc:aescbc:v1:"),
        "{:?}",
        e.evidence
    );
}

#[test]
fn attestation_over_identity_metrics_says_the_api_server_does_not_encrypt() {
    let mut s = Snapshot::default();
    s.set_apiserver_metrics_text(METRICS_IDENTITY).unwrap();
    let e = eval(
        &control_with(
            "encryption: {atRest: {secrets: {attestation: {statement: GKE encrypts etcd disks, attestedBy: sre@example.com, attestedAt: \"2026-05-01\"}}}}",
            "minimumEvidence: Attested",
        ),
        &s,
    );
    assert_eq!(e.verdict, Verdict::NonCompliant, "{e:#?}");
    assert_eq!(e.violations[0].reason, "SecretsWrittenUnencrypted");
    assert!(e.violations[0].message.contains("identity provider"));
    // The attestation is still shown, with who and when, beside the violation.
    let a = e
        .evidence
        .iter()
        .find(|ev| ev.verification == Verification::Attested)
        .expect("the attestation is evidence");
    assert!(a.message.starts_with("GKE encrypts etcd disks"), "{a:?}");
    assert_eq!(a.attested_by.as_deref(), Some("sre@example.com"));
}

/// Secrets created on an API server older than the `resource` label: its
/// transformations name no resource, so whether they were Secrets' cannot be
/// told, and nothing is concluded from the creates.
#[test]
fn secrets_created_on_an_api_server_without_the_resource_label_are_not_judged() {
    let mut s = Snapshot::default();
    s.set_apiserver_metrics_text(&format!("{METRICS_CREATED_PLAIN}{METRICS_UNLABELLED}"))
        .unwrap();
    let e = eval(&control("encryption: {atRest: {secrets: {}}}"), &s);
    assert_eq!(
        (e.verdict, e.reason.as_str()),
        (Verdict::Unknown, "NoEncryptionEvidence"),
        "{e:#?}"
    );
    let mut s = Snapshot::default();
    s.set_apiserver_metrics_text(METRICS_CREATED_PLAIN).unwrap();
    let e = eval(&control("encryption: {atRest: {secrets: {}}}"), &s);
    assert_eq!(e.violations[0].reason, "SecretsWrittenUnencrypted");
    assert!(
        e.violations[0].message.contains("created 2 Secrets"),
        "{}",
        e.violations[0].message
    );
}

/// Each kube-apiserver replica counts its own Secret writes, and a `/metrics`
/// read reaches one of them: with three replicas visible the count is one
/// replica's, Configured for the cluster, and a Critical Control (minimum
/// Verified) cannot be told compliant from it.
#[test]
fn metrics_of_one_of_several_api_server_replicas_are_not_verified() {
    let flag = "--encryption-provider-config=/etc/k8s/enc.yaml";
    let mut s = Snapshot::default();
    for n in 1..=3 {
        let pod = APISERVER_POD
            .replace("FLAG", flag)
            .replace("kube-apiserver-node1", &format!("kube-apiserver-node{n}"));
        s.insert_yaml(&pod, "default").unwrap();
    }
    s.set_apiserver_metrics_text(METRICS_AESCBC).unwrap();
    s.add_implicit_namespaces();
    let e = eval(
        &control_with("encryption: {atRest: {secrets: {}}}", "severity: Critical"),
        &s,
    );
    assert_eq!(
        (e.verdict, e.reason.as_str()),
        (Verdict::Unknown, "InsufficientEvidence"),
        "{e:#?}"
    );
    let sources: Vec<(&str, Verification)> = e
        .evidence
        .iter()
        .map(|ev| (ev.source.as_str(), ev.verification))
        .collect();
    assert!(
        sources.contains(&("APIServerMetricsOneReplica", Verification::Configured)),
        "{sources:?}"
    );
    assert!(
        !sources.iter().any(|(_, v)| *v == Verification::Verified),
        "{sources:?}"
    );
    let one = e
        .evidence
        .iter()
        .find(|ev| ev.source == "APIServerMetricsOneReplica")
        .unwrap();
    assert!(one.message.contains("one of 3"), "{one:?}");
}
