//! The CC6.8, CC7.2 and CC8.1 families: workload security, audit logging,
//! image provenance.
use soc2_operator::api::Verification;
use soc2_operator::checks::image_provenance::pinned;
use soc2_operator::engine::Verdict;

use crate::util::*;

fn deploy(name: &str, pod_extra: &str, container_extra: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: {name}, namespace: app}}\nspec:\n  selector: {{matchLabels: {{app: {name}}}}}\n  template:\n    metadata: {{labels: {{app: {name}}}}}\n    spec:\n{pod_extra}      containers:\n      - name: main\n        image: \"{image}\"\n{container_extra}"
    )
}

const IMG: &str = "registry.example.com/team/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn workload_security_table() {
    let cases: Vec<(&str, String, &str, Vec<(&str, &str, &str)>)> = vec![
        (
            "hardened",
            deploy("ok", "", "", IMG),
            "workloadSecurity: {}",
            vec![],
        ),
        (
            "privileged",
            deploy(
                "p",
                "",
                "        securityContext: {privileged: true}\n",
                IMG,
            ),
            "workloadSecurity: {}",
            vec![("PrivilegedContainer", "Deployment", "app/p")],
        ),
        (
            "privileged init container",
            deploy(
                "i",
                "      initContainers: [{name: init, image: busybox, securityContext: {privileged: true}}]\n",
                "",
                IMG,
            ),
            "workloadSecurity: {}",
            vec![("PrivilegedContainer", "Deployment", "app/i")],
        ),
        (
            "host namespaces",
            deploy(
                "h",
                "      hostNetwork: true\n      hostPID: true\n",
                "",
                IMG,
            ),
            "workloadSecurity: {}",
            vec![("HostNamespaces", "Deployment", "app/h")],
        ),
        (
            "hostPath allowed by default",
            deploy(
                "v",
                "      volumes: [{name: root, hostPath: {path: /}}]\n",
                "",
                IMG,
            ),
            "workloadSecurity: {}",
            vec![],
        ),
        (
            "hostPath forbidden",
            deploy(
                "v",
                "      volumes: [{name: root, hostPath: {path: /}}]\n",
                "",
                IMG,
            ),
            "workloadSecurity: {forbidHostPath: true}",
            vec![("HostPathVolume", "Deployment", "app/v")],
        ),
        (
            "NET_BIND_SERVICE is fine",
            deploy(
                "c",
                "",
                "        securityContext: {capabilities: {add: [NET_BIND_SERVICE]}}\n",
                IMG,
            ),
            "workloadSecurity: {forbidAddedCapabilities: true}",
            vec![],
        ),
        (
            "SYS_ADMIN is not",
            deploy(
                "c",
                "",
                "        securityContext: {capabilities: {add: [SYS_ADMIN]}}\n",
                IMG,
            ),
            "workloadSecurity: {forbidAddedCapabilities: true}",
            vec![("AddedCapabilities", "Deployment", "app/c")],
        ),
    ];
    for (name, doc, check, expected) in cases {
        let e = eval(&control(check), &snapshot(&[&doc]));
        assert_eq!(sorted(&e), expect(&expected), "case: {name}");
    }
}

#[test]
fn digests_are_recognised() {
    assert!(pinned(IMG));
    assert!(!pinned("nginx:1.27"));
    assert!(!pinned("nginx@sha256:abc"));
}

#[test]
fn image_provenance_table() {
    let registries = "imageProvenance: {allowedRegistries: [registry.example.com/]}";
    let digest = "imageProvenance: {requireDigest: true}";
    let both = "imageProvenance: {allowedRegistries: [registry.example.com/], requireDigest: true}";
    let cases: Vec<(&str, String, &str, Vec<(&str, &str, &str)>)> = vec![
        (
            "approved and pinned",
            deploy("a", "", "", IMG),
            both,
            vec![],
        ),
        (
            "foreign registry",
            deploy("f", "", "", "docker.io/library/nginx:1.27"),
            registries,
            vec![("UnapprovedRegistry", "Deployment", "app/f")],
        ),
        (
            "tag only",
            deploy("t", "", "", "registry.example.com/team/app:1.2"),
            digest,
            vec![("ImageNotPinned", "Deployment", "app/t")],
        ),
        (
            "both wrong",
            deploy("b", "", "", "nginx"),
            both,
            vec![
                ("ImageNotPinned", "Deployment", "app/b"),
                ("UnapprovedRegistry", "Deployment", "app/b"),
            ],
        ),
    ];
    for (name, doc, check, expected) in cases {
        let e = eval(&control(check), &snapshot(&[&doc]));
        assert_eq!(sorted(&e), expect(&expected), "case: {name}");
    }
    let e = eval(&control("imageProvenance: {}"), &snapshot(&[&ns("app")]));
    assert_eq!(e.verdict, Verdict::InvalidSpec);
}

/// Online Boutique pins no image by digest (tags only, from us-central1-docker.pkg.dev
/// and busybox/redis from Docker Hub): every Deployment is reported.
#[test]
fn online_boutique_images_are_not_pinned() {
    let mut s = soc2_operator::snapshot::Snapshot::default();
    s.insert_yaml(
        &fixture("real/microservices-demo/kubernetes-manifests.yaml"),
        "boutique",
    )
    .unwrap();
    s.add_implicit_namespaces();
    let e = eval(&control("imageProvenance: {requireDigest: true}"), &s);
    assert_eq!(e.violations.len(), 12);
    assert!(e.violations.iter().all(|v| v.reason == "ImageNotPinned"));
}

fn apiserver(name: &str, flags: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Pod\nmetadata: {{name: {name}, namespace: kube-system, labels: {{component: kube-apiserver}}}}\nspec: {{containers: [{{name: kube-apiserver, command: [kube-apiserver, {flags}]}}]}}\n"
    )
}

#[test]
fn audit_logging_table() {
    let check = "auditLogging: {}";
    let ok = apiserver(
        "kube-apiserver-a",
        "--audit-policy-file=/etc/audit.yaml, --audit-log-path=/var/log/audit.log",
    );
    let webhook = apiserver(
        "kube-apiserver-b",
        "--audit-policy-file=/etc/audit.yaml, --audit-webhook-config-file=/etc/wh.yaml",
    );
    let no_backend = apiserver("kube-apiserver-c", "--audit-policy-file=/etc/audit.yaml");
    let nothing = apiserver("kube-apiserver-d", "--v=2");
    // The flags are a setting (Configured): enough for a High Control, not
    // for a Critical one.
    let e = eval(&control(check), &snapshot(&[&ok, &webhook]));
    assert_eq!(e.verdict, Verdict::Compliant);
    assert_eq!(e.evidence[0].verification, Verification::Configured);
    let e = eval(
        &control_with(check, "severity: Critical"),
        &snapshot(&[&ok, &webhook]),
    );
    assert_eq!(e.verdict, Verdict::Unknown);
    assert_eq!(e.reason, "InsufficientEvidence");
    let e = eval(&control(check), &snapshot(&[&ok, &no_backend, &nothing]));
    assert_eq!(
        sorted(&e),
        expect(&[
            (
                "AuditLoggingDisabled",
                "Pod",
                "kube-system/kube-apiserver-c"
            ),
            (
                "AuditLoggingDisabled",
                "Pod",
                "kube-system/kube-apiserver-d"
            ),
        ])
    );
    // Managed control plane: no pods; an attestation or nothing.
    // Nothing seen is not a violation: the verdict is Unknown.
    let e = eval(&control(check), &snapshot(&[&ns("app")]));
    assert_eq!(e.verdict, Verdict::Unknown);
    assert_eq!(e.reason, "NoAuditEvidence");
    assert!(e.violations.is_empty());
    let undetermined: Vec<_> = e.undetermined.iter().map(key).collect();
    assert_eq!(
        undetermined,
        expect(&[("NoAuditEvidence", "Control", "test")])
    );
    let attested = "auditLogging: {attestation: {statement: EKS audit logs to CloudWatch, attestedBy: sre@example.com, attestedAt: \"2026-05-01\"}}";
    let e = eval(
        &control_with(attested, "minimumEvidence: Attested"),
        &snapshot(&[&ns("app")]),
    );
    assert_eq!(e.verdict, Verdict::Compliant);
    assert_eq!(e.evidence[0].verification, Verification::Attested);
    assert_eq!(e.evidence[0].attested_at.as_deref(), Some("2026-05-01"));
}

/// The API server's own audit counters: events and no errors prove audit
/// records are produced (Verified); errors mean records were lost; zero
/// events on a serving API server mean nothing is audited, whatever the
/// flags or an attestation say.
#[test]
fn audit_metrics_table() {
    let check = "auditLogging: {}";
    let metrics = |events: f64, errors: f64| {
        format!(
            "# TYPE apiserver_audit_event_total counter\napiserver_audit_event_total {events}\n# TYPE apiserver_audit_error_total counter\napiserver_audit_error_total{{plugin=\"log\"}} {errors}\n"
        )
    };
    let flags = apiserver(
        "kube-apiserver-a",
        "--audit-policy-file=/etc/audit.yaml, --audit-log-path=/var/log/audit.log",
    );
    // (case, metrics, with the flagged pod, extra spec, verdict, reason)
    let cases = [
        (
            "events, no errors",
            metrics(120.0, 0.0),
            false,
            "severity: Critical",
            Verdict::Compliant,
            "Compliant",
        ),
        (
            "events and flags",
            metrics(120.0, 0.0),
            true,
            "severity: Critical",
            Verdict::Compliant,
            "Compliant",
        ),
        (
            "events lost",
            metrics(120.0, 3.0),
            false,
            "",
            Verdict::NonCompliant,
            "ViolationsFound",
        ),
        (
            "no events, though the flags are set",
            metrics(0.0, 0.0),
            true,
            "",
            Verdict::NonCompliant,
            "ViolationsFound",
        ),
    ];
    for (name, text, with_pod, extra, verdict, reason) in cases {
        let mut s = snapshot(&if with_pod {
            vec![flags.as_str()]
        } else {
            vec![]
        });
        s.set_apiserver_metrics_text(&text).unwrap();
        let e = eval(&control_with(check, extra), &s);
        assert_eq!(
            (e.verdict, e.reason.as_str()),
            (verdict, reason),
            "case: {name}: {e:#?}"
        );
        if verdict == Verdict::Compliant {
            assert!(
                e.evidence.iter().any(|ev| ev.source == "APIServerMetrics"
                    && ev.verification == Verification::Verified)
            );
        }
    }
}

/// Node agents run as DaemonSets: they are the usual privileged workloads.
#[test]
fn daemon_sets_are_checked() {
    let ds = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: agent, namespace: app}\nspec:\n  selector: {matchLabels: {app: agent}}\n  template:\n    metadata: {labels: {app: agent}}\n    spec:\n      hostNetwork: true\n      containers: [{name: a, image: agent:1, securityContext: {privileged: true}}]\n";
    let e = eval(&control("workloadSecurity: {}"), &snapshot(&[ds]));
    assert_eq!(
        sorted(&e),
        expect(&[
            ("HostNamespaces", "DaemonSet", "app/agent"),
            ("PrivilegedContainer", "DaemonSet", "app/agent"),
        ])
    );
    let e = eval(
        &control("imageProvenance: {requireDigest: true}"),
        &snapshot(&[ds]),
    );
    assert_eq!(
        sorted(&e),
        expect(&[("ImageNotPinned", "DaemonSet", "app/agent")])
    );
}
